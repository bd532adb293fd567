// Package events carries "this tenant's grants or settings changed" from
// the transaction that changes them to every replica's in-process caches.
//
// A change publishes the tenant's name on one Redis pub/sub channel inside
// its own MULTI, so the event exists if and only if the change committed,
// and every replica's Listener hears it within a network round trip and
// drops what it cached for that tenant. Pub/sub is best effort: a message
// can be lost (a replica's connection dropped while it was sent). The
// caches don't rely on it alone: every entry also has a hard age limit, so
// a lost message delays the effect of a change by at most that limit; and
// whenever the Listener (re)subscribes it clears everything, since it may
// have missed messages while it was away. The Listener pings its
// subscription, so one to a master that hangs is found dead and replaced
// (on the new master after a failover) rather than waited on forever.
//
// A message that is no tenant's name (a newer replica's form, during a
// rolling upgrade) clears every cache: it can't be ignored, as it may be a
// revocation.
//
// It imports only go-redis and internal/keys: grants and tenants publish,
// the server wires the Listener to the caches.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Channel is the pub/sub channel of the events; each message is a tenant
// name (anything else clears every cache). PUBLISH takes no key, so on
// Redis Cluster it is allowed in any slot's transaction and reaches
// subscribers on every node.
const Channel = "lockbox:events"

// PublishTx queues, in the caller's transaction p, the event that tenant's
// grants or settings changed.
func PublishTx(ctx context.Context, p redis.Pipeliner, tenant string) {
	p.Publish(ctx, Channel, tenant)
}

// Invalidator is a cache that forgets what it holds.
type Invalidator interface {
	// Invalidate forgets what is cached for tenant.
	Invalidate(tenant string)
	// Reset forgets everything.
	Reset()
}

// Health check of the subscription, the defaults of Listener.PingInterval
// and Listener.PingTimeout. A subscription that hears nothing for
// PingInterval sends a PING on its connection; if nothing at all (the
// pong, an event) comes back within PingTimeout, the subscription is
// judged lost: it is closed, the caches are cleared and the Listener
// subscribes again. Without it, a subscription to a master that hangs
// (SIGSTOP, a VM paused, a partition that drops packets silently) waits
// forever: go-redis reads it without a deadline, does not close it when
// Sentinel fails over, and TCP keepalive does not notice a peer whose
// kernel still answers. Loss is found within PingInterval + PingTimeout
// (750 ms), under the caches' age limit.
//
// Cost: a quiet replica sends 4 PINGs a second on a connection it holds
// anyway, tens of bytes each way; a busy one sends none (each event proves
// the connection alive). A thousand replicas add 4 000 trivial commands a
// second, a small fraction of what one Redis serves.
const (
	DefaultPingInterval = 250 * time.Millisecond
	DefaultPingTimeout  = 500 * time.Millisecond
)

// retryDelay is the pause between a lost subscription and the next
// attempt, so that a Redis that is down is not dialled in a tight loop.
const retryDelay = 100 * time.Millisecond

// Listener subscribes to Channel and tells its invalidators.
type Listener struct {
	rdb redis.UniversalClient
	log *slog.Logger
	mu  sync.Mutex
	inv []Invalidator
	// Drop, when set, is asked about each message before it is applied; a
	// message it drops is lost, as a message on a broken connection is.
	// Tests use it to show that the age limit bounds staleness on its own.
	Drop func(tenant string) bool
	// PingInterval and PingTimeout tune the health check of the
	// subscription (0: DefaultPingInterval, DefaultPingTimeout). Set them
	// before Run.
	PingInterval, PingTimeout time.Duration
	// ready is closed once the first subscription is confirmed.
	ready     chan struct{}
	readyOnce sync.Once
	// subscribed is true while a confirmed subscription is judged alive.
	subscribed atomic.Bool
}

// NewListener returns a Listener on rdb telling each of inv.
func NewListener(rdb redis.UniversalClient, log *slog.Logger, inv ...Invalidator) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{rdb: rdb, log: log, inv: inv, ready: make(chan struct{})}
}

// Add adds invalidators to tell.
func (l *Listener) Add(inv ...Invalidator) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inv = append(l.inv, inv...)
}

// Ready is closed once the Listener first subscribed.
func (l *Listener) Ready() <-chan struct{} { return l.ready }

// Subscribed reports whether the Listener holds a subscription it judges
// alive: while it does not, changes of other replicas reach the caches
// only through the age limit (the metric
// lockbox_proxy_cache_events_subscribed).
func (l *Listener) Subscribed() bool { return l.subscribed.Load() }

