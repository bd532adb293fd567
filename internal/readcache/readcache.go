// Package readcache keeps the results of per-tenant Redis reads in memory
// for the proxy's hot path, under two bounds that the security contract
// sets: an entry is served only while it is younger than MaxAge (at most a
// second), and everything cached for a tenant is dropped the moment an
// invalidation event for that tenant arrives (see internal/events).
//
// An entry's age counts from when the read that fetched it began (the Get
// that missed), not from when its result was stored: a change can commit
// the instant after Redis answered, and a slow reply (network, a GC pause)
// must not add its delay to what a replica that missed the event serves.
//
// Invalidation wins every race with a read in flight: each tenant has a
// version, bumped by Invalidate, and a read that started before the bump is
// returned to its caller but not kept. Reset does the same for every tenant.
//
// It knows nothing of what it caches; grants and tenants wrap it.
package readcache

import (
	"sync"
	"time"
)

// MaxAgeLimit is the longest MaxAge allowed: the contract's bound on how
// stale a grant or setting may ever be served.
const MaxAgeLimit = time.Second

// DefaultMaxEntries bounds the entries of one Cache.
const DefaultMaxEntries = 100_000

// Cache maps keys of a tenant to values read from the store. Safe for
// concurrent use.
type Cache[K comparable, V any] struct {
	maxAge     time.Duration
	now        func() time.Time
	maxEntries int

	mu       sync.RWMutex
	tenants  map[string]*tenantEntries[K, V]
	entries  int
	epoch    uint64 // bumped by Reset
	versions map[string]uint64
}

type tenantEntries[K comparable, V any] struct {
	m map[K]entry[V]
}

type entry[V any] struct {
	v       V
	err     error     // a result that is an answer (e.g. "not found"), cached like a value
	fetched time.Time // when the read began (Stamp.at), not when it was stored
}

// New returns a Cache whose entries are served for at most maxAge (capped
// at MaxAgeLimit), by the clock now.
func New[K comparable, V any](maxAge time.Duration, now func() time.Time) *Cache[K, V] {
	if maxAge > MaxAgeLimit {
		maxAge = MaxAgeLimit
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[K, V]{maxAge: maxAge, now: now, maxEntries: DefaultMaxEntries,
		tenants: map[string]*tenantEntries[K, V]{}, versions: map[string]uint64{}}
}

// Stamp is the state of tenant's entries when a read began, and the time
// it began; Put keeps the read's result only if nothing invalidated them
// since, and dates it from that time.
type Stamp struct {
	epoch, version uint64
	// at is the clock before the read was sent: what Redis answered may
	// be that old, so the entry's MaxAge counts from here.
	at time.Time
}

// At is when the read whose answer the Stamp goes with began: for a
// result Get served from memory, the read that fetched it; after a miss,
// Get's reading of the clock, taken before the read is sent. What was
// served is what the store held at At or later.
func (s Stamp) At() time.Time { return s.at }

// Get returns the cached result for k of tenant, if one younger than
// MaxAge exists, and else a Stamp to Put the fresh read with. Call it
// before the read: the Stamp carries the time the read began. A hit's
// Stamp carries the time its entry's read began (Stamp.At), for callers
// that bound how long they act on what they were served.
func (c *Cache[K, V]) Get(tenant string, k K) (V, error, bool, Stamp) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := Stamp{epoch: c.epoch, version: c.versions[tenant], at: now}
	if t := c.tenants[tenant]; t != nil {
		if e, ok := t.m[k]; ok {
			// Both bounds: never older than maxAge, and never from the
			// future of a clock that was set back.
			if age := now.Sub(e.fetched); age >= 0 && age < c.maxAge {
				st.at = e.fetched
				return e.v, e.err, true, st
			}
		}
	}
	var zero V
	return zero, nil, false, st
}

// Put keeps the result of a read that began at st, unless the tenant's
// entries were invalidated since. The entry is as old as the read: it is
// served until MaxAge after st was taken, however late the reply came.
func (c *Cache[K, V]) Put(tenant string, k K, v V, err error, st Stamp) {
	if c.maxAge <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.epoch != c.epoch || st.version != c.versions[tenant] {
		return
	}
	if c.entries >= c.maxEntries {
		c.clearLocked()
	}
	t := c.tenants[tenant]
	if t == nil {
		t = &tenantEntries[K, V]{m: map[K]entry[V]{}}
		c.tenants[tenant] = t
	}
	if _, ok := t.m[k]; !ok {
		c.entries++
	}
	t.m[k] = entry[V]{v: v, err: err, fetched: st.at}
}

// Invalidate forgets everything cached for tenant, and every read of it in
// flight.
func (c *Cache[K, V]) Invalidate(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions[tenant]++
	if t := c.tenants[tenant]; t != nil {
		c.entries -= len(t.m)
		delete(c.tenants, tenant)
	}
}

// Reset forgets everything, and every read in flight.
func (c *Cache[K, V]) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
}

func (c *Cache[K, V]) clearLocked() {
	c.epoch++
	clear(c.tenants)
	// Versions only matter relative to reads stamped in this epoch.
	clear(c.versions)
	c.entries = 0
}

// Len is the number of entries held, for tests and metrics.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries
}
