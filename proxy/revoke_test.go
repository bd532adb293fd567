package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
// before the revocation may still pass unless the replica heard of a change
// to the tenant since: then its grant is read again at once.
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
		// The replica heard of the revocation after the call's read began:
		// it knows better than its read at once, not a second later.
		{name: "revoked, cached, event heard, within the second", cached: true, heard: true, revoke: true, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "revoked, event heard, within the second", heard: true, revoke: true, status: http.StatusForbidden, code: ReasonNoGrant},
		{name: "kept, cached, another change heard, within the second", cached: true, heard: true, status: http.StatusOK},
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
					// As the listener tells them: the cache, then the
					// calls.
					if cache != nil {
						cache.Invalidate("contoso")
					}
					e.h.CallWatch().Invalidate("contoso")
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
			if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(tt.code))); got != 1 {
				t.Errorf("denials{exchange,%s} = %v, want 1", tt.code, got)
			}
			if lines := e.logLines("proxy call denied"); len(lines) != 1 || lines[0]["reason"] != string(tt.code) {
				t.Errorf("denial log lines %v, want one with reason %s", lines, tt.code)
			}
		})
	}
}

// TestGrantReadAgainFailing: a call whose audit write lasted over a second
// reads its grant again before it is forwarded; a store that fails that
// read refuses the call (503 store_unavailable, the store's error kept
// for the log), as the first read would: a revocation may have landed
// unseen. Its record was written (over-reporting, by design); nothing
// reaches the upstream.
func TestGrantReadAgainFailing(t *testing.T) {
	ha := &heldAuditor{}
	var reads atomic.Int32
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		c.Grants = grantLookupFunc(func(ctx context.Context, tenant, operator, service string) (grants.Grant, error) {
			if reads.Add(1) > 1 {
				return grants.Grant{}, errors.New("redis: connection pool timeout")
			}
			return e.grants.Grant(ctx, tenant, operator, service)
		})
		ha.Auditor = c.Auditor
		c.Auditor = ha
	})
	e.grantFor(alice, "contoso", "exchange", time.Hour)
	records := auditEntries(t, e)
	during := func() { e.clk.Advance(1500 * time.Millisecond) }
	ha.during.Store(&during)
	res := e.send(as(alice, "GET", mailboxes)(e))
	if ha.during.Load() != nil || reads.Load() != 2 {
		t.Fatalf("audit write run: %v, grant reads %d: the test no longer exercises the second read", ha.during.Load() == nil, reads.Load())
	}
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != string(ReasonStoreUnavailable) ||
		!strings.Contains(string(res.body), publicMessage[ReasonStoreUnavailable]) || strings.Contains(string(res.body), "redis") {
		t.Errorf("%d %s: want 503 %s with its public message", res.status, res.body, ReasonStoreUnavailable)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("the upstream received %d requests", n)
	}
	if n := auditEntries(t, e); n != records+1 {
		t.Errorf("the audit streams hold %d entries after the call, want %d: the call's record", n, records+1)
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonStoreUnavailable))); got != 1 {
		t.Errorf("denials{exchange,store_unavailable} = %v, want 1", got)
	}
	if lines := e.logLines("proxy call denied"); len(lines) != 1 || lines[0]["reason"] != string(ReasonStoreUnavailable) ||
		!strings.Contains(fmt.Sprint(lines[0]["error"]), "connection pool timeout") {
		t.Errorf("denial log lines %v, want one with reason store_unavailable and the store's error", lines)
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
