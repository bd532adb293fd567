package grants_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
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

// TestRequestWithUnknownFieldNotRewritten: during a rolling upgrade a
// newer replica may write a request with a field this version does not
// know (one that restricts the grant its approval writes, say). This
// version reads and shows it, but does not write it back without the
// field: an approval is refused (503, to be retried on an upgraded
// replica) and writes no grant, and the sweep leaves it for a newer
// replica while it settles the tenant's other requests. A revocation goes
// ahead, since refusing it would keep access open.
func TestRequestWithUnknownFieldNotRewritten(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 2*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	other, err := e.store.Create(ctx, who("bob", "", identity.RoleOperator), grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-8", Reason: "repair", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	k := keys.Request("contoso", r.ID)
	stored, err := e.rdb.Get(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.TrimSuffix(stored, "}") + `,"source_ips":["198.51.100.7/32"]}`
	if err := e.rdb.SetArgs(ctx, k, newer, redis.SetArgs{KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
	unchanged := func(when string) {
		t.Helper()
		if got, err := e.rdb.Get(ctx, k).Result(); err != nil || got != newer {
			t.Fatalf("%s the newer request is stored as %s (%v), want it untouched", when, got, err)
		}
	}

	// Read and shown as this version knows it.
	if got, err := e.store.Get(ctx, globalAdmin.Principal, r.ID); err != nil || got.State != grants.StatePendingCustomer {
		t.Fatalf("get: %+v, %v", got, err)
	}
	_, err = e.store.Act(ctx, r.ID, grants.ActionApprove, approver, "ok")
	if !errors.Is(err, grants.ErrUnavailable) {
		t.Fatalf("approving the newer request: %v, want it refused as unavailable", err)
	}
	if n, err := e.rdb.Exists(ctx, keys.Grant("contoso", "alice", "exchange")).Result(); err != nil || n != 0 {
		t.Fatalf("a grant was written for the newer request (%d, %v)", n, err)
	}
	unchanged("after the approval")

	// Both decision windows end: the sweep settles the other request and
	// leaves the newer one, and Get shows it as it stands by now.
	e.clock.Advance(13 * time.Hour)
	if _, err := e.store.Sweep(ctx); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	unchanged("after the sweep")
	if got, err := e.store.Get(ctx, globalAdmin.Principal, other.ID); err != nil || got.State != grants.StateExpired {
		t.Fatalf("the other request after the sweep: %+v, %v", got.State, err)
	}
	if got, err := e.store.Get(ctx, globalAdmin.Principal, r.ID); err != nil || got.State != grants.StateExpired {
		t.Fatalf("get of the newer request past its window: %+v, %v", got.State, err)
	}
	unchanged("after reading it")
}

// TestRevokingNewerRequestGoesAhead: a tenant ending a grant whose request
// a newer replica wrote is not refused, unlike the changes that could
// widen access: refusing it would keep access open.
func TestRevokingNewerRequestGoesAhead(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 2*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, approver)
	k := keys.Request("contoso", r.ID)
	stored, err := e.rdb.Get(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.TrimSuffix(stored, "}") + `,"source_ips":["198.51.100.7/32"]}`
	if err := e.rdb.SetArgs(ctx, k, newer, redis.SetArgs{KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
	if got := e.act(t, r.ID, grants.ActionRevoke, globalAdmin); got.State != grants.StateRevoked {
		t.Fatalf("state after the revocation = %s", got.State)
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("grant after the revocation: %v, want none", err)
	}
}

// TestSwitchOnLeavesNewerRequestEndedByTime: turning Customer Lockbox on
// records the end of every request of the tenant whose window time has
// closed meanwhile, as it revokes the grants only the provider's manager
// approved. Over a request a newer replica wrote, a completion would drop
// the fields this version does not know, so the switch is refused (503,
// to be retried, by then likely on an upgraded replica) as offboarding is
// for the same request, and nothing of it is written: not the switch, not
// the revocations. A revocation over such a request still goes ahead.
func TestSwitchOnLeavesNewerRequestEndedByTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)
	e.setLockbox(t, globalAdmin, false)
	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.clock.Advance(30 * time.Minute)
	live := e.file(t, bob, "sharepoint") // 2 h, manager only
	e.act(t, live.ID, grants.ActionApprove, manager)

	withField := func(id string) (stored, newer string) {
		t.Helper()
		k := keys.Request("contoso", id)
		stored, err := e.rdb.Get(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		newer = strings.TrimSuffix(stored, "}") + `,"source_ips":["198.51.100.7/32"]}`
		if err := e.rdb.Set(ctx, k, newer, 0).Err(); err != nil {
			t.Fatal(err)
		}
		return stored, newer
	}
	stored, newer := withField(r.ID)
	withField(live.ID)
	e.clock.Advance(45 * time.Minute) // r's window is over, not yet swept
	unchanged := func(when string) {
		t.Helper()
		if got, err := e.rdb.Get(ctx, keys.Request("contoso", r.ID)).Result(); err != nil || got != newer {
			t.Fatalf("%s the newer request is stored as %s (%v), want it untouched", when, got, err)
		}
		if g, err := e.store.Grant(ctx, "contoso", "bob", "sharepoint"); err != nil || g.RequestID != live.ID {
			t.Fatalf("%s the live manager-only grant: %+v, %v, want it as it was", when, g, err)
		}
	}

	_, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, globalAdmin.ClientIP, "contoso", tenants.Settings{LockboxEnabled: true})
	if !errors.Is(err, fault.ErrUnavailable) {
		t.Fatalf("turning the switch on over the newer request ended by time: %v, want it refused as unavailable", err)
	}
	unchanged("after the switch")
	if on, err := e.tenants.LockboxEnabled(ctx, "contoso"); err != nil || on {
		t.Fatalf("switch after the refusal: on=%t, %v, want still off", on, err)
	}
	_, err = e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended")
	if !errors.Is(err, fault.ErrUnavailable) {
		t.Fatalf("offboarding over the same request: %v, want it refused as unavailable", err)
	}
	unchanged("after the offboarding")

	// Once the request is one this version knows (an upgraded replica
	// would have recorded its end), the switch goes on, records its
	// completion and revokes the other grant, newer fields or not.
	if err := e.rdb.Set(ctx, keys.Request("contoso", r.ID), stored, 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.setLockbox(t, globalAdmin, true)
	for id, want := range map[string]grants.State{r.ID: grants.StateCompleted, live.ID: grants.StateRevoked} {
		if got, err := e.store.Get(ctx, manager.Principal, id); err != nil || got.State != want {
			t.Errorf("request %s after the switch: %s, %v, want %s", id, got.State, err, want)
		}
	}
	if _, err := e.store.Grant(ctx, "contoso", "bob", "sharepoint"); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("the manager-only grant after the switch: %v, want none", err)
	}
}

// TestFilingAfterNewerRequestEndedByTime: filing the engineer's next
// request records the end of their previous one for the same tenant and
// service when time has ended it and no sweep has yet, since the new
// request takes over its open marker and grant key. When a newer replica
// wrote that previous request, recording its end would drop the fields
// this version does not know: filing is refused (503, to be retried, by
// then likely on an upgraded replica), and nothing is written, neither
// the end nor the new request. Once the request is one this version
// knows, filing goes ahead and records the end.
func TestFilingAfterNewerRequestEndedByTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.setLockbox(t, globalAdmin, false)
	prev := e.create(t, time.Hour)
	e.act(t, prev.ID, grants.ActionApprove, manager)
	k := keys.Request("contoso", prev.ID)
	stored, err := e.rdb.Get(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.TrimSuffix(stored, "}") + `,"source_ips":["198.51.100.7/32"]}`
	if err := e.rdb.Set(ctx, k, newer, 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour) // prev's window is over, not yet swept

	in := grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-8", Reason: "repair", Duration: grants.Duration(time.Hour)}
	if _, err := e.store.Create(ctx, operator, in); !errors.Is(err, grants.ErrUnavailable) {
		t.Fatalf("filing over the newer request ended by time: %v, want it refused as unavailable", err)
	}
	if got, err := e.rdb.Get(ctx, k).Result(); err != nil || got != newer {
		t.Fatalf("the newer request is stored as %s (%v), want it untouched", got, err)
	}
	if id, err := e.rdb.Get(ctx, keys.Open("contoso", "alice", "exchange")).Result(); err != nil || id != prev.ID {
		t.Fatalf("open marker = %q (%v), want the previous request's", id, err)
	}
	if n, err := e.rdb.ZCard(ctx, keys.TenantRequests("contoso")).Result(); err != nil || n != 1 {
		t.Fatalf("the tenant's index holds %d requests (%v), want the previous one alone", n, err)
	}
	if got := ops(t, e, prev.ID); len(got) != 2 {
		t.Fatalf("audit of the previous request = %v, want its filing and approval alone", got)
	}

	if err := e.rdb.Set(ctx, k, stored, 0).Err(); err != nil {
		t.Fatal(err)
	}
	next, err := e.store.Create(ctx, operator, in)
	if err != nil {
		t.Fatalf("filing once the previous request is one this version knows: %v", err)
	}
	if got, err := e.store.Get(ctx, manager.Principal, prev.ID); err != nil || got.State != grants.StateCompleted {
		t.Fatalf("the previous request after the filing: %s, %v, want completed", got.State, err)
	}
	if id, err := e.rdb.Get(ctx, keys.Open("contoso", "alice", "exchange")).Result(); err != nil || id != next.ID {
		t.Fatalf("open marker = %q (%v), want the new request's", id, err)
	}
}
