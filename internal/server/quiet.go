package server

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// quietListener keeps track of its connections until each sends its first
// byte, so that a server shutting down closes at once those that never
// did (closeQuiet). net/http's Shutdown takes a connection that has not
// sent a whole request yet for one about to start a call, and waits for
// it until it is 5 seconds old: a speculative connection (a browser's
// preconnect, a load balancer's warm pool) held every stop for that long.
// One that sent a byte, a TLS ClientHello included, is left to Shutdown:
// closing it could cut a request in the middle.
//
// The cost on a connection's calls is one atomic load per read; the set
// is written when a connection is accepted and when it first speaks.
type quietListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*quietConn]struct{}
	// stopping is set by closeQuiet: a connection Accept returns after
	// it (taken from the kernel just before the listener closed) is
	// closed there, as closeQuiet would have.
	stopping bool
}

func newQuietListener(ln net.Listener) *quietListener {
	return &quietListener{Listener: ln, conns: map[*quietConn]struct{}{}}
}

func (l *quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	qc := &quietConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		// Returned closed, net/http's first read ends it.
		if !bytesWaiting(c) && qc.state.CompareAndSwap(connQuiet, connClosed) {
			c.Close()
		}
		return qc, nil
	}
	l.conns[qc] = struct{}{}
	return qc, nil
}

// closeQuiet closes every connection that has sent nothing yet. One whose
// bytes wait unread in its socket has spoken, though the server has not
// read them yet (its goroutine not yet scheduled, on a loaded replica):
// it is left to Shutdown, which serves the request the client sent
// before the stop.
func (l *quietListener) closeQuiet() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopping = true
	for c := range l.conns {
		if !bytesWaiting(c.Conn) && c.state.CompareAndSwap(connQuiet, connClosed) {
			c.Conn.Close()
		}
		delete(l.conns, c)
	}
}

// A quietConn's states: nothing read yet, some bytes read, or closed by
// closeQuiet. A connection's first bytes and closeQuiet race for it.
const (
	connQuiet int32 = iota
	connSpoke
	connClosed
)

type quietConn struct {
	net.Conn
	l      *quietListener
	state  atomic.Int32
	forgot sync.Once
}

func (c *quietConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state.Load() == connQuiet && c.state.CompareAndSwap(connQuiet, connSpoke) {
		c.forget()
	}
	return n, err
}

func (c *quietConn) Close() error {
	c.forget()
	return c.Conn.Close()
}

func (c *quietConn) forget() {
	c.forgot.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
}

// CloseWrite and ReadFrom are the TCP connection's, which net/http looks
// for: a half-close before closing, so that a client still sending does
// not get a reset that drops the answer; and sendfile or splice.
func (c *quietConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *quietConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
