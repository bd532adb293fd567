// Package h1transport is an HTTP/1.1 client transport for plain-http
// upstreams that does each call's work on the caller's goroutine.
//
// net/http's Transport gives every pooled connection a reader and a writer
// goroutine and hands each request and response between them over
// channels; for a proxy whose calls are small, those hand-offs cost more
// than the request itself. Here the caller writes the request, reads the
// response header and then the body on its own goroutine, and the
// connection returns to the pool when the body has been read to its end.
// (The request is written whole before the response is read: an upstream
// that answers early and stops reading a large body fails the call.)
// Framing stays the standard library's: requests are written by
// http.Request.Write and responses parsed by http.ReadResponse. On the
// peer harness's upstream a ReverseProxy spends about a quarter less CPU
// per call with it (docs/performance.md).
//
// What it keeps of net/http's Transport: keep-alive with a bounded idle
// pool and an idle timeout, a response-header timeout and size limit,
// the refusal of a method or header field that can't be written as it is,
// cancellation by the request's context, and one retry on a fresh
// connection when a reused one turns out closed before it answered a
// request without a body. What it does not do: TLS, HTTP/2, proxies,
// compression, or relaying 1xx responses (they are read and dropped; 101
// is refused, since nothing here upgrades).
package h1transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Transport is an http.RoundTripper for "http" URLs. Its zero value is not
// usable; set the fields, which must not change after the first call.
type Transport struct {
	// DialTimeout bounds connecting to an upstream.
	DialTimeout time.Duration
	// KeepAlive is the TCP keep-alive period of new connections.
	KeepAlive time.Duration
	// ResponseHeaderTimeout bounds the wait for the response header once
	// the request is written; zero means no bound.
	ResponseHeaderTimeout time.Duration
	// ResponseBodyIdleTimeout bounds the wait for the next bytes of a
	// response body, as nginx's proxy_read_timeout does: an upstream that
	// sends its header and then stops would otherwise hold the call for as
	// long as it likes. Progress moves the deadline on, at most every
	// quarter of it, so a body that keeps moving is never cut; one that
	// stalls for it (at least three quarters of it) is. Zero means no
	// bound.
	ResponseBodyIdleTimeout time.Duration
	// IdleConnTimeout closes a pooled connection idle this long; zero
	// means never.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost bounds each upstream's idle pool; zero keeps no
	// connection for later.
	MaxIdleConnsPerHost int
	// MaxResponseHeaderBytes limits the response header, status line and
	// any 1xx responses before it included; DefaultMaxResponseHeaderBytes
	// when zero.
	MaxResponseHeaderBytes int64

	// dial, when set, connects instead of a net.Dialer: tests wrap the
	// connection to reach the moments between the transport's steps.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu    sync.Mutex
	hosts map[string]*pool
}

// DefaultMaxResponseHeaderBytes is net/http's own default limit.
const DefaultMaxResponseHeaderBytes = 1 << 20

// errResponseHeaderTooLarge is returned for a response header past
// MaxResponseHeaderBytes.
var errResponseHeaderTooLarge = errors.New("h1transport: response header too large")

// RoundTrip sends req on a pooled or new connection and returns the
// response, whose Body must be read to its end and closed for the
// connection to be used again.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
		closeBody(req)
		return nil, fmt.Errorf("h1transport: only absolute http URLs, got %v", req.URL)
	}
	if err := validRequest(req); err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	p := t.pool(canonicalAddr(req))
	fresh := false
	for {
		c, reused, err := p.get(ctx, fresh)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		res, err := c.roundTrip(req)
		if err == nil {
			return res, nil
		}
		c.close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("h1transport: %w", ctxErr)
		}
		// A kept-alive connection the upstream closed just as it was
		// taken: nothing was answered, so a safe request with no body to
		// replay is sent again, once, on a new connection. Only a safe
		// one (net/http's rule too): the upstream may have read the
		// request and acted on it before closing, and a DELETE sent twice
		// would be an action that nobody asked for twice. And on a new
		// connection, not another pooled one: the pool may hold more as
		// stale as this one (an upstream's idle timeout closes them
		// together), and each try is one more copy of the call, its grant
		// assertion included, that the upstream may have acted on.
		if reused && c.nothingRead() && retryable(err) && replayable(req) {
			fresh = true
			continue
		}
		return nil, err
	}
}

