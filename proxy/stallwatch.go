package proxy

import (
	"time"
)

// stallWatch ends a call forwarded over an upstream HTTP/2 connection once
// nothing of the call has moved, to or from the client, for its client
// timeout, while an HTTP/1.1 client waits for it.
//
// Over HTTP/2 the upstream connection never goes quiet (it answers the
// transport's pings, and carries other calls), so quietDialer never cuts
// it, and net/http's Transport has no bound between two pieces of an
// answer: an upstream that sent part of an answer and then nothing held
// the call until the client gave up. An HTTP/2 client's stream is ended by
// its own deadline; an HTTP/1.1 connection's deadlines fail only its reads
// and writes, and the handler, waiting on the upstream, makes neither.
// The watch is that deadline noticed: it goes off as the client's
// deadline passes (clientDeadline.set plus the timeout, so after a quiet
// spell of between three quarters of the timeout and all of it, as
// quietDialer's), and cuts the call unless the deadline was moved on
// meanwhile, by a byte read from the client or written to it. It is
// armed only for such calls, after the answer's header came over HTTP/2:
// calls to plain-http upstreams and answers over HTTP/1.1 never take it.
// It costs a timer per call, and a clock read each time it goes off (at
// most every quarter of the timeout while the call moves), never per read.
type stallWatch struct {
	d *clientDeadline
	// cut ends the call upstream; it is called at most once, without d's
	// lock.
	cut func()
	// client is the client's request body, when it has one.
	client *progressBody

	// Guarded by d.mu.
	timer   *time.Timer
	stopped bool
	// graced is set while the watch waits a quarter of the timeout more
	// for the client's read to fail (check).
	graced bool
	// fired is set as the watch cuts the call.
	fired bool
}

// watchStall arms a watch on the call whose deadlines are d, which cut
// ends upstream.
func watchStall(d *clientDeadline, client *progressBody, cut func()) *stallWatch {
	w := &stallWatch{d: d, cut: cut, client: client}
	d.mu.Lock()
	defer d.mu.Unlock()
	w.timer = time.AfterFunc(d.timeout-time.Since(d.set), w.check)
	return w
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
	d.mu.Unlock()
	w.cut()
}

// stop disarms the watch, as the call's forwarding ends, and reports
// whether it cut the call.
func (w *stallWatch) stop() (fired bool) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
	return w.fired
}
