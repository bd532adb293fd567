// Command lockbox is the Lockbox server.
//
//	lockbox serve       run the control plane, API and metrics (production)
//	lockbox dev         the same with an embedded store, dev keys and tokens
//	lockbox dev token   mint a dev token from the dev signing key
//	lockbox policy test DIR  run the Rego tests of a policy directory
//	lockbox webhook-key URL  print a webhook receiver's signing key
//	lockbox notify dead-letters|redrive  list and re-drive dead notifications
//	lockbox version
//
// Configuration comes from LOCKBOX_* environment variables; bad
// configuration stops start-up with a message naming the variable, and
// serve and dev with exit status 78 (EX_CONFIG), where other failures
// exit 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/internal/buildversion"
	"github.com/lockbox-oss/lockbox/internal/gcdefaults"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/policy"
)

// version is set at build time with -ldflags "-X main.version=..."; see
// buildversion.Of for a build without it.
var version = ""

// redisLogsHere is set by main: the logger a command makes from its
// configuration takes go-redis's messages as well (server.SetRedisLogger).
// go-redis has one logger for the whole process, which belongs to the
// process's command, not to each of the commands tests run in-process, one
// after another, each with its own buffer for stderr.
var redisLogsHere bool

func main() {
	// Every permitted call gets a UUID v7 for its audit record: read
	// randomness a few KiB at a time rather than once per record. (It must
	// be set before any UUID is made; nothing runs concurrently yet.)
	uuid.EnableRandPool()
	// The collector's defaults for a proxy (unless GOGC/GOMEMLIMIT say
	// otherwise): see internal/gcdefaults.
	gcdefaults.Apply(gcdefaults.Plan(os.Getenv, "/sys/fs/cgroup", "/proc/self/cgroup"))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var hangups chan os.Signal
	switch {
	case len(os.Args) < 2 || !runsServer(os.Args[1:]) || signal.Ignored(syscall.SIGHUP):
		// Ignored (nohup) stays ignored: Notify would undo that. The
		// commands that print and end keep the default.
	case os.Args[1] == "dev":
		// "lockbox dev" runs in a terminal, and closing the terminal sends
		// it SIGHUP: a stop like Ctrl-C, not the Go runtime's exit on the
		// spot, which cut off the calls it was serving.
		signal.Notify(sigs, syscall.SIGHUP)
		watchTerminalHangup()
	default:
		// "lockbox serve" runs under a supervisor, which stops it with
		// SIGTERM and sends SIGHUP to have it re-read its files
		// (systemd's ExecReload): the Go runtime's exit on the spot cut
		// off the calls it was serving.
		hangups = make(chan os.Signal, 1)
		signal.Notify(hangups, syscall.SIGHUP)
	}
	ctx, again := stopSignals(sigs)
	ctx = withReloads(withSecondStop(ctx, again), reloadsOn(hangups))
	redisLogsHere = true
	if runsServer(os.Args[1:]) {
		// A write to stdout or stderr whose reader is gone ("lockbox serve
		// | forwarder", and the forwarder died) must fail, not end the
		// server: unless SIGPIPE is asked for, the Go runtime exits on EPIPE
		// from fd 1 or 2 (see os/signal, SIGPIPE), and the SIEM sink's first
		// line took the proxy down with it. Asked for, the write returns
		// EPIPE: the SIEM forwarder keeps the records pending and retries,
		// and a log line is lost. Notify rather than Ignore, which children
		// would inherit; the signals themselves are dropped (the channel is
		// never read, and package signal never blocks on it). The other
		// commands print and end: "lockbox policy test -v | head" still
		// ends quietly when head does.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	}
	os.Exit(run(ctx, os.Args[1:], environ(), os.Stdout, os.Stderr))
}

// stopSignals reads the stop signals of sigs: the first ends ctx, the
// second closes again, which ends "lockbox serve"'s shutdown delay
// (LOCKBOX_SHUTDOWN_DELAY). Later ones are read and ignored, so the drain
// still runs its course, within LOCKBOX_SHUTDOWN_TIMEOUT.
func stopSignals(sigs <-chan os.Signal) (ctx context.Context, again <-chan struct{}) {
	ctx, stop := context.WithCancel(context.Background())
	second := make(chan struct{})
	go func() {
		<-sigs
		stop()
		<-sigs
		close(second)
		for range sigs {
		}
	}()
	return ctx, second
}

// secondStopKey is the context key of the channel a second stop signal
// closes.
type secondStopKey struct{}

// withSecondStop gives ctx the channel a second stop signal closes. It
// travels with ctx, the first stop, because both say the same thing: the
// process should end, the second the sooner.
func withSecondStop(ctx context.Context, again <-chan struct{}) context.Context {
	return context.WithValue(ctx, secondStopKey{}, again)
}

// secondStop is the channel withSecondStop gave ctx; nil (never closed)
// without one.
func secondStop(ctx context.Context) <-chan struct{} {
	again, _ := ctx.Value(secondStopKey{}).(<-chan struct{})
	return again
}

// reloadsOn turns the SIGHUPs of sigs into reload requests; nil for nil
// sigs. Signals that come while a reload is pending make no more: the
// pending one reads the files after all of them.
func reloadsOn(sigs <-chan os.Signal) <-chan struct{} {
	if sigs == nil {
		return nil
	}
	reloads := make(chan struct{}, 1)
	go func() {
		for range sigs {
			select {
			case reloads <- struct{}{}:
			default:
			}
		}
	}()
	return reloads
}

// reloadsKey is the context key of the channel of reload requests.
type reloadsKey struct{}

// withReloads gives ctx the channel of reload requests "lockbox serve"
// serves: like the stop signals, they come from the process's signals.
func withReloads(ctx context.Context, reloads <-chan struct{}) context.Context {
	return context.WithValue(ctx, reloadsKey{}, reloads)
}

// reloads is the channel withReloads gave ctx; nil without one.
func reloads(ctx context.Context) <-chan struct{} {
	r, _ := ctx.Value(reloadsKey{}).(<-chan struct{})
	return r
}

// runsServer tells the commands that run until stopped: serve and dev.
func runsServer(args []string) bool {
	switch {
	case len(args) == 0:
		return false
	case args[0] == "serve":
		return true
	case args[0] == "dev":
		return len(args) == 1 || args[1] != "token"
	}
	return false
}

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

const usage = `usage: lockbox <command>

commands:
  serve              run Lockbox; needs a Redis (LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS
                     with LOCKBOX_REDIS_SENTINEL_MASTER, or LOCKBOX_REDIS_CLUSTER_ADDRS), one token
                     key source (LOCKBOX_JWT_JWKS_URL, LOCKBOX_JWT_JWKS_FILE,
                     LOCKBOX_JWT_HMAC_SECRET_FILE or LOCKBOX_ISSUERS_FILE) and, with the proxy in
                     LOCKBOX_SERVE (the default), LOCKBOX_UPSTREAMS and LOCKBOX_PROXY_SIGNING_KEY_FILE
  dev                run Lockbox for development: embedded store, dev keys, demo tenants contoso
                     and fabrikam, tokens
  dev token          mint a dev token: --sub S --roles R[,R] [--tid T] [--ttl D]
  policy test DIR    run the Rego tests (*_test.rego) of a policy directory [-v]
  webhook-key URL    print the key of a receiver in LOCKBOX_WEBHOOK_URLS, which verifies its v2
                     signatures [--any]
  notify dead-letters [--tenant T] [-o table|json]
                     list a tenant's dead notifications, with the recipients each failed, or
                     the tenants that have some
  notify redrive --tenant T (--id ID ... | --all) [--reason TEXT]
                     send dead notifications again, to the recipients they failed, once their
                     cause is fixed ("lockbox notify --help")
  version            print the version

Configuration is read from LOCKBOX_* environment variables (see README).
`

func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		if err = noArguments(args, serveHelp, stdout); err == nil {
			err = serve(ctx, env, stderr)
		}
	case "dev":
		if len(args) > 1 && args[1] == "token" {
			err = devToken(args[2:], env, stdout, stderr)
			break
		}
		if err = noArguments(args, devHelp, stdout); err == nil {
			err = dev(ctx, env, stdout, stderr)
		}
	case "policy":
		if len(args) == 2 && isHelp(args[1]) {
			fmt.Fprint(stdout, policyTestHelp)
			return 0
		}
		if len(args) < 2 {
			err = usageError{errors.New(policyTestUsage)}
			break
		}
		if args[1] != "test" {
			err = wrongCommandLine("policy", fmt.Errorf("unknown command %q: %s", args[1], policyTestUsage))
			break
		}
		err = policyTest(ctx, args[2:], stdout)
	case "webhook-key":
		err = webhookKey(args[1:], env, stdout)
	case "notify":
		err = notifyCommand(ctx, args[1:], env, stdout, stderr)
	case "version":
		if len(args) == 2 && isHelp(args[1]) {
			fmt.Fprint(stdout, versionHelp)
			return 0
		}
		if len(args) > 1 {
			err = wrongCommandLine("version", fmt.Errorf("takes no arguments, got %q", strings.Join(args[1:], " ")))
			break
		}
		bi, ok := debug.ReadBuildInfo()
		// The Go release too, as lockboxctl version prints it: which
		// release built a binary decides which of Go's fixes it has.
		fmt.Fprintf(stdout, "lockbox %s (%s)\n", buildversion.Of(version, bi, ok), runtime.Version())
	default:
		if isHelp(args[0]) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		err = unknownCommand(args[0])
	}
	if err == nil || errors.Is(err, errHelpShown) {
		return 0
	}
	// One problem a line (configuration errors come joined), each
	// prefixed, so every line read alone in a log says where it is from.
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintf(stderr, "lockbox: %s\n", strings.TrimSuffix(line, "\n"))
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	if runsServer(args) && errors.Is(err, config.ErrInvalid) {
		return exitConfig
	}
	return 1
}

