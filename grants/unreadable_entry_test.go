package grants_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestSweepEndsRequestsOfTenantWithUnreadableEntry: the sweep's records
// of a request ending (completed, expired) carry the tenant's
// organization id, which each replica reads once from the registry entry
// and keeps. With the entry damaged, a replica that had not read it
// failed the tenant's whole visit with record_unreadable, every 5 s, and
// settled none of its requests, while a replica that had read it settled
// them. Every replica now settles them, the records carrying the id the
// tenant's own audit log holds; the proxy's own check of a grant's expiry
// never depended on it.
func TestSweepEndsRequestsOfTenantWithUnreadableEntry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	approved := e.create(t, 2*time.Hour)
	e.act(t, approved.ID, grants.ActionApprove, manager)
	e.act(t, approved.ID, grants.ActionApprove, approver)
	pending, err := e.store.Create(ctx, who("bob", "", identity.RoleOperator), grants.CreateInput{
		Tenant: "contoso", Service: "sharepoint", ServiceRequest: "SR-8", Reason: "repair", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	orgID := e.orgID(t, "contoso")
	if err := e.rdb.Set(ctx, keys.Tenant("contoso"), `{"id":"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Another replica over the same Redis, which has not read contoso's
	// organization id; both requests are past their deadlines.
	other := newEnvOn(t, e.rdb, e.clock)
	e.clock.Advance(13 * time.Hour)
	n, err := other.store.Sweep(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want both requests settled", n, err)
	}
	for id, want := range map[string]grants.State{approved.ID: grants.StateCompleted, pending.ID: grants.StateExpired} {
		r, err := other.store.Get(ctx, manager.Principal, id)
		if err != nil || r.State != want {
			t.Errorf("request %s: %s, %v; want %s", id, r.State, err, want)
		}
	}
	msgs, err := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for _, m := range msgs {
		r, err := record.Unmarshal(m.Values["r"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if r.Operation == record.OpCompleteAccess || r.Operation == record.OpExpireRequest {
			ended++
			if r.OrganizationId != orgID {
				t.Errorf("%s carries the organization id %q, want contoso's %q", r.Operation, r.OrganizationId, orgID)
			}
		}
	}
	if ended != 2 {
		t.Errorf("%d records of a request ending, want 2", ended)
	}
}
