// Package health serves the metrics address: /metrics for Prometheus,
// /livez (the process is up) and /readyz (its dependencies answer).
//
// It is mounted on the metrics address only, never on the proxy's: the proxy
// port carries nothing but judged operator calls. The package knows no
// Lockbox domain package; cmd/ passes in the registry and the checks (Redis
// takes writes, a policy loaded).
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// CheckTimeout bounds each readiness check. A dependency that hangs makes
// /readyz answer 503 after this long rather than hang the prober.
const CheckTimeout = time.Second

// checkGrace is how long past CheckTimeout readiness waits for checks that
// stop at their deadline.
const checkGrace = 250 * time.Millisecond

// Check is one readiness condition. Func returns nil when ready; its error
// string is shown on /readyz, so it must not carry secrets. A *Degraded
// error is ready too: /readyz passes, and Logged logs it.
type Check struct {
	Name string
	Func func(ctx context.Context) error
	// Metrics, if not nil, are the check's own, served on /metrics with
	// the registry's: Func keeps them, at each probe.
	Metrics prometheus.Collector
}

// Degraded is what a check returns when it is ready though part of what
// it asks about is not: taking the replica out of service would help no
// call (every replica sees the same), so /readyz passes, and the log
// (Logged) and a metric of the check's say what is wrong.
type Degraded struct{ Err error }

func (d *Degraded) Error() string { return d.Err.Error() }
func (d *Degraded) Unwrap() error { return d.Err }

// degraded reports whether err is a check's *Degraded: ready.
func degraded(err error) bool {
	var d *Degraded
	return errors.As(err, &d)
}

// Handler serves /metrics from reg (never the default registry), /livez and
// /readyz, which runs every check in ready concurrently.
func Handler(reg prometheus.Gatherer, ready ...Check) http.Handler {
	if reg == nil {
		panic("health: nil prometheus.Gatherer")
	}
	for _, c := range ready {
		if c.Name == "" || c.Func == nil {
			panic("health: check needs a name and a func")
		}
	}
	checks := append([]Check(nil), ready...)
	// The checks' metrics in a registry of their own: reg is a Gatherer,
	// which takes none.
	own := prometheus.NewRegistry()
	for _, c := range checks {
		if c.Metrics != nil {
			own.MustRegister(c.Metrics)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, own}, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failures := run(r.Context(), checks)
		if len(failures) == 0 {
			writeText(w, http.StatusOK, "ok\n")
			return
		}
		writeText(w, http.StatusServiceUnavailable, strings.Join(failures, ""))
	})
	return mux
}

// Logged returns c, logging each change of its answer: at warn, with the
// error, when it starts failing or fails for another reason, or passes
// degraded (*Degraded) or for another reason; at info when it passes
// again, or no longer degraded. /readyz tells its reason to the prober
// alone (a kubelet keeps a few words of it in an event), and nothing of
// a degraded pass; the log keeps it for the operator, once for each
// change rather than at every probe.
func Logged(logger *slog.Logger, c Check) Check {
	var (
		mu          sync.Mutex
		last        string // the reason it last failed or degraded for; "" while it passes
		lastDegrade bool
	)
	f := c.Func
	c.Func = func(ctx context.Context) error {
		err := f(ctx)
		reason, degrade := "", degraded(err)
		if err != nil {
			reason = oneLine(err.Error())
		}
		mu.Lock()
		was, wasDegrade := last, lastDegrade
		last, lastDegrade = reason, degrade
		mu.Unlock()
		switch {
		case reason == was && degrade == wasDegrade:
		case reason != "" && !degrade:
			logger.WarnContext(ctx, "readiness check failing: /readyz answers 503", "check", c.Name, "error", reason)
		case reason != "":
			logger.WarnContext(ctx, "readiness check degraded: /readyz answers 200", "check", c.Name, "error", reason)
		case wasDegrade:
			logger.InfoContext(ctx, "readiness check no longer degraded", "check", c.Name, "was", was)
		default:
			logger.InfoContext(ctx, "readiness check passing again", "check", c.Name, "was", was)
		}
		return err
	}
	return c
}

