package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestEndedRequestsGrantNothing: a request that ended without access, or
// whose access ended, lets no call through, and the engineer is told the
// same thing whichever way it ended: 403 no_grant, "you have no approved
// lockbox request". The product contract: a denied or expired request
// grants nothing, a window that ends revokes access automatically, the
// tenant and the manager can revoke it early, and turning Customer Lockbox
// on ends every grant no approver of the tenant approved.
func TestEndedRequestsGrantNothing(t *testing.T) {
	ctx := context.Background()
	mgr := grants.Actor{Principal: manager, ClientIP: "198.51.100.2"}
	admin := grants.Actor{Principal: tenantAdmin("contoso"), ClientIP: "203.0.113.5"}
	file := func(e *testEnv) grants.Request {
		r, err := e.grants.Create(ctx, grants.Actor{Principal: alice, ClientIP: "198.51.100.1"}, grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)})
		if err != nil {
			e.t.Fatal(err)
		}
		return r
	}
	act := func(e *testEnv, id string, a grants.Action, by grants.Actor) {
		e.t.Helper()
		if _, err := e.grants.Act(ctx, id, a, by, ""); err != nil {
			e.t.Fatalf("%s by %s: %v", a, by.Principal.Subject, err)
		}
	}
	sweep := func(e *testEnv) {
		e.t.Helper()
		if _, err := e.grants.Sweep(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	granted := func(e *testEnv) grants.Request { return e.grantFor(alice, "contoso", "exchange", time.Hour) }
	tests := []struct {
		name string
		// start files the request; a request it returns approved lets a
		// call through before end, so the refusal after end is end's
		// doing.
		start func(e *testEnv) grants.Request
		end   func(e *testEnv, id string)
		want  grants.State
	}{
		{"denied by the manager", file, func(e *testEnv, id string) {
			act(e, id, grants.ActionDeny, mgr)
		}, grants.StateDenied},
		{"denied by the tenant", file, func(e *testEnv, id string) {
			act(e, id, grants.ActionApprove, mgr)
			act(e, id, grants.ActionDeny, admin)
		}, grants.StateDenied},
		{"expired at the manager", file, func(e *testEnv, id string) {
			e.clk.Advance(grants.DecisionWindow)
			sweep(e)
		}, grants.StateExpired},
		{"expired at the tenant", file, func(e *testEnv, id string) {
			act(e, id, grants.ActionApprove, mgr)
			e.clk.Advance(grants.DecisionWindow)
			sweep(e)
		}, grants.StateExpired},
		{"canceled while awaiting the tenant", file, func(e *testEnv, id string) {
			act(e, id, grants.ActionApprove, mgr)
			act(e, id, grants.ActionCancel, grants.Actor{Principal: alice})
		}, grants.StateCanceled},
		{"window ended", granted, func(e *testEnv, id string) {
			e.clk.Advance(time.Hour)
			sweep(e)
		}, grants.StateCompleted},
		{"revoked by the tenant", granted, func(e *testEnv, id string) {
			act(e, id, grants.ActionRevoke, admin)
		}, grants.StateRevoked},
		{"revoked by the manager", granted, func(e *testEnv, id string) {
			act(e, id, grants.ActionRevoke, mgr)
		}, grants.StateRevoked},
		{"manager-only grant, Customer Lockbox turned on", func(e *testEnv) grants.Request {
			e.setLockbox("contoso", false)
			r := granted(e)
			if grants.TenantApproved(r) {
				e.t.Fatal("the grant was approved by the tenant; the case proves nothing")
			}
			return r
		}, func(e *testEnv, _ string) { e.setLockbox("contoso", true) }, grants.StateRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			r := tt.start(e)
			if r.State == grants.StateApproved {
				if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
					t.Fatalf("a call while the grant lasts: %d %s", res.status, res.body)
				}
			}
			tt.end(e, r.ID)
			got, err := e.grants.Get(ctx, manager, r.ID)
			if err != nil || got.State != tt.want {
				t.Fatalf("request %s is %s (%v), want %s", r.ID, got.State, err, tt.want)
			}
			calls := e.upstreamCalls()
			res := e.send(as(alice, "GET", mailboxes)(e))
			if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonNoGrant) ||
				!strings.Contains(string(res.body), "you have no approved lockbox request for exchange of tenant contoso") {
				t.Errorf("call after the request was %s: %d %s, want 403 no_grant", tt.want, res.status, res.body)
			}
			if n := e.upstreamCalls() - calls; n != 0 {
				t.Errorf("the upstream received %d calls after the request was %s", n, tt.want)
			}
		})
	}
}
