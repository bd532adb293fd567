package grants_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestLockboxOnNotBlockedByUnreadableRequest: a tenant turning
// Customer Lockbox on must end every live grant that only the provider's
// manager approved (DESIGN.md, workflow step 4). One request of the
// tenant whose stored record does not decode (the sweep passes over such
// a request, see TestSweepGoesPastAnUnreadableRequest) made the whole
// settings change fail: the switch stayed off and the manager-only grant
// of another engineer stayed live, usable through the proxy.
func TestLockboxOnNotBlockedByUnreadableRequest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)

	e.setLockbox(t, globalAdmin, false)
	managerOnly := e.file(t, operator, "exchange")
	e.act(t, managerOnly.ID, grants.ActionApprove, manager)
	other := e.file(t, bob, "sharepoint")
	e.act(t, other.ID, grants.ActionApprove, manager)
	// bob's request record is damaged (it is still in the active index).
	if err := e.rdb.Set(ctx, keys.Request("contoso", other.ID), "{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}

	_, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, globalAdmin.ClientIP, "contoso", tenants.Settings{LockboxEnabled: true})
	if err != nil {
		t.Errorf("turning Customer Lockbox on: %v", err)
	}
	if on, _ := e.tenants.LockboxEnabled(ctx, "contoso"); !on {
		t.Errorf("Customer Lockbox is still off for contoso")
	}
	if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err == nil && g.Valid(e.clock.Now()) {
		t.Errorf("alice's manager-only grant is still live after the tenant turned Customer Lockbox on: %+v", g)
	}
}

// TestOffboardNotBlockedByUnreadableRequest: offboarding a tenant
// ends its access and open requests. One damaged request record of the
// tenant made the offboarding fail, and every other live grant of the
// tenant stayed live; it is now passed over.
func TestOffboardNotBlockedByUnreadableRequest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)

	live := e.file(t, operator, "exchange")
	e.act(t, live.ID, grants.ActionApprove, manager)
	e.act(t, live.ID, grants.ActionApprove, globalAdmin)
	damaged := e.file(t, bob, "sharepoint")
	if err := e.rdb.Set(ctx, keys.Request("contoso", damaged.ID), "{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
		t.Errorf("offboarding contoso: %v", err)
	}
	if err := e.tenants.Active(ctx, "contoso"); err == nil {
		t.Errorf("contoso is still active")
	}
	if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err == nil && g.Valid(e.clock.Now()) {
		t.Errorf("alice's grant is still live after the offboarding: %+v", g)
	}
}

// TestSweepGoesPastAWrongTypeRequestKey: a request key that holds
// another Redis type than a string (a damaged record, as one that does
// not decode is) was taken by the sweep for Redis being unavailable: the
// tenant's whole visit failed at it, every 5 s, and the tenant's other
// due requests, which come after it in deadline order, were never
// settled. Nor was it counted as an unreadable record. WRONGTYPE is now
// the record being unreadable, as one that does not decode is.
func TestSweepGoesPastAWrongTypeRequestKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, op := range []string{"alice", "bob", "carol"} {
		if _, err := e.store.Create(ctx, who(op, "", identity.RoleOperator), grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := e.rdb.ZRange(ctx, keys.TenantDeadlines("contoso"), 0, -1).Result()
	if err != nil || len(ids) != 3 {
		t.Fatalf("deadlines: %v %v", ids, err)
	}
	// The first in deadline order is damaged: a hash where a JSON string was.
	k := keys.Request("contoso", ids[0])
	if err := e.rdb.Del(ctx, k).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.HSet(ctx, k, "state", "approved").Err(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(12 * time.Hour)
	n, err := e.store.Sweep(ctx)
	if n != 2 {
		t.Errorf("Sweep settled %d requests, want the 2 intact ones (err %v)", n, err)
	}
	for _, id := range ids[1:] {
		b, err := e.rdb.Get(ctx, keys.Request("contoso", id)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var r grants.Request
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.State != grants.StateExpired {
			t.Errorf("request %s is %s after the sweep, want expired", id, r.State)
		}
	}
}

// TestGrantOfAnUnreadableRequestNotHonoured: an approved request whose
// stored record no longer decodes kept its grant (a key of its own, which
// the proxy read without the request) live until its expires_at, up to
// 4 h: every ending finds a grant through its request, so the tenant's
// revocation and the manager's failed on the record, and offboarding or
// the switch passed over it. A grant is now honoured only while its
// request's record says it is approved: this one is refused at once, and
// whatever is tried to end it.
func TestGrantOfAnUnreadableRequestNotHonoured(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		end  func(e *env, id string) error
	}{
		{"nothing done", func(*env, string) error { return nil }},
		{"tenant global admin revokes", func(e *env, id string) error {
			_, err := e.store.Act(ctx, id, grants.ActionRevoke, globalAdmin, "stop")
			return err
		}},
		{"provider manager revokes", func(e *env, id string) error {
			_, err := e.store.Act(ctx, id, grants.ActionRevoke, manager, "stop")
			return err
		}},
		{"tenant offboarded", func(e *env, id string) error {
			_, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.create(t, 4*time.Hour)
			e.act(t, r.ID, grants.ActionApprove, manager)
			e.act(t, r.ID, grants.ActionApprove, globalAdmin)
			if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil || !g.Valid(e.clock.Now()) {
				t.Fatalf("grant after approval: %+v %v", g, err)
			}
			// The request's record is damaged; the grant key is not.
			if err := e.rdb.Set(ctx, keys.Request("contoso", r.ID), "{not json", 0).Err(); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			endErr := tc.end(e, r.ID)
			g, err := e.store.Grant(ctx, "contoso", "alice", "exchange")
			if err == nil || !errors.Is(err, fault.ErrUnreadable) {
				t.Errorf("%s (%v): the grant of a request whose record does not decode: %+v, %v; want refused as unreadable",
					tc.name, endErr, g, err)
			}
		})
	}
}

// TestGrantHonouredOnlyWhileItsRequestSaysSo: a grant key is honoured only
// if the request it names is stored, approved, and the requester's on the
// service the key is for. Every change writes the two in one transaction,
// so they disagree only when something else wrote one of them (a restore
// of an older snapshot of one key, a hand edit): the request then wins,
// and the call is refused.
func TestGrantHonouredOnlyWhileItsRequestSaysSo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(r *grants.Request) bool // false: delete the record
	}{
		{"request revoked", func(r *grants.Request) bool { r.State = grants.StateRevoked; return true }},
		{"request pending", func(r *grants.Request) bool { r.State = grants.StatePendingCustomer; return true }},
		{"another requester's", func(r *grants.Request) bool { r.Requester = "bob"; return true }},
		{"another service's", func(r *grants.Request) bool { r.Service = "sharepoint"; return true }},
		{"request gone", func(*grants.Request) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.create(t, 4*time.Hour)
			e.act(t, r.ID, grants.ActionApprove, manager)
			e.act(t, r.ID, grants.ActionApprove, globalAdmin)
			b, err := e.rdb.Get(ctx, keys.Request("contoso", r.ID)).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			var stored grants.Request
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			if tc.change(&stored) {
				b, _ = json.Marshal(stored)
				err = e.rdb.Set(ctx, keys.Request("contoso", r.ID), b, 0).Err()
			} else {
				err = e.rdb.Del(ctx, keys.Request("contoso", r.ID)).Err()
			}
			if err != nil {
				t.Fatal(err)
			}
			if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
				t.Errorf("%s: %+v, %v; want no grant", tc.name, g, err)
			}
		})
	}
}
