package grants_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestRetryAfterTheRequestMovedOn: an action whose reply was lost is
// retried after the request moved on (the tenant decided after the
// manager, a manager revoked what the tenant approved, the window ended).
// The retry is a no-op that answers with the request as it is: no error,
// no history entry, no audit record. Time settling the request on the way
// is still recorded, once. Someone else's action is no retry of theirs.
func TestRetryAfterTheRequestMovedOn(t *testing.T) {
	e := newEnv(t)
	mike := who("mike", "", identity.RoleSupportManager)
	retry := func(id string, act grants.Action, by grants.Actor, want grants.State, events int) {
		t.Helper()
		retried(t, e, id, act, by, want, events)
	}
	conflict := func(id string, act grants.Action, by grants.Actor, want grants.State) {
		t.Helper()
		refusedAs(t, e, id, act, by, want)
	}

	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, globalAdmin)
	retry(r.ID, grants.ActionApprove, manager, grants.StateApproved, 3)
	conflict(r.ID, grants.ActionApprove, mike, grants.StateApproved)
	conflict(r.ID, grants.ActionDeny, manager, grants.StateApproved)
	e.act(t, r.ID, grants.ActionRevoke, manager)
	retry(r.ID, grants.ActionApprove, globalAdmin, grants.StateRevoked, 4)
	retry(r.ID, grants.ActionApprove, manager, grants.StateRevoked, 4)
	want := []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision, record.OpRevokeAccess}
	if got := ops(t, e, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit of %s = %v, want %v", r.ID, got, want)
	}

	// The window ends and no sweep has recorded it: the retry settles it,
	// and the completion is recorded once, by Lockbox.
	r = e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, globalAdmin)
	e.clock.Advance(time.Hour)
	retry(r.ID, grants.ActionApprove, globalAdmin, grants.StateCompleted, 4)
	retry(r.ID, grants.ActionApprove, manager, grants.StateCompleted, 4)
	want = []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision, record.OpCompleteAccess}
	if got := ops(t, e, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit of %s = %v, want %v", r.ID, got, want)
	}

	// A denial by the tenant after the manager approved: the manager's
	// approval retried is still theirs, an approval by the tenant is not.
	r = e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionDeny, globalAdmin)
	retry(r.ID, grants.ActionApprove, manager, grants.StateDenied, 3)
	retry(r.ID, grants.ActionDeny, globalAdmin, grants.StateDenied, 3)
	conflict(r.ID, grants.ActionApprove, globalAdmin, grants.StateDenied)
	// A request that expired at the manager: nothing the manager did.
	r = e.create(t, time.Hour)
	e.clock.Advance(grants.DecisionWindow)
	conflict(r.ID, grants.ActionApprove, manager, grants.StateExpired)
}

// TestRetriedEndIsANoOp: a cancellation or a revocation whose reply was
// lost is retried by whoever took it, and answers with the request as it
// is, without a second history entry or audit record, even once the
// window the grant had has passed. Another person taking the same ending
// after it is no retry: they are told the request's state (409), and
// nothing is written either.
func TestRetriedEndIsANoOp(t *testing.T) {
	e := newEnv(t)
	mike := who("mike", "", identity.RoleSupportManager)
	retry := func(id string, act grants.Action, by grants.Actor, want grants.State, events int) {
		t.Helper()
		retried(t, e, id, act, by, want, events)
	}
	conflict := func(id string, act grants.Action, by grants.Actor, want grants.State) {
		t.Helper()
		refusedAs(t, e, id, act, by, want)
	}

	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionCancel, operator)
	retry(r.ID, grants.ActionCancel, operator, grants.StateCanceled, 2)
	e.clock.Advance(grants.DecisionWindow)
	retry(r.ID, grants.ActionCancel, operator, grants.StateCanceled, 2)
	want := []string{record.OpNewRequest, record.OpCancelRequest}
	if got := ops(t, e, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit of %s = %v, want %v", r.ID, got, want)
	}

	r = e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, globalAdmin)
	if err := e.tenants.AddApprover(context.Background(), globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	e.act(t, r.ID, grants.ActionRevoke, approver)
	retry(r.ID, grants.ActionRevoke, approver, grants.StateRevoked, 4)
	conflict(r.ID, grants.ActionRevoke, globalAdmin, grants.StateRevoked)
	conflict(r.ID, grants.ActionRevoke, mike, grants.StateRevoked)
	e.clock.Advance(time.Hour)
	retry(r.ID, grants.ActionRevoke, approver, grants.StateRevoked, 4)
	want = []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision, record.OpRevokeAccess}
	if got := ops(t, e, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit of %s = %v, want %v", r.ID, got, want)
	}
	if _, err := e.store.Grant(context.Background(), "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("grant after the revocation and its retries: %v", err)
	}
}

// retried has by take act on request id again, as a client retrying an
// action whose reply was lost, and requires the answer to be the request
// as it is: state want, with events entries of history.
func retried(t *testing.T, e *env, id string, act grants.Action, by grants.Actor, want grants.State, events int) {
	t.Helper()
	got, err := e.store.Act(context.Background(), id, act, by, "again")
	if err != nil {
		t.Fatalf("%s retried by %s: %v", act, by.Principal.Subject, err)
	}
	if got.State != want || len(got.History) != events {
		t.Fatalf("%s retried by %s: %s with %d events, want %s with %d", act, by.Principal.Subject, got.State, len(got.History), want, events)
	}
}

// refusedAs has by take act on request id and requires the refusal of a
// request in state want (a *grants.TransitionError naming it).
func refusedAs(t *testing.T, e *env, id string, act grants.Action, by grants.Actor, want grants.State) {
	t.Helper()
	_, err := e.store.Act(context.Background(), id, act, by, "")
	if te, ok := errors.AsType[*grants.TransitionError](err); !ok || te.State != want {
		t.Fatalf("%s by %s: %v, want a TransitionError naming %s", act, by.Principal.Subject, err, want)
	}
}
