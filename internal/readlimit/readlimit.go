// Package readlimit bounds the long audit reads a replica runs at once:
// exports and hash chain verifications, which read a whole audit stream
// and, by design, are bound by no call deadline (they run until done or
// until their client goes away). Without a bound one caller — a tenant
// administrator's token, say, opening a few hundred streams on one HTTP/2
// connection — could keep as many of them reading Redis as it liked.
//
// A Limiter allows a few reads per caller, and a few more for all callers
// together, so that many callers can't exhaust Redis either. The API and
// the admin center share one Limiter per replica, so a user's reads count
// together on both. The bound is per replica, not across replicas: it
// needs no Redis round trip, and a replica's reads are what its Redis
// connections carry.
//
// It knows nothing of HTTP: the API and the admin center turn a refusal
// into their 429. It counts the refusals itself (Register), so the two
// count on one series, as they share one bound.
package readlimit

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/identity"
)

// Defaults of New's bounds, which "lockbox serve" uses.
const (
	// DefaultPerCaller is how many long reads one caller runs at once: an
	// export beside a verification, or two exports.
	DefaultPerCaller = 2
	// DefaultTotal is how many long reads all callers run at once on one
	// replica.
	DefaultTotal = 16
)

// RetryAfter is the Retry-After, in seconds, of the 429 that refuses a
// read: when one of the reads running ends can't be told, and this is about
// as long as a client should wait before it asks again.
const RetryAfter = "10"

// ErrCallerBusy is Acquire's refusal when the caller already runs as many
// long reads as it may.
var ErrCallerBusy = errors.New("readlimit: the caller runs as many long reads as it may")

// ErrReplicaBusy is Acquire's refusal when the replica already runs as many
// long reads, of all callers together, as it may.
var ErrReplicaBusy = errors.New("readlimit: the replica runs as many long reads as it may")

// caller identifies a caller as the API and the admin center do: a
// tenant user by its tenant and subject (a tenant's users come only from
// its own issuer), the provider's staff by subject alone.
type caller struct{ tenant, subject string }

// Limiter counts the long reads running, by caller. Its methods may be
// called from any goroutine.
type Limiter struct {
	perCaller, total int
	// refused counts Acquire's refusals by the bound met: "caller" or
	// "replica".
	refused *prometheus.CounterVec

	mu       sync.Mutex
	running  int
	byCaller map[caller]int
}

// New returns a Limiter that allows perCaller reads to one caller and
// total to all callers together; both must be at least 1.
func New(perCaller, total int) (*Limiter, error) {
	if perCaller < 1 || total < 1 {
		return nil, fmt.Errorf("readlimit: bounds must be at least 1, got %d per caller and %d in all", perCaller, total)
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockbox_audit_reads_refused_total",
		Help: "Audit exports and verifications refused (429 too_many_reads) by the bound they met: caller (one caller's) or replica (all callers' together).",
	}, []string{"bound"})
	// Both series from the start, at zero: a rate over a series that
	// appears at the first refusal misses that refusal.
	refused.WithLabelValues("caller")
	refused.WithLabelValues("replica")
	return &Limiter{perCaller: perCaller, total: total, refused: refused, byCaller: map[caller]int{}}, nil
}

// Register registers l's metrics with reg: the reads refused, by bound,
// and the reads running now. Call it once per Limiter, where the process
// has one for the API and the admin center.
func (l *Limiter) Register(reg prometheus.Registerer) error {
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lockbox_audit_reads_running",
		Help: "Audit exports and verifications running now, of all callers together; at most LOCKBOX_AUDIT_READS.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.running)
	})
	for _, c := range []prometheus.Collector{l.refused, running} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("readlimit: %w", err)
		}
	}
	return nil
}

// PerCaller is how many long reads one caller may run at once.
func (l *Limiter) PerCaller() int { return l.perCaller }

// Total is how many long reads all callers may run at once.
func (l *Limiter) Total() int { return l.total }

// Acquire takes a slot for a long read of p, or refuses with
// ErrCallerBusy or ErrReplicaBusy. release gives the slot back; call it
// once the read has ended, however it ended (a deferred call does that,
// panics included). Calling it again does nothing.
func (l *Limiter) Acquire(p identity.Principal) (release func(), err error) {
	c := caller{tenant: p.TenantID, subject: p.Subject}
	l.mu.Lock()
	defer l.mu.Unlock()
	// The caller's own bound first: a caller at it is told so, whatever
	// the others run.
	if l.byCaller[c] >= l.perCaller {
		l.refused.WithLabelValues("caller").Inc()
		return nil, ErrCallerBusy
	}
	if l.running >= l.total {
		l.refused.WithLabelValues("replica").Inc()
		return nil, ErrReplicaBusy
	}
	l.byCaller[c]++
	l.running++
	var once sync.Once
	return func() { once.Do(func() { l.release(c) }) }, nil
}

func (l *Limiter) release(c caller) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	// Keep the map to the callers reading now.
	if l.byCaller[c]--; l.byCaller[c] == 0 {
		delete(l.byCaller, c)
	}
}
