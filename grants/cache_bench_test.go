package grants_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/tenants"
)

// BenchmarkGrantLookup is the proxy's grant lookup for one call: "hit" is
// served by the invalidated cache (every call but the first of a second),
// "miss" reads Redis (the first, or every call with LOCKBOX_CACHE_MAX_AGE=0).
func BenchmarkGrantLookup(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
		b.Fatal(err)
	}
	r, err := e.store.Create(ctx, operator, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(4 * time.Hour),
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.store.Act(ctx, r.ID, grants.ActionApprove, manager, ""); err != nil {
		b.Fatal(err)
	}
	cache := grants.NewGrantCache(e.store, time.Second, e.clock.Now)
	if _, err := cache.Grant(ctx, "contoso", "alice", "exchange"); err != nil {
		b.Fatal(err)
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err, _, ok := cache.PeekGrant("contoso", "alice", "exchange"); !ok || err != nil {
				b.Fatalf("not served from memory: %v, %v", ok, err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
