package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ClientTimeout is how long a call waits on its client without progress
// (Config.ClientTimeout, defaults applied). The server the handler runs in
// sets its ReadTimeout and WriteTimeout to it, so that each HTTP/2 stream
// starts with these deadlines too.
func (h *Handler) ClientTimeout() time.Duration { return h.cfg.ClientTimeout }

// clientDeadline keeps a call's read and write deadlines on its client (an
// HTTP/1.1 connection's, an HTTP/2 stream's) ahead of it while the client
// makes progress, and lets them pass when it does not.
//
// Without deadlines, net/http waits on a client forever once the request
// header is in (ReadHeaderTimeout covers only that): an HTTP/1.1 client
// that declares a body and never sends it holds even a denial, which the
// server answers only after reading what is left of the body; an HTTP/2
// client that never opens its flow-control window holds every stream's
// handler on its last write, up to the stream limit on each connection.
// Neither needs a token. The server's ReadTimeout and WriteTimeout alone
// would cut good calls: they count from the request's start whatever
// happens after, so an upload or a download that takes longer is cut
// however well it moves. Here they only start the deadlines, and each
// call moves its own on as long as its client keeps up.
//
// The body is read on the transport's goroutine while the answer is
// written on the handler's, and the transport may still read after the
// handler returned, when the ResponseWriter must no longer be touched
// (an HTTP/2 one would panic): hence the lock, and done.
type clientDeadline struct {
	w       http.ResponseWriter // the server's, for http.ResponseController
	timeout time.Duration
	h1      bool

	mu sync.Mutex
	// reading is set while the body has more to read: the read deadline
	// is moved on only then.
	reading bool
	// set is when the deadlines were last moved on.
	set time.Time
	// done is set when the handler returns.
	done bool
	// end is when the call's grant ends, on time.Now's clock, once the
	// call is forwarded (zero before): no deadline is moved past it.
	end time.Time
	// pinned is set once the deadlines were set at end, for good.
	pinned bool
	// cancel, for an HTTP/1.1 client's call or one with a body, cancels
	// its forwarded request, and endTimer does so at end once the
	// deadlines are pinned (pin).
	cancel   func()
	endTimer *time.Timer
	// ended is why the call's access ended before its grant's expires_at
	// (revoke), endedBy the error that said so, and end is then when that
	// was: why the call was cut.
	ended   Reason
	endedBy error
}

// start sets the call's deadlines as the request arrives, now. Over HTTP/1.1
// they are the connection's, whose write deadline may still be an earlier
// call's, or none when the server has no WriteTimeout: it is set. The read
// deadline is set only for a body. Once a request has no more body to
// read, the server reads the connection in the background (to notice the
// client going away) and takes a failed read, a deadline's too, for the
// client gone: it cancels the call (while the read waits: pin). It clears the read deadline as it
// starts that read, before the handler runs for a request without a body.
// An HTTP/2 stream already has the server's ReadTimeout and WriteTimeout
// from its start; setting them again would cost a round trip to the
// connection's goroutine on every call.
func (d *clientDeadline) start(w http.ResponseWriter, r *http.Request, timeout time.Duration, now time.Time) {
	d.w, d.timeout, d.h1 = w, timeout, r.ProtoMajor == 1
	d.reading = hasBody(r)
	d.set = now
	if !d.h1 {
		return
	}
	rc := http.NewResponseController(w)
	// Errors are ignored: a ResponseWriter that has no deadlines (a test
	// recorder) has none to move.
	if d.reading {
		_ = rc.SetReadDeadline(d.set.Add(timeout))
	}
	_ = rc.SetWriteDeadline(d.set.Add(timeout))
}

