// Package cli is lockboxctl, the command line of Lockbox for every role:
// support engineers file and cancel requests, support managers and tenant
// approvers approve or deny them, tenant administrators set the lockbox
// switch and the approvers, auditors search the audit log.
//
// It is built on spf13/cobra, as kubectl is: verbs on resources (get,
// describe, create, approve, deny, revoke), shell completion that asks the
// API for request ids and tenants, and "did you mean" for a mistyped
// command. The command lines of earlier releases ("request list", the
// PowerShell verbs) are kept: scripts use them.
//
// Run is the whole program, so tests run it in-process. It only turns flags
// into api/client calls and answers into tables, JSON or YAML: every rule
// lives in the server. It must not import api, proxy or any store; it links
// the API's wire types only (cmd/lockboxctl's TestDependencies).
package cli

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/internal/buildversion"
)

// Version is lockboxctl's version, set at build time with
// -ldflags "-X github.com/lockbox-oss/lockbox/cli.Version=v1.2.3".
// When unset, lockboxctl names its build as lockbox does (buildversion.Of).
var Version = ""

// DefaultAddr is the API address used when neither --addr nor LOCKBOX_ADDR
// says otherwise: the one `lockbox dev` listens on.
const DefaultAddr = "http://127.0.0.1:8080"

// apiURL turns an API address as users write it into a URL: a bare
// host:port (the form of LOCKBOX_API_ADDR, which users copy) means
// http://host:port. Anything with a scheme is left for the client to check
// (it refuses all but http and https).
func apiURL(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr != "" && !strings.Contains(addr, "://") {
		return "http://" + addr
	}
	return addr
}

// Environment variables read by lockboxctl.
const (
	EnvAddr  = "LOCKBOX_ADDR"
	EnvToken = "LOCKBOX_TOKEN"
	// EnvInsecureHTTP is --insecure-http's default, a boolean.
	EnvInsecureHTTP = "LOCKBOX_INSECURE_HTTP"
)

// Exit codes, the same for every command (README, "Exit status").
const (
	exitOK    = 0
	exitError = 1 // the call failed: server error, network, no token
	exitUsage = 2 // the command line was wrong; nothing was sent
	// exitRefused: the API refused the call — the caller may not (HTTP 401,
	// 403), what it names does not exist (404), is not in a state that
	// allows it (409: decided by someone else first, an open request
	// already there; not 409 "conflict", which asks for a retry), or it
	// changed since the command read it (412,
	// nothing written), or lockboxctl declined itself once it read what
	// the command named (refusedError) — so a script can tell "no" from
	// "broken". Such an
	// answer without the API's error document is some other server's:
	// exitError.
	exitRefused = 3
	// exitChainBroken: "audit verify" read the API's verdict, and the
	// tenant's audit chain does not verify: a record edited, deleted or
	// slipped in. Its own status, so an auditor's script can tell
	// tampering found from a check that could not run (1: the server
	// down, a 500), which it must retry rather than report.
	exitChainBroken = 4
	// exitInterrupted: stopped by Ctrl-C before it was done, 128+SIGINT
	// as shells report a command Ctrl-C stopped, so a script can tell
	// "the user stopped it" from "it failed" (1). Another signal exits
	// 128 plus its own number (see SignalCause): 143 for SIGTERM.
	exitInterrupted = 130
)

// SignalCause is the cause (context.Cause) cmd/lockboxctl cancels Run's
// context with when a signal stops lockboxctl. The run then exits 128 plus
// the signal's number, as shells report a command a signal stopped: 130
// for SIGINT, 143 for SIGTERM, so a script can tell Ctrl-C from a kill or
// a job's timeout. A context canceled without one exits 130.
type SignalCause struct{ Signal syscall.Signal }

func (c SignalCause) Error() string { return c.Signal.String() + " received" }

// Is makes the cause context.Canceled, as the context's error is, for
// code that returns the cause in its place.
func (c SignalCause) Is(target error) bool { return target == context.Canceled }

