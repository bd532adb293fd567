package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// quietDialer dials the connections of net/http's Transport to the
// upstreams (under its TLS, for https) and has one on which no byte has
// moved either way for timeout, Config.ClientTimeout, fail its read.
//
// Over HTTP/1.1 nothing else bounds an upstream that sends the header of
// its answer and part of the body, and then nothing: net/http's Transport
// has no bound between two pieces of an answer, and the client's deadline
// fails only the client's own reads and writes, so such an upstream held
// the call, its goroutine and the connection until the client gave up.
// h1transport bounds the calls it speaks with a read deadline moved on as
// the body comes (ResponseBodyIdleTimeout); net/http's Transport reads on
// a goroutine of its own, which no call can reach, so the bound is the
// connection's. Its read deadline is armed a quarter of timeout ahead and,
// each time it passes, armed again: the calls themselves move no deadline,
// read no clock and take no timer. Bytes written count as progress too,
// since the read waits for the answer while an upload is still being
// sent. Three quarters in a row without a byte (so a quiet spell of
// between three quarters of timeout and all of it) fail the read under
// way, and net/http closes the connection: the call whose answer was
// awaited fails (its body's read, once the header came), and an idle
// HTTP/1.1 connection goes then rather than at IdleConnTimeout. An HTTP/2
// connection is pinged after upstreamPingAfter of silence, far less than
// DefaultClientTimeout, so only a dead one goes that quiet: a stalled
// stream on a live one is ended by the client's HTTP/2 stream deadline,
// and for an HTTP/1.1 client by the call's stallWatch.
type quietDialer struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout time.Duration
}

func (d quietDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := d.dial(ctx, network, addr)
	if err != nil || d.timeout <= 0 {
		return nc, err
	}
	c := &quietConn{Conn: nc, timeout: d.timeout}
	if err := nc.SetReadDeadline(time.Now().Add(d.timeout / 4)); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// quietConn is a connection closed after its timeout without progress
// (quietDialer).
type quietConn struct {
	net.Conn
	timeout time.Duration
	// wrote is set by a write that moved bytes, and cleared when the
	// deadline passes; writes may run beside the reads.
	wrote atomic.Bool
	// theirs is set once a deadline is set through the connection (a
	// cancelled TLS handshake's): that deadline is then left alone.
	theirs atomic.Bool
	// Only the reading goroutine touches these.
	read  bool // bytes were read since the deadline last passed
	quiet int  // quarters of timeout passed in a row without a byte
}

func (c *quietConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if n > 0 && !c.read {
			c.read = true
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || c.theirs.Load() {
			return n, err
		}
		// Swapped, not read then cleared: a write in between would be lost.
		if wrote := c.wrote.Swap(false); c.read || wrote {
			c.quiet = 0
		} else if c.quiet++; c.quiet == 3 {
			return n, fmt.Errorf("proxy: no bytes to or from the upstream for %v: %w", c.timeout, err)
		}
		c.read = false
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout / 4)); err != nil {
			return n, err
		}
		if c.theirs.Load() {
			// Set just before this replaced it: what it was for (a
			// cancellation) ends the connection anyway.
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (c *quietConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 && !c.wrote.Load() {
		c.wrote.Store(true)
	}
	return n, err
}

func (c *quietConn) SetDeadline(t time.Time) error {
	c.theirs.Store(true)
	return c.Conn.SetDeadline(t)
}

func (c *quietConn) SetReadDeadline(t time.Time) error {
	c.theirs.Store(true)
	return c.Conn.SetReadDeadline(t)
}
