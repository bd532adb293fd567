package grants_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// guardRace is a replica whose next read of request id, inside the
// settings change's or the offboarding's transaction, is followed at once
// by meanwhile on another replica: a grant added or revoked between the
// transaction's WATCH and its EXEC.
func guardRace(t *testing.T, e *env, id string, meanwhile func()) (*env, func()) {
	t.Helper()
	rdbB := redistest.Clone(t, e.rdb)
	hook := &afterReply{when: redistest.Command("get", keys.Request("contoso", id)), then: meanwhile}
	rdbB.AddHook(hook)
	replica := newEnvOn(t, rdbB, e.clock)
	return replica, func() {
		t.Helper()
		hook.armed.Store(true)
		t.Cleanup(func() {
			if hook.armed.Load() {
				t.Error("the concurrent change never ran")
			}
		})
	}
}

// ops is what the audit log of contoso recorded about request id, oldest
// first.
func ops(t *testing.T, e *env, id string) []string {
	t.Helper()
	recs, err := e.log.List(context.Background(), "contoso", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range slices.Backward(recs) {
		if r.ObjectId == id {
			out = append(out, r.Operation)
		}
	}
	return out
}

// wantEnded fails t unless request id is in state, its history ends with
// the given actions and its last event is by actor with comment.
func wantEnded(t *testing.T, e *env, id string, state grants.State, actions []grants.Action, actor, comment string) {
	t.Helper()
	r, err := e.store.Get(context.Background(), manager.Principal, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []grants.Action
	for _, ev := range r.History {
		got = append(got, ev.Action)
	}
	last := r.History[len(r.History)-1]
	if r.State != state || !slices.Equal(got, actions) || last.Actor != actor || last.Comment != comment {
		t.Fatalf("request %s: %s after %v, last by %s (%q); want %s after %v, last by %s (%q)",
			id, r.State, got, last.Actor, last.Comment, state, actions, actor, comment)
	}
}

// TestLockboxOnGrantChangedMeanwhile: turning the switch on reads the live
// grants, and one is approved or revoked on another replica before the
// settings change's EXEC. The change is judged again on what is stored
// by then: the grant approved meanwhile is revoked too, and the one
// revoked meanwhile stays revoked once, by whoever revoked it.
func TestLockboxOnGrantChangedMeanwhile(t *testing.T) {
	create, approve, revoke := grants.ActionCreate, grants.ActionApprove, grants.ActionRevoke
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)

	t.Run("approved", func(t *testing.T) {
		e := newEnv(t)
		e.setLockbox(t, globalAdmin, false)
		live := e.file(t, operator, "exchange")
		e.act(t, live.ID, approve, manager)
		late := e.file(t, bob, "sharepoint")
		replica, arm := guardRace(t, e, live.ID, func() {
			if _, err := e.store.Act(ctx, late.ID, approve, manager, ""); err != nil {
				t.Errorf("the concurrent approval: %v", err)
			}
		})
		arm()
		replica.setLockbox(t, globalAdmin, true)

		wantEnded(t, e, live.ID, grants.StateRevoked, []grants.Action{create, approve, revoke}, globalAdmin.Principal.Subject, grants.LockboxOnComment)
		wantEnded(t, e, late.ID, grants.StateRevoked, []grants.Action{create, approve, revoke}, globalAdmin.Principal.Subject, grants.LockboxOnComment)
		for _, op := range []string{"alice", "bob"} {
			svc := map[string]string{"alice": "exchange", "bob": "sharepoint"}[op]
			if _, err := e.store.Grant(ctx, "contoso", op, svc); !errors.Is(err, grants.ErrNotFound) {
				t.Fatalf("%s's manager-only grant is live with the switch on: %v", op, err)
			}
		}
		if got := ops(t, e, late.ID); !slices.Equal(got, []string{record.OpNewRequest, record.OpManagerDecision, record.OpRevokeAccess}) {
			t.Fatalf("records of the grant approved meanwhile: %q", got)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		e := newEnv(t)
		e.setLockbox(t, globalAdmin, false)
		live := e.file(t, operator, "exchange")
		e.act(t, live.ID, approve, manager)
		replica, arm := guardRace(t, e, live.ID, func() {
			if _, err := e.store.Act(ctx, live.ID, revoke, manager, "done"); err != nil {
				t.Errorf("the concurrent revocation: %v", err)
			}
		})
		arm()
		e.clock.Advance(time.Minute)
		replica.setLockbox(t, globalAdmin, true)

		wantEnded(t, e, live.ID, grants.StateRevoked, []grants.Action{create, approve, revoke}, manager.Principal.Subject, "done")
		if got := ops(t, e, live.ID); !slices.Equal(got, []string{record.OpNewRequest, record.OpManagerDecision, record.OpRevokeAccess}) {
			t.Fatalf("records of the grant revoked meanwhile: %q", got)
		}
		st, err := e.tenants.Settings(ctx, globalAdmin.Principal, "contoso")
		if err != nil || !st.LockboxEnabled {
			t.Fatalf("settings after the retried change: %+v, %v", st, err)
		}
	})
}

// TestOffboardGrantChangedMeanwhile: offboarding reads the tenant's open
// requests, and one is approved or revoked on another replica before the
// offboarding's EXEC. The offboarding is judged again on what is stored
// by then: the request approved meanwhile is revoked, not canceled as it
// read, and the grant revoked meanwhile stays revoked once.
func TestOffboardGrantChangedMeanwhile(t *testing.T) {
	create, approve, revoke := grants.ActionCreate, grants.ActionApprove, grants.ActionRevoke
	ctx := context.Background()
	admin := tenanttest.Admin

	t.Run("approved", func(t *testing.T) {
		e := newEnv(t)
		atTenant := e.file(t, operator, "exchange")
		e.act(t, atTenant.ID, approve, manager)
		replica, arm := guardRace(t, e, atTenant.ID, func() {
			if _, err := e.store.Act(ctx, atTenant.ID, approve, globalAdmin, ""); err != nil {
				t.Errorf("the concurrent approval: %v", err)
			}
		})
		arm()
		if _, err := replica.tenants.Offboard(ctx, admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
			t.Fatal(err)
		}

		wantEnded(t, e, atTenant.ID, grants.StateRevoked, []grants.Action{create, approve, approve, revoke}, admin.Subject, grants.OffboardComment)
		if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
			t.Fatalf("the grant approved meanwhile survived offboarding: %v", err)
		}
		if got := ops(t, e, atTenant.ID); !slices.Equal(got, []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision, record.OpRevokeAccess}) {
			t.Fatalf("records of the request approved meanwhile: %q", got)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		e := newEnv(t)
		live := e.file(t, operator, "exchange")
		e.act(t, live.ID, approve, manager)
		e.act(t, live.ID, approve, globalAdmin)
		replica, arm := guardRace(t, e, live.ID, func() {
			if _, err := e.store.Act(ctx, live.ID, revoke, globalAdmin, "done"); err != nil {
				t.Errorf("the concurrent revocation: %v", err)
			}
		})
		arm()
		off, err := replica.tenants.Offboard(ctx, admin, "192.0.2.9", "contoso", "contract ended")
		if err != nil || off.Offboarded == nil {
			t.Fatalf("offboarding: %+v, %v", off, err)
		}

		wantEnded(t, e, live.ID, grants.StateRevoked, []grants.Action{create, approve, approve, revoke}, globalAdmin.Principal.Subject, "done")
		if got := ops(t, e, live.ID); !slices.Equal(got, []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision, record.OpRevokeAccess}) {
			t.Fatalf("records of the grant revoked meanwhile: %q", got)
		}
	})
}