// ExitCode is the exit code of a run the signal stopped: 128 plus its
// number, exitInterrupted (130) for one without a number below 128.
func (c SignalCause) ExitCode() int {
	if c.Signal > 0 && c.Signal < 128 {
		return 128 + int(c.Signal)
	}
	return exitInterrupted
}

// Run runs lockboxctl with args (without the program name) and returns the
// exit code (see the exit constants). getenv reads the environment
// (os.Getenv in production).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, getenv, stdout, stderr, sessionDeps{})
}

func runWith(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, session sessionDeps) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	e := &env{ctx: ctx, getenv: getenv, stdout: stdoutWriter{w: stdout}, stderr: stderr, session: session}
	e.g.output = "table"
	e.g.addr = getenv(EnvAddr)
	if e.g.addr == "" {
		e.g.addr = DefaultAddr
	}
	if v := strings.TrimSpace(getenv(EnvInsecureHTTP)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			// Refused when a command would call the API (checkAddr),
			// as a bad $LOCKBOX_ADDR is: read as false it would only
			// turn a trusted network's calls into refusals.
			e.envErr = &usageError{msg: fmt.Sprintf("$%s is %q: want true or false (1 or 0)", EnvInsecureHTTP, v)}
		}
		e.g.insecureHTTP = b
	}
	root := e.rootCommand()
	root.SetArgs(args)
	root.SetOut(e.stdout)
	root.SetErr(stderr)
	root.SetIn(strings.NewReader(""))
	code := e.report(root.ExecuteContext(ctx))
	if code != exitOK && e.afterError != "" {
		fmt.Fprintf(stderr, "lockboxctl: %s\n", clean(e.afterError))
	}
	return code
}

// env is one run of lockboxctl.
type env struct {
	ctx            context.Context
	getenv         func(string) string
	stdout, stderr io.Writer
	g              globals
	// cmd is the command being run.
	cmd *cobra.Command
	// session serves login, logout and the stored token.
	session sessionDeps
	// envErr is a variable of lockboxctl's that can't be read, reported
	// before any call.
	envErr error
	// tokenFrom says where the token sent came from (token), once a
	// client was made.
	tokenFrom string
	// tokenExpiry is the exp claim of the token sent, read unverified
	// for messages only; zero when it has none.
	tokenExpiry time.Time
	// told are the unreadable requests and records already reported.
	told map[string]bool
	// unreadableRequests and unreadableRecords are those reported, in the
	// order met: -o json and -o yaml print them in the page's own
	// "unreadable" list, so a script can tell the listing is incomplete.
	unreadableRequests []wire.UnreadableRequest
	unreadableRecords  []wire.UnreadableRecord
	// afterError is a line report's message is followed by, when the
	// command failed: what to do about what the failure left unknown.
	afterError string
}

// globals are the flags every command accepts, before or after its name.
type globals struct {
	output    outputValue
	addr      string
	tokenFile string
	// insecureHTTP lets the token go over plain http to a server that is
	// not loopback (--insecure-http).
	insecureHTTP bool
}

// usageError is a wrong command line (exit code 2). Only an unknown or
// missing command or flag prints the usage of cmd; any other mistake, such
// as a bad flag value, gets its one-line message and a one-line pointer to
// the help, so the message isn't lost above a screen of usage.
type usageError struct {
	cmd   *cobra.Command
	msg   string
	usage bool
}

func (e *usageError) Error() string { return e.msg }

// refusedError is a call lockboxctl declines itself once it read what
// the command named, where the API would have no reason to (exit 3, as
// for the API's refusals): nothing was changed.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// usage returns a usage error of the command being run.
func (e *env) usage(format string, args ...any) error {
	return &usageError{cmd: e.cmd, msg: fmt.Sprintf(format, args...)}
}