// ProbeInterval is how often Probe runs the readiness checks: a gauge a
// check keeps is at most this old when Prometheus reads it, well inside
// the 2 minutes its alert waits.
const ProbeInterval = 10 * time.Second

// Probe runs checks as /readyz does, at once and then every interval, until
// ctx ends; after times the waits (time.After when nil). What the checks
// keep, their metrics and Logged's line at each change of their answer,
// was only as fresh as the last /readyz: where nothing probes it (systemd,
// docker run), lockbox_redis_masters_refusing_writes kept its first value,
// its alert could never fire, and a Redis that stopped answering was never
// logged by the health component. /readyz still runs the checks itself, so
// a prober is told the state of the moment it asks, not of the last timer.
// A probe in progress when ctx ends runs to its end (CheckTimeout at
// most): cut short, each check would log a failure that is only the stop.
func Probe(ctx context.Context, interval time.Duration, after func(time.Duration) <-chan time.Time, checks ...Check) {
	if after == nil {
		after = time.After
	}
	for {
		run(context.WithoutCancel(ctx), checks)
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-after(interval):
		}
	}
}

// run runs checks concurrently, each under CheckTimeout, and returns one
// "name: error\n" line for each failure, in the order of checks.
func run(ctx context.Context, checks []Check) []string {
	results := make([]chan error, len(checks))
	for i, c := range checks {
		results[i] = make(chan error, 1) // buffered: a late check never blocks
		go func() {
			defer func() {
				// A panicking check would otherwise take the process down:
				// it runs outside net/http's per-request recovery.
				if p := recover(); p != nil {
					results[i] <- errors.New("check panicked")
				}
			}()
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			results[i] <- c.Func(cctx)
		}()
	}
	// One timer for all: checks run at once, so each had CheckTimeout by
	// the time it fires. It covers checks that ignore their ctx; the grace
	// lets a check that does honour it report its own error even on a
	// loaded machine, where its goroutine may wait a while to be scheduled.
	timeout := time.NewTimer(CheckTimeout + checkGrace)
	defer timeout.Stop()
	expired := false
	var failures []string
	for i, c := range checks {
		var err error
		if !expired {
			select {
			case err = <-results[i]:
			case <-timeout.C:
				expired = true
			}
		}
		if expired {
			// Past the deadline, take only what has finished.
			select {
			case err = <-results[i]:
			default:
				err = fmt.Errorf("no answer within %s", CheckTimeout)
			}
		}
		if err != nil && !degraded(err) {
			failures = append(failures, c.Name+": "+oneLine(err.Error())+"\n")
		}
	}
	return failures
}

// oneLine keeps an error to its line, so the body stays one line per check.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func writeText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// errReadOnly is /readyz's word for a Redis that answers READONLY.
var errReadOnly = errors.New("read-only replica: writes are refused (READONLY)")

// errWritableReplica is /readyz's word for a replica that takes writes
// (replica-read-only no): they stay on it, lost to the master.
var errWritableReplica = errors.New("writable replica: writes stay on it and never reach the master")

