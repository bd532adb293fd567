package health

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// How long a test waits for a cluster to settle after it changed it: a
// restarted master holds cluster_state:fail for a rejoin delay of its
// own, and slot ownership travels by gossip. Generous, for a machine
// loaded far beyond its cores; the tests take what the cluster takes.
const settle = 60 * time.Second

// The cluster tests run in parallel: each starts a cluster of its own,
// and most of its time is spent waiting for that cluster (a node timeout,
// a rejoin, gossip), not working.

// The ACL user the cluster tests read as: Lockbox's keys, and no @admin
// or @dangerous command (ROLE, INFO, CONFIG), as a deployment may give it.
const (
	aclUser = "lockbox"
	aclPass = "secret-pass"
)

// restrict gives the node at addr the ACL user Lockbox connects as. A
// cluster shares no ACL: each node, and each restart of it, needs its own.
func restrict(t *testing.T, addr string) {
	t.Helper()
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	if err := admin.Do(context.Background(), "ACL", "SETUSER", aclUser, "on", ">"+aclPass, "~lockbox:*", "&*",
		"+@all", "-@admin", "-@dangerous").Err(); err != nil {
		t.Fatal(err)
	}
}

// clusterClient is a client of cl configured as lockbox serve configures
// one for LOCKBOX_REDIS_CLUSTER_ADDRS, signed in as the restricted user.
func clusterClient(t *testing.T, cl *redistest.Cluster) *redis.ClusterClient {
	t.Helper()
	for _, n := range cl.Nodes {
		restrict(t, n.Addr)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: cl.Addrs(), Username: aclUser, Password: aclPass,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		ContextTimeoutEnabled: true, MaxRedirects: 8,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// onEveryNode runs a command on each node of cl as its default user, the
// nodes at first (if any of them) first.
func onEveryNode(t *testing.T, cl *redistest.Cluster, first string, args ...any) {
	t.Helper()
	addrs := cl.Addrs()
	if i := slices.Index(addrs, first); i > 0 {
		addrs[0], addrs[i] = addrs[i], addrs[0]
	}
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		err := c.Do(context.Background(), args...).Err()
		c.Close()
		if err != nil {
			t.Fatalf("%s on %s: %v", args, addr, err)
		}
	}
}

// unassignAll leaves no slot assigned on any node of cl. A master's
// heartbeats claim its slots, and a node that sees an unassigned slot
// claimed takes the claim: so every master first stops claiming its own
// (FLUSHSLOTS; the cluster holds no key), and only then does each node
// forget the others'.
func unassignAll(t *testing.T, cl *redistest.Cluster) {
	t.Helper()
	ctx := context.Background()
	onEveryNode(t, cl, "", "CLUSTER", "FLUSHSLOTS")
	for _, addr := range cl.Addrs() {
		c := redis.NewClient(&redis.Options{Addr: addr})
		slots, err := c.ClusterSlots(ctx).Result()
		for _, r := range slots {
			if err == nil {
				err = c.Do(ctx, "CLUSTER", "DELSLOTSRANGE", r.Start, r.End).Err()
			}
		}
		c.Close()
		if err != nil {
			t.Fatalf("unassign the slots on %s: %v", addr, err)
		}
	}
}

// knownUp waits until no node of addrs flags another as failing
// (CLUSTER NODES' "fail" or "fail?").
func knownUp(t *testing.T, addrs []string) {
	t.Helper()
	var flagged string
	for end := time.Now().Add(settle); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		flagged = ""
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			nodes, err := c.ClusterNodes(context.Background()).Result()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(nodes, "\n") {
				if f := strings.Fields(line); len(f) > 2 && strings.Contains(f[2], "fail") {
					flagged = a + ": " + line
				}
			}
		}
		if flagged == "" {
			return
		}
	}
	t.Fatalf("a node is still flagged failing: %s", flagged)
}