// report prints err and returns the exit code for it.
func (e *env) report(err error) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return exitOK
	}
	if _, ok := errors.AsType[*stdoutClosedError](err); ok {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		switch {
		case ue.cmd == nil:
			fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(ue.msg))
		case ue.usage:
			fmt.Fprintf(e.stderr, "lockboxctl: %s\n\n%s", clean(ue.msg), ue.cmd.UsageString())
		default:
			fmt.Fprintf(e.stderr, "lockboxctl: %s\nsee '%s --help'\n", clean(ue.msg), ue.cmd.CommandPath())
		}
		return exitUsage
	}
	if re, ok := errors.AsType[*refusedError](err); ok {
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(re.msg))
		return exitRefused
	}
	if errors.Is(err, errChainBroken) {
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(err.Error()))
		return exitChainBroken
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		msg := apiErr.Message
		if msg == "" {
			msg = http.StatusText(apiErr.Status)
		}
		// A message that starts with its own code ("unauthenticated:
		// token expired", identity's errors) said it twice, the code
		// being noted after it.
		if rest, ok := strings.CutPrefix(msg, apiErr.Code+": "); ok && apiErr.Code != "" && strings.TrimSpace(rest) != "" {
			msg = rest
		}
		// An answer without the API's error document is made into a
		// message that starts with its status ("HTTP 401
		// Unauthorized"), and an HTML page's line names it: noted
		// again, it was printed twice.
		var notes []string
		if status := fmt.Sprintf("HTTP %d", apiErr.Status); msg != status && !strings.HasPrefix(msg, status+" ") && !strings.HasPrefix(msg, status+":") && !apiErr.HTMLPage {
			notes = append(notes, status)
		}
		if apiErr.Code != "" {
			notes = append([]string{apiErr.Code}, notes...)
		}
		if apiErr.RetryAfter > 0 {
			notes = append(notes, fmt.Sprintf("retry after %ds", int64(apiErr.RetryAfter/time.Second)))
		}
		// The trace id is the server's X-Request-Id: it finds the call in
		// the server's log. Named so it isn't taken for a lockbox request.
		if apiErr.TraceID != "" {
			notes = append(notes, "trace id "+apiErr.TraceID)
		}
		if apiErr.HTMLPage {
			// A load balancer's error page, or a server that is not
			// Lockbox's: its markup told the user nothing, and the
			// question is which of the two answered.
			page := "an HTML page"
			if apiErr.PageText != "" {
				page += fmt.Sprintf(" (%q)", apiErr.PageText)
			}
			fmt.Fprintf(e.stderr, "lockboxctl: the server at %s answered %d %s with %s, not Lockbox's API: is --addr ($%s) Lockbox's API, or a proxy in front of it?%s\n",
				clean(apiURL(e.g.addr)), apiErr.Status, http.StatusText(apiErr.Status), clean(page), EnvAddr, clean(inParens(notes)))
			return exitError
		}
		fmt.Fprintf(e.stderr, "lockboxctl: %s%s\n", clean(msg), clean(inParens(notes)))
		if apiErr.FromProxy {
			// The proxy's port given for the API's (8081 for 8080 in
			// lockbox dev): its refusal, in the API's error document,
			// says nothing of what the command named, so no exit 3.
			fmt.Fprintf(e.stderr, "lockboxctl: the answer is from Lockbox's enforcement proxy, not its API: %s is the proxy's address; give the API's (LOCKBOX_API_ADDR) as --addr or $%s\n",
				clean(apiURL(e.g.addr)), EnvAddr)
			return exitError
		}
		if apiErr.Status == http.StatusUnauthorized && apiErr.Code != "" {
			// The token was refused, and which one was sent is not
			// obvious: a LOCKBOX_TOKEN left in the shell shadows the
			// token a fresh login stored. Only a token that is there is
			// named as shadowed: the line named a login's token to
			// people who had never signed in.
			if e.tokenFrom == "lockboxctl login" {
				fmt.Fprintln(e.stderr, "lockboxctl: the token sent is the one lockboxctl login stored: run lockboxctl login again")
			} else if e.tokenFrom != "" {
				var shadowed []string
				if e.tokenFrom != "$"+EnvToken && strings.TrimSpace(e.getenv(EnvToken)) != "" {
					shadowed = append(shadowed, "$"+EnvToken)
				}
				if e.hasStoredLogin() {
					shadowed = append(shadowed, "the one lockboxctl login stored")
				}
				if len(shadowed) > 0 {
					fmt.Fprintf(e.stderr, "lockboxctl: the token sent came from %s, which comes before %s\n", clean(e.tokenFrom), strings.Join(shadowed, " and "))
				}
			}
			// A shell that sourced lockbox dev's env file keeps its
			// tokens after dev wrote new ones: say where current ones
			// are. The token's own exp says it expired; the API's
			// message is for people, not to branch on. login's line
			// already says what to do.
			if exp := e.tokenExpiry; e.tokenFrom != "lockboxctl login" && !exp.IsZero() && !e.session.clock().Before(exp) {
				fmt.Fprintf(e.stderr, "lockboxctl: it expired at %s: use a current one (with lockbox dev, which renews its tokens: source .lockbox-dev/env again, or pass --token-file .lockbox-dev/operator.jwt or your role's file)\n",
					exp.UTC().Format(timeLayout))
			}
		}
		if apiErr.Status == http.StatusNotFound && apiErr.Code == "not_found" {
			// The API's answer to a path it has no route for, as every
			// call gets when the address ends in the /v1 the client adds
			// (lockbox dev prints the API as .../v1): not the thing the
			// command named, so no exit 3.
			if without, ok := withoutV1(apiURL(e.g.addr)); ok {
				fmt.Fprintf(e.stderr, "lockboxctl: the API's paths start with /v1, which lockboxctl adds itself: give the address without it, %s (--addr, $%s)\n",
					clean(without), EnvAddr)
				return exitError
			}
		}
		switch apiErr.Status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed:
			// Only the API's own refusal carries its error document. A
			// 404 without one comes from another server (--addr naming
			// the metrics port, a path prefix left out) and says nothing
			// of what the command named: exit 3 would tell a script that
			// the request does not exist.
			// A 409 "conflict" is a change that met another in Redis
			// ("retry"): nothing was refused, so not exit 3.
			if apiErr.Code != "" && !(apiErr.Status == http.StatusConflict && apiErr.Code == "conflict") {
				return exitRefused
			}
			if apiErr.Code != "" {
				return exitError
			}
			fmt.Fprintf(e.stderr, "lockboxctl: the answer is not from the Lockbox API: is %s its address (--addr, $%s)?\n",
				clean(apiURL(e.g.addr)), EnvAddr)
		}
		return exitError
	}
	var (
		urlErr      *url.Error
		idpErr      *idpError
		redirErr    *redirectError
		insecureErr *client.InsecureHTTPError
		badLocation *client.MalformedRedirectError
		decodeErr   *client.DecodeError
	)
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "lockboxctl: interrupted")
		return e.interrupted()
	case errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &idpErr):
		// An API call's own timeout, or an export's silence (Run's
		// context has no deadline): the server took the call, or may
		// have, so not "cannot reach", and Go's words would say nothing
		// more. The identity provider's are named as its own, below.
		fmt.Fprintf(e.stderr, "lockboxctl: the Lockbox API at %s gave no answer for %s: it may be down or overloaded; try again later\n",
			clean(apiURL(e.g.addr)), e.session.timeout())
	case errors.As(err, &urlErr) && errors.As(err, &insecureErr):
		// checkAddr refused a plain http address before any call, so the
		// client refused where an answer redirected: from https to plain
		// http off loopback. The API answered, as for any other
		// redirect that is not followed.
		redirErr = &redirectError{from: apiURL(e.g.addr), to: insecureErr.Address}
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(redirErr.Error()))
	case errors.As(err, &redirErr):
		// The API's address answered: not "cannot reach".
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(redirErr.Error()))
	case errors.As(err, &badLocation):
		// Answered too, with a Location not shown: it may hold a password.
		fmt.Fprintf(e.stderr, "lockboxctl: %s redirects (HTTP %d) to a Location that is not a URL: not followed\n",
			clean(apiURL(e.g.addr)), badLocation.Status)
	case errors.As(err, &decodeErr):
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(e.notJSON(decodeErr)))
	case errors.As(err, &idpErr):
		// It names the identity provider itself; the *url.Error it may
		// hold is not the API's.
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(err.Error()))
	case errors.As(err, &urlErr) && closedBeforeAnswer(err):
		// Reached, and maybe read: "cannot reach" told the user nothing
		// happened, so an approval or revocation that took effect was
		// repeated in the belief it had not.
		done := ""
		if urlErr.Op != "Get" && urlErr.Op != "Head" {
			done = ": the call may have been carried out"
		}
		fmt.Fprintf(e.stderr, "lockboxctl: the connection to the Lockbox API at %s ended without an answer (%s)%s\n",
			clean(apiURL(e.g.addr)), clean(urlErr.Err.Error()), done)
	case errors.As(err, &urlErr):
		hint := ""
		if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
			// The remedy is lockboxctl's own variable, which only the
			// help names.
			if f := e.getenv(EnvCAFile); f == "" {
				hint = "; if a private CA issued its certificate, give the CA's PEM file as $" + EnvCAFile
			} else {
				hint = fmt.Sprintf("; no CA in $%s (%s) issued its certificate", EnvCAFile, clean(f))
			}
		}
		if u, perr := url.Parse(apiURL(e.g.addr)); perr == nil && errors.Is(err, syscall.ECONNREFUSED) && isLoopback(u.Hostname()) {
			// This machine's Lockbox is not running (lockbox dev
			// stopped), or runs on another port: Go's words said only
			// "connection refused".
			hint = fmt.Sprintf("; nothing listens there: start Lockbox (make run starts lockbox dev), or give the address it listens on (--addr, $%s)", EnvAddr)
		}
		fmt.Fprintf(e.stderr, "lockboxctl: cannot reach the Lockbox API at %s: %s%s\n", clean(apiURL(e.g.addr)), clean(urlErr.Err.Error()), hint)
	default:
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(err.Error()))
	}
	return exitError
}

