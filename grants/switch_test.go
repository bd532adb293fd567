package grants_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/tenants"
)

func (e *env) setLockbox(t *testing.T, by grants.Actor, on bool) {
	t.Helper()
	if _, err := e.tenants.PutSettings(context.Background(), by.Principal, by.ClientIP, "contoso",
		tenants.Settings{LockboxEnabled: on}); err != nil {
		t.Fatalf("lockbox on=%t by %s: %v", on, by.Principal.Subject, err)
	}
}

func (e *env) file(t *testing.T, by grants.Actor, service string) grants.Request {
	t.Helper()
	r, err := e.store.Create(context.Background(), by, grants.CreateInput{
		Tenant: "contoso", Service: service, ServiceRequest: "SR-9", Reason: "r", Duration: grants.Duration(2 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRequestForUnknownTenant: requests exist only for onboarded tenants,
// and the refusal names the tenant.
func TestRequestForUnknownTenant(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.Create(context.Background(), operator, grants.CreateInput{
		Tenant: "nosuchtenant", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour),
	})
	if !errors.Is(err, grants.ErrNotFound) || !strings.Contains(err.Error(), "nosuchtenant") {
		t.Fatalf("err = %v, want not found naming the tenant", err)
	}
	if n, _ := e.rdb.Exists(context.Background(), keys.TenantRequests("nosuchtenant")).Result(); n != 0 {
		t.Fatal("a refused request left an index behind")
	}
}

// TestLockboxOnEndsManagerOnlyGrants: turning Customer Lockbox on revokes,
// in the settings change's own transaction, every live grant that only the
// provider's manager approved; grants a tenant approver approved, and
// requests still pending, are left alone, and those pending at the manager
// go to the tenant as usual.
func TestLockboxOnEndsManagerOnlyGrants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)

	// While on, bob's sharepoint request is approved by the tenant.
	tenantOK := e.file(t, bob, "sharepoint")
	e.act(t, tenantOK.ID, grants.ActionApprove, manager)
	e.act(t, tenantOK.ID, grants.ActionApprove, globalAdmin)

	// Off: the manager's approval is final for alice's exchange request.
	e.setLockbox(t, globalAdmin, false)
	managerOnly := e.file(t, operator, "exchange")
	if r := e.act(t, managerOnly.ID, grants.ActionApprove, manager); r.State != grants.StateApproved || grants.TenantApproved(r) {
		t.Fatalf("approved while off: %+v", r)
	}
	g, err := e.store.Grant(ctx, "contoso", "alice", "exchange")
	if err != nil || g.TenantApproved() {
		t.Fatalf("manager-only grant = %+v, %v", g, err)
	}
	pending := e.file(t, operator, "onedrive") // awaits the manager

	e.clock.Advance(time.Minute)
	e.setLockbox(t, globalAdmin, true)

	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("manager-only grant survived lockbox on: %v", err)
	}
	r, err := e.store.Get(ctx, manager.Principal, managerOnly.ID)
	if err != nil || r.State != grants.StateRevoked {
		t.Fatalf("manager-only request = %+v, %v", r, err)
	}
	last := r.History[len(r.History)-1]
	if last.Actor != "gina@contoso.example" || last.Action != grants.ActionRevoke || last.Comment != grants.LockboxOnComment || last.ActorKind != grants.KindTenant {
		t.Fatalf("revocation event = %+v", last)
	}
	if g, err := e.store.Grant(ctx, "contoso", "bob", "sharepoint"); err != nil || !g.TenantApproved() {
		t.Fatalf("tenant-approved grant = %+v, %v", g, err)
	}
	if r := e.act(t, pending.ID, grants.ActionApprove, manager); r.State != grants.StatePendingCustomer {
		t.Fatalf("pending request after lockbox on went to %s, want pending_customer", r.State)
	}

	// One record for the settings change, with old and new values, right
	// before the revocation it caused, both by the person who flipped it.
	recs, err := e.log.List(ctx, "contoso", 3)
	if err != nil {
		t.Fatal(err)
	}
	rev, set := recs[1], recs[2] // newest first: manager decision, revoke, settings
	if set.Operation != record.OpSetSettings || set.UserId != "gina@contoso.example" ||
		fmt.Sprint(set.ModifiedProperties) != fmt.Sprint([]record.ModifiedProperty{{Name: "LockboxEnabled", OldValue: "false", NewValue: "true"}}) {
		t.Fatalf("settings record = %+v", set)
	}
	if rev.Operation != record.OpRevokeAccess || rev.UserId != "gina@contoso.example" || rev.ObjectId != managerOnly.ID || rev.Comment != grants.LockboxOnComment {
		t.Fatalf("revocation record = %+v", rev)
	}
	// Turning it on again changes nothing and records nothing.
	e.setLockbox(t, globalAdmin, true)
	if again, _ := e.log.List(ctx, "contoso", 1); again[0].Id != recs[0].Id {
		t.Fatalf("a no-op settings change was recorded: %+v", again[0])
	}
}

// TestLockboxOnRacesManagerApproval races a manager approving while the
// tenant's lockbox is off against the tenant turning it on, across two
// replicas. Whichever commits first, no grant that only the manager
// approved is live once the switch is on.
func TestLockboxOnRacesManagerApproval(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	a, b := newEnvOn(t, redistest.Clone(t, rdb), c), newEnvOn(t, redistest.Clone(t, rdb), c)
	ctx := context.Background()
	outcomes := map[grants.State]int{}
	for round := range 30 {
		a.setLockbox(t, globalAdmin, false)
		r := a.file(t, operator, "exchange")
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := a.store.Act(ctx, r.ID, grants.ActionApprove, manager, ""); err != nil && !errors.Is(err, grants.ErrConflict) {
				t.Errorf("round %d: approve: %v", round, err)
			}
		})
		wg.Go(func() { b.setLockbox(t, globalAdmin, true) })
		wg.Wait()
		got, err := a.store.Get(ctx, manager.Principal, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		outcomes[got.State]++
		if _, err := a.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
			t.Fatalf("round %d: request %s, a grant is live with lockbox on: %v", round, got.State, err)
		}
		if got.State.Pending() {
			a.act(t, r.ID, grants.ActionCancel, operator)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestLegacyGrantApprover: a grant written before grants said who approved
// them learns it from its request; one whose request is gone is not
// honoured at all (TestGrantHonouredOnlyWhileItsRequestSaysSo), where it
// counted as not tenant-approved.
func TestLegacyGrantApprover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, approverOf(t, e))
	key := keys.Grant("contoso", "alice", "exchange")
	strip := func() {
		t.Helper()
		b, err := e.rdb.Get(ctx, key).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "approved_by")
		b, _ = json.Marshal(m)
		e.rdb.Set(ctx, key, b, time.Hour)
	}
	strip()
	if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil || !g.TenantApproved() {
		t.Fatalf("legacy tenant-approved grant = %+v, %v", g, err)
	}
	e.rdb.Del(ctx, keys.Request("contoso", r.ID))
	if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("legacy grant without its request = %+v, %v; want none", g, err)
	}
}

// approverOf assigns adam as contoso's approver and returns him.
func approverOf(t *testing.T, e *env) grants.Actor {
	t.Helper()
	if err := e.tenants.AddApprover(context.Background(), globalAdmin.Principal, "", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	return approver
}
