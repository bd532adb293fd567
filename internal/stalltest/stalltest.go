// Package stalltest plays the HTTP/1.1 clients that stall a server: one
// that connects and sends nothing, one that sends part of a request
// header, one that declares a body and never sends it, one that keeps an
// idle connection alive. Tests use it to show that a server closes such
// connections within its timeouts, where net/http alone waits for as long
// as the client likes wherever a timeout is zero.
//
// Nothing here measures time: Patience only turns a server that never
// closes into a failure, so tests shorten the server's timeouts well
// below it.
package stalltest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/httptimeouts"
)

// Patience is how long WaitClosed and KeptAlive wait on the server.
const Patience = 10 * time.Second

// PartialHeader is a GET of target whose header never ends.
func PartialHeader(target string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
}

// BodyNeverSent is a POST of target whose header declares a body of 100
// bytes; none follows.
func BodyNeverSent(target string) string {
	return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
}

// Request is a whole GET of target.
func Request(target string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
}

// Send opens a connection to addr and writes raw on it; the connection is
// closed when the test ends.
func Send(t testing.TB, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// KeptAlive sends Request(target) on a new connection to addr, reads the
// whole answer and nothing after it, and fails unless the answer leaves
// the connection open: the connection is then idle, kept alive.
func KeptAlive(t testing.TB, addr, target string) net.Conn {
	t.Helper()
	c := Send(t, addr, Request(target))
	_ = c.SetReadDeadline(time.Now().Add(Patience))
	resp, err := http.ReadResponse(bufio.NewReaderSize(oneByte{c}, 16), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		t.Fatalf("answer %s (close %t, %v): want the connection kept alive", resp.Status, resp.Close, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// oneByte reads one byte at a time, so that a bufio.Reader over it takes
// nothing past what http.ReadResponse needs.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// WaitClosed reads c until the server closes it (EOF, or a reset), and
// fails t, naming what, if it is still open after Patience.
func WaitClosed(t testing.TB, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(Patience))
	got, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: the connection is still open after %s (read %q)", what, Patience, got)
	}
}

// Phase is the part of a connection a stall holds up: which of a server's
// timeouts must end it.
type Phase int

const (
	// Header: the request header is not complete (ReadHeaderTimeout).
	Header Phase = iota
	// Body: the header declared a body that does not come (ReadTimeout).
	Body
	// Idle: a kept-alive connection waits for a next request (IdleTimeout).
	Idle
)

// Timeouts returns a server's timeouts for a test of a stall in phase p:
// short for the phase's own, long for the others, so that only the timeout
// under test can close the connection.
func (p Phase) Timeouts(short, long time.Duration) httptimeouts.Timeouts {
	t := httptimeouts.Timeouts{ReadHeader: long, Read: long, Write: long, Idle: long}
	switch p {
	case Header:
		t.ReadHeader = short
	case Body:
		t.Read = short
	case Idle:
		t.Idle = short
	}
	return t
}

// Stall is one way a client stalls a server.
type Stall struct {
	Name  string
	Phase Phase
	// Open makes the stall on a new connection to addr, naming target
	// where it sends a request line.
	Open func(t testing.TB, addr, target string) net.Conn
}

// Stalls are the stalls this package plays, one of each kind.
var Stalls = []Stall{
	{"nothing sent", Header, func(t testing.TB, addr, _ string) net.Conn { return Send(t, addr, "") }},
	{"partial header", Header, func(t testing.TB, addr, target string) net.Conn { return Send(t, addr, PartialHeader(target)) }},
	{"declared body never sent", Body, func(t testing.TB, addr, target string) net.Conn { return Send(t, addr, BodyNeverSent(target)) }},
	{"idle kept-alive connection", Idle, KeptAlive},
}