// closedBeforeAnswer reports whether the call, written whole to its
// connection, got no answer on it: the server may have read the call and
// acted on it. A call cut off before it was written (a TLS handshake
// ended by the other side) is not this, nor a timeout.
func closedBeforeAnswer(err error) bool {
	if _, notSent := errors.AsType[*client.NotSentError](err); notSent {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// notJSON says what a 2xx answer that is not the API's JSON was, and
// asks after the address: the API answers every call it serves with its
// JSON, so such an answer comes from something in front of it (a default
// backend, a gateway) or lost its end on the way. A body that failed to
// arrive is named as such.
func (e *env) notJSON(d *client.DecodeError) string {
	call := "the answer to " + d.Method + " " + d.Path
	check := fmt.Sprintf("is %s the API's address (--addr, $%s)?", apiURL(e.g.addr), EnvAddr)
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(d.Err, io.EOF):
		return call + " is empty, not the API's JSON: " + check
	case errors.Is(d.Err, io.ErrUnexpectedEOF):
		return call + " ends midway through its JSON: cut off on the way, or not the API's answer: " + check
	case errors.As(d.Err, &syntaxErr):
		return fmt.Sprintf("%s is not the API's JSON (%s): %s", call, syntaxErr, check)
	case errors.As(d.Err, &typeErr):
		what := "a " + typeErr.Value
		if typeErr.Value != "" && strings.ContainsRune("aeiou", rune(typeErr.Value[0])) {
			what = "an " + typeErr.Value
		}
		if typeErr.Field != "" {
			what = fmt.Sprintf("%s at %q", what, typeErr.Field)
		}
		return fmt.Sprintf("%s is not the JSON lockboxctl expects (%s): %s", call, what, check)
	}
	return fmt.Sprintf("cannot read %s from %s: %s", call, apiURL(e.g.addr), d.Err)
}

// withoutV1 returns addr without the /v1 its path ends in, and whether
// it ended so.
func withoutV1(addr string) (string, bool) {
	u, err := url.Parse(addr)
	if err != nil {
		return "", false
	}
	dir, last := path.Split(strings.TrimSuffix(u.Path, "/"))
	if !strings.EqualFold(last, "v1") {
		return "", false
	}
	u.Path, u.RawPath = strings.TrimSuffix(dir, "/"), ""
	return u.String(), true
}

// interrupted is the exit code of a run its context's end stopped: 128
// plus the number of the signal that ended it, exitInterrupted when none
// is known.
func (e *env) interrupted() int {
	if e.ctx == nil {
		return exitInterrupted
	}
	if c, ok := errors.AsType[SignalCause](context.Cause(e.ctx)); ok {
		return c.ExitCode()
	}
	return exitInterrupted
}

// client returns an API client for the global flags, with the token from
// --token-file, LOCKBOX_TOKEN or lockboxctl login, in that order.
func (e *env) client() (*client.Client, error) {
	if err := e.checkAddr(); err != nil {
		return nil, err
	}
	tok, from, err := e.token()
	if err != nil {
		return nil, err
	}
	e.tokenFrom = from
	e.tokenExpiry = jwtExpiry(tok)
	if scheme, _, ok := strings.Cut(tok, " "); ok && strings.EqualFold(scheme, "bearer") {
		// Copied from a curl command line or an Authorization header:
		// the client would refuse it for its space, which sends the user
		// looking for a stray one.
		return nil, fmt.Errorf("the token from %s starts with \"Bearer \": give the token alone, without the scheme", from)
	}
	if err := asciiToken(tok, from); err != nil {
		return nil, err
	}
	hc, err := e.httpClient()
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithUserAgent(userAgent()), client.WithHTTPClient(hc)}
	if e.g.insecureHTTP {
		// checkAddr refused plain http off loopback without it; the
		// client refuses it too unless told.
		opts = append(opts, client.AllowInsecureHTTP())
	}
	c, err := client.New(apiURL(e.g.addr), tok, opts...)
	if err != nil {
		// checkAddr took the address: what is refused is the token
		// (a line break in it, a file holding more than the token), so
		// say where it came from.
		return nil, fmt.Errorf("the token from %s can't be sent: %s", from, strings.TrimPrefix(err.Error(), "client: "))
	}
	return c, nil
}