// CloseIdleConnections closes every pooled connection.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	pools := make([]*pool, 0, len(t.hosts))
	for _, p := range t.hosts {
		pools = append(pools, p)
	}
	t.mu.Unlock()
	for _, p := range pools {
		p.closeIdle(time.Time{})
	}
}

func (t *Transport) pool(addr string) *pool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.hosts[addr]
	if p == nil {
		if t.hosts == nil {
			t.hosts = map[string]*pool{}
		}
		p = &pool{t: t, addr: addr}
		t.hosts[addr] = p
	}
	return p
}

// canonicalAddr is req's host with the http port when it names none.
func canonicalAddr(req *http.Request) string {
	if req.URL.Port() != "" {
		return req.URL.Host
	}
	return net.JoinHostPort(req.URL.Hostname(), "80")
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// validRequest refuses what net/http's Transport refuses to send: a method
// that is not a token, and a header or trailer field whose name is not a
// token or whose value holds a control byte other than tab. Request.Write
// checks none of them: it writes the method as it is, so a CR LF in it
// would start a request nobody made on the connection, and it turns CR and
// LF in a value into spaces and drops a bad name, so the upstream would get
// another call than the one made. (Control bytes in the URL it refuses
// itself.)
func validRequest(req *http.Request) error {
	if req.Method != "" && !httpguts.ValidHeaderFieldName(req.Method) {
		return fmt.Errorf("h1transport: invalid method %q", req.Method)
	}
	if name, ok := validFields(req.Header); !ok {
		return fmt.Errorf("h1transport: invalid header field %q", name)
	}
	if name, ok := validFields(req.Trailer); !ok {
		return fmt.Errorf("h1transport: invalid trailer field %q", name)
	}
	return nil
}

// validFields reports whether every field of h has a valid name and
// values, and names the first that does not. The value stays out of the
// error: it may be a credential.
func validFields(h http.Header) (string, bool) {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return k, false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return k, false
			}
		}
	}
	return "", true
}

