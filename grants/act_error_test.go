package grants_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

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
