package grants

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// metrics of the lifecycle. Labels are closed sets (actions, states,
// stages); tenants and ids belong in the audit log, not in labels.
type metrics struct {
	transitions *prometheus.CounterVec
	created     prometheus.Counter
	decisions   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, rdb redis.UniversalClient) *metrics {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_request_transitions_total",
			Help: "Committed request transitions by action and resulting state.",
		}, []string{"action", "state"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lockbox_requests_created_total",
			Help: "Lockbox requests filed.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_request_decisions_total",
			Help: "Approve and deny decisions by stage (manager, tenant) and decision (approve, deny).",
		}, []string{"stage", "decision"}),
	}
	for _, stage := range []string{"manager", "tenant"} {
		for _, d := range []Action{ActionApprove, ActionDeny} {
			m.decisions.WithLabelValues(stage, string(d))
		}
	}
	if reg != nil {
		reg.MustRegister(m.transitions, m.created, m.decisions, &gauges{rdb: rdb})
	}
	return m
}

// observe counts the transitions between prev and next once committed.
func (m *metrics) observe(prev, next Request) {
	for _, ev := range next.History[len(prev.History):] {
		m.transitions.WithLabelValues(string(ev.Action), string(ev.To)).Inc()
		switch ev.Action {
		case ActionCreate:
			m.created.Inc()
		case ActionApprove, ActionDeny:
			stage := "tenant"
			if ev.From == StatePendingManager {
				stage = "manager"
			}
			m.decisions.WithLabelValues(stage, string(ev.Action)).Inc()
		}
	}
}

var (
	pendingDesc = prometheus.NewDesc("lockbox_requests_pending", "Requests awaiting a manager's or a tenant's decision.", nil, nil)
	activeDesc  = prometheus.NewDesc("lockbox_grants_active", "Approved requests whose access window is open.", nil, nil)
)

// gauges reads the pending and active counts from Redis at scrape time, so
// every replica reports the same, true numbers. A scrape that can't reach
// Redis reports nothing rather than a stale value.
type gauges struct{ rdb redis.UniversalClient }

func (g *gauges) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc; ch <- activeDesc }

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tenants, err := g.rdb.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return
	}
	var pending, active []*redis.IntCmd
	if _, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tenants {
			if keys.ValidTenant(t) != nil {
				continue
			}
			pending = append(pending, p.ZCard(ctx, keys.TenantPending(t)))
			active = append(active, p.ZCard(ctx, keys.TenantActive(t)))
		}
		return nil
	}); err != nil {
		return
	}
	sum := func(cmds []*redis.IntCmd) float64 {
		var n int64
		for _, c := range cmds {
			n += c.Val()
		}
		return float64(n)
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, sum(pending))
	ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, sum(active))
}
