package proxy

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// slowGrants is a GrantLookup whose reads take until the clock reads
// until (once set): a Redis that answers late, within the grant timeout.
type slowGrants struct {
	GrantLookup
	clk   interface{ Set(time.Time) }
	until atomic.Pointer[time.Time]
}

func (s *slowGrants) Grant(ctx context.Context, tenant, operator, service string) (grants.Grant, error) {
	g, err := s.GrantLookup.Grant(ctx, tenant, operator, service)
	if t := s.until.Swap(nil); t != nil {
		s.clk.Set(*t)
	}
	return g, err
}

// slowAuditor is an Auditor whose write takes until the clock reads until
// (once set): a group commit waiting on a slow Redis, or on replicas
// (LOCKBOX_AUDIT_REPLICAS), within the audit timeout.
type slowAuditor struct {
	Auditor
	clk   interface{ Set(time.Time) }
	until atomic.Pointer[time.Time]
}

func (a *slowAuditor) Append(ctx context.Context, r record.Record) (record.Record, error) {
	r, err := a.Auditor.Append(ctx, r)
	if t := a.until.Swap(nil); t != nil {
		a.clk.Set(*t)
	}
	return r, err
}

// TestGrantNotForwardedPastItsEnd: the grant's end passes while the call
// is being judged, after the clock was read: during the grant's read (a
// slow Redis), or during the audit write. The call must not reach the
// upstream once the window is over, whether the grant came from Redis or
// from the cache: no grant is honoured past its expires_at.
func TestGrantNotForwardedPastItsEnd(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cached bool
		// slow picks the step that lasts until the grant's end.
		slow string
	}{
		{name: "grant read", slow: "grant"},
		{name: "audit write", slow: "audit"},
		{name: "audit write, cached grant", slow: "audit", cached: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sg, sa := &slowGrants{}, &slowAuditor{}
			e := newTestEnv(t, func(e *testEnv, c *Config) {
				var lookup GrantLookup = e.grants
				if tt.cached {
					lookup = grants.NewGrantCache(e.grants, time.Second, e.clk.Now)
				}
				sg.GrantLookup, sg.clk = lookup, e.clk
				sa.Auditor, sa.clk = c.Auditor, e.clk
				c.Grants, c.Auditor = sg, sa
			})
			req := e.grantFor(alice, "contoso", "exchange", time.Hour)
			end := *req.ExpiresAt
			e.clk.Set(end.Add(-500 * time.Millisecond))
			if tt.cached {
				// Warm the cache: the next call finds the grant in memory.
				if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
					t.Fatalf("warming the cache: %d %s", res.status, res.body)
				}
				e.clk.Set(end.Add(-time.Millisecond))
			}
			before := e.upstreamCalls()
			switch tt.slow {
			case "grant":
				sg.until.Store(&end)
			case "audit":
				sa.until.Store(&end)
			}
			res := e.send(as(alice, "GET", mailboxes)(e))
			if sg.until.Load() != nil || sa.until.Load() != nil {
				t.Fatal("the slow step never ran: the test no longer exercises it")
			}
			if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonGrantExpired) {
				t.Errorf("%d %s: want 403 %s", res.status, res.body, ReasonGrantExpired)
			}
			if n := e.upstreamCalls() - before; n != 0 {
				t.Errorf("the upstream received %d requests after the grant ended", n)
			}
		})
	}
}

// lateGrantReply is a Redis hook that, once until is set, moves the clock
// to until when Redis answers the next read of the grant match names: a
// reply that arrives late, within the grant timeout.
type lateGrantReply struct {
	match func(redis.Cmder) bool
	clk   interface{ Set(time.Time) }
	until atomic.Pointer[time.Time]
}

func (h *lateGrantReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lateGrantReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if h.match(cmd) {
			if t := h.until.Swap(nil); t != nil {
				h.clk.Set(*t)
			}
		}
		return err
	}
}
func (h *lateGrantReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestGrantReadAgainNotForwardedPastItsEnd: a call whose audit write took
// over a second reads its grant again before it is forwarded (a revocation
// may have landed unseen meanwhile), and the grant's end passes while that
// read waits for Redis. The call must not reach the upstream: the window
// is judged on the clock after the read, as after the first one, whether
// the grant is read through the cache or straight from the store.
func TestGrantReadAgainNotForwardedPastItsEnd(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := "store"
		if cached {
			name = "cache"
		}
		t.Run(name, func(t *testing.T) {
			late, ha := &lateGrantReply{}, &heldAuditor{}
			e := newTestEnv(t, func(e *testEnv, c *Config) {
				late.match = redistest.Command("get", keys.Grant("contoso", alice.Subject, "exchange"))
				late.clk = e.clk
				e.rdb.AddHook(late)
				if cached {
					c.Grants = grants.NewGrantCache(e.grants, time.Second, e.clk.Now)
				}
				ha.Auditor = c.Auditor
				c.Auditor = ha
			})
			req := e.grantFor(alice, "contoso", "exchange", time.Hour)
			end := *req.ExpiresAt
			e.clk.Set(end.Add(-1500 * time.Millisecond))
			// The audit write lasts 1.4 s, so the grant is read again; that
			// read is answered at the grant's end.
			during := func() {
				e.clk.Set(end.Add(-100 * time.Millisecond))
				late.until.Store(&end)
			}
			ha.during.Store(&during)
			before := e.upstreamCalls()
			res := e.send(as(alice, "GET", mailboxes)(e))
			if ha.during.Load() != nil || late.until.Load() != nil {
				t.Fatal("the audit write or the second read of the grant never ran: the test no longer exercises them")
			}
			if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonGrantExpired) {
				t.Errorf("%d %s: want 403 %s", res.status, res.body, ReasonGrantExpired)
			}
			if n := e.upstreamCalls() - before; n != 0 {
				t.Errorf("the upstream received %d requests after the grant ended", n)
			}
		})
	}
}
