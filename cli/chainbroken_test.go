package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// brokenChain is the API's verification of a log whose third record was
// deleted.
const brokenChain = `{"tenant":"contoso","records":2,"ok":false,"broken_at":"1767225600000-3","record_id":"r3",` +
	`"problem":"the record's link does not match the hash of the record before it: a record before it was deleted or edited"}`

// TestAuditVerifyTellsABrokenChainFromAFailedCall: "audit verify" exited
// 1 both when the chain did not verify and when the call failed (the API
// down, a server error), so an auditor's script could not tell tampering
// found from a check that could not run: it had to read the text, or
// raise an incident for every outage. A broken chain now exits 4, a
// status of its own that nothing else returns, after the report; a call
// that failed is still 1 and a refusal 3.
func TestAuditVerifyTellsABrokenChainFromAFailedCall(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		reply  reply
		code   int
		stdout string // held in stdout
		stderr string // all of stderr
	}{
		{name: "intact", args: []string{"audit", "verify", "--tenant", "contoso"},
			reply: reply{200, `{"tenant":"contoso","records":3,"ok":true}`}, code: exitOK,
			stdout: "audit chain of contoso: intact, 3 records\n"},
		{name: "broken", args: []string{"audit", "verify", "--tenant", "contoso"},
			reply: reply{200, brokenChain}, code: exitChainBroken,
			stdout: "audit chain of contoso: BROKEN after 2 good records\n  at:      1767225600000-3 (record r3)\n",
			stderr: "lockboxctl: the audit chain does not verify\n"},
		{name: "broken, -o json", args: []string{"audit", "verify", "--tenant", "contoso", "-o", "json"},
			reply: reply{200, brokenChain}, code: exitChainBroken,
			stdout: `"ok": false`, stderr: "lockboxctl: the audit chain does not verify\n"},
		{name: "a server error", args: []string{"audit", "verify", "--tenant", "contoso"},
			reply: reply{500, `{"error":{"code":"internal","message":"internal error"}}`}, code: exitError,
			stderr: "lockboxctl: internal error (internal, HTTP 500)\n"},
		{name: "refused", args: []string{"audit", "verify", "--tenant", "contoso"},
			reply: reply{403, `{"error":{"code":"forbidden","message":"you may not read the audit log"}}`}, code: exitRefused,
			stderr: "lockboxctl: you may not read the audit log (forbidden, HTTP 403)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.args, nil, map[string]reply{"GET /v1/audit/verify": c.reply})
			if r.code != c.code || !strings.Contains(r.stdout, c.stdout) || r.stderr != c.stderr {
				t.Errorf("exit %d\nstdout: %q\nstderr: %q\nwant exit %d, stdout holding %q, stderr %q", r.code, r.stdout, r.stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
	t.Run("the API down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		var stdout, stderr bytes.Buffer
		vars := map[string]string{EnvAddr: addr, EnvToken: envToken, EnvConfigDir: t.TempDir()}
		code := Run(context.Background(), []string{"audit", "verify", "--tenant", "contoso"}, func(k string) string { return vars[k] }, &stdout, &stderr)
		if code != exitError || !strings.Contains(stderr.String(), "cannot reach the Lockbox API") {
			t.Errorf("exit %d, stderr %q: want exit 1, cannot reach", code, stderr.String())
		}
	})
	if slices.Contains([]int{exitOK, exitError, exitUsage, exitRefused, exitInterrupted, SignalCause{Signal: syscall.SIGTERM}.ExitCode()}, exitChainBroken) {
		t.Errorf("a broken chain exits %d, which another outcome also exits", exitChainBroken)
	}
}

// TestExitStatusesAreDocumented holds the exit statuses lockboxctl has to
// the two lists scripts are written from, the root help's "Exit status:"
// and README.md's "**Exit status**" paragraph: each names every one, and
// audit verify's help names its own.
func TestExitStatusesAreDocumented(t *testing.T) {
	statuses := map[int]string{
		exitOK: "success", exitError: "the call failed", exitUsage: "a wrong command line", exitRefused: "the API refused",
		exitChainBroken: "audit verify found the chain broken", exitInterrupted: "Ctrl-C",
		SignalCause{Signal: syscall.SIGTERM}.ExitCode(): "SIGTERM",
	}
	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	root := e.rootCommand()
	_, help, ok := strings.Cut(root.Long, "Exit status:")
	if !ok {
		t.Fatal(`lockboxctl's help has no "Exit status:"`)
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, readme, ok := strings.Cut(string(b), "**Exit status**, the same for every command:")
	if !ok {
		t.Fatal(`README.md has no "**Exit status**, the same for every command:"`)
	}
	readme, _, _ = strings.Cut(readme, "\n\n")
	words := strings.FieldsFunc(help, func(r rune) bool { return !('0' <= r && r <= '9') })
	for code, what := range statuses {
		if !slices.Contains(words, fmt.Sprint(code)) {
			t.Errorf("lockboxctl --help's exit statuses do not name %d (%s):\n%s", code, what, help)
		}
		if !strings.Contains(readme, fmt.Sprintf("`%d`", code)) {
			t.Errorf("README.md's exit statuses do not name `%d` (%s)", code, what)
		}
	}
	if !strings.Contains(help, fmt.Sprintf("%d when audit verify found the audit chain broken", exitChainBroken)) {
		t.Errorf("lockboxctl --help does not say what %d is:\n%s", exitChainBroken, help)
	}
	if !strings.Contains(readme, fmt.Sprintf("`%d` `audit verify` found the tenant's audit\nchain broken", exitChainBroken)) {
		t.Errorf("README.md does not say what `%d` is", exitChainBroken)
	}
	verify, _, err := root.Find([]string{"audit", "verify"})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d when it is broken", exitChainBroken); !strings.Contains(verify.Long, want) || !strings.Contains(verify.Short, fmt.Sprintf("exit %d when broken", exitChainBroken)) {
		t.Errorf("audit verify's help does not say %q:\n%s\n%s", want, verify.Short, verify.Long)
	}
}

// failingStdout is a standard output every write to which fails with err.
type failingStdout struct{ err error }

func (f failingStdout) Write([]byte) (int, error) { return 0, f.err }

// TestAuditVerifyBrokenWhateverStdout: a stdout whose reader is gone
// ends a command quietly with exit 0 ("| head -1"), and "audit verify"
// took that rule for its own: piped to a reader that had stopped
// ("| grep -q BROKEN", "| true" under set -o pipefail), a broken chain
// exited 0, as an intact one does. Any other write that failed (a full
// disk under "> report.txt") made it exit 1, "could not check". The
// verdict is known before the report is written: a broken chain now
// exits 4 whatever stdout does, and an intact one as before.
func TestAuditVerifyBrokenWhateverStdout(t *testing.T) {
	diskFull := &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
	for _, c := range []struct {
		name   string
		reply  string
		stdout io.Writer
		code   int
		stderr string
	}{
		{"broken, reader gone", brokenChain, closedPipe{wrote: func() {}}, exitChainBroken,
			"lockboxctl: the audit chain does not verify\n"},
		{"broken, disk full", brokenChain, failingStdout{diskFull}, exitChainBroken,
			"lockboxctl: write /dev/stdout: no space left on device\nlockboxctl: the audit chain does not verify\n"},
		{"intact, reader gone", `{"tenant":"contoso","records":3,"ok":true}`, closedPipe{wrote: func() {}}, exitOK, ""},
		{"intact, disk full", `{"tenant":"contoso","records":3,"ok":true}`, failingStdout{diskFull}, exitError,
			"lockboxctl: write /dev/stdout: no space left on device\n"},
	} {
		for _, o := range []string{"table", "json"} {
			t.Run(c.name+", -o "+o, func(t *testing.T) {
				f := &fakeAPI{replies: map[string]reply{"GET /v1/audit/verify": {200, c.reply}}}
				srv := httptest.NewServer(f)
				defer srv.Close()
				vars := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
				var stderr bytes.Buffer
				code := Run(context.Background(), []string{"audit", "verify", "--tenant", "contoso", "-o", o}, func(k string) string { return vars[k] }, c.stdout, &stderr)
				if code != c.code || stderr.String() != c.stderr {
					t.Errorf("exit %d, stderr %q; want exit %d, stderr %q", code, stderr.String(), c.code, c.stderr)
				}
			})
		}
	}
}
