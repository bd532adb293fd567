package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// bodyBudget bounds the bytes of request bodies that all calls together
// hold in memory (Config.BodyBufferBytes). Only screenBody takes from it:
// the form bodies and POSTed JSON bodies it reads whole to look for method
// overrides. Without it, any verified operator (one without a grant too:
// bodies are read before the grant lookup) could open N calls with bodies
// at the per-call limit and make the proxy hold N times that limit.
//
// It is a counter, not a queue: a call that can't reserve what it needs is
// refused at once (ReasonOverloaded), never made to wait. Waiting would
// keep the connection, and the body the client is still sending, while
// the calls ahead finish uploads of unknown duration; the waiters would be
// one more thing to bound. A fast 503 with Retry-After tells the client
// what happened and when to come back.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes, or nothing and false when fewer than n are left.
func (b *bodyBudget) reserve(n int64) bool {
	for {
		used := b.used.Load()
		if n > b.limit-used {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// release returns n reserved bytes.
func (b *bodyBudget) release(n int64) {
	if n != 0 {
		b.used.Add(-n)
	}
}

// inUse is how many bytes calls hold now.
func (b *bodyBudget) inUse() int64 { return b.used.Load() }

// unknownLengthStart is the first buffer of a body of unknown length.
const unknownLengthStart = 4 << 10

// retryAfterOverloaded is the Retry-After of a ReasonOverloaded answer, in
// seconds: the bodies held are released as their calls finish, one upload
// and one forward each.
const retryAfterOverloaded = "1"

// errOverloaded is the cause of a ReasonOverloaded denial, for the log;
// the client reads publicMessage.
var errOverloaded = errors.New("the request bodies being checked already hold the proxy's budget")

// readBody reads body whole, at most MaxBodyBytes of it, into a buffer
// whose capacity is reserved from the budget before it is allocated.
// size is the declared length (at most MaxBodyBytes: screen refused
// longer ones), or -1 when unknown. Every byte reserved is added to *held,
// for the caller to release once the body is no longer needed, however the
// call ends; a refusal here leaves what was reserved in *held too.
//
// A body of declared length gets one buffer of that length, reserved at
// once: it is allocated at once too, so the reservation is what the call
// holds (a client that declares a large body and sends it slowly holds
// that much of the budget, as it would hold the memory). A body of unknown
// length (chunked, or an HTTP/2 stream without content-length) starts at
// unknownLengthStart and doubles, up to the limit, each growth reserved
// before it is made. Reserving the limit up front would let a handful of
// small chunked forms take the whole budget, and counting bytes read
// instead of capacity would miss the buffer's unused room, up to half of
// it. What the budget counts is the buffers calls hold; the smaller ones
// a body outgrew are garbage, the collector's to return (GOMEMLIMIT).
func (h *Handler) readBody(body io.Reader, size int64, held *int64) ([]byte, Reason, error) {
	limit := h.cfg.MaxBodyBytes
	first := size
	if first < 0 {
		first = min(unknownLengthStart, limit)
	}
	if !h.bodies.reserve(first) {
		return nil, ReasonOverloaded, h.overloaded(first)
	}
	*held += first
	buf := make([]byte, 0, first)
	for {
		if len(buf) == cap(buf) {
			// Full. See whether more comes before asking for more room: a
			// body of declared length normally ends here.
			b, err := readByte(body)
			switch {
			case err == io.EOF:
				return buf, "", nil
			case err != nil:
				return nil, ReasonBadRequest, fmt.Errorf("the request body could not be read: %w", err)
			case int64(len(buf)) >= limit:
				return nil, ReasonBadRequest, withStatus(http.StatusRequestEntityTooLarge,
					fmt.Errorf("the request body is larger than %d bytes", limit))
			}
			grown := min(max(2*int64(cap(buf)), unknownLengthStart), limit)
			if !h.bodies.reserve(grown - int64(cap(buf))) {
				return nil, ReasonOverloaded, h.overloaded(grown - int64(cap(buf)))
			}
			*held += grown - int64(cap(buf))
			next := make([]byte, len(buf), grown)
			copy(next, buf)
			buf = append(next, b)
			continue
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, "", nil
		case err != nil:
			return nil, ReasonBadRequest, fmt.Errorf("the request body could not be read: %w", err)
		}
	}
}

// overloaded says, for the log, why n more bytes could not be reserved.
func (h *Handler) overloaded(n int64) error {
	return fmt.Errorf("%w: %d more bytes wanted, %d of %d in use", errOverloaded, n, h.bodies.inUse(), h.bodies.limit)
}

// readByte reads one byte of r, or returns its error.
func readByte(r io.Reader) (byte, error) {
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			return b[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}
