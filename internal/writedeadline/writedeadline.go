// Package writedeadline lets a long answer (an audit export) outlast its
// server's WriteTimeout while it keeps moving, and still be cut when its
// client stops taking its bytes.
//
// A server's WriteTimeout is the only bound net/http puts on how long a
// handler waits to write to a client: an HTTP/1.1 client that stops
// reading holds a large write forever without it, and an HTTP/2 client
// that never opens its flow-control window holds every stream's handler on
// its last write. But it counts from the request's start whatever happens
// after, so on its own it would cut an export that takes longer however
// well it moves. A Writer moves the deadline (the HTTP/1.1 connection's,
// the HTTP/2 stream's, through http.ResponseController) on as the answer
// makes progress, and never while a write waits on the client:
//
//   - before each write and flush, when the deadline was last moved at
//     least a quarter of the timeout ago, so every write gets at least
//     three quarters of it;
//   - every quarter of the timeout while no write is under way, because
//     the server's side may take its time between two writes (an export
//     scanning many records its filters skip, a slow Redis) and an HTTP/2
//     stream is reset when its deadline passes whether or not a write is
//     waiting.
//
// A write that waits on the client longer than the timeout fails (the
// HTTP/1.1 connection is closed, the HTTP/2 stream reset), and the handler
// sees the error.
//
// The timeout is the WriteTimeout of the server the request came in on
// (http.ServerContextKey), so that what a handler allows a write is what
// the listener allows every other answer, and tests shorten both at once.
// Without one (none configured, or a test's recorder) a Writer moves
// nothing.
//
// The package imports no other Lockbox package.
package writedeadline

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Writer writes an answer's body to an http.ResponseWriter, moving its
// write deadline on as described in the package comment. Its methods are
// for the handler's goroutine; Close it before the handler returns.
type Writer struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the ticker's goroutine is gone
	// now reads the time every deadline is counted from; ticks starts
	// the ticker the goroutine waits on. Tests replace both.
	now   func() time.Time
	ticks func(time.Duration) (c <-chan time.Time, stop func())

	mu sync.Mutex
	// writing is set while a write or a flush is under way: the ticker
	// leaves the deadline alone then.
	writing bool
	// set is when the deadline was last moved.
	set time.Time
	// closed is set by Close: the ResponseWriter must not be touched by
	// the ticker any more.
	closed bool
}

var _ io.Writer = (*Writer)(nil)

// New returns a Writer of w's body for r, whose server's WriteTimeout
// bounds each wait on the client. It starts a goroutine when there is
// such a timeout; Close stops it.
func New(w http.ResponseWriter, r *http.Request) *Writer {
	return newWriter(w, r, time.Now, realTicker)
}

// realTicker is a time.Ticker's channel and its Stop.
func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// newWriter is New with the clock and the ticker given.
func newWriter(w http.ResponseWriter, r *http.Request, now func() time.Time, ticks func(time.Duration) (<-chan time.Time, func())) *Writer {
	d := &Writer{w: w, rc: http.NewResponseController(w), timeout: serverWriteTimeout(r), now: now, ticks: ticks}
	if d.timeout <= 0 {
		return d
	}
	// The server set the deadline as the request arrived, maybe a while
	// ago: start afresh.
	d.move(d.now())
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go d.tick()
	return d
}

// serverWriteTimeout is the WriteTimeout of the server r came in on; 0
// when there is none.
func serverWriteTimeout(r *http.Request) time.Duration {
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv != nil {
		return srv.WriteTimeout
	}
	return 0
}

// Timeout is how long one write may wait on the client; 0 when nothing
// bounds it.
func (d *Writer) Timeout() time.Duration { return d.timeout }

// Write writes p to the answer's body.
func (d *Writer) Write(p []byte) (int, error) {
	d.begin()
	defer d.end()
	return d.w.Write(p)
}

// Flush sends what the ResponseWriter holds to the client, as
// http.ResponseController's Flush does.
func (d *Writer) Flush() error {
	d.begin()
	defer d.end()
	return d.rc.Flush()
}

// Close stops moving the deadline, and gives what is left of the answer a
// whole timeout from now: net/http writes the rest of it (the last bytes
// it holds, HTTP/1.1's last chunk, HTTP/2's end of stream) after the
// handler returned, and that must wait on the client no longer than any
// other write. Call it before the handler returns, also when it panics
// (defer it); calls after the first do nothing.
func (d *Writer) Close() {
	if d.timeout <= 0 {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.stop)
	d.mu.Unlock()
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	d.move(d.now())
}

// begin is called before a write: the deadline is moved on unless it was
// moved less than a quarter of the timeout ago, and the ticker leaves it
// alone until end.
func (d *Writer) begin() {
	if d.timeout <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writing = true
	if now := d.now(); now.Sub(d.set) >= d.timeout/4 {
		d.move(now)
	}
}

func (d *Writer) end() {
	if d.timeout <= 0 {
		return
	}
	d.mu.Lock()
	d.writing = false
	d.mu.Unlock()
}

// tick moves the deadline on every quarter of the timeout while no write
// is under way, until Close.
func (d *Writer) tick() {
	defer close(d.done)
	c, stop := d.ticks(d.timeout / 4)
	defer stop()
	for {
		select {
		case <-d.stop:
			return
		case <-c:
			// Not the tick's time: that is when the tick was due, which
			// after a scheduling pause is long gone, and a deadline
			// counted from it left the next write a part of the timeout.
			d.mu.Lock()
			if !d.writing && !d.closed {
				d.move(d.now())
			}
			d.mu.Unlock()
		}
	}
}

// move sets the deadline to now plus the timeout; d.mu is held. Errors
// are ignored: a ResponseWriter without deadlines has none to move, and
// one whose deadline already passed fails its next write anyway.
func (d *Writer) move(now time.Time) {
	d.set = now
	_ = d.rc.SetWriteDeadline(now.Add(d.timeout))
}
