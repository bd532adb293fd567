package tenants

import (
	"context"
	"time"

	"github.com/lockbox-oss/lockbox/internal/readcache"
)

// SettingsCache serves Store.Lookup from memory, for the proxy: settings
// whose read began less than maxAge ago (at most a second) are served
// without a Redis round trip, and a tenant's are dropped when its change event arrives
// (internal/events), so turning the switch on is seen at once.
type SettingsCache struct {
	store *Store
	c     *readcache.Cache[string, Settings]
}

// NewSettingsCache returns a SettingsCache over s; maxAge 0 caches nothing.
func NewSettingsCache(s *Store, maxAge time.Duration, now func() time.Time) *SettingsCache {
	return &SettingsCache{store: s, c: readcache.New[string, Settings](maxAge, now)}
}

// Lookup is Store.Lookup, served from memory when it can be.
func (sc *SettingsCache) Lookup(ctx context.Context, tenant string) (Settings, error) {
	v, _, ok, stamp := sc.c.Get(tenant, tenant)
	if ok {
		return v, nil
	}
	v, err := sc.store.Lookup(ctx, tenant)
	if err == nil {
		sc.c.Put(tenant, tenant, v, nil, stamp)
	}
	return v, err
}

// PeekSettings returns the settings, and true, when memory holds them; it
// never reads Redis.
func (sc *SettingsCache) PeekSettings(tenant string) (Settings, bool) {
	v, _, ok, _ := sc.c.Get(tenant, tenant)
	return v, ok
}

// Invalidate forgets tenant's settings (events.Invalidator).
func (sc *SettingsCache) Invalidate(tenant string) { sc.c.Invalidate(tenant) }

// Reset forgets all settings (events.Invalidator).
func (sc *SettingsCache) Reset() { sc.c.Reset() }