// jwtExpiry is the exp claim of tok, read without verifying the token:
// only for saying why the API refused it, never to decide anything. Zero
// when tok is no JWT or has no exp.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil || *claims.Exp <= 0 || *claims.Exp > 1<<40 {
		return time.Time{}
	}
	return time.Unix(int64(*claims.Exp), 0)
}

// asciiToken refuses a token from `from` with a byte no token has (a
// JWT is base64url and dots), naming what it most likely is: an editor's
// byte-order mark, which can't be seen, or a file PowerShell 5's ">"
// wrote in UTF-16. Sent as they are, the API calls the first "malformed"
// (401, which reads as "you may not"), and the client refuses the second
// for its NUL bytes as "whitespace or control characters".
func asciiToken(tok, from string) error {
	switch {
	case strings.ContainsRune(tok, 0):
		return fmt.Errorf("the token from %s is UTF-16 text: save it as plain ASCII text (PowerShell: Set-Content -Encoding ascii)", from)
	case strings.HasPrefix(tok, "\ufeff"):
		return fmt.Errorf("the token from %s starts with a byte-order mark (U+FEFF): save it as plain ASCII text, without one", from)
	}
	for _, r := range tok {
		if r > unicode.MaxASCII {
			return fmt.Errorf("the token from %s holds a character no token has (%U): give the token alone, as plain ASCII text", from, r)
		}
	}
	return nil
}

