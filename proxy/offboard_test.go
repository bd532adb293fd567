package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// signalled is a grant cache that tells the test each tenant it dropped.
type signalled struct {
	*grants.GrantCache
	dropped chan string
}

func (s signalled) Invalidate(tenant string) {
	s.GrantCache.Invalidate(tenant)
	s.dropped <- tenant
}

// TestOffboardedTenantIsDenied: once the provider offboarded a tenant, the
// proxy forwards none of its calls: the grant is revoked in Redis, so an
// uncached lookup finds none; a replica's cache drops the tenant when it
// hears the offboarding's event (a real subscription here), and one that
// missed the event stops serving the grant within the one-second bound.
func TestOffboardedTenantIsDenied(t *testing.T) {
	for _, tt := range []struct {
		name          string
		cached, heard bool
		wait          time.Duration
	}{
		{name: "uncached"},
		{name: "cached, event heard", cached: true, heard: true},
		{name: "cached, event lost, a second later", cached: true, wait: time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var cache *grants.GrantCache
			e := newTestEnv(t, func(e *testEnv, c *Config) {
				if tt.cached {
					cache = grants.NewGrantCache(e.grants, time.Second, e.clk.Now)
					c.Grants = cache
				}
			})
			var dropped chan string
			if tt.heard {
				dropped = make(chan string, 16)
				l := events.NewListener(e.rdb, slog.New(slog.DiscardHandler), signalled{GrantCache: cache, dropped: dropped})
				lctx, cancel := context.WithCancel(ctx)
				t.Cleanup(cancel)
				go l.Run(lctx)
				<-l.Ready()
			}
			req := e.grantFor(alice, "contoso", "exchange", time.Hour)
			if tt.heard {
				// The filing's and approvals' own events are heard before
				// the cache is warmed: one channel delivers in order, so
				// once a marker published after them arrives, none of
				// them can drop the grant the offboarding must drop.
				if _, err := e.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
					events.PublishTx(ctx, p, "fabrikam")
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				for tenant := <-dropped; tenant != "fabrikam"; tenant = <-dropped {
				}
			}
			if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
				t.Fatalf("before offboarding: %d %s", res.status, res.body)
			}
			if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
				t.Fatal(err)
			}
			if tt.heard {
				if tenant := <-dropped; tenant != "contoso" {
					t.Fatalf("heard an event of %s, want the offboarding's", tenant)
				}
			}
			e.clk.Advance(tt.wait)
			before := e.upstreamCalls()
			res := e.send(as(alice, "GET", mailboxes)(e))
			if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonNoGrant) {
				t.Errorf("after offboarding: %d %s, want 403 %s", res.status, res.body, ReasonNoGrant)
			}
			if n := e.upstreamCalls() - before; n != 0 {
				t.Errorf("the upstream received %d requests after the tenant was offboarded", n)
			}
			if got, err := e.grants.Get(ctx, tenantAdmin("contoso"), req.ID); err != nil || got.State != grants.StateRevoked {
				t.Fatalf("request after offboarding: %v %v, want revoked", got.State, err)
			}
		})
	}
}
