package policy

import "github.com/prometheus/client_golang/prometheus"

// Reload results, the values of lockbox_policy_reloads_total's label.
const (
	reloadSuccess = "success"
	reloadError   = "error"
)

type metrics struct {
	evalDuration prometheus.Histogram
	memo         *prometheus.CounterVec
	memoHits     prometheus.Counter
	memoMisses   prometheus.Counter
	reloads      *prometheus.CounterVec
	lastReloadOK prometheus.Gauge
	loadedAt     prometheus.Gauge
}

// newMetrics creates the engine's metrics and registers them with reg, when
// reg is not nil. No label carries a revision, tenant or anything else that
// grows without bound.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		evalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lockbox_policy_evaluation_duration_seconds",
			Help: "Time to evaluate the policy decision for one call, errors included.",
			// A decision takes tens of microseconds; the top buckets are
			// there to see evaluations approach the timeout.
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_policy_reloads_total",
			Help: "Policy reloads by result; on error the last good policy keeps serving.",
		}, []string{"result"}),
		memo: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_policy_decisions_total",
			Help: "Policy decisions by how they were made: evaluated (result=\"evaluated\") or served from the decisions this policy version already made for an identical input (result=\"remembered\").",
		}, []string{"result"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lockbox_policy_last_reload_successful",
			Help: "1 if the policy directory's last reload loaded (or none was tried since start-up), 0 if it failed or the directory keeps changing between readings: the policy on disk is then not the one deciding.",
		}),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lockbox_policy_loaded_timestamp_seconds",
			Help: "Unix time at which the policy now serving was loaded.",
		}),
	}
	// Both results exist from the start, so rate() and alerts on errors
	// work before the first failure.
	m.reloads.WithLabelValues(reloadSuccess)
	m.reloads.WithLabelValues(reloadError)
	// The policy serving at start-up loaded, or there is no engine.
	m.lastReloadOK.Set(1)
	m.memoHits, m.memoMisses = m.memo.WithLabelValues("remembered"), m.memo.WithLabelValues("evaluated")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.evalDuration, m.memo, m.reloads, m.lastReloadOK, m.loadedAt} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