// RedisCheck is ready when c's Redis takes writes. Every role of Lockbox
// writes (the proxy its audit records, the API transitions, the jobs their
// sweeps), so a Redis that answers but refuses writes is as good as none:
// after a failover, a stale address points at the old master, now a
// read-only replica, and every call would fail on its first write.
//
// It appends to keys.ReadyProbe, a key nothing writes, only if it exists
// (XADD NOMKSTREAM): that is refused wherever Lockbox's own writes are
// (READONLY, NOREPLICAS, MISCONF) and, with no key to change, writes
// nothing. It is the command the audit log appends with, and is refused
// as it is when Redis is full under maxmemory-policy noeviction (OOM),
// which lets a delete through: a delete alone says ready while every
// approval and audited call fails. A replica configured with
// replica-read-only no takes that delete, and every other write, keeps
// them to itself and never passes them to its master, so it then asks
// HELLO for the server's role. HELLO, unlike ROLE (@admin, @dangerous) or
// INFO (@dangerous), is a command every ACL user may run, the one go-redis
// opens each connection with: the check needs no permission beyond
// Lockbox's own commands.
//
// On Redis Cluster it asks every master that owns slots instead (see
// clusterReady): the client sends each write to its slot's master and
// follows MOVED, so no address can leave it on a replica, but one PING
// reaches one node, which answers while the cluster refuses every call.
// Its metrics, lockbox_redis_masters_refusing_writes and
// lockbox_redis_masters_unanswered, count the masters that refused the
// write and those that did not answer at the last probe: ready or not, an
// operator can alert on them without reading the log. They are as fresh as
// the last probe, which Probe runs on a timer whether or not anything asks
// /readyz.
func RedisCheck(c redis.UniversalClient) Check {
	refusing := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lockbox_redis_masters_refusing_writes",
		Help: "Redis Cluster masters that answered the last readiness probe with cluster_state:ok but refused its write (OOM, NOREPLICAS, MISCONF); 0 on one Redis.",
	})
	unanswered := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lockbox_redis_masters_unanswered",
		Help: "Redis Cluster masters of the slot map that did not answer the last readiness probe (connection refused or lost, no answer within its time); 0 on one Redis.",
	})
	return Check{
		Name:    "redis",
		Metrics: collectors{refusing, unanswered},
		Func: func(ctx context.Context) error {
			if cc, ok := c.(*redis.ClusterClient); ok {
				n, err := clusterReady(ctx, cc)
				refusing.Set(float64(n.refused))
				unanswered.Set(float64(n.unanswered))
				return err
			}
			if err := probeWrite(ctx, c, keys.ReadyProbe()); err != nil {
				return err
			}
			role, err := HelloRole(ctx, c)
			if err != nil {
				return err
			}
			if role != "master" {
				return errWritableReplica
			}
			return nil
		},
	}
}

// collectors is several collectors as one, for a check with more than
// one metric.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// probeWrite asks c's server whether it takes writes on key's slot,
// writing nothing: it appends to key, a key nothing writes, only if it
// exists (XADD NOMKSTREAM). It returns errReadOnly for READONLY, and
// Redis's own refusal (NOREPLICAS, OOM, MISCONF) otherwise. One command,
// not a pipeline: a pipeline's client waits out its deadline on a server
// that refuses the connection, where a command reports the refusal.
func probeWrite(ctx context.Context, c redis.Cmdable, key string) error {
	err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, NoMkStream: true, Values: []any{"probe", "1"}}).Err()
	switch {
	case errors.Is(err, redis.Nil):
		// No stream, so nothing appended: the answer a ready server gives.
		return nil
	case err == nil:
		// The key exists, so something wrote it, and the append just
		// added to it: remove it, so the next probe writes nothing again.
		return c.Del(ctx, key).Err()
	case redis.IsReadOnlyError(err):
		return errReadOnly
	}
	return err
}

// errNoMaster is /readyz's word for a cluster in which no master owns a
// slot: every key would be refused.
var errNoMaster = errors.New("no master owns a hash slot")

