package proxy

import (
	"context"
	"io"
	"time"
)

// stallWatch ends a call forwarded over an upstream HTTP/2 connection once
// nothing of the call has moved, to or from the client, for its client
// timeout, while an HTTP/1.1 client waits for it.
//
// Over HTTP/2 the upstream connection never goes quiet (it answers the
// transport's pings, and carries other calls), so quietDialer never cuts
// it, and net/http's Transport has no bound between two pieces of an
// answer, nor on an upload the upstream stops taking: such an upstream
// held the call until the client gave up. An HTTP/2 client's stream is
// ended by its own deadline; an HTTP/1.1 connection's deadlines fail only
// its reads and writes, and the handler, waiting on the upstream, makes
// neither. The watch is that deadline noticed: it goes off as the
// client's deadline passes (clientDeadline.set plus the timeout, so after
// a quiet spell of between three quarters of the timeout and all of it,
// as quietDialer's), and cuts the call unless the deadline was moved on
// meanwhile, by a byte read from the client or written to it.
//
// Only HTTP/1.1 clients' calls take it, and of those only the ones that
// may go over HTTP/2: an answer that came over HTTP/2 (watchBody), and a
// call with a body to an https upstream, watched from before its answer
// since the upstream may stop taking the upload before it answers
// (forward), and stopped if the answer comes over HTTP/1.1. Calls to
// plain-http upstreams, and reads answered over HTTP/1.1, never take it.
// (An HTTP/2 client's call with an upload takes a lighter one, with no
// timer: watchCancel.)
// An upload's bytes move the deadline on as the transport takes them: a
// streamed body's as they are read from the client (progressBody), a body
// read whole for its checks as they are sent (sentBody). The watch costs
// a timer per call, and a clock read each time it goes off (at most every
// quarter of the timeout while the call moves), never one per read.
type stallWatch struct {
	d *clientDeadline
	// cancel, when the watch was armed before the answer, cancels the
	// call's context: it fails the wait for the answer, and the upload.
	cancel func()
	// client is the client's request body, when it has one.
	client *progressBody
	// stopClose, for an HTTP/2 client's call, is the stop of its
	// context's AfterFunc (watchCancel); d is then nil.
	stopClose func() bool

	// Guarded by d.mu.
	// body is the answer's body once it came: closing it fails its read
	// (net/http's HTTP/2 transport heeds the context no more while it
	// still sends the upload).
	body    io.Closer
	timer   *time.Timer
	stopped bool
	// graced is set while the watch waits a quarter of the timeout more
	// for the client's read to fail (check).
	graced bool
	// fired is set as the watch cuts the call.
	fired bool
}

// watchStall arms a watch on the call whose deadlines are d: before its
// answer with the cancel of its context, or on its answer with nil and
// then answer.
func watchStall(d *clientDeadline, client *progressBody, cancel func()) *stallWatch {
	w := &stallWatch{d: d, cancel: cancel, client: client}
	d.mu.Lock()
	defer d.mu.Unlock()
	w.timer = time.AfterFunc(d.timeout-time.Since(d.set), w.check)
	return w
}

// answer gives the watch the answer's body, which it closes to cut the
// call.
func (w *stallWatch) answer(body io.Closer) {
	w.d.mu.Lock()
	fired := w.fired
	w.body = body
	w.d.mu.Unlock()
	if fired {
		// Cut as the answer came.
		_ = body.Close()
	}
}

// check runs as the watch goes off: it cuts the call if the client's
// deadline passed unmoved, else waits for the deadline as it is now.
//
// While the client's body is still being read, its read deadline passes
// at the same moment, and if the transport was waiting on the client (its
// upload stalled, not the upstream), that read is about to fail: the
// client's failure, which forward reports as such. The watch gives it a
// quarter of the timeout to fail first rather than take it for the
// upstream's.
func (w *stallWatch) check() {
	d := w.d
	d.mu.Lock()
	if w.stopped || d.done {
		d.mu.Unlock()
		return
	}
	if quiet := time.Since(d.set); quiet < d.timeout {
		w.graced = false
		w.timer.Reset(d.timeout - quiet)
		d.mu.Unlock()
		return
	}
	if d.reading && !w.graced {
		w.graced = true
		w.timer.Reset(d.timeout / 4)
		d.mu.Unlock()
		return
	}
	if w.client != nil && w.client.failed.Load() {
		// The client's read failed: that ends the call.
		d.mu.Unlock()
		return
	}
	w.fired = true
	body := w.body
	d.mu.Unlock()
	if w.cancel != nil {
		w.cancel()
	}
	if body != nil {
		_ = body.Close()
	}
}

// watchCancel closes the answer's body of an HTTP/2 client's call with an
// upload once the call's context ends. The client's stream deadline, or
// its reset, cancels that context, which fails the wait for an answer
// and, once the upload is sent, the read of the answer's body; but while
// net/http's HTTP/2 transport still sends an upload after the answer came,
// it heeds no context, so an upstream that answered and then stopped
// taking the upload held the handler and the upstream's stream after the
// client's stream was gone. Only such calls take it: answers over HTTP/2
// to calls with a body.
func watchCancel(ctx context.Context, body io.Closer) *stallWatch {
	return &stallWatch{stopClose: context.AfterFunc(ctx, func() { _ = body.Close() })}
}

// stop disarms the watch, as the call's forwarding ends, and reports
// whether it cut the call (for watchCancel's, whether the context's end
// closed the body).
func (w *stallWatch) stop() (fired bool) {
	if w.d == nil {
		return !w.stopClose()
	}
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
	return w.fired
}

// sentBody is a body read whole for its checks, which moves its call's
// deadlines on as the transport takes it for the upstream, for a
// stallWatch.
type sentBody struct {
	io.ReadCloser
	d *clientDeadline
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.d.progress()
	}
	return n, err
}
