// Package cli is lockboxctl, the command line of Lockbox for every role:
// support engineers file and cancel requests, support managers and tenant
// approvers approve or deny them, tenant administrators set the lockbox
// switch and the approvers, auditors search the audit log.
//
// Run is the whole program, so tests run it in-process. It only turns flags
// into api/client calls and answers into tables or JSON: every rule lives in
// the server. It must not import api, proxy or any store.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/lockbox-oss/lockbox/api/client"
)

// Version is lockboxctl's version, set at build time with
// -ldflags "-X github.com/lockbox-oss/lockbox/cli.Version=v1.2.3".
// When unset, the module version from the build information is used.
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
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the call failed: API error, network, missing token
	exitUsage = 2 // the command line was wrong
)

// Run runs lockboxctl with args (without the program name) and returns the
// exit code: 0 on success, 1 when the call failed, 2 for a usage error.
// getenv reads the environment (os.Getenv in production).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, getenv, stdout, stderr, sessionDeps{})
}

func runWith(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, session sessionDeps) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	e := &env{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr, session: session}
	e.g.output = "table"
	e.g.addr = getenv(EnvAddr)
	if e.g.addr == "" {
		e.g.addr = DefaultAddr
	}
	return e.report(e.dispatch(args))
}

// env is one run of lockboxctl.
type env struct {
	ctx            context.Context
	getenv         func(string) string
	stdout, stderr io.Writer
	g              globals
	// cmd is the command being run.
	cmd string
	// session serves login, logout and the stored token.
	session sessionDeps
}

// globals are the flags every command accepts, before or after its name.
type globals struct {
	output    outputValue
	addr      string
	tokenFile string
}

// register adds the global flags to fs. Each flag set starts from the
// values parsed so far, so "-o json request list" and "request list -o
// json" mean the same.
func (g *globals) register(fs *flag.FlagSet) {
	fs.Var(&g.output, "o", "output format: table, json, id or csv")
	fs.Var(&g.output, "output", "output format: table, json, id or csv")
	fs.StringVar(&g.addr, "addr", g.addr, "API address")
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "file holding the bearer token")
}

// usageError is a wrong command line (exit code 2). cmd names the command
// it is about ("" for the top level). Only an unknown or missing command or
// flag prints cmd's whole usage; any other mistake, such as a bad flag
// value, gets its one-line message and a one-line pointer to the help, so
// the message isn't lost above a screen of usage.
type usageError struct {
	cmd   string
	msg   string
	usage bool
}

func (e *usageError) Error() string { return e.msg }

// helpRequested asks for cmd's usage on stdout, with exit code 0.
type helpRequested struct{ cmd string }

func (h *helpRequested) Error() string { return "help requested" }

// report prints err and returns the exit code for it.
func (e *env) report(err error) int {
	if err == nil {
		return exitOK
	}
	var help *helpRequested
	if errors.As(err, &help) {
		fmt.Fprint(e.stdout, usageOf(help.cmd))
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.usage {
			fmt.Fprintf(e.stderr, "lockboxctl: %s\n\n%s", clean(ue.msg), usageOf(ue.cmd))
		} else {
			fmt.Fprintf(e.stderr, "lockboxctl: %s\n%s\n", clean(ue.msg), helpHint(ue.cmd))
		}
		return exitUsage
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		msg := apiErr.Message
		if msg == "" {
			msg = http.StatusText(apiErr.Status)
		}
		notes := []string{fmt.Sprintf("HTTP %d", apiErr.Status)}
		if apiErr.Code != "" {
			notes = append([]string{apiErr.Code}, notes...)
		}
		// The trace id is the server's X-Request-Id: it finds the call in
		// the server's log. Named so it isn't taken for a lockbox request.
		if apiErr.TraceID != "" {
			notes = append(notes, "trace id "+apiErr.TraceID)
		}
		fmt.Fprintf(e.stderr, "lockboxctl: %s (%s)\n", clean(msg), clean(strings.Join(notes, ", ")))
		return exitError
	}
	var urlErr *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "lockboxctl: interrupted")
	case errors.As(err, &urlErr):
		fmt.Fprintf(e.stderr, "lockboxctl: cannot reach the Lockbox API at %s: %s\n", clean(apiURL(e.g.addr)), clean(urlErr.Err.Error()))
	default:
		fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(err.Error()))
	}
	return exitError
}