// exitConfig is the exit status of a server (serve, dev) whose
// configuration Lockbox refuses (config.ErrInvalid): EX_CONFIG of
// sysexits.h. The unit in deploy/systemd names it in
// RestartPreventExitStatus, so systemd does not start Lockbox again every
// RestartSec on a setting that will not change by itself, its one useful
// line buried under repeats until the start limit; every other failure (a
// Redis that does not answer, an address in use) stays 1, which it
// retries. The commands that print and end keep 1 for both: nothing
// restarts them.
const exitConfig = 78

type usageError struct{ error }

// wrongCommandLine is the usage error of command (its words after
// "lockbox"): one line, which says what is wrong and where the help is.
// The whole help on stderr, every line prefixed "lockbox: ", buried the
// line that said what was wrong.
func wrongCommandLine(command string, err error) error {
	return usageError{fmt.Errorf("%s: %w (lockbox %s --help)", command, err, command)}
}

// commandNames are the commands of lockbox, as its usage lists them.
const commandNames = "serve, dev, policy, webhook-key, notify or version"

// unknownCommand is the usage error of a first word that is no command: a
// flag (lockbox has none of its own before a command) or a mistyped
// command. It is one line, as every other wrong command line's is: the
// whole usage on stderr, after "unknown command", buried the line that
// said what was wrong, and named "--bogus" a command.
func unknownCommand(arg string) error {
	if strings.HasPrefix(arg, "-") && arg != "-" {
		return usageError{fmt.Errorf("unknown flag %q: a command comes first: %s (lockbox --help)", arg, commandNames)}
	}
	return usageError{fmt.Errorf("unknown command %q: %s (lockbox --help)", arg, commandNames)}
}

