package grants_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestCountGaugesLeaveOutWhatTimeEnded: lockbox_grants_active counts the
// grants whose window is open and lockbox_requests_pending the requests
// that can still be decided. A window or decision deadline that ended
// before the sweep wrote it (the sweep is late, or no replica runs the
// jobs) was still counted, a grant the proxy no longer honours shown as
// active for as long as the sweep did not run.
func TestCountGaugesLeaveOutWhatTimeEnded(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	reg := prometheus.NewPedanticRegistry()
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	tenanttest.Onboard(t, ts, "contoso")
	ctx := context.Background()
	counts := func() (pending, active float64) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case "lockbox_requests_pending":
				pending = mf.GetMetric()[0].GetGauge().GetValue()
			case "lockbox_grants_active":
				active = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return pending, active
	}
	create := func(service string, d time.Duration) grants.Request {
		t.Helper()
		r, err := s.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: service, ServiceRequest: "SR-9", Reason: "r", Duration: grants.Duration(d)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// A 1 h grant, and a request filed with it that nobody decides.
	g := create("exchange", time.Hour)
	for _, by := range []grants.Actor{manager, globalAdmin} {
		if _, err := s.Act(ctx, g.ID, grants.ActionApprove, by, ""); err != nil {
			t.Fatal(err)
		}
	}
	create("onedrive", time.Hour)
	if p, a := counts(); p != 1 || a != 1 {
		t.Fatalf("pending %v, active %v; want 1 and 1", p, a)
	}
	// The window ended; no sweep ran.
	c.Advance(time.Hour)
	if p, a := counts(); p != 1 || a != 0 {
		t.Errorf("an hour on, unswept: pending %v, active %v; want 1 and 0", p, a)
	}
	// The grant the sweep has not ended still dates the oldest open one,
	// which LockboxGrantPastMaximum reads to tell that the sweep is not
	// running.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	started := false
	for _, mf := range mfs {
		if mf.GetName() == "lockbox_grants_active_oldest_start_timestamp_seconds" {
			started = mf.GetMetric()[0].GetGauge().GetValue() == float64(t0.Unix())
		}
	}
	if !started {
		t.Error("lockbox_grants_active_oldest_start_timestamp_seconds is not the unswept grant's approval")
	}
	// The decision deadline ended too.
	c.Advance(grants.DecisionWindow)
	if p, a := counts(); p != 0 || a != 0 {
		t.Errorf("past the deadline, unswept: pending %v, active %v; want 0 and 0", p, a)
	}
}
