package grants_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestDecisionLosesToRightsRemovedMidway takes an approver's right to
// decide away after the decision read it and before it committed: the
// approver unassigned, or the domain that makes them a user of the tenant
// removed from its registry entry. Either change commits first, so the
// decision must not: it is read again, refused, and no grant exists.
func TestDecisionLosesToRightsRemovedMidway(t *testing.T) {
	tests := []struct {
		name   string
		by     grants.Actor
		remove func(ctx context.Context, e *env) error
	}{
		{"approver unassigned", approver, func(ctx context.Context, e *env) error {
			return e.tenants.RemoveApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject)
		}},
		{"approver's domain removed", approver, func(ctx context.Context, e *env) error {
			return dropDomains(ctx, e)
		}},
		{"global admin's domain removed", globalAdmin, func(ctx context.Context, e *env) error {
			return dropDomains(ctx, e)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
				t.Fatal(err)
			}
			r := e.create(t, time.Hour)
			e.act(t, r.ID, grants.ActionApprove, manager)
			dir := &midwayDirectory{TenantDirectory: e.tenants, change: func() error { return tc.remove(ctx, e) }}
			s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: dir, Catalog: cat, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Act(ctx, r.ID, grants.ActionApprove, tc.by, "")
			if dir.changeErr != nil {
				t.Fatalf("removing the right: %v", dir.changeErr)
			}
			if !dir.changed {
				t.Fatal("the decision read no approver assignment after the switch: the right was never removed midway")
			}
			if err == nil {
				t.Fatalf("approval by %s committed after their right was removed: %s", tc.by.Principal.Subject, got.State)
			}
			if !errors.Is(err, grants.ErrNotFound) && !errors.Is(err, grants.ErrForbidden) {
				t.Fatalf("approval: %v, want not found or forbidden", err)
			}
			if !reflect.ValueOf(got).IsZero() {
				t.Errorf("the refused approval returned the request: %+v", got)
			}
			stored, err := e.store.Get(ctx, manager.Principal, r.ID)
			if err != nil || stored.State != grants.StatePendingCustomer {
				t.Fatalf("request after the refused approval: %s, %v; want %s", stored.State, err, grants.StatePendingCustomer)
			}
			if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
				t.Fatalf("grant after the refused approval: %+v, %v", g, err)
			}
		})
	}
}

// dropDomains replaces contoso's only domain, as the provider's Lockbox
// administrator may: its users (approvers and global admins alike) are no
// longer users of the tenant.
func dropDomains(ctx context.Context, e *env) error {
	domains := []string{"contoso-new.example"}
	_, err := e.tenants.UpdateTenant(ctx, tenanttest.Admin, "192.0.2.250", "contoso", tenants.TenantUpdate{Domains: &domains})
	return err
}

// midwayDirectory runs change once, right after the last question a
// decision asks inside its transaction (whether the actor is an assigned
// approver, asked after the tenant's switch), as a concurrent change
// committing between the decision's reads and its commit would.
type midwayDirectory struct {
	grants.TenantDirectory
	change func() error

	mu        sync.Mutex
	armed     bool
	changed   bool
	changeErr error
}

func (d *midwayDirectory) LockboxEnabled(ctx context.Context, tenant string) (bool, error) {
	d.mu.Lock()
	d.armed = true
	d.mu.Unlock()
	return d.TenantDirectory.LockboxEnabled(ctx, tenant)
}

func (d *midwayDirectory) IsApprover(ctx context.Context, tenant, user string) (bool, error) {
	ok, err := d.TenantDirectory.IsApprover(ctx, tenant, user)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed && !d.changed {
		d.changed = true
		d.changeErr = d.change()
	}
	return ok, err
}