// clusterReady is ready when the cluster serves keys as Redis itself
// judges it: the masters that own slots and answer CLUSTER INFO all say
// cluster_state:ok, and at least one of them takes writes on a slot it
// owns (probeWrite, on a key of that slot: a master refuses a write for
// another slot's key with MOVED before it weighs anything else). A
// cluster that refuses every key (cluster_state:fail: a slot uncovered
// under cluster-require-full-coverage yes, this side of a partition in
// the minority, a master found failing with no replica to take over)
// fails the check on every replica; a PING to one node answered all
// along.
//
// A master that does not answer, while the others say ok, does not fail
// it (it passes *Degraded, naming the master, and counts it): the others
// still serve their slots' tenants (the cluster stays ok
// only under cluster-require-full-coverage no, the operator's choice of
// partial service, or until the others mark it failing), and a sidecar
// can't tell whose call comes next: taking every replica out of service
// would turn a third of the tenants' outage into everyone's. A master
// that answers but refuses writes (OOM under noeviction, NOREPLICAS under
// min-replicas-to-write, MISCONF) is weighed alike, for the same reason:
// every replica sees the same cluster, so none could serve its tenants
// better, and their calls fail closed (503) all the same. While another
// master takes writes, the check passes *Degraded, naming the refusing
// masters; it fails, naming them, when none does. A master is named when
// none answers at all.
// CLUSTER INFO, CLUSTER NODES and the CLUSTER SLOTS the client reads are
// @slow commands only, which every ACL user may be given: no @admin or
// @dangerous one.
//
// It returns how many masters refused the write, and how many did not
// answer, ready or not. A master that did not answer was silent while
// another took writes: no log line and no metric, though its tenants'
// calls failed. The masters are asked at once, so the check costs three
// round trips to the slowest of them, plus the slot map's reload.
func clusterReady(ctx context.Context, c *redis.ClusterClient) (masterCounts, error) {
	// ForEachMaster first reloads the slot map, asking one node after
	// another under the context it is given. A node that hangs rather
	// than refuses (a frozen replica) would hold that context to its
	// deadline and fail the check, though every master answers; so the
	// reload gets a quarter of the time (CLUSTER SLOTS takes a
	// millisecond), and past it ForEachMaster takes the map the client
	// holds, while the masters are asked under ctx.
	rctx, cancel := context.WithTimeout(ctx, reloadBudget(ctx))
	defer cancel()
	var (
		mu                          sync.Mutex
		asked, writable             int
		failed, refused, unanswered []string
	)
	probe := func(_ context.Context, m *redis.Client) error {
		state, slot, err := masterState(ctx, m)
		var writeErr error
		if err == nil && state == "ok" && slot >= 0 {
			writeErr = probeWrite(ctx, m, keys.ReadyProbeIn(keys.SlotTag(slot)))
		}
		mu.Lock()
		defer mu.Unlock()
		asked++
		switch {
		case err != nil:
			unanswered = append(unanswered, "master "+m.Options().Addr+": "+err.Error())
		case state != "ok":
			failed = append(failed, "master "+m.Options().Addr+": cluster_state:"+state)
		case writeErr == nil || redirected(writeErr):
			// A slot that moved since the master named it is no refusal:
			// the next probe asks about one it owns.
			writable++
		case refusal(writeErr):
			refused = append(refused, "master "+m.Options().Addr+": "+writeErr.Error())
		default:
			// Answered the state, then not the write (a timeout, a
			// connection lost): as a master that does not answer.
			unanswered = append(unanswered, "master "+m.Options().Addr+": "+writeErr.Error())
		}
		// Never an error: ForEachMaster would stop asking the others.
		return nil
	}
	err := c.ForEachMaster(rctx, probe)
	if err != nil && asked == 0 && ctx.Err() == nil {
		// The client held no map to fall back on (none read yet): read
		// one with the time that is left.
		err = c.ForEachMaster(ctx, probe)
	}
	// Every master at fault, in a stable order: an operator sees them all
	// at once, and two probes of one state read alike.
	named := func(lists ...[]string) error {
		all := slices.Concat(lists...)
		slices.Sort(all)
		return errors.New(strings.Join(all, "; "))
	}
	n := masterCounts{refused: len(refused), unanswered: len(unanswered)}
	switch {
	case len(failed) > 0:
		return n, named(failed, refused)
	case writable > 0 && len(refused)+len(unanswered) > 0:
		return n, &Degraded{Err: named(refused, unanswered)}
	case writable > 0:
		return n, nil
	case len(refused) > 0:
		return n, named(refused, unanswered)
	case len(unanswered) > 0:
		return n, named(unanswered)
	case err != nil:
		return n, fmt.Errorf("cluster slots: %w", err)
	}
	return n, errNoMaster
}

// masterCounts are the masters of one cluster probe that refused its
// write, and that did not answer.
type masterCounts struct{ refused, unanswered int }

// reloadBudget is the time clusterReady gives the slot map's reload: a
// quarter of what is left of ctx, or of CheckTimeout without a deadline.
func reloadBudget(ctx context.Context) time.Duration {
	left := CheckTimeout
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	return left / 4
}