// checkAddr refuses, as a wrong command line (exit 2), an API address
// the client can't call, and an http:// one that is not loopback, before
// anything is sent: every call carries the bearer token, which anyone on
// the path could read and replay for as long as it lives. Loopback http
// is lockbox dev's (and a port-forward's); --insecure-http is for a
// network the user trusts.
func (e *env) checkAddr() error {
	if e.envErr != nil {
		return e.envErr
	}
	if err := e.checkAddrForm(); err != nil {
		return err
	}
	addr := apiURL(e.g.addr)
	u, err := url.Parse(addr)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || e.g.insecureHTTP || isLoopback(u.Hostname()) {
		return nil
	}
	return &usageError{msg: fmt.Sprintf("%s is plain http to a server that is not loopback, so the token would cross the network readable by anyone on the way: "+
		"use https, or pass --insecure-http to send it anyway", u.Redacted())}
}

// checkAddrForm refuses an API address no command can call (a port alone,
// another scheme, a query), as a wrong command line.
func (e *env) checkAddrForm() error {
	if port := strings.TrimSpace(e.g.addr); port != "" && strings.Trim(port, "0123456789") == "" {
		// A port alone, as curl and browsers take localhost's, read as a
		// host named 8080: refused as not loopback, with --insecure-http
		// offered, which would send the token wherever "8080" resolves.
		return &usageError{msg: fmt.Sprintf("%q is a port without a host: give host:port, e.g. 127.0.0.1:%s (--addr, $%s)", port, port, EnvAddr)}
	}
	addr := apiURL(e.g.addr)
	if _, err := client.New(addr, ""); err != nil {
		return &usageError{msg: fmt.Sprintf("%s (--addr, $%s)", strings.TrimPrefix(err.Error(), "client: "), EnvAddr)}
	}
	return nil
}

