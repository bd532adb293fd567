package grants_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
)

// TestActReturnsNoRequestWithAnError: on every way Act refuses, it returns
// the zero Request beside its error. It used to return the request as
// stored, unfiltered (the operator's identity and every decision's actor
// included), whoever asked: the API and the admin center dropped it, but a
// caller that showed what came back with a refusal would have shown a
// tenant's user what only the provider's staff may see.
func TestActReturnsNoRequestWithAnError(t *testing.T) {
	tests := []struct {
		name string
		// act takes a refused action on a new request of e's.
		act func(t *testing.T, e *env, id string) (grants.Request, error)
	}{
		{"not a user's action", func(t *testing.T, e *env, id string) (grants.Request, error) {
			return e.store.Act(context.Background(), id, grants.ActionCreate, manager, "")
		}},
		{"unknown request", func(t *testing.T, e *env, _ string) (grants.Request, error) {
			return e.store.Act(context.Background(), "no-such-request", grants.ActionApprove, manager, "")
		}},
		{"another tenant's admin", func(t *testing.T, e *env, id string) (grants.Request, error) {
			return e.store.Act(context.Background(), id, grants.ActionApprove, otherAdmin, "")
		}},
		{"not the actor's turn", func(t *testing.T, e *env, id string) (grants.Request, error) {
			return e.store.Act(context.Background(), id, grants.ActionApprove, globalAdmin, "")
		}},
		{"comment too long", func(t *testing.T, e *env, id string) (grants.Request, error) {
			e.act(t, id, grants.ActionApprove, manager)
			return e.store.Act(context.Background(), id, grants.ActionApprove, globalAdmin, strings.Repeat("x", 100_000))
		}},
		{"expired on the way", func(t *testing.T, e *env, id string) (grants.Request, error) {
			e.act(t, id, grants.ActionApprove, manager)
			e.clock.Advance(grants.DecisionWindow)
			return e.store.Act(context.Background(), id, grants.ActionApprove, globalAdmin, "")
		}},
		{"tenant directory fails", func(t *testing.T, e *env, id string) (grants.Request, error) {
			e.act(t, id, grants.ActionApprove, manager)
			s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: failingDirectory{e.tenants}, Catalog: cat, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			return s.Act(context.Background(), id, grants.ActionApprove, globalAdmin, "")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.create(t, time.Hour)
			got, err := tc.act(t, e, r.ID)
			if err == nil {
				t.Fatalf("the action was taken: %s", got.State)
			}
			if !reflect.ValueOf(got).IsZero() {
				t.Errorf("Act returned a request with its error (%v): %+v", err, got)
			}
		})
	}
}

// failingDirectory is a tenant directory whose lockbox switch can't be
// read.
type failingDirectory struct{ grants.TenantDirectory }

func (failingDirectory) LockboxEnabled(context.Context, string) (bool, error) {
	return false, errors.New("directory unavailable")
}

// TestLockboxActionsAreNoUsersActions: filing is Create's, and expiring
// and completing are Lockbox's own, taken when time says so. Act and
// CanAct refuse them from anyone (400 invalid_action) and write nothing:
// a request ends at its deadline, not when someone asks for its end.
func TestLockboxActionsAreNoUsersActions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, globalAdmin)
	for _, act := range []grants.Action{grants.ActionCreate, grants.ActionExpire, grants.ActionComplete} {
		for _, by := range []grants.Actor{operator, manager, globalAdmin} {
			if err := e.store.CanAct(ctx, by.Principal, r.ID, act); !errors.Is(err, grants.ErrInvalid) || codeOf(err) != "invalid_action" {
				t.Errorf("CanAct %s by %s: %v, want invalid_action", act, by.Principal.Subject, err)
			}
			if _, err := e.store.Act(ctx, r.ID, act, by, ""); !errors.Is(err, grants.ErrInvalid) || codeOf(err) != "invalid_action" {
				t.Errorf("Act %s by %s: %v, want invalid_action", act, by.Principal.Subject, err)
			}
		}
	}
	got, err := e.store.Get(ctx, manager.Principal, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != grants.StateApproved || len(got.History) != 3 {
		t.Fatalf("request %s with %d events, want it approved as it was", got.State, len(got.History))
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil {
		t.Fatalf("grant after the refused actions: %v", err)
	}
	want := []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision}
	if got := ops(t, e, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit of %s = %v, want %v", r.ID, got, want)
	}
}
