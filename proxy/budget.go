package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
)

// bodyBudget bounds the bytes of request bodies that all calls together
// hold in memory (Config.BodyBufferBytes), and the bytes that the calls of
// any one operator hold (share). Only screenBody takes from it: the form
// bodies and POSTed JSON bodies it reads whole to look for method
// overrides. Without it, any operator with a grant could open N calls
// with bodies at the per-call limit and make the proxy hold N times that
// limit. (Bodies are read only once the grant and the policy allow the
// call: an operator without a grant takes nothing from it.)
//
// It is a counter, not a queue: a call that can't reserve what it needs is
// refused at once (ReasonOverloaded), never made to wait. Waiting would
// keep the connection, and the body the client is still sending, while
// the calls ahead finish uploads of unknown duration; the waiters would be
// one more thing to bound. A fast 503 with Retry-After tells the client
// what happened and when to come back.
//
// The share keeps one operator from taking the whole budget: a body of
// declared length holds its reservation from its first byte until its
// call ends, and a client may take up to ClientTimeout between two pieces
// of it, so a handful of uploads that trickle in would otherwise keep
// every other operator's forms refused for minutes. See operatorShare for
// its size.
//
// One mutex guards both counts, so that a reservation checks and takes
// from the two at once and the sum of the operators' holdings is exactly
// used at every moment. It is taken only by calls whose body is read
// whole, once for each buffer they reserve and once when they end; calls
// that buffer nothing never touch it.
type bodyBudget struct {
	limit int64 // all calls together
	share int64 // the calls of one operator together
	// used is the sum of held, written under mu and read without it by
	// the gauge.
	used atomic.Int64
	mu   sync.Mutex
	// held is what each operator's calls hold, by identity.Principal's
	// Subject, the identity grants are keyed by. An operator is in it only
	// while holding something, so it has at most one entry per call whose
	// body is being read or forwarded; the memory of its table is that of
	// the most such calls at once (a map keeps its table when entries go),
	// a few dozen bytes each.
	held map[string]int64
}

// operatorShareDivisor: an operator's calls may hold this fraction of the
// budget (see operatorShare).
const operatorShareDivisor = 4

// operatorShare is how much of a budget of limit bytes one operator's calls
// may hold together: a quarter of it, but never less than one body at the
// per-call limit, maxBody, so that a body any one call may send can always
// be read when its operator holds nothing else.
//
// A quarter, because one operator then leaves at least three quarters of
// the budget to everyone else, and it takes four operators at their share
// to fill it; of the default budget (64 MiB) each gets room for one body
// at the limit (10 MiB) and 6 MiB of smaller ones at once. It is not a
// setting: it scales with
// LOCKBOX_PROXY_BODY_BUFFER_BYTES, the one knob a deployment that needs
// more turns anyway (with the container's memory). A budget under four
// bodies at the limit leaves one operator most or all of it: the floor
// wins there, since a smaller share would refuse the largest body outright.
func operatorShare(limit, maxBody int64) int64 {
	return max(limit/operatorShareDivisor, maxBody)
}

// setLimit sizes b for a budget of limit bytes and bodies of at most
// maxBody bytes each. It is called before b is used.
func (b *bodyBudget) setLimit(limit, maxBody int64) {
	b.limit, b.share = limit, operatorShare(limit, maxBody)
}

// reserve takes n bytes for operator's call, or nothing and an error
// wrapping errOverloaded, saying which bound refused it, when fewer than
// n are left of the budget or of operator's share.
func (b *bodyBudget) reserve(operator string, n int64) error {
	if n == 0 {
		return nil
	}
	b.mu.Lock()
	used, mine := b.used.Load(), b.held[operator]
	// Compared as differences: no sum can overflow.
	fits := n <= b.limit-used && n <= b.share-mine
	if fits {
		if b.held == nil {
			b.held = make(map[string]int64)
		}
		b.held[operator] = mine + n
		b.used.Store(used + n)
	}
	b.mu.Unlock()
	switch {
	case fits:
		return nil
	case n > b.share-mine:
		return fmt.Errorf("%w, the operator's share of it: %d more bytes wanted, the operator's calls hold %d of their share of %d (%d of %d in use)",
			errOverloaded, n, mine, b.share, used, b.limit)
	default:
		return fmt.Errorf("%w: %d more bytes wanted, %d of %d in use", errOverloaded, n, used, b.limit)
	}
}

// release returns n bytes operator's call reserved.
func (b *bodyBudget) release(operator string, n int64) {
	if n == 0 {
		// The usual call, which buffered nothing, takes no lock.
		return
	}
	b.mu.Lock()
	if mine := b.held[operator] - n; mine != 0 {
		b.held[operator] = mine
	} else {
		delete(b.held, operator)
	}
	b.used.Add(-n)
	b.mu.Unlock()
}

// inUse is how many bytes calls hold now.
func (b *bodyBudget) inUse() int64 { return b.used.Load() }

// holders is how many operators' calls hold bytes now.
func (b *bodyBudget) holders() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

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
// whose capacity is reserved from the budget, and from operator's share of
// it, before it is allocated.
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
func (h *Handler) readBody(operator string, body io.Reader, size int64, held *int64) ([]byte, Reason, error) {
	limit := h.cfg.MaxBodyBytes
	first := size
	if first < 0 {
		first = min(unknownLengthStart, limit)
	}
	if err := h.bodies.reserve(operator, first); err != nil {
		return nil, ReasonOverloaded, err
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
				reason, err := bodyReadFailed(err)
				return nil, reason, err
			case int64(len(buf)) >= limit:
				return nil, ReasonBadRequest, withStatus(http.StatusRequestEntityTooLarge,
					fmt.Errorf("the request body is larger than %d bytes", limit))
			}
			grown := min(max(2*int64(cap(buf)), unknownLengthStart), limit)
			if err := h.bodies.reserve(operator, grown-int64(cap(buf))); err != nil {
				return nil, ReasonOverloaded, err
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
			reason, err := bodyReadFailed(err)
			return nil, reason, err
		}
	}
}

// bodyReadFailed returns the denial of a body that could not be read
// whole for err: the client gone (the connection closed or reset before
// the body's end) is ReasonClientCanceled, as a hang-up anywhere else in
// judging is, not the client's bad request; broken framing is.
func bodyReadFailed(err error) (Reason, error) {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return ReasonClientCanceled, fmt.Errorf("the client went away before the end of the request body: %w", err)
	}
	return ReasonBadRequest, fmt.Errorf("the request body could not be read: %w", err)
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
