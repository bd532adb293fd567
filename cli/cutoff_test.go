package cli

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestConnectionClosedBeforeAnswer: a server that took the call and
// closed the connection without answering (a crash, a load balancer with
// no backend left) was reported as "cannot reach the Lockbox API at ...:
// EOF", though it was reached, and may have carried the call out: a
// user who believes nothing was sent repeats an approval or a revocation
// that took effect. It now says the connection ended without an answer
// and, for a call that changes something, that it may have been carried
// out.
func TestConnectionClosedBeforeAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the whole call, then close without a word.
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_ = c.Close()
				continue
			}
			_ = c.Close()
		}
	}()
	addr := "http://" + ln.Addr().String()
	for _, args := range [][]string{
		{"get", "requests"},
		{"approve", reqID, "--comment", "ok"},
		{"revoke", reqID, "--comment", "done"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			env := map[string]string{EnvAddr: addr, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			code := runWith(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr, sessionDeps{})
			want := "lockboxctl: the connection to the Lockbox API at " + addr + " ended without an answer (EOF)"
			if args[0] != "get" {
				want += ": the call may have been carried out"
			}
			want += "\n"
			if code != exitError || stderr.String() != want {
				t.Errorf("exit %d, stderr %q: want exit 1 and %q", code, stderr.String(), want)
			}
		})
	}
}

// TestHandshakeCutIsNotACallCarriedOut: a TLS handshake the other side
// ended (a port that speaks no TLS, a load balancer dropping connections)
// reads "EOF" as a call cut after it was written does, and was worded as
// one: "the call may have been carried out", and for create request "the
// request may have been filed", after filing it a second time. The call
// never went out: it is "cannot reach", and nothing is sent again.
func TestHandshakeCutIsNotACallCarriedOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	addr := "https://" + ln.Addr().String()
	for _, args := range [][]string{
		{"approve", reqID, "--comment", "ok"},
		{"create", "request", "--tenant", "contoso", "--service", "exchange", "--service-request", "SR-1", "--reason", "r", "--duration", "1h"},
	} {
		t.Run(args[0], func(t *testing.T) {
			accepted.Store(0)
			env := map[string]string{EnvAddr: addr, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			code := runWith(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr, sessionDeps{})
			// EOF, or a reset when the close beat the client's hello.
			want := "lockboxctl: cannot reach the Lockbox API at " + addr + ": "
			got := stderr.String()
			if code != exitError || !strings.HasPrefix(got, want) || strings.Count(got, "\n") != 1 || accepted.Load() != 1 {
				t.Errorf("exit %d, stderr %q, %d connections: want exit 1, one line starting %q, 1 connection", code, got, accepted.Load(), want)
			}
		})
	}
}
