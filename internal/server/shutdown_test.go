package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/server"
)

// TestStopClosesEveryListenerAtOnce: at the stop signal every listener
// stops taking new connections at once, while the calls already in
// flight finish. The servers were shut down one after the other, so the
// proxy went on accepting new calls for as long as the API drained (up
// to LOCKBOX_SHUTDOWN_TIMEOUT), and then had only what was left of that
// time for them.
func TestStopClosesEveryListenerAtOnce(t *testing.T) {
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1",
		// Longer than the test waits: the API's call below holds its
		// server's drain for as long as the test likes.
		"LOCKBOX_SHUTDOWN_TIMEOUT": "10m",
	})

	// An API call in flight: its handler is reading the body, which the
	// client sends only later. The interim 100 Continue says the handler
	// has started reading.
	api, err := net.Dial("tcp", lb.srv.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	_ = api.SetDeadline(time.Now().Add(time.Minute))
	const body = `{"tenant": "contoso"}`
	if _, err := fmt.Fprintf(api, "POST /v1/requests HTTP/1.1\r\nHost: lockbox\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", lb.token, len(body)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(api)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("API answered %q (%v), want 100 Continue", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line after it
		t.Fatal(err)
	}

	lb.stop()

	// The proxy stops accepting while the API call is still running. The
	// deadline only bounds a failure.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", lb.srv.ProxyAddr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy still accepts connections 10s after the stop signal, while the API drains")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The API call was in flight all along, and finishes.
	if _, err := io.WriteString(api, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the API call in flight at the stop signal got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("the API call in flight got %s, want its own 4xx (the body is incomplete as a request)", resp.Status)
	}
}

// TestStopPastShutdownTimeoutSaysSo: a call still in flight when
// LOCKBOX_SHUTDOWN_TIMEOUT runs out is cut off as the process ends, and
// "lockbox serve" said only "lockbox: context deadline exceeded" (exit 1),
// which named neither the setting that ran out nor what it cost. Run's
// error now names the setting and the cut, and still wraps the deadline.
func TestStopPastShutdownTimeoutSaysSo(t *testing.T) {
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":        "exchange=http://127.0.0.1:1",
		"LOCKBOX_SHUTDOWN_TIMEOUT": "50ms",
	})

	// An API call that never finishes: its handler reads a body the
	// client never sends. The interim 100 Continue says it is reading.
	api, err := net.Dial("tcp", lb.srv.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	_ = api.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(api, "POST /v1/requests HTTP/1.1\r\nHost: lockbox\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n", lb.token); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(api).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("API answered %q (%v), want 100 Continue", line, err)
	}

	lb.stop()
	err = lb.wait()
	cut, ok := errors.AsType[*server.DrainCutError](err)
	if !ok || cut.Timeout != 50*time.Millisecond || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v; want a *server.DrainCutError of 50ms wrapping context.DeadlineExceeded", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "LOCKBOX_SHUTDOWN_TIMEOUT (50ms)") || !strings.Contains(msg, "cut off") || strings.Contains(msg, "deadline exceeded") {
		t.Errorf("Run's error reads %q; want it to name LOCKBOX_SHUTDOWN_TIMEOUT (50ms) and the calls it cut off, not Go's deadline", msg)
	}
	// Not a clean stop, so no line says it was one.
	if strings.Contains(lb.logs.String(), "lockbox stopped") {
		t.Errorf("a cut drain logged a clean stop:\n%s", lb.logs.String())
	}
}

// TestCleanStopSaysSo: a stop whose drain finished wrote no log line at
// all, so an SRE reading the logs could not tell it from a crash. Run now
// ends a clean stop with "lockbox stopped", naming how long the drain
// took (on the server's clock, which the test moves while a call holds
// the drain) and how many calls it waited for.
func TestCleanStopSaysSo(t *testing.T) {
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":        "exchange=http://127.0.0.1:1",
		"LOCKBOX_SHUTDOWN_TIMEOUT": "10m",
	})

	// An API call in flight, reading a body the client sends only later.
	api, err := net.Dial("tcp", lb.srv.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	_ = api.SetDeadline(time.Now().Add(time.Minute))
	const body = `{"tenant": "contoso"}`
	if _, err := fmt.Fprintf(api, "POST /v1/requests HTTP/1.1\r\nHost: lockbox\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", lb.token, len(body)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(api)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("API answered %q (%v), want 100 Continue", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line after it
		t.Fatal(err)
	}
	if strings.Contains(lb.logs.String(), "lockbox stopped") {
		t.Fatalf("stopped before the stop:\n%s", lb.logs.String())
	}

	lb.stop()
	// The drain has begun once the proxy takes no new connection. The
	// deadline only bounds a failure.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", lb.srv.ProxyAddr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy still accepts connections 10s after the stop signal")
		}
		time.Sleep(10 * time.Millisecond)
	}
	lb.clk.Advance(4500 * time.Millisecond)
	if _, err := io.WriteString(api, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the API call in flight at the stop signal got no answer: %v", err)
	}
	resp.Body.Close()
	if err := lb.wait(); err != nil {
		t.Fatalf("Run = %v, want a clean stop", err)
	}
	logs := lb.logs.String()
	if n := strings.Count(logs, `msg="lockbox stopped"`); n != 1 {
		t.Fatalf("%d stopped lines, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, `msg="lockbox stopped" drain=4.5s drained_calls=1`) {
		t.Errorf("want the drain's 4.5s and its one call:\n%s", logs)
	}
}
