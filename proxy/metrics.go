package proxy

import (
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Decisions, the "decision" label of the request metrics.
const (
	decisionAllowed = "allowed" // forwarded, whatever the upstream answered
	decisionDenied  = "denied"  // refused before anything reached the upstream
	decisionError   = "error"   // permitted and audited, but forwarding failed
)

// unknownService labels every call whose target names no configured
// service. The raw path never becomes a label: it is attacker-chosen and
// unbounded.
const unknownService = "unknown"

// metrics are the proxy's Prometheus metrics. Every label takes values
// from a closed set (the configured services plus "unknown", the three
// decisions, the reasons), so the number of series is fixed at start-up.
type metrics struct {
	requests    *prometheus.CounterVec
	denials     *prometheus.CounterVec
	cuts        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	auditErrors prometheus.Counter
	// bodyBytes reads the body budget in use at scrape time: nothing on
	// the call path updates it.
	bodyBytes prometheus.GaugeFunc
	// labels maps each configured service to itself; anything else is
	// "unknown".
	labels map[string]string
}

// durationBuckets span the proxy's own overhead (well under a
// millisecond against a local Redis) up to slow upstream answers.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newMetrics(reg prometheus.Registerer, services []string, bodies *bodyBudget) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_proxy_requests_total",
			Help: "Operator calls through the proxy, by service and decision (allowed, denied, error).",
		}, []string{"service", "decision"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_proxy_denials_total",
			Help: "Operator calls the proxy refused before reaching the upstream, by service and reason.",
		}, []string{"service", "reason"}),
		cuts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_proxy_calls_cut_total",
			Help: "Forwarded operator calls the proxy cut off midway because their access ended (reason grant_expired: the grant's expires_at passed during the call; no_grant: the grant was revoked, ended by Customer Lockbox switched on, or replaced; tenant_mismatch, store_unavailable: the grant read again named another call, or could not be read), by service and reason.",
		}, []string{"service", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lockbox_proxy_request_duration_seconds",
			Help:    "Time from receiving an operator call to its answer, upstream included, by service and decision.",
			Buckets: durationBuckets,
		}, []string{"service", "decision"}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lockbox_audit_write_errors_total",
			Help: "Audit records of permitted proxy calls that could not be written; each refused its call.",
		}),
		bodyBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lockbox_proxy_body_buffer_bytes",
			Help: "Bytes of request bodies the proxy holds in memory to check them for method overrides (form bodies, POSTed JSON), out of LOCKBOX_PROXY_BODY_BUFFER_BYTES.",
		}, func() float64 { return float64(bodies.inUse()) }),
		labels: make(map[string]string, len(services)),
	}
	for _, s := range services {
		m.labels[s] = s
	}
	// Every series exists from the start, at 0, so that rate() and
	// "absent" alerts work before the first denial of a kind.
	for _, s := range slices.Concat(services, []string{unknownService}) {
		for _, d := range []string{decisionAllowed, decisionDenied, decisionError} {
			m.requests.WithLabelValues(s, d)
			m.duration.WithLabelValues(s, d)
		}
		for _, r := range allReasons {
			if r.Denial() {
				m.denials.WithLabelValues(s, string(r))
			}
		}
		for _, r := range cutReasons {
			m.cuts.WithLabelValues(s, string(r))
		}
	}
	for _, c := range []prometheus.Collector{m.requests, m.denials, m.cuts, m.duration, m.auditErrors, m.bodyBytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("proxy: register metrics: %w", err)
		}
	}
	return m, nil
}

// cutReasons are the values of lockbox_proxy_calls_cut_total's "reason":
// why a call's access ended while it was under way. Besides the grant's
// end, they are the reasons a new call would be refused for when its grant
// is read again (CallWatch): revoked or replaced (no_grant), a record that
// names another call (tenant_mismatch), or unreadable (store_unavailable).
var cutReasons = []Reason{ReasonGrantExpired, ReasonNoGrant, ReasonTenantMismatch, ReasonStoreUnavailable}

// cut counts one forwarded call cut off midway for reason.
func (m *metrics) cut(service string, reason Reason) {
	m.cuts.WithLabelValues(service, string(reason)).Inc()
}

// label returns the service label for a service name taken from a target.
func (m *metrics) label(service string) string {
	if l, ok := m.labels[service]; ok {
		return l
	}
	return unknownService
}

// observe counts one finished call. reason is the denial's for decision
// "denied" and ignored otherwise.
func (m *metrics) observe(service, decision string, reason Reason, elapsed time.Duration) {
	if decision == decisionDenied {
		m.denials.WithLabelValues(service, string(reason)).Inc()
	}
	m.requests.WithLabelValues(service, decision).Inc()
	m.duration.WithLabelValues(service, decision).Observe(elapsed.Seconds())
}
