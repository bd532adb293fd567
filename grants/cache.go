package grants

import (
	"context"
	"errors"
	"time"

	"github.com/lockbox-oss/lockbox/internal/readcache"
)

// GrantCache serves Store.Grant from memory, for the proxy: a grant (or
// the answer that there is none) whose read began less than maxAge ago is
// served without a Redis round trip (its age counts from before the read,
// both reads of a legacy grant included, so a late reply adds nothing). Every transition of a tenant's requests
// publishes an event in its own transaction (internal/events); wired to a
// Listener, the cache drops the tenant's entries when it arrives, so a
// revocation or an approval is seen at once, and within maxAge (at most a
// second) even if the event is lost. Whatever it serves, the caller still
// checks Grant.Valid against its clock: no grant is honoured past its
// absolute expiry.
type GrantCache struct {
	store *Store
	c     *readcache.Cache[grantKey, Grant]
}

type grantKey struct{ tenant, operator, service string }

// NewGrantCache returns a GrantCache over s whose entries live at most
// maxAge (capped at a second) by the clock now. maxAge 0 caches nothing.
func NewGrantCache(s *Store, maxAge time.Duration, now func() time.Time) *GrantCache {
	return &GrantCache{store: s, c: readcache.New[grantKey, Grant](maxAge, now)}
}

// Grant is Store.Grant, served from memory when it can be.
func (g *GrantCache) Grant(ctx context.Context, tenant, operator, service string) (Grant, error) {
	v, _, err := g.GrantAt(ctx, tenant, operator, service)
	return v, err
}

// GrantAt is Grant, also returning when the read whose answer it returns
// began (the read that fetched it, when memory holds it): the answer is
// what Redis held then or later. The proxy bounds by it how long after
// that a call may still be forwarded on the grant.
func (g *GrantCache) GrantAt(ctx context.Context, tenant, operator, service string) (Grant, time.Time, error) {
	k := grantKey{tenant, operator, service}
	v, err, ok, stamp := g.c.Get(tenant, k)
	if ok {
		return v, stamp.At(), err
	}
	v, err = g.store.Grant(ctx, tenant, operator, service)
	if err == nil || errors.Is(err, ErrNotFound) {
		// "No grant" is an answer too: a flood of calls without one must
		// not become a flood of Redis reads.
		g.c.Put(tenant, k, v, err, stamp)
	}
	return v, stamp.At(), err
}

// PeekGrant returns what Grant would return, when the read that fetched
// it began (see GrantAt), and true, when memory holds the answer; it never
// reads Redis.
func (g *GrantCache) PeekGrant(tenant, operator, service string) (Grant, error, time.Time, bool) {
	v, err, ok, stamp := g.c.Get(tenant, grantKey{tenant, operator, service})
	return v, err, stamp.At(), ok
}

// Invalidate forgets tenant's grants (events.Invalidator).
func (g *GrantCache) Invalidate(tenant string) { g.c.Invalidate(tenant) }

// Reset forgets every grant (events.Invalidator).
func (g *GrantCache) Reset() { g.c.Reset() }
