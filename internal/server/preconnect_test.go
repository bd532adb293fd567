package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStopClosesConnectionsThatSentNothing: at the stop signal a
// connection that was accepted but has sent nothing yet (a browser's or a
// load balancer's speculative connection) is closed at once, on every
// listener. net/http's Shutdown waits for such a connection until it is 5
// seconds old, as if it were a call about to start, so each one held the
// stop for up to that long.
func TestStopClosesConnectionsThatSentNothing(t *testing.T) {
	lb := start(t, map[string]string{"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"})
	idle := map[string]net.Conn{}
	for name, addr := range map[string]string{"api": lb.srv.APIAddr(), "proxy": lb.srv.ProxyAddr(), "metrics": lb.srv.MetricsAddr()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle[name] = c
		// A whole call on a second connection, answered: the server
		// accepts connections in order, so it has accepted the first.
		probe, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = probe.SetDeadline(time.Now().Add(time.Minute))
		if _, err := fmt.Fprint(probe, "GET /livez HTTP/1.1\r\nHost: lockbox\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(probe).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 ") {
			t.Fatalf("%s: probe answered %q, %v", name, line, err)
		}
		probe.Close()
	}

	// Each connection is read from before the stop, so that the time its
	// read ends is when it was closed, however long the stop itself takes
	// on a loaded machine (a read deadline set after a slow stop would have
	// passed already). The minute only bounds a failure.
	type closed struct {
		at  time.Time
		n   int
		err error
	}
	ends := map[string]chan closed{}
	for name, c := range idle {
		end := make(chan closed, 1)
		ends[name] = end
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		go func() {
			n, err := c.Read(make([]byte, 1))
			end <- closed{time.Now(), n, err}
		}()
	}

	stopped := time.Now()
	lb.stop()

	// Well within the 5 seconds net/http would wait.
	for name, end := range ends {
		got := <-end
		switch {
		case got.n > 0 || got.err == nil:
			t.Errorf("%s: a connection that sent nothing got an answer (%d bytes)", name, got.n)
		case errors.Is(got.err, os.ErrDeadlineExceeded):
			t.Errorf("%s: a connection that sent nothing was still open a minute after the stop signal", name)
		case !errors.Is(got.err, io.EOF) && !errors.Is(got.err, net.ErrClosed) && !strings.Contains(got.err.Error(), "reset"):
			t.Errorf("%s: read after the stop: %v, want the connection closed", name, got.err)
		case got.at.Sub(stopped) >= 4*time.Second:
			t.Errorf("%s: a connection that sent nothing was closed %v after the stop signal, want at once", name, got.at.Sub(stopped).Round(time.Millisecond))
		}
	}
}