// client returns an API client for the global flags, with the token from
// --token-file, LOCKBOX_TOKEN or lockboxctl login, in that order.
func (e *env) client() (*client.Client, error) {
	if err := e.checkOutput(); err != nil {
		return nil, err
	}
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	hc, err := e.httpClient()
	if err != nil {
		return nil, err
	}
	return client.New(apiURL(e.g.addr), tok, client.WithUserAgent("lockboxctl/"+version()), client.WithHTTPClient(hc))
}

func (e *env) token() (string, error) {
	if e.g.tokenFile != "" {
		b, err := os.ReadFile(e.g.tokenFile)
		if err != nil {
			return "", fmt.Errorf("reading --token-file: %w", err)
		}
		tok := strings.TrimRight(string(b), " \t\r\n")
		if tok == "" {
			return "", fmt.Errorf("--token-file %s is empty", e.g.tokenFile)
		}
		return tok, nil
	}
	if tok := strings.TrimRight(e.getenv(EnvToken), " \t\r\n"); tok != "" {
		return tok, nil
	}
	return e.storedToken()
}

// dispatch walks the command words, accepting global flags at every level.
func (e *env) dispatch(args []string) error {
	var path []string
	for {
		group := strings.Join(path, " ")
		fs := e.flagSet(group)
		if err := fs.Parse(args); err != nil {
			return flagError(group, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			if group == "" {
				return &usageError{msg: "missing command", usage: true}
			}
			return &usageError{cmd: group, msg: "missing subcommand", usage: true}
		}
		word := strings.ToLower(rest[0])
		args = rest[1:]
		name := strings.TrimSpace(group + " " + word)
		if c, ok := commandByName[name]; ok {
			e.cmd = name
			return c.run(e, name, args)
		}
		if isGroup(name) {
			path = append(path, word)
			continue
		}
		return unknownCommand(group, rest[0])
	}
}

// unknownCommand is the error for word, which names no command or group
// under group. With a likely meant command it says which, and the help
// pointer is enough; without one it prints the group's usage.
func unknownCommand(group, word string) error {
	msg := fmt.Sprintf("unknown command %q", strings.TrimSpace(group+" "+word))
	if s := suggest(group, word); s != "" {
		return &usageError{cmd: group, msg: fmt.Sprintf("%s; did you mean %q?", msg, s)}
	}
	return &usageError{cmd: group, msg: msg, usage: true}
}

// helpHint points at the help of cmd, for errors that don't print it.
func helpHint(cmd string) string {
	name := cmd
	if c, ok := commandByName[cmd]; ok {
		name = c.title()
	}
	return fmt.Sprintf("see 'lockboxctl %s'", strings.TrimSpace(name+" --help"))
}

// flagSet returns a flag set for cmd holding the global flags.
func (e *env) flagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet("lockboxctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e.g.register(fs)
	return fs
}

// flagError turns an error of flag.Parse into a usage or help error. Only
// an unknown flag (or one the flag package can't read as a flag) prints
// the usage: the command's flags are what the user needs then. A bad or
// missing value is a one-line message. The flag package has no error types
// to tell them apart, only these messages, unchanged since Go 1.0.
func flagError(cmd string, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return &helpRequested{cmd: cmd}
	}
	msg := err.Error()
	unknown := strings.HasPrefix(msg, "flag provided but not defined") || strings.HasPrefix(msg, "bad flag syntax")
	return &usageError{cmd: cmd, msg: msg, usage: unknown}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func goVersion() string { return runtime.Version() }
