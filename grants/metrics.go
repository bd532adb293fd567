package grants

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// metrics of the lifecycle. Labels are closed sets (actions, states,
// stages); tenants and ids belong in the audit log, not in labels.
type metrics struct {
	transitions *prometheus.CounterVec
	created     prometheus.Counter
	decisions   *prometheus.CounterVec
	deleted     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, rdb redis.UniversalClient, now func() time.Time) *metrics {
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
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lockbox_requests_deleted_total",
			Help: "Ended requests request retention (LOCKBOX_REQUEST_RETENTION) deleted, with their history and index entries.",
		}),
	}
	for _, stage := range []string{"manager", "tenant"} {
		for _, d := range []Action{ActionApprove, ActionDeny} {
			m.decisions.WithLabelValues(stage, string(d))
		}
	}
	if reg != nil {
		reg.MustRegister(m.transitions, m.created, m.decisions, m.deleted, &gauges{rdb: rdb, now: now})
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
	// The two timestamps let alerts ask "how close" and "how long" without
	// a label per request: only the extreme request matters to an alert,
	// and the rest are in the request list.
	nextDeadlineDesc = prometheus.NewDesc("lockbox_requests_pending_next_deadline_timestamp_seconds",
		"Unix time at which the pending request nearest its deadline expires undecided (each stage has 12 h); absent when none is pending.", nil, nil)
	oldestGrantDesc = prometheus.NewDesc("lockbox_grants_active_oldest_start_timestamp_seconds",
		"Unix time at which the longest-open active grant was approved; absent when no grant is active.", nil, nil)
)

// gauges reads the pending and active requests from Redis at scrape time,
// so every replica reports the same, true numbers (of the tenants the sweep
// schedule lists: a tenant whose schedule entry was lost is counted again
// after the next rescan). A scrape that can't reach
// Redis reports nothing rather than a stale value.
//
// The counts and the next deadline leave out what time alone has ended and
// no sweep has written yet (the sweep is late, or no replica runs the
// jobs): a grant past its expiry, which the proxy no longer honours, is not
// active, and a request past its decision deadline awaits no one. The oldest grant's start still
// counts every grant the sweep has not ended: LockboxGrantPastMaximum
// reads it to tell that the sweep is not running.
type gauges struct {
	rdb redis.UniversalClient
	now func() time.Time
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- activeDesc
	ch <- nextDeadlineDesc
	ch <- oldestGrantDesc
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Only tenants with a request deadline (a pending request or an active
	// grant) are in the sweep's schedule: the scrape's cost follows them,
	// not the number of tenants.
	tenants, err := due.New(g.rdb, due.Sweep, nil).Tenants(ctx)
	if err != nil {
		return
	}
	type tenantCmds struct {
		tenant          string
		pending, active *redis.IntCmd
		next            *redis.ZSliceCmd // the pending request nearest a deadline still ahead
		activeIDs       *redis.StringSliceCmd
	}
	var cmds []tenantCmds
	// Set scores are Unix milliseconds of the deadline (see score); a
	// deadline at now has passed.
	open := &redis.ZRangeBy{Min: "(" + strconv.FormatInt(g.now().UnixMilli(), 10), Max: "+inf"}
	if _, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tenants {
			if keys.ValidTenant(t) != nil {
				continue
			}
			cmds = append(cmds, tenantCmds{
				tenant:  t,
				pending: p.ZCount(ctx, keys.TenantPending(t), open.Min, open.Max),
				active:  p.ZCount(ctx, keys.TenantActive(t), open.Min, open.Max),
				// Like the count, the deadline leaves out what time has
				// ended and no sweep has written yet: such a request
				// awaits no one, and "expires within the hour" would fire
				// for it, at a time already past, for as long as the
				// sweep is late, hiding the request that does expire next.
				next:      p.ZRangeByScoreWithScores(ctx, keys.TenantPending(t), &redis.ZRangeBy{Min: open.Min, Max: open.Max, Count: 1}),
				activeIDs: p.ZRange(ctx, keys.TenantActive(t), 0, -1),
			})
		}
		return nil
	}); err != nil {
		return
	}
	var pending, active, unswept int64
	nextDeadline := math.Inf(1)
	for _, c := range cmds {
		pending += c.pending.Val()
		active += c.active.Val()
		unswept += int64(len(c.activeIDs.Val()))
		if z := c.next.Val(); len(z) > 0 {
			nextDeadline = min(nextDeadline, z[0].Score)
		}
	}
	// The active set is ordered by expiry, and a short grant approved late
	// can end before a long one approved early, so the oldest approval
	// needs each active request. There are few: one per engineer and
	// service at most, each for at most 4 h.
	var reqs []*redis.StringCmd
	if unswept > 0 {
		if _, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range cmds {
				for _, id := range c.activeIDs.Val() {
					reqs = append(reqs, p.Get(ctx, keys.Request(c.tenant, id)))
				}
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return
		}
	}
	oldestStart := math.Inf(1)
	for _, r := range reqs {
		var req struct {
			ApprovedAt *time.Time `json:"approved_at"`
		}
		if b, err := r.Bytes(); err != nil || json.Unmarshal(b, &req) != nil || req.ApprovedAt == nil {
			continue // gone or unreadable: the counts above are what alerts trust
		}
		oldestStart = min(oldestStart, float64(req.ApprovedAt.UnixNano())/1e9)
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(active))
	if !math.IsInf(nextDeadline, 1) {
		// Set scores are Unix milliseconds (see score).
		ch <- prometheus.MustNewConstMetric(nextDeadlineDesc, prometheus.GaugeValue, nextDeadline/1e3)
	}
	if !math.IsInf(oldestStart, 1) {
		ch <- prometheus.MustNewConstMetric(oldestGrantDesc, prometheus.GaugeValue, oldestStart)
	}
}