// errHelpShown is returned once a command printed the help it was asked
// for: nothing else runs, and the exit status is 0.
var errHelpShown = errors.New("help shown")

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

const serveHelp = `usage: lockbox serve

Runs Lockbox: what LOCKBOX_SERVE names (the proxy, the /v1 API with the admin center, the
background jobs) and always the metrics and health address. It takes no arguments: every
setting is a LOCKBOX_* environment variable (see README, Configuration). It needs a Redis
(LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS with LOCKBOX_REDIS_SENTINEL_MASTER, or
LOCKBOX_REDIS_CLUSTER_ADDRS), one token key source (LOCKBOX_JWT_JWKS_URL, LOCKBOX_JWT_JWKS_FILE,
LOCKBOX_JWT_HMAC_SECRET_FILE or LOCKBOX_ISSUERS_FILE) and, with the proxy in LOCKBOX_SERVE,
LOCKBOX_UPSTREAMS and LOCKBOX_PROXY_SIGNING_KEY_FILE.

Exit status: 0 stopped by SIGTERM or Ctrl-C; 78 a configuration it refuses at start-up (a
LOCKBOX_* variable, or a file one names: a key, a certificate, the policy directory, a SIEM
file whose directory does not exist; Redis refusing Lockbox's password, LOCKBOX_AUDIT_AOF, or
its user a command or key start-up needs (NOPERM), or Lockbox's address in protected mode
(DENIED, the sentinels' master and every cluster node included); a cluster's addresses naming
a Redis without cluster support, the URL a sentinel or one node of a Redis Cluster, or
sentinels that are none or monitor no master of LOCKBOX_REDIS_SENTINEL_MASTER's name; a port
below 1024 without CAP_NET_BIND_SERVICE; an IP address no interface of this host has), which a
restart can't mend; 1 any other failure (Redis not answering or loading, an address in use),
which a restart may; 2 a wrong command line.

SIGTERM or Ctrl-C stops it gracefully. SIGHUP does not stop it: it re-reads at once the policy
directory, the token key files, the grant signing and published key files and the TLS
certificate files, keeping what it had for a file it can't use; every other setting takes effect
on a restart (README, Reloading files with SIGHUP).
`

