package proxy

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
)

// heldAuditor is an Auditor whose next write, once during is set, runs
// during before it returns: what happens while a call waits for its record
// to be acknowledged (a group commit behind a slow Redis, or waiting on
// replicas, within the audit timeout).
type heldAuditor struct {
	Auditor
	during atomic.Pointer[func()]
}

func (a *heldAuditor) Append(ctx context.Context, r record.Record) (record.Record, error) {
	r, err := a.Auditor.Append(ctx, r)
	if f := a.during.Swap(nil); f != nil {
		(*f)()
	}
	return r, err
}

// TestRevocationWhileAuditWaits: a call has read its grant and been judged,
// and waits for its audit write; meanwhile the grant is revoked through the
// lifecycle (or ended by Customer Lockbox switched on), and the write lasts
// until the clock has moved on by wait. A revocation is honoured within a
// second on every replica, so once a second has passed since the call's
// grant was read it must not reach the upstream, whether the grant came
// from Redis or from the cache, and whether the replica heard the
// revocation's event or not. Within the second, a call that read its grant
// before the revocation may still pass: it is not read again.
func TestRevocationWhileAuditWaits(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cached bool
		// heard has the cache hear the revocation's event during the
		// wait; otherwise the replica missed it.
		heard bool
		// lockboxOn ends the grant (approved by the manager while the
		// tenant's lockbox was off) by switching the lockbox on, instead
		// of revoking it.
		lockboxOn bool
		// revoke is false for the calls whose grant stays.
		revoke bool
		// again approves another request for the same access after the
		// revocation: the call's record and assertion name the first.
		again bool
		wait  time.Duration
		// status and code are what the call gets; code "" is forwarded.
		status int
		code   Reason
	}{
		{name: "revoked, a second later", revoke: true, wait: time.Second, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "revoked, seconds later", revoke: true, wait: 1900 * time.Millisecond, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "revoked, cached, event lost", cached: true, revoke: true, wait: 1500 * time.Millisecond, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "revoked, cached, event heard", cached: true, heard: true, revoke: true, wait: 1500 * time.Millisecond, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "revoked, another approved", revoke: true, again: true, wait: 1500 * time.Millisecond, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "lockbox switched on", lockboxOn: true, revoke: true, wait: 1500 * time.Millisecond, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "lockbox switched on, cached", cached: true, lockboxOn: true, revoke: true, wait: 1500 * time.Millisecond, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "revoked, within the second", revoke: true, wait: 999 * time.Millisecond, status: http.StatusOK},
		{name: "kept, seconds later", wait: 1900 * time.Millisecond, status: http.StatusOK},
		{name: "kept, cached, seconds later", cached: true, wait: 1900 * time.Millisecond, status: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ha := &heldAuditor{}
			var cache *grants.GrantCache
			e := newTestEnv(t, func(e *testEnv, c *Config) {
				if tt.cached {
					cache = grants.NewGrantCache(e.grants, time.Second, e.clk.Now)
					c.Grants = cache
				}
				ha.Auditor = c.Auditor
				c.Auditor = ha
			})
			if tt.lockboxOn {
				e.setLockbox("contoso", false)
			}
			req := e.grantFor(alice, "contoso", "exchange", time.Hour)
			if tt.cached {
				// Warm the cache: the call finds the grant in memory.
				if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
					t.Fatalf("warming the cache: %d %s", res.status, res.body)
				}
			}
			call := as(alice, "GET", mailboxes)(e)
			before := e.upstreamCalls()
			during := func() {
				switch {
				case tt.lockboxOn:
					e.setLockbox("contoso", true)
				case tt.revoke:
					if _, err := e.grants.Act(context.Background(), req.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso")}, "done"); err != nil {
						t.Errorf("revoke: %v", err)
					}
				}
				if tt.again {
					approveAgain(t, e)
				}
				if tt.heard {
					cache.Invalidate("contoso")
				}
				e.clk.Advance(tt.wait)
			}
			ha.during.Store(&during)
			res := e.send(call)
			if ha.during.Load() != nil {
				t.Fatal("the audit write never ran: the test no longer exercises the wait")
			}
			if tt.revoke {
				if got, err := e.grants.Get(context.Background(), tenantAdmin("contoso"), req.ID); err != nil || got.State != grants.StateRevoked {
					t.Fatalf("request after the wait: %v %v, want revoked", got.State, err)
				}
			}
			forwarded := e.upstreamCalls() - before
			if tt.code == "" {
				if res.status != tt.status || forwarded != 1 {
					t.Errorf("%d %s, %d requests upstream: want %d, forwarded", res.status, res.body, forwarded, tt.status)
				}
				return
			}
			if res.status != tt.status || res.errorCode(t) != string(tt.code) {
				t.Errorf("%d %s: want %d %s", res.status, res.body, tt.status, tt.code)
			}
			if forwarded != 0 {
				t.Errorf("the upstream received %d requests after the grant ended", forwarded)
			}
		})
	}
}

// approveAgain files and approves another request of alice's for exchange
// on contoso. It runs while a call waits, off the test's goroutine: it
// reports with Errorf.
func approveAgain(t *testing.T, e *testEnv) {
	ctx := context.Background()
	r, err := e.grants.Create(ctx, grants.Actor{Principal: alice, ClientIP: "198.51.100.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1002", Reason: "still broken",
		Duration: grants.Duration(time.Hour),
	})
	if err == nil {
		r, err = e.grants.Act(ctx, r.ID, grants.ActionApprove, grants.Actor{Principal: manager, ClientIP: "198.51.100.2"}, "")
	}
	if err == nil && r.State == grants.StatePendingCustomer {
		r, err = e.grants.Act(ctx, r.ID, grants.ActionApprove, grants.Actor{Principal: tenantAdmin("contoso"), ClientIP: "203.0.113.5"}, "")
	}
	if err != nil || r.State != grants.StateApproved {
		t.Errorf("approving another request: %v, %v", r.State, err)
	}
}