// readyWithin probes /readyz until it answers 200, failing t (with the
// last answer) if it does not within settle.
func readyWithin(t *testing.T, h http.Handler) {
	t.Helper()
	var code int
	var body string
	for end := time.Now().Add(settle); time.Now().Before(end); {
		if code, body = get(t, h, "/readyz"); code == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz never became ready: %d %q", code, body)
}

// everyMaster is the /readyz body of a cluster whose every master, of
// addrs, fails with the same error.
func everyMaster(addrs []string, err string) string {
	addrs = slices.Sorted(slices.Values(addrs))
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = "master " + a + ": " + err
	}
	return "redis: " + strings.Join(parts, "; ") + "\n"
}

// TestRedisCheckClusterMasterDown: on Redis Cluster, a master that does
// not answer fails /readyz only once the cluster refuses keys for it. Under
// cluster-require-full-coverage no the other masters keep serving their
// tenants and say ok, and every replica stays ready: out of service, they
// would fail every tenant's call, not a third of them. Under yes, the
// others mark it failing and refuse every key: /readyz fails, naming them,
// and passes again once the master is back. A PING reached one node,
// which answered while the cluster refused every call.
func TestRedisCheckClusterMasterDown(t *testing.T) {
	t.Parallel()
	cl := redistest.StartOwnCluster(t, 3, 0)
	h := Handler(prometheus.NewRegistry(), RedisCheck(clusterClient(t, cl)))
	readyWithin(t, h)

	// No replica takes over: the cluster (cluster-require-full-coverage
	// no) still says ok, and serves the other masters' slots.
	down := cl.Nodes[1]
	down.Stop()
	for i := range 10 {
		if code, body := get(t, h, "/readyz"); code != http.StatusOK {
			t.Fatalf("probe %d with master %s down under full coverage no = %d %q, want 200", i, down.Addr, code, body)
		}
	}

	var others []string
	for _, a := range cl.Addrs() {
		if a != down.Addr {
			others = append(others, a)
		}
	}
	// Back, and known back by the others, before full coverage is
	// required: a node weighs the cluster's state again only when a node's
	// failure flag changes, not when the setting does, so the master must
	// fail anew under yes. Under load, the others may well have marked it
	// failing during the probes above, and would then say ok for good.
	if err := down.Restart(); err != nil {
		t.Fatal(err)
	}
	restrict(t, down.Addr)
	knownUp(t, others)
	for _, a := range cl.Addrs() {
		c := redis.NewClient(&redis.Options{Addr: a})
		err := c.ConfigSet(context.Background(), "cluster-require-full-coverage", "yes").Err()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	readyWithin(t, h)
	down.Stop()
	// The others refuse keys once they mark it failing (the node
	// timeout) and weigh their state again (each cron).
	want := everyMaster(others, "cluster_state:fail")
	var code int
	var body string
	for end := time.Now().Add(settle); time.Now().Before(end) && body != want; {
		code, body = get(t, h, "/readyz")
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("/readyz with master %s down under full coverage yes = %d %q, want 503 %q", down.Addr, code, body, want)
	}
	if strings.Contains(body, aclPass) {
		t.Fatalf("/readyz shows the password: %q", body)
	}

	if err := down.Restart(); err != nil {
		t.Fatal(err)
	}
	restrict(t, down.Addr)
	readyWithin(t, h)
}

// TestRedisCheckClusterSlotsUncovered: /readyz fails while the nodes
// refuse every key for a hash slot without a master
// (cluster-require-full-coverage yes: cluster_state:fail), though every
// master answers; under no, the operator's choice of partial service, the
// other slots' keys are served and it passes. It passes once the slot is
// served again, and fails when no slot has a master, with no master to
// ask. A PING was answered all along.
func TestRedisCheckClusterSlotsUncovered(t *testing.T) {
	t.Parallel()
	cl := redistest.StartOwnCluster(t, 3, 0)
	h := Handler(prometheus.NewRegistry(), RedisCheck(clusterClient(t, cl)))
	readyWithin(t, h)
	ctx := context.Background()
	owner, err := cl.MasterOf(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	// A node weighs its state again when its slots change, before it
	// answers its next command.
	onEveryNode(t, cl, "", "CONFIG", "SET", "cluster-require-full-coverage", "yes")
	// The owner first: once it no longer claims the slot, no node can
	// learn it again from its heartbeats.
	onEveryNode(t, cl, owner, "CLUSTER", "DELSLOTS", 0)
	want := everyMaster(cl.Addrs(), "cluster_state:fail")
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("/readyz with the cluster down = %d %q, want 503 %q", code, body, want)
	}

	// A node in cluster_state:fail weighs it again at each cron (every
	// 100 ms) and turns ok: the other slots are served.
	onEveryNode(t, cl, "", "CONFIG", "SET", "cluster-require-full-coverage", "no")
	readyWithin(t, h)

	c := redis.NewClient(&redis.Options{Addr: owner})
	defer c.Close()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTS", 0).Err(); err != nil {
		t.Fatal(err)
	}
	readyWithin(t, h)

	// No slot at all: no master to ask, and none to serve a key.
	unassignAll(t, cl)
	want = "redis: no master owns a hash slot\n"
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("/readyz with no slot assigned = %d %q, want 503 %q", code, body, want)
	}
}