// masterState asks one master, through m, for the cluster's state as it
// sees it ("ok" or "fail") and, when ok, for a hash slot it owns, to ask
// it about writes there: -1 when it owns none (it lost them
// since the client's slot map was read) or each is moving to or from
// another node (a probe's key there may be answered with ASK).
func masterState(ctx context.Context, m *redis.Client) (string, int, error) {
	info, err := m.ClusterInfo(ctx).Result()
	if err != nil {
		return "", -1, err
	}
	for line := range strings.Lines(info) {
		if k, v, _ := strings.Cut(strings.TrimSpace(line), ":"); k == "cluster_state" {
			if v != "ok" {
				return v, -1, nil
			}
			nodes, err := m.ClusterNodes(ctx).Result()
			if err != nil {
				return "", -1, err
			}
			return v, ownSlot(nodes), nil
		}
	}
	return "", -1, errors.New("CLUSTER INFO without cluster_state")
}

// ownSlot returns the first hash slot that the node whose CLUSTER NODES
// reply this is ("myself") owns and is not moving, or -1. A line is
// "id addr flags master ping pong epoch link slot...", each slot entry a
// number, a range "a-b", or, for a slot moving, "[n->-id]" or "[n-<-id]".
func ownSlot(nodes string) int {
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) < 8 || !slices.Contains(strings.Split(f[2], ","), "myself") {
			continue
		}
		moving := map[int]bool{}
		for _, e := range f[8:] {
			if n, _, ok := strings.Cut(strings.TrimPrefix(e, "["), "-"); ok && strings.HasPrefix(e, "[") {
				if slot, err := strconv.Atoi(n); err == nil {
					moving[slot] = true
				}
			}
		}
		for _, e := range f[8:] {
			if strings.HasPrefix(e, "[") {
				continue
			}
			lo, hi, isRange := strings.Cut(e, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				continue
			}
			for slot := a; slot <= b && slot < keys.Slots; slot++ {
				if slot >= 0 && !moving[slot] {
					return slot
				}
			}
		}
		return -1
	}
	return -1
}

// refusal reports whether err is Redis's own answer refusing a command
// (OOM, NOREPLICAS, MISCONF, READONLY), not a failure to get one.
func refusal(err error) bool {
	var re redis.Error
	return errors.Is(err, errReadOnly) || errors.As(err, &re)
}

// redirected reports whether err is a cluster node's redirection (MOVED,
// ASK): the key's slot is served elsewhere now.
func redirected(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}

// HelloRole returns the role ("master", "replica") HELLO reports for the
// server of c, a client or one connection.
func HelloRole(ctx context.Context, c Processor) (string, error) {
	h, err := Hello(ctx, c)
	if err != nil {
		return "", err
	}
	if h["role"] == "" {
		return "", errors.New("HELLO names no role")
	}
	return h["role"], nil
}

// Processor runs a command: a client, or one of its connections.
type Processor interface {
	Process(ctx context.Context, cmd redis.Cmder) error
}

// Hello returns the text fields of HELLO's reply for the server of c
// ("mode": "standalone", "sentinel" or "cluster"; "role": "master" or
// "replica", which a sentinel's reply lacks). HELLO without a protocol
// version changes nothing on the connection, and every ACL user may run
// it (ROLE and INFO are @admin and @dangerous); its reply is a map in
// RESP3 and a flat list of names and values in RESP2.
func Hello(ctx context.Context, c Processor) (map[string]string, error) {
	cmd := redis.NewCmd(ctx, "HELLO")
	_ = c.Process(ctx, cmd)
	v, err := cmd.Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	switch r := v.(type) {
	case map[any]any:
		for k, v := range r {
			ks, _ := k.(string)
			if vs, ok := v.(string); ok && ks != "" {
				out[ks] = vs
			}
		}
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			ks, _ := r[i].(string)
			if vs, ok := r[i+1].(string); ok && ks != "" {
				out[ks] = vs
			}
		}
	default:
		return nil, fmt.Errorf("HELLO answered a %T", v)
	}
	return out, nil
}