// progress moves the deadlines on after the client sent or took bytes, or
// before the call is forwarded (the wait for the upstream then gets at
// least three quarters of ClientTimeout), at most every quarter of the
// timeout.
func (d *clientDeadline) progress() {
	if d == nil {
		return // an answerWriter of a test
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || d.pinned || now.Sub(d.set) < d.timeout/4 {
		return
	}
	d.set = now
	if d.endsBy(now.Add(d.timeout)) {
		d.pin()
		return
	}
	rc := http.NewResponseController(d.w)
	if d.reading {
		_ = rc.SetReadDeadline(now.Add(d.timeout))
	}
	_ = rc.SetWriteDeadline(now.Add(d.timeout))
}

// answer is called as the answer's header is written, with its header
// map. Over HTTP/1.1 the server reads what is left of an unread body (up
// to 256 KiB) before it writes an answer, so that the connection can serve
// another request; the proxy does not wait on a client for that: an answer
// given before the body's end closes the connection instead. And the write
// deadline is moved on (at most every quarter of the timeout, as always),
// so that an answer to a body that stalled past its read deadline can
// still be written.
func (d *clientDeadline) answer(h http.Header) {
	if d == nil {
		return // an answerWriter of a test
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	if d.h1 && d.reading {
		h.Set("Connection", "close")
	}
	if now := time.Now(); !d.pinned && now.Sub(d.set) >= d.timeout/4 {
		d.set = now
		if d.endsBy(now.Add(d.timeout)) {
			d.pin()
			return
		}
		_ = http.NewResponseController(d.w).SetWriteDeadline(now.Add(d.timeout))
	}
}

// grantEnds is called as the call is forwarded, with the moment its grant
// ends on time.Now's clock. Access ends then, even in the middle of a
// download or an upload that keeps moving: from now on no deadline is
// moved past end, and once end falls within the deadlines' next step
// (ClientTimeout), they are set at end for good (pin). Until then a call
// pays nothing more: most calls end long before their grant does, and
// one that does not has its deadlines moved on, and looked at, at least
// every ClientTimeout while it lives, or is cut as stalled.
//
// cancel, when not nil, cancels the forwarded request: it is called at
// end if the deadlines were pinned, for the one wait no deadline ends (see
// pin).
func (d *clientDeadline) grantEnds(end time.Time, cancel func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.end, d.cancel = end, cancel
	if !d.done && !d.pinned && d.endsBy(d.set.Add(d.timeout)) {
		d.pin()
	}
}

// endsBy reports whether the call's grant ends by t. d.mu is held.
func (d *clientDeadline) endsBy(t time.Time) bool {
	return !d.end.IsZero() && !d.end.After(t)
}

// pin sets the call's deadlines at its grant's end, where they stay: the
// write deadline cuts an answer the client is still taking (an HTTP/2
// stream's also resets the stream, which cancels the call's context and
// with it the upstream request, however long the upstream takes). Over
// HTTP/1.1 the read deadline is set even once the body was read, so that
// the client's connection ends there too. An HTTP/2 stream's read
// deadline bounds only its body.
//
// What no deadline ends for sure is an HTTP/1.1 client's call waiting on
// its upstream: the server's background read fails at the read deadline
// and cancels the call's context only while that read waits, which one
// byte of a pipelined request ends, and an upload the upstream stopped
// taking blocks the transport before that read starts. Such a call is
// canceled at the end by a timer (forward gives every HTTP/1.1 call a
// cancel); only a call in the last client timeout of its grant, or
// revoked, pays for one. d.mu is held.
func (d *clientDeadline) pin() {
	d.pinned = true
	rc := http.NewResponseController(d.w)
	if d.h1 || d.reading {
		_ = rc.SetReadDeadline(d.end)
	}
	_ = rc.SetWriteDeadline(d.end)
	if d.cancel != nil {
		if d.endTimer != nil {
			// Pinned before at the grant's end, now at a revocation's.
			d.endTimer.Stop()
		}
		d.endTimer = time.AfterFunc(time.Until(d.end), d.cancel)
	}
}

// revoke ends the call's access now, before its grant's end, for reason
// (the call's grant was revoked, or is no longer the one it was judged by:
// CallWatch), err saying so, and cuts the call as its grant's end would: its deadlines
// are pinned at now, which fails the waits on the client at once (and
// resets an HTTP/2 stream, which cancels the call's context), and an
// HTTP/1.1 client's call, or one with a body, has its forwarded request
// canceled. It reports whether it cut the
// call: not once the handler returned, nor when the call's grant already
// ended.
func (d *clientDeadline) revoke(reason Reason, err error, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || d.ended != "" || (d.pinned && !now.Before(d.end)) {
		return false
	}
	d.ended, d.endedBy, d.end, d.set = reason, err, now, now
	d.pin()
	return true
}

// cutReason returns why the call's access ended by now: the reason its
// grant was revoked for and the error that said so (revoke), or
// ReasonGrantExpired once its deadlines were pinned at its grant's end and
// that end has passed. It returns "" while the call still has access: a
// call that failed once it had none was cut because its access ended.
func (d *clientDeadline) cutReason(now time.Time) (Reason, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.ended != "":
		return d.ended, d.endedBy
	case d.pinned && !now.Before(d.end):
		return ReasonGrantExpired, nil
	}
	return "", nil
}

// bodyDone is called when the body has been read to its end. An HTTP/1.1
// connection's read deadline is cleared: the server's background read
// starts now (see start), and a progress on the handler's goroutine may
// have set the deadline again after the server cleared it. (An HTTP/2
// stream's read deadline only bounds its body, which is complete.) A
// deadline pinned at the grant's end is set again instead: the server
// cleared it too, and it is what ends the call then (pin).
func (d *clientDeadline) bodyDone() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || !d.reading {
		return
	}
	d.reading = false
	if d.h1 {
		var at time.Time
		if d.pinned {
			at = d.end
		}
		_ = http.NewResponseController(d.w).SetReadDeadline(at)
	}
}