// replayable reports whether req may be sent a second time: a safe method
// and no body.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// retryable reports whether err is how a write to, or read from, a
// connection the peer already closed fails.
func retryable(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// pool is one upstream's idle connections, the most recently used last.
type pool struct {
	t    *Transport
	addr string

	mu    sync.Mutex
	idle  []*conn
	sweep *time.Timer // armed while idle is not empty
}

// get returns an idle connection that is still open and quiet, or a new
// one, always a new one when fresh; reused says which.
func (p *pool) get(ctx context.Context, fresh bool) (c *conn, reused bool, err error) {
	for !fresh {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if (p.t.IdleConnTimeout <= 0 || time.Since(c.idleSince) < p.t.IdleConnTimeout) && c.quiet() {
			return c, true, nil
		}
		// Closed by the upstream, or it sent something unasked: either
		// way not a connection to send a request on.
		c.close()
	}
	d := net.Dialer{Timeout: p.t.DialTimeout, KeepAlive: p.t.KeepAlive}
	dial := d.DialContext
	if p.t.dial != nil {
		dial = p.t.dial
	}
	nc, err := dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, fmt.Errorf("h1transport: %w", err)
	}
	c = &conn{pool: p, nc: nc}
	c.r = limitReader{conn: c}
	c.br = bufio.NewReaderSize(&c.r, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, false, nil
}

// put returns c to the pool, or closes it when the pool is full.
func (p *pool) put(c *conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	if len(p.idle) >= p.t.MaxIdleConnsPerHost {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	switch {
	case p.t.IdleConnTimeout <= 0:
	case p.sweep == nil:
		p.sweep = time.AfterFunc(p.t.IdleConnTimeout, p.sweepIdle)
	case len(p.idle) == 1:
		p.sweep.Reset(p.t.IdleConnTimeout)
	}
	p.mu.Unlock()
}

// sweepIdle closes the connections idle past IdleConnTimeout, so a quiet
// upstream's sockets don't linger until the next call.
func (p *pool) sweepIdle() {
	if next := p.closeIdle(time.Now().Add(-p.t.IdleConnTimeout)); !next.IsZero() {
		p.mu.Lock()
		p.sweep.Reset(time.Until(next.Add(p.t.IdleConnTimeout)))
		p.mu.Unlock()
	}
}

// closeIdle closes the idle connections idle since before cutoff (all of
// them when cutoff is zero) and returns when the oldest one left went
// idle, or zero when none is left.
func (p *pool) closeIdle(cutoff time.Time) time.Time {
	p.mu.Lock()
	var stale []*conn
	kept := p.idle[:0]
	for _, c := range p.idle {
		if cutoff.IsZero() || c.idleSince.Before(cutoff) {
			stale = append(stale, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	var oldest time.Time
	if len(kept) > 0 {
		oldest = kept[0].idleSince
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
	return oldest
}

// conn is one connection to an upstream.
type conn struct {
	pool      *pool
	nc        net.Conn
	r         limitReader
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// limitReader reads the connection, counting the bytes of the current
// call and, while limited, refusing to read past a budget: the response
// header's size limit.
type limitReader struct {
	conn    *conn
	read    int64 // bytes read during the current call
	limited bool
	budget  int64
}

func (r *limitReader) Read(p []byte) (int, error) {
	if r.limited {
		if r.budget <= 0 {
			return 0, errResponseHeaderTooLarge
		}
		p = p[:min(int64(len(p)), r.budget)]
	}
	n, err := r.conn.nc.Read(p)
	r.read += int64(n)
	if r.limited {
		r.budget -= int64(n)
	}
	return n, err
}

func (c *conn) nothingRead() bool { return c.r.read == 0 }

func (c *conn) close() { c.nc.Close() }

// setReadDeadline sets the connection's read deadline for the call of ctx.
// A cancellation's deadline (see roundTrip) may have been set just before
// this replaced it: it is set again.
func (c *conn) setReadDeadline(ctx context.Context, t time.Time) {
	c.nc.SetReadDeadline(t)
	if ctx.Err() != nil {
		c.nc.SetDeadline(time.Unix(1, 0))
	}
}

// quiet reports whether the idle connection is still open and has nothing
// to read: a connection with data waiting holds a response nobody asked
// for, and one at EOF was closed by the upstream.
func (c *conn) quiet() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	return peekQuiet(c.nc)
}

// roundTrip writes req and reads the response header.
func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	c.r.read = 0
	// A cancelled call unblocks whatever read or write it is in; the
	// connection is then closed, never pooled.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	if err := writeRequest(c.bw, req); err != nil {
		stop()
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, fmt.Errorf("h1transport: write request: %w", err)
	}
	if d := c.pool.t.ResponseHeaderTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
		if ctx.Err() != nil {
			// As after the header below: a cancellation's deadline set
			// just before this one is set again, or the call would wait
			// for an answer until ResponseHeaderTimeout.
			c.nc.SetDeadline(time.Unix(1, 0))
		}
	}
	limit := c.pool.t.MaxResponseHeaderBytes
	if limit <= 0 {
		limit = DefaultMaxResponseHeaderBytes
	}
	c.r.limited, c.r.budget = true, limit-int64(c.br.Buffered())
	res, err := c.readResponse(req)
	if err != nil && c.r.budget <= 0 {
		err = errResponseHeaderTooLarge
	}
	c.r.limited = false
	if err != nil {
		stop()
		return nil, err
	}
	b := &body{rc: res.Body, c: c, ctx: ctx, stop: stop, keep: !res.Close && !req.Close}
	if idle := c.pool.t.ResponseBodyIdleTimeout; idle > 0 {
		// The header's deadline becomes the body's: no more calls into
		// the poller than clearing it would take.
		b.moved = time.Now()
		b.c.setReadDeadline(ctx, b.moved.Add(idle))
	} else if c.pool.t.ResponseHeaderTimeout > 0 {
		c.setReadDeadline(ctx, time.Time{})
	}
	if res.Body == http.NoBody {
		b.eof = true
	}
	res.Body = b
	return res, nil
}

// writeRequest writes req to w. A failure of the request body's own reads
// (the proxy's size limit) is returned as it is, so that the caller can
// tell it from the connection's: Request.Write hides its type.
func writeRequest(w io.Writer, req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody {
		return wrapWrite(req.Write(w))
	}
	body := &bodyErr{ReadCloser: req.Body}
	out := *req // RoundTrip must not modify req
	out.Body = body
	err := out.Write(w)
	if body.err != nil {
		return fmt.Errorf("h1transport: read request body: %w", body.err)
	}
	return wrapWrite(err)
}

func wrapWrite(err error) error {
	if err != nil {
		return fmt.Errorf("h1transport: write request: %w", err)
	}
	return nil
}

// bodyErr keeps a request body's read error.
type bodyErr struct {
	io.ReadCloser
	err error
}

func (b *bodyErr) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// readResponse reads the final response, dropping any 1xx before it.
func (c *conn) readResponse(req *http.Request) (*http.Response, error) {
	for {
		res, err := http.ReadResponse(c.br, req)
		switch {
		case errors.Is(err, errResponseHeaderTooLarge):
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("h1transport: read response: %w", err)
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("h1transport: the upstream switched protocols, which no call asks for")
		case res.StatusCode >= 100 && res.StatusCode < 200:
			continue
		}
		return res, nil
	}
}

// body is a response body that returns its connection to the pool once
// read to the end and closed.
type body struct {
	rc   io.ReadCloser
	c    *conn
	ctx  context.Context
	stop func() bool
	keep bool // the response and request allow another call on c
	eof  bool
	done bool
	// moved is when the read deadline was last moved on, with
	// ResponseBodyIdleTimeout.
	moved time.Time
}

func (b *body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		if ctxErr := context.Cause(b.ctx); ctxErr != nil {
			err = fmt.Errorf("h1transport: %w", ctxErr)
		} else if idle := b.c.pool.t.ResponseBodyIdleTimeout; idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("h1transport: no bytes of the response body for %v: %w", idle, err)
		}
	case n > 0 && !b.moved.IsZero():
		if now := time.Now(); now.Sub(b.moved) >= b.c.pool.t.ResponseBodyIdleTimeout/4 {
			b.moved = now
			b.c.setReadDeadline(b.ctx, now.Add(b.c.pool.t.ResponseBodyIdleTimeout))
		}
	}
	return n, err
}

func (b *body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// Not read to its end, so the connection can serve no other
		// call: it is closed now. net/http's body is left unclosed: its
		// Close would first read the rest, which the upstream may send
		// slowly, or without end.
		b.stop()
		b.c.close()
		return nil
	}
	err := b.rc.Close()
	// stop reports false once the context's cancellation has set the
	// connection's deadline: then it is closed like any other that was
	// not read to its end.
	if b.stop() && b.keep && b.c.br.Buffered() == 0 {
		if !b.moved.IsZero() {
			// An idle connection's deadline would fail the peek that
			// checks it before reuse.
			b.c.nc.SetReadDeadline(time.Time{})
		}
		b.c.pool.put(b.c)
	} else {
		b.c.close()
	}
	return err
}
