package grants_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

func TestMetrics(t *testing.T) {
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
	in := grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)}
	a, _ := s.Create(ctx, operator, in)
	in.Service = "onedrive"
	b, _ := s.Create(ctx, operator, in)
	in.Service = "sharepoint"
	s.Create(ctx, operator, in)
	if _, err := s.Act(ctx, a.ID, grants.ActionApprove, manager, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Act(ctx, a.ID, grants.ActionApprove, globalAdmin, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Act(ctx, b.ID, grants.ActionDeny, manager, ""); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP lockbox_grants_active Approved requests whose access window is open.
# TYPE lockbox_grants_active gauge
lockbox_grants_active 1
# HELP lockbox_request_decisions_total Approve and deny decisions by stage (manager, tenant) and decision (approve, deny).
# TYPE lockbox_request_decisions_total counter
lockbox_request_decisions_total{decision="approve",stage="manager"} 1
lockbox_request_decisions_total{decision="approve",stage="tenant"} 1
lockbox_request_decisions_total{decision="deny",stage="manager"} 1
lockbox_request_decisions_total{decision="deny",stage="tenant"} 0
# HELP lockbox_requests_created_total Lockbox requests filed.
# TYPE lockbox_requests_created_total counter
lockbox_requests_created_total 3
# HELP lockbox_requests_pending Requests awaiting a manager's or a tenant's decision.
# TYPE lockbox_requests_pending gauge
lockbox_requests_pending 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"lockbox_grants_active", "lockbox_request_decisions_total", "lockbox_requests_created_total", "lockbox_requests_pending"); err != nil {
		t.Fatal(err)
	}
	// The grant's window ends: no longer active.
	c.Advance(time.Hour)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(collectorOf(t, reg, "lockbox_grants_active")); got != 0 {
		t.Fatalf("active grants after the window = %v", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// collectorOf wraps one metric family of reg as a collector for ToFloat64.
func collectorOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return gatherOne{reg, name}
}

type gatherOne struct {
	reg  *prometheus.Registry
	name string
}

func (g gatherOne) Describe(chan<- *prometheus.Desc) {}
func (g gatherOne) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == g.name {
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "x", nil, nil), prometheus.GaugeValue, mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
}
