package grants_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestNextDeadlineLeavesOutWhatTimeEnded: the deadline the "expires
// undecided within the hour" alert reads is that of a request that can
// still be decided. A deadline that passed before the sweep wrote the
// expiry (the sweep is late, or no replica runs the jobs) was still
// reported: the alert fired for a request that had already expired, at a
// time in the past, for as long as the sweep did not run, and hid the
// request that does expire next.
func TestNextDeadlineLeavesOutWhatTimeEnded(t *testing.T) {
	const nextDeadline = "lockbox_requests_pending_next_deadline_timestamp_seconds"
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
	deadline := func() (float64, bool) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == nextDeadline {
				return mf.GetMetric()[0].GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	create := func(by grants.Actor, tenant string) grants.Request {
		t.Helper()
		r, err := s.Create(ctx, by, grants.CreateInput{Tenant: tenant, Service: "exchange", ServiceRequest: "SR-9", Reason: "r", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	unix := func(tm time.Time) float64 { return float64(tm.UnixMilli()) / 1e3 }

	// Two tenants' requests: contoso's first, fabrikam's an hour later.
	first := create(operator, "contoso")
	c.Advance(time.Hour)
	second := create(who("bob", "", identity.RoleOperator), "fabrikam")
	if got, ok := deadline(); !ok || got != unix(*first.DecideBy) {
		t.Fatalf("%s = %v (present %t), want the first request's %v", nextDeadline, got, ok, first.DecideBy)
	}
	// contoso's deadline passes and no sweep runs: fabrikam's is next.
	c.Set(*first.DecideBy)
	if got, ok := deadline(); !ok || got != unix(*second.DecideBy) {
		t.Fatalf("at the first deadline, unswept: %s = %v (present %t), want the second request's %v", nextDeadline, got, ok, second.DecideBy)
	}
	// Both passed, neither swept: nothing is pending.
	c.Set(*second.DecideBy)
	if got, ok := deadline(); ok {
		t.Fatalf("past every deadline, unswept: %s = %v, want it absent", nextDeadline, got)
	}
}
