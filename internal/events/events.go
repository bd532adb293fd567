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
// have missed messages while it was away.
//
// It imports only go-redis: grants and tenants publish, the server wires
// the Listener to the caches.
package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Channel is the pub/sub channel of the events; each message is a tenant
// name. PUBLISH takes no key, so on Redis Cluster it is allowed in any
// slot's transaction and reaches subscribers on every node.
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
	// ready is closed once the first subscription is confirmed.
	ready     chan struct{}
	readyOnce sync.Once
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

// Run listens until ctx ends. go-redis reconnects a dropped subscription by
// itself; each (re)subscription resets the caches, because messages sent
// while the connection was down are lost.
func (l *Listener) Run(ctx context.Context) {
	ps := l.rdb.Subscribe(ctx, Channel)
	// A blocked Receive does not return when ctx ends (go-redis reads the
	// socket without a deadline); closing the subscription makes it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer func() {
		stop()
		ps.Close()
	}()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The connection broke: whatever it would have carried is
			// lost. Forget everything; the next Receive reconnects.
			l.reset()
			l.log.Warn("cache invalidation events interrupted; caches cleared", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				l.reset()
				l.readyOnce.Do(func() { close(l.ready) })
			}
		case *redis.Message:
			if l.Drop != nil && l.Drop(m.Payload) {
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