const devHelp = `usage: lockbox dev
       lockbox dev token --sub S --roles R[,R] [--tid T] [--ttl D]

Runs Lockbox for development with nothing to set up: an embedded store (unless
LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS or LOCKBOX_REDIS_CLUSTER_ADDRS names a Redis),
the demo tenant services behind the proxy (unless LOCKBOX_UPSTREAMS names upstreams), the demo
tenants contoso and fabrikam, a dev signing key, and a token file per dev identity in
LOCKBOX_DEV_DIR (.lockbox-dev), with an env file to source. It takes no arguments: the addresses
are LOCKBOX_API_ADDR, LOCKBOX_PROXY_ADDR and LOCKBOX_METRICS_ADDR. "lockbox dev token" mints
another token with the dev signing key ("lockbox dev token --help").

The admin center offers sign-in as any dev identity, so the API listens on loopback only, unless
LOCKBOX_OIDC_ISSUER signs users in instead. Tokens are verified with the dev key, whatever
LOCKBOX_JWT_JWKS_URL, LOCKBOX_JWT_JWKS_FILE, LOCKBOX_JWT_HMAC_SECRET_FILE or
LOCKBOX_ISSUERS_FILE say. It runs the proxy, the API and the jobs whatever LOCKBOX_SERVE says,
with a grant signing key of its own in LOCKBOX_DEV_DIR in place of
LOCKBOX_PROXY_SIGNING_KEY_FILE's. A stop signal starts the drain at once, whatever
LOCKBOX_SHUTDOWN_DELAY says. Dev neither reads nor checks these seven settings, so a shell that
holds a production environment, or files of another machine, still runs it: it logs one warning
naming those that are set. Unless they are set, the upstreams' key set is written in
LOCKBOX_DEV_DIR (LOCKBOX_PROXY_JWKS_FILE), the SIEM lines go to siem.jsonl there
(LOCKBOX_SIEM_SINK; on the embedded store, whose audit chains start again each run, the last
run's lines move to siem.jsonl.1), and new requests are mailed to mary@provider.example
(LOCKBOX_NOTIFY_MANAGER_ADDRESSES); without LOCKBOX_SMTP_ADDR, e-mails are written under mail/
there. Every other setting is read and checked as "lockbox serve" reads and checks it (README,
Configuration): one that is wrong stops dev, naming it.
`

const versionHelp = `usage: lockbox version

Prints the version of this lockbox: the one it was built with (-ldflags "-X main.version=...",
which the image's VERSION sets), else the module's (go install ...@v1.2.3), else "development
build" and the commit of the checkout it was built from, marked when the checkout had changes;
then, in parentheses, the Go release it was built with.
`