// isLoopback reports whether a connection to host stays on this machine:
// localhost, an address in 127.0.0.0/8 or ::1, or no address at all (""
// and 0.0.0.0 of a listen address copied from LOCKBOX_API_ADDR, which
// dial this machine).
func isLoopback(host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// token returns the bearer token and where it came from, for messages.
func (e *env) token() (tok, from string, err error) {
	if e.g.tokenFile != "" {
		from = "--token-file " + clean(e.g.tokenFile)
		b, err := os.ReadFile(e.g.tokenFile)
		if err != nil {
			return "", from, fmt.Errorf("reading --token-file: %w", err)
		}
		// Others who can read the file can use the token; who can change
		// it can make commands run as someone else. ssh refuses a key
		// file like that; this only warns, since a Kubernetes secret is
		// mounted 0644 unless its defaultMode says otherwise. (The token
		// lockboxctl login stores is refused: lockboxctl wrote it 0600.)
		if fi, err := os.Stat(e.g.tokenFile); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
			fmt.Fprintf(e.stderr, "lockboxctl: warning: --token-file %s is mode %04o: other users may read or change it (chmod 600 %s)\n",
				clean(e.g.tokenFile), fi.Mode().Perm(), clean(e.g.tokenFile))
		}
		tok := strings.TrimRight(string(b), " \t\r\n")
		if tok == "" {
			return "", from, fmt.Errorf("--token-file %s is empty", e.g.tokenFile)
		}
		return tok, from, nil
	}
	if tok := strings.TrimRight(e.getenv(EnvToken), " \t\r\n"); tok != "" {
		return tok, "$" + EnvToken, nil
	}
	tok, err = e.storedToken()
	return tok, "lockboxctl login", err
}

func version() string {
	bi, ok := readBuildInfo()
	return buildversion.Of(Version, bi, ok)
}

// readBuildInfo is debug.ReadBuildInfo, which tests replace: a test binary
// has no version and no commit of its own.
var readBuildInfo = debug.ReadBuildInfo

// userAgent is lockboxctl's User-Agent: a product token (RFC 9110,
// 10.1.5) holds no spaces, so a development build's version, which has
// them, stays "dev" there, as before.
func userAgent() string {
	if v := version(); !buildversion.IsDevelopment(v) {
		return "lockboxctl/" + v
	}
	return "lockboxctl/dev"
}

func goVersion() string { return runtime.Version() }

// inParens is notes as " (a, b)" after a message, or "" when there are none.
func inParens(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, ", ") + ")"
}
