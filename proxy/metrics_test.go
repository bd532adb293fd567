package proxy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	e := newTestEnv(t)

	t.Run("exposition lints clean", func(t *testing.T) {
		problems, err := testutil.GatherAndLint(e.reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	})

	t.Run("every series exists at zero", func(t *testing.T) {
		labels := append(slices.Clone(services), unknownService)
		denials := 0
		for _, r := range AllReasons() {
			if r.Denial() {
				denials++
			}
		}
		for name, want := range map[string]int{
			"lockbox_proxy_denials_total":            len(labels) * denials,
			"lockbox_proxy_requests_total":           len(labels) * 3,
			"lockbox_proxy_request_duration_seconds": len(labels) * 3,
			"lockbox_audit_write_errors_total":       1,
			"lockbox_proxy_calls_cut_total":          len(labels) * len(cutReasons),
		} {
			if got := testutil.CollectAndCount(e.reg, name); got != want {
				t.Errorf("%s: %d series, want %d", name, got, want)
			}
		}
		for _, s := range labels {
			for _, r := range AllReasons() {
				if r.Denial() {
					if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues(s, string(r))); got != 0 {
						t.Errorf("denials{%s,%s} = %v before any call", s, r, got)
					}
				}
			}
		}
	})

	t.Run("counters move, labels stay bounded", func(t *testing.T) {
		e.grantFor(alice, "contoso", "exchange", time.Hour)
		for _, target := range []string{
			mailboxes,                              // allowed
			mailboxes,                              // allowed
			"/exchange/tenants/fabrikam/mailboxes", // no grant
			"/" + strings.Repeat("a", 300) + "/tenants/contoso/x", // unknown service
			"/%2e%2e/admin", // not canonical, names no service
			"/exchange/tenants/contoso/%2e%2e/fabrikam/mailboxes", // not canonical
		} {
			e.send(as(alice, "GET", target)(e))
		}
		checks := []struct {
			name string
			got  float64
			want float64
		}{
			{"requests{exchange,allowed}", testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed)), 2},
			{"requests{exchange,denied}", testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionDenied)), 2},
			{"requests{unknown,denied}", testutil.ToFloat64(e.h.metrics.requests.WithLabelValues(unknownService, decisionDenied)), 2},
			{"denials{exchange,no_grant}", testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonNoGrant))), 1},
			{"denials{exchange,bad_request}", testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonBadRequest))), 1},
			{"denials{unknown,unknown_service}", testutil.ToFloat64(e.h.metrics.denials.WithLabelValues(unknownService, string(ReasonUnknownService))), 1},
			{"denials{unknown,bad_request}", testutil.ToFloat64(e.h.metrics.denials.WithLabelValues(unknownService, string(ReasonBadRequest))), 1},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "service" && !slices.Contains(services, l.GetValue()) && l.GetValue() != unknownService {
						t.Errorf("%s has service label %q", mf.GetName(), l.GetValue())
					}
				}
			}
		}
		if got, want := testutil.CollectAndCount(e.reg, "lockbox_proxy_denials_total"), (len(services)+1)*(len(AllReasons())-1); got != want {
			t.Errorf("denial series grew to %d", got)
		}
	})
}