// noArguments refuses arguments to a command that takes none (serve, dev),
// which starts a server: "lockbox dev --help" printed nothing of help, and
// started another dev server that rewrote the token and env files of the
// one already running. A help flag prints help instead.
func noArguments(args []string, help string, stdout io.Writer) error {
	if len(args) < 2 {
		return nil
	}
	if len(args) == 2 && isHelp(args[1]) {
		fmt.Fprint(stdout, help)
		return errHelpShown
	}
	return usageError{fmt.Errorf("lockbox %s takes no arguments, got %q: its settings are LOCKBOX_* environment variables (lockbox %s --help)",
		args[0], strings.Join(args[1:], " "), args[0])}
}

func serve(ctx context.Context, env map[string]string, stderr io.Writer) error {
	cfg, log, err := loadConfig(env, config.ModeServe, stderr)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, EndDelay: secondStop(ctx), Reload: reloads(ctx)})
	if err != nil {
		return stoppedStarting(ctx, log, err)
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	return srv.Run(ctx)
}

// stoppedStarting is err, which ended a server's start-up under ctx,
// unless a stop signal ended ctx and start-up failed for that reason: the
// stop is what was asked for, so the command ends as a stop after start-up
// does, with exit 0 and an info line. It ended with exit 1 and an error
// naming what start-up was waiting on ("LOCKBOX_REDIS_URL: ... context
// canceled"), which was not at fault.
func stoppedStarting(ctx context.Context, log *slog.Logger, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		log.Info("stop signal during start-up: not started", "during", err)
		return nil
	}
	return err
}

// loadConfig loads the configuration for mode and its logger (go-redis's
// too, with redisLogsHere), and warns of every LOCKBOX_ variable nothing in
// Lockbox reads: a misspelt one (LOCKBOX_AUDIT_REPLICA) would otherwise be
// ignored without a word. A warning, not an error, since the shell may hold
// others' variables; and given also when the configuration is refused
// (through a text logger at info), as the misspelling may be why.
func loadConfig(env map[string]string, mode config.Mode, stderr io.Writer) (config.Config, *slog.Logger, error) {
	cfg, err := config.LoadFor(env, mode)
	log := cfg.Logger(stderr)
	if redisLogsHere {
		server.SetRedisLogger(log)
	}
	for _, u := range config.UnknownVars(env) {
		log.Warn(u.String(), "variable", u.Name, "did_you_mean", u.Suggestion)
	}
	return cfg, log, err
}

const policyTestUsage = "usage: lockbox policy test DIR [-v]"

const policyTestHelp = policyTestUsage + `

Runs the Rego tests (*_test.rego) of the policy directory DIR; -v, before or after DIR, prints
every test. A directory named help is ./help: "help" alone shows this help, as it does for
every other command.
`

// policyTest runs the Rego tests of a policy directory, as security teams
// do before shipping a change.
func policyTest(ctx context.Context, args []string, stdout io.Writer) error {
	fset := flag.NewFlagSet("lockbox policy test", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	verbose := fset.Bool("v", false, "print every test")
	// The flag package stops at the first argument that is not a flag, but
	// the usage line puts -v after DIR: parse again after each positional
	// argument, so flags go before or after it.
	var (
		dirs []string
		// literal: the directory came after "--", so "help" names one.
		literal bool
	)
	for rest := args; ; {
		if err := fset.Parse(rest); errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, policyTestHelp)
			return errHelpShown
		} else if err != nil {
			return wrongCommandLine("policy test", err)
		}
		if rest = fset.Args(); len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			// Everything after "--" is a directory, even "-v".
			dirs, literal = append(dirs, rest...), true
			break
		}
		dirs, rest = append(dirs, rest[0]), rest[1:]
	}
	if len(dirs) != 1 {
		return usageError{errors.New(policyTestUsage)}
	}
	if dirs[0] == "help" && !literal {
		// Every other command shows its help for "help"; a directory of
		// that name stays reachable as ./help (or after "--").
		fmt.Fprint(stdout, policyTestHelp)
		return errHelpShown
	}
	_, failed, err := policy.RunTests(ctx, dirs[0], stdout, *verbose)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d Rego tests failed", failed)
	}
	return nil
}
