package grants_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestGrantWithUnknownFieldRefused: during a rolling upgrade a newer
// replica may write a grant with a field this version does not know, and
// such a field may narrow what the grant allows (the addresses it may be
// used from, say). Read as if the field were not there, the grant would
// allow more than was approved, so this version refuses to read it: the
// lookup fails as the store failing does, and the proxy denies the call.
// The same grant without the field reads as before.
func TestGrantWithUnknownFieldRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 2*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, approver)
	k := keys.Grant("contoso", "alice", "exchange")
	stored, err := e.rdb.Get(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil {
		t.Fatalf("the grant as this version wrote it: %v", err)
	}
	newer := strings.TrimSuffix(stored, "}") + `,"source_ips":["198.51.100.7/32"]}`
	if err := e.rdb.SetArgs(ctx, k, newer, redis.SetArgs{KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
	g, err := e.store.Grant(ctx, "contoso", "alice", "exchange")
	if err == nil {
		t.Fatalf("a grant with a field this version does not know was read as %+v", g)
	}
	if !errors.Is(err, fault.ErrUnavailable) || errors.Is(err, grants.ErrNotFound) {
		t.Errorf("err = %v, want the store's failure (the call is refused, not told there is no grant)", err)
	}
	// Through the proxy's cache too, and not cached: once the newer
	// replica's grant is gone, the lookup answers afresh.
	c := grants.NewGrantCache(e.store, time.Second, e.clock.Now)
	if _, err := c.Grant(ctx, "contoso", "alice", "exchange"); err == nil {
		t.Fatal("the cache read the grant with the unknown field")
	}
	if err := e.rdb.SetArgs(ctx, k, stored, redis.SetArgs{KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
	if g, err := c.Grant(ctx, "contoso", "alice", "exchange"); err != nil || g.RequestID != r.ID {
		t.Errorf("the grant as this version wrote it, through the cache: %+v, %v", g, err)
	}
}