// TestRedisCheckClusterFrozenReplica: a node that hangs without owning a
// slot (a replica stopped with SIGSTOP, as a frozen VM is) does not fail
// /readyz, on any probe: the client reloads the slot map from whichever
// node it picks first, and one that never answers must not take the
// whole deadline, and the probe, with it.
func TestRedisCheckClusterFrozenReplica(t *testing.T) {
	t.Parallel()
	cl := redistest.StartOwnCluster(t, 3, 1)
	h := Handler(prometheus.NewRegistry(), RedisCheck(clusterClient(t, cl)))
	readyWithin(t, h)
	ctx := context.Background()
	masters, err := cl.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var replica *redistest.Server
	for _, n := range cl.Nodes {
		if !slices.Contains(masters, n.Addr) {
			replica = n
			break
		}
	}
	if replica == nil {
		t.Fatalf("no replica among %v (masters %v)", cl.Addrs(), masters)
	}
	replica.Freeze(t)
	// Each probe reloads from a node picked at random: the frozen one
	// comes first in one of six.
	for i := range 30 {
		if code, body := get(t, h, "/readyz"); code != http.StatusOK {
			t.Fatalf("probe %d with replica %s frozen = %d %q, want 200", i, replica.Addr, code, body)
		}
	}
}

// hangFirst is a hook that holds the first command matching match until
// its context ends, as a node that hangs holds it, and passes the rest.
type hangFirst struct {
	match func(redis.Cmder) bool
	done  atomic.Bool
}

func (h *hangFirst) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *hangFirst) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.match(cmd) && h.done.CompareAndSwap(false, true) {
			<-ctx.Done()
			cmd.SetErr(ctx.Err())
			return ctx.Err()
		}
		return next(ctx, cmd)
	}
}
func (h *hangFirst) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRedisCheckClusterFirstMapHangs: a client that holds no slot map yet
// (a replica's first probe) and whose first node asked for one hangs
// reads it from another node with the rest of the check's time, and is
// ready: with no map to fall back on, the reload's share of the time
// alone would fail the probe.
func TestRedisCheckClusterFirstMapHangs(t *testing.T) {
	t.Parallel()
	cl := redistest.StartOwnCluster(t, 3, 0)
	c := clusterClient(t, cl)
	hang := &hangFirst{match: redistest.Command("cluster", "slots")}
	c.OnNewNode(func(n *redis.Client) { n.AddHook(hang) })
	if code, body := get(t, Handler(prometheus.NewRegistry(), RedisCheck(c)), "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with the first CLUSTER SLOTS hanging = %d %q, want 200", code, body)
	}
	if !hang.done.Load() {
		t.Fatal("no CLUSTER SLOTS was held: the test tested nothing")
	}
}

