package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestLockboxOffKeepsWhatTheTenantHolds: turning Customer Lockbox off
// makes the manager's approval final for the requests the manager decides
// from then on, and changes nothing else. A request already awaiting the
// tenant still needs an approver of the tenant and expires 12 h after it
// reached the tenant; a grant the tenant approved runs to its end.
func TestLockboxOffKeepsWhatTheTenantHolds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)

	live := e.file(t, bob, "sharepoint")
	e.act(t, live.ID, grants.ActionApprove, manager)
	e.act(t, live.ID, grants.ActionApprove, globalAdmin)
	waiting := e.file(t, operator, "exchange")
	e.clock.Advance(time.Hour)
	reached := e.clock.Now()
	waiting = e.act(t, waiting.ID, grants.ActionApprove, manager)
	if waiting.State != grants.StatePendingCustomer || !waiting.DecideBy.Equal(reached.Add(12*time.Hour)) {
		t.Fatalf("after the manager: %s, decide by %v", waiting.State, waiting.DecideBy)
	}

	e.clock.Advance(time.Minute)
	e.setLockbox(t, globalAdmin, false)

	if g, err := e.store.Grant(ctx, "contoso", "bob", "sharepoint"); err != nil || !g.TenantApproved() || !g.Valid(e.clock.Now()) {
		t.Fatalf("the tenant-approved grant after lockbox off: %+v, %v", g, err)
	}
	r, err := e.store.Get(ctx, manager.Principal, waiting.ID)
	if err != nil || r.State != grants.StatePendingCustomer || !r.DecideBy.Equal(*waiting.DecideBy) {
		t.Fatalf("the request awaiting the tenant after lockbox off: %+v, %v", r, err)
	}
	// The manager decided already: approving again is a retry that
	// changes nothing, and grants nothing.
	if r := e.act(t, waiting.ID, grants.ActionApprove, manager); r.State != grants.StatePendingCustomer {
		t.Fatalf("the manager's approval again made it %s", r.State)
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("a grant without the tenant's approval: %v", err)
	}
	// It still expires 12 h after it reached the tenant.
	e.clock.Set(reached.Add(12*time.Hour - time.Millisecond))
	if r, err := e.store.Get(ctx, manager.Principal, waiting.ID); err != nil || r.State != grants.StatePendingCustomer {
		t.Fatalf("just before its deadline: %+v, %v", r, err)
	}
	e.clock.Set(reached.Add(12 * time.Hour))
	_, err = e.store.Act(ctx, waiting.ID, grants.ActionApprove, globalAdmin, "")
	var te *grants.TransitionError
	if !errors.As(err, &te) || te.State != grants.StateExpired {
		t.Fatalf("the tenant's approval at the deadline: %v", err)
	}
}
