package grants

import "github.com/prometheus/client_golang/prometheus"

// metrics of the lifecycle. Labels are closed sets (actions and states);
// tenants and ids belong in the audit log, not in labels.
type metrics struct {
	transitions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_request_transitions_total",
			Help: "Committed request transitions by action (create, approve, deny, cancel, revoke, expire, complete) and resulting state.",
		}, []string{"action", "state"}),
	}
	if reg != nil {
		reg.MustRegister(m.transitions)
	}
	return m
}

// observe counts the transitions between prev and next once committed.
func (m *metrics) observe(prev, next Request) {
	for _, ev := range next.History[len(prev.History):] {
		m.transitions.WithLabelValues(string(ev.Action), string(ev.To)).Inc()
	}
}