// lockedBuffer is a log's destination that a late check may write to
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns the log lines written since the last take, each its
// message and error.
func (b *lockedBuffer) take(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []string
	dec := json.NewDecoder(&b.buf)
	for dec.More() {
		var l struct{ Msg, Error string }
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l.Msg+": "+l.Error)
	}
	b.buf.Reset()
	return lines
}

// refusingMasters is the value of lockbox_redis_masters_refusing_writes
// on h's /metrics.
func refusingMasters(t *testing.T, h http.Handler) string {
	t.Helper()
	return metric(t, h, "lockbox_redis_masters_refusing_writes")
}

// metric is the value of the metric name, without labels, on h's
// /metrics.
func metric(t *testing.T, h http.Handler, name string) string {
	t.Helper()
	_, body := get(t, h, "/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s: %q", name, body)
	return ""
}

// TestRedisCheckClusterMasterRefusesWrites: a master that says
// cluster_state:ok but refuses writes (past its memory limit under
// noeviction, though it still takes a delete; or without the replicas
// min-replicas-to-write asks for) fails /readyz no more than one that
// does not answer: every replica sees the same cluster, so out of
// service they would fail every tenant's call rather than its tenants'
// alone, which fail closed meanwhile. /readyz passes, and the master is
// named in the log, with Redis's refusal, and counted by
// lockbox_redis_masters_refusing_writes. When no master takes writes,
// /readyz fails naming each. Ready, and counted 0, again once they take
// writes, and the probes left no key on any master.
func TestRedisCheckClusterMasterRefusesWrites(t *testing.T) {
	t.Parallel()
	cl := redistest.StartOwnCluster(t, 3, 0)
	var log lockedBuffer
	h := Handler(prometheus.NewRegistry(), Logged(slog.New(slog.NewJSONHandler(&log, nil)), RedisCheck(clusterClient(t, cl))))
	readyWithin(t, h)
	log.take(t)
	ctx := context.Background()
	sick, err := cl.MasterOf(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	set := func(addr string, kv ...string) {
		t.Helper()
		admin := redis.NewClient(&redis.Options{Addr: addr})
		defer admin.Close()
		for i := 0; i+1 < len(kv); i += 2 {
			if err := admin.ConfigSet(ctx, kv[i], kv[i+1]).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const (
		degraded = "readiness check degraded: /readyz answers 200: "
		failing  = "readiness check failing: /readyz answers 503: "
		oom      = "OOM command not allowed when used memory > 'maxmemory'."
	)

	for _, tt := range []struct {
		name   string
		config []string
		want   string
	}{
		{"out of memory", []string{"maxmemory-policy", "noeviction", "maxmemory", "1"}, oom},
		{"too few replicas", []string{"min-replicas-to-write", "1"},
			"NOREPLICAS Not enough good replicas to write."},
	} {
		set(sick, tt.config...)
		if code, body := get(t, h, "/readyz"); code != http.StatusOK || body != "ok\n" {
			t.Errorf("%s on master %s: /readyz = %d %q, want 200 \"ok\\n\"", tt.name, sick, code, body)
		}
		if got := refusingMasters(t, h); got != "1" {
			t.Errorf("%s on master %s: lockbox_redis_masters_refusing_writes = %s, want 1", tt.name, sick, got)
		}
		named := "master " + sick + ": " + tt.want
		if got, want := log.take(t), []string{degraded + named}; !slices.Equal(got, want) {
			t.Errorf("%s on master %s: logged %q, want %q", tt.name, sick, got, want)
		}
		set(sick, "maxmemory", "0", "min-replicas-to-write", "0")
		if code, body := get(t, h, "/readyz"); code != http.StatusOK {
			t.Errorf("%s, then taking writes again: /readyz = %d %q, want 200", tt.name, code, body)
		}
		if got := refusingMasters(t, h); got != "0" {
			t.Errorf("%s, then taking writes again: lockbox_redis_masters_refusing_writes = %s, want 0", tt.name, got)
		}
		log.take(t)
	}

	// No master takes writes: no call can succeed on any replica.
	for _, addr := range cl.Addrs() {
		set(addr, "maxmemory-policy", "noeviction", "maxmemory", "1")
	}
	want := everyMaster(cl.Addrs(), oom)
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || body != want {
		t.Errorf("every master out of memory: /readyz = %d %q, want 503 %q", code, body, want)
	}
	if got := refusingMasters(t, h); got != "3" {
		t.Errorf("every master out of memory: lockbox_redis_masters_refusing_writes = %s, want 3", got)
	}
	if got, want := log.take(t), []string{failing + strings.TrimSuffix(strings.TrimPrefix(want, "redis: "), "\n")}; !slices.Equal(got, want) {
		t.Errorf("every master out of memory: logged %q, want %q", got, want)
	}
	for _, addr := range cl.Addrs() {
		set(addr, "maxmemory", "0")
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("every master taking writes again: /readyz = %d %q, want 200", code, body)
	}

	for _, addr := range cl.Addrs() {
		c := redis.NewClient(&redis.Options{Addr: addr})
		n, err := c.DBSize(ctx).Result()
		c.Close()
		if err != nil || n != 0 {
			t.Errorf("node %s holds %d keys (%v) after the probes, want none", addr, n, err)
		}
	}
}

// TestRedisCheckClusterMasterUnanswered: a master that does not answer,
// while the others take writes, fails /readyz no more than before (every
// replica sees the same cluster), but it is no longer silent: the log
// names it once, as a degraded pass, and
// lockbox_redis_masters_unanswered counts it, at each probe, whether
// /readyz or the timer (Probe) runs it. Its tenants' calls fail
// meanwhile, and nothing said so. Counted 0 again once it answers.
func TestRedisCheckClusterMasterUnanswered(t *testing.T) {
	t.Parallel()
	cl := redistest.StartOwnCluster(t, 3, 0)
	var log lockedBuffer
	check := Logged(slog.New(slog.NewJSONHandler(&log, nil)), RedisCheck(clusterClient(t, cl)))
	h := Handler(prometheus.NewRegistry(), check)
	readyWithin(t, h)
	if got := metric(t, h, "lockbox_redis_masters_unanswered"); got != "0" {
		t.Fatalf("every master answering: lockbox_redis_masters_unanswered = %s, want 0", got)
	}
	log.take(t)

	down := cl.Nodes[1]
	down.Stop()
	for i := range 3 {
		if code, body := get(t, h, "/readyz"); code != http.StatusOK {
			t.Fatalf("probe %d with master %s down = %d %q, want 200", i, down.Addr, code, body)
		}
		if got := metric(t, h, "lockbox_redis_masters_unanswered"); got != "1" {
			t.Errorf("probe %d with master %s down: lockbox_redis_masters_unanswered = %s, want 1", i, down.Addr, got)
		}
	}
	if got := metric(t, h, "lockbox_redis_masters_refusing_writes"); got != "0" {
		t.Errorf("master %s down: lockbox_redis_masters_refusing_writes = %s, want 0", down.Addr, got)
	}
	lines := log.take(t)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "readiness check degraded: /readyz answers 200: master "+down.Addr+": ") {
		t.Errorf("master %s down: logged %q, want one degraded line naming it", down.Addr, lines)
	}

	// The timer's probe, with no /readyz: the gauge follows the master.
	if err := down.Restart(); err != nil {
		t.Fatal(err)
	}
	restrict(t, down.Addr)
	readyWithin(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Probe(ctx, ProbeInterval, func(time.Duration) <-chan time.Time { cancel(); close(waited); return nil }, check)
	}()
	<-waited
	<-done
	if got := metric(t, h, "lockbox_redis_masters_unanswered"); got != "0" {
		t.Errorf("master %s back: lockbox_redis_masters_unanswered = %s, want 0", down.Addr, got)
	}
}