// finish is called as the handler returns: from then on the deadlines are
// the server's.
func (d *clientDeadline) finish() {
	d.mu.Lock()
	d.done = true
	if d.endTimer != nil {
		d.endTimer.Stop()
	}
	d.mu.Unlock()
}

// streamCut returns os.ErrDeadlineExceeded when the call's HTTP/2 stream
// was ended by its own write deadline rather than by the client, and nil
// otherwise. Either way the server cancels the request's context, so that
// a wait for the upstream fails alike; only the error the stream was closed
// with, which a flush returns once it is closed, tells the two apart:
// os.ErrDeadlineExceeded for the deadline, another for the client's
// RST_STREAM. It is asked only after a call's context was canceled, with
// the answer's header written (an error answer's at least), never on a
// call that went well. An HTTP/1.1 connection's deadline cancels nothing:
// its call fails on a write, as when the client goes.
//
// The server cancels the context a moment before it marks the stream
// closed (net/http's serverConn.closeStream records the error, cancels,
// then closes), and until then a flush with nothing to send returns nil:
// a handler quick to see its context canceled took a deadline's cut for
// the client's reset. So a flush that finds the stream still open waits
// for the close, then asks again. The wait costs a goroutine and a timer,
// on this way out only.
func (d *clientDeadline) streamCut() error {
	if d.h1 {
		return nil
	}
	rc := http.NewResponseController(d.w)
	err := rc.Flush()
	if err == nil && streamClosed(d.w, d.timeout) {
		err = rc.Flush()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return nil
}

// streamClosed waits until w's HTTP/2 stream is marked closed, at most
// bound, and reports whether it was. CloseNotify, deprecated for
// Request.Context, is used because the context is canceled too early:
// the close notification is the one signal the server gives after the
// stream's close error is recorded. The bound only keeps a server that
// never closes a canceled stream from holding the handler; net/http's
// follows the cancel with the close at once.
func streamClosed(w http.ResponseWriter, bound time.Duration) bool {
	for {
		switch v := w.(type) {
		case http.CloseNotifier:
			t := time.NewTimer(bound)
			defer t.Stop()
			select {
			case <-v.CloseNotify():
				return true
			case <-t.C:
				return false
			}
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return false
		}
	}
}

// hasBody reports whether r has a body still to be read. An HTTP/2
// request's Body is never nil, even when its stream ended with its header.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// progressBody is a request body that moves its call's deadlines on as it
// is read, and remembers whether a read failed. Over HTTP/2 a client's
// RST_STREAM fails that read before it cancels the request's context, so
// the transport's error can reach forward while the context still looks
// alive; failed is what says that the client, not the upstream, broke the
// call off. The transport reads the body on a goroutine of its own, hence
// the atomic.
type progressBody struct {
	io.ReadCloser
	d      *clientDeadline
	failed atomic.Bool
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.d.progress()
	}
	switch {
	case err == io.EOF:
		b.d.bodyDone()
	case err != nil:
		b.failed.Store(true)
	}
	return n, err
}

// clientBodyFailed reports whether reading r's body from the client failed.
func clientBodyFailed(r *http.Request) bool {
	b, ok := r.Body.(*progressBody)
	return ok && b.failed.Load()
}