// Run listens until ctx ends. Each subscription is health-checked (see
// DefaultPingInterval); one that breaks or stops answering is closed and
// replaced. Every (re)subscription and every loss resets the caches,
// because messages sent while no subscription was alive are lost.
func (l *Listener) Run(ctx context.Context) {
	defer l.subscribed.Store(false)
	var lostAt time.Time // when the last live subscription was lost; zero if none was
	warned := false      // the failure to subscribe at all was logged
	for {
		err := l.listen(ctx, &lostAt)
		if ctx.Err() != nil {
			return
		}
		switch {
		case l.subscribed.Load():
			// Reset before the state says so: whoever sees the
			// subscription lost sees the caches already cleared.
			l.reset()
			l.subscribed.Store(false)
			lostAt = time.Now()
			l.log.Warn("cache invalidation events lost; caches cleared, subscribing again (until then changes reach this replica within the cache age limit)", "error", err)
		case lostAt.IsZero() && !warned:
			warned = true
			l.log.Warn("cache invalidation events: can't subscribe yet; changes reach this replica within the cache age limit", "error", err)
		default:
			// Still trying: logged once above, not on every attempt.
			l.log.Debug("cache invalidation events: subscribing failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryDelay):
		}
	}
}

// listen holds one subscription until ctx ends or the subscription is
// judged lost, and says why it ended. lostAt is when the previous one was
// lost, for the log.
func (l *Listener) listen(ctx context.Context, lostAt *time.Time) error {
	interval, timeout := l.PingInterval, l.PingTimeout
	if interval <= 0 {
		interval = DefaultPingInterval
	}
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	// No channel yet, so no I/O: Subscribe below returns the dial's error
	// (the client's Subscribe with channels would swallow it).
	ps := l.rdb.Subscribe(ctx)
	// A blocked receive does not return when ctx ends; closing the
	// subscription makes it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer func() {
		stop()
		ps.Close()
	}()
	// Bounded: a hung master accepts the connection (its kernel does) and
	// never answers the handshake.
	sctx, cancel := context.WithTimeout(ctx, interval+timeout)
	err := ps.Subscribe(sctx, Channel)
	cancel()
	if err != nil {
		return err
	}
	heard := time.Now()  // when anything last came from Redis
	var pinged time.Time // when the unanswered PING went; zero if none
	for {
		if pinged.IsZero() && time.Since(heard) >= interval {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			err := ps.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			pinged = time.Now()
		}
		wait := interval - time.Since(heard)
		if !pinged.IsZero() {
			wait = timeout - time.Since(pinged)
			if wait <= 0 {
				return fmt.Errorf("events: Redis answered nothing within %s of a PING", timeout)
			}
		}
		// Never 0, which would mean no deadline at all.
		wait = max(wait, time.Millisecond)
		// The context bounds what go-redis does on a broken connection
		// before returning (it dials again at once).
		rctx, cancel := context.WithTimeout(ctx, wait+timeout)
		msg, err := ps.ReceiveTimeout(rctx, wait)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isTimeout(err) {
				continue // nothing yet: ping, or give up, above
			}
			return err
		}
		heard, pinged = time.Now(), time.Time{}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				l.reset()
				if !l.subscribed.Swap(true) && !lostAt.IsZero() {
					l.log.Warn("cache invalidation events subscribed again; caches cleared", "lost_for", time.Since(*lostAt).Round(time.Millisecond))
				}
				l.readyOnce.Do(func() { close(l.ready) })
			}
		case *redis.Message:
			if l.Drop != nil && l.Drop(m.Payload) {
				continue
			}
			if !keys.IsTenant(m.Payload) {
				// Not a tenant's name: an event in a form this version
				// does not know, from a newer replica during a rolling
				// upgrade. Something changed and this version can't tell
				// what, so it forgets everything rather than nothing.
				l.reset()
				continue
			}
			l.mu.Lock()
			for _, inv := range l.inv {
				inv.Invalidate(m.Payload)
			}
			l.mu.Unlock()
		}
	}
}

// isTimeout reports whether err is a read that ended at its deadline with
// nothing to read, which leaves the subscription usable.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Invalidate tells the invalidators that tenant changed, without waiting
// for the event: the process that made a change calls it right after the
// commit, so its own caches never lag behind its own writes.
func (l *Listener) Invalidate(tenant string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, inv := range l.inv {
		inv.Invalidate(tenant)
	}
}

func (l *Listener) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, inv := range l.inv {
		inv.Reset()
	}
}
