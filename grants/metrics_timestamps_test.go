package grants_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestDeadlineAndGrantAgeGauges: the gauges the "about to expire" and
// "open for long" alerts read name the extreme request across tenants, and
// disappear when there is none.
func TestDeadlineAndGrantAgeGauges(t *testing.T) {
	const (
		nextDeadline = "lockbox_requests_pending_next_deadline_timestamp_seconds"
		oldestStart  = "lockbox_grants_active_oldest_start_timestamp_seconds"
	)
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	reg := prometheus.NewPedanticRegistry()
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	tenanttest.Onboard(t, ts, "contoso", "fabrikam")
	ctx := context.Background()
	gauges := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			if n := mf.GetName(); n == nextDeadline || n == oldestStart {
				out[n] = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return out
	}
	unix := func(tm time.Time) float64 { return float64(tm.UnixMilli()) / 1e3 }
	create := func(by grants.Actor, tenant, service string, d time.Duration) grants.Request {
		t.Helper()
		r, err := s.Create(ctx, by, grants.CreateInput{Tenant: tenant, Service: service, ServiceRequest: "SR-9", Reason: "r", Duration: grants.Duration(d)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	approve := func(r grants.Request, tenantApprover grants.Actor) {
		t.Helper()
		for _, by := range []grants.Actor{manager, tenantApprover} {
			if _, err := s.Act(ctx, r.ID, grants.ActionApprove, by, ""); err != nil {
				t.Fatal(err)
			}
		}
	}

	if g := gauges(); len(g) != 0 {
		t.Fatalf("with nothing pending or active: %v, want both absent", g)
	}

	// A 4 h grant approved at t0, then a 1 h grant approved an hour later:
	// the second ends first, but the first has been open longest.
	approve(create(operator, "contoso", "exchange", 4*time.Hour), globalAdmin)
	c.Advance(time.Hour)
	approve(create(operator, "contoso", "onedrive", time.Hour), globalAdmin)
	if g := gauges(); g[oldestStart] != unix(t0) {
		t.Fatalf("%s = %v, want t0 (%v)", oldestStart, g[oldestStart], unix(t0))
	}
	if _, ok := gauges()[nextDeadline]; ok {
		t.Fatalf("%s present with nothing pending", nextDeadline)
	}

	// Pending in two tenants: the nearer deadline wins. fabrikam's request
	// was filed earlier, so its 12 h run out first.
	c.Advance(30 * time.Second)
	fab := create(who("bob", "", identity.RoleOperator), "fabrikam", "exchange", time.Hour)
	c.Advance(time.Minute)
	create(operator, "contoso", "sharepoint", time.Hour)
	if g := gauges(); g[nextDeadline] != unix(fab.DecideBy.UTC()) || *fab.DecideBy != t0.Add(time.Hour+30*time.Second+grants.DecisionWindow) {
		t.Fatalf("%s = %v, want fabrikam's deadline %v", nextDeadline, g[nextDeadline], fab.DecideBy)
	}

	// Past every window and deadline, once swept: both gone again.
	c.Advance(grants.DecisionWindow + grants.MaxDuration)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if g := gauges(); len(g) != 0 {
		t.Fatalf("after the sweep: %v, want both absent", g)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
