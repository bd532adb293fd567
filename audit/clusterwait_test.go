package audit

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/sendonce"
)

// clusterClientAsServed is a cluster client configured as lockbox serve
// configures one (internal/server.connect): deadlines honoured, nothing
// sent twice, eight redirections.
func clusterClientAsServed(t *testing.T, addrs []string, hooks ...redis.Hook) *redis.ClusterClient {
	t.Helper()
	rdb := sendonce.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRedirects: 8})
	for _, h := range hooks {
		rdb.OnNewNode(func(n *redis.Client) { n.AddHook(h) })
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// waitDelay holds the answer of every node round trip that carries a WAIT
// or WAITAOF for d after Redis answered (or until the round trip's
// deadline): the time a wait for replicas or for an fsync takes. (The
// installed Redis 7.0 has no WAITAOF; with LOCKBOX_AUDIT_AOF and the
// documented appendfsync everysec, WAITAOF waits up to a second for the
// next fsync.)
type waitDelay struct{ d time.Duration }

func (waitDelay) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (waitDelay) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h waitDelay) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if n := strings.ToLower(c.Name()); n == "wait" || n == "waitaof" {
				select {
				case <-time.After(h.d):
				case <-ctx.Done():
					c.SetErr(ctx.Err())
					return ctx.Err()
				}
				break
			}
		}
		return err
	}
}

// TestClusterWaitsOnePipelineANode: with LOCKBOX_AUDIT_REPLICAS (or
// LOCKBOX_AUDIT_AOF) on a Redis Cluster, a batch's tenants were written one
// after the other, each in a round trip of its own with its own wait, all
// under the one batch timeout. A wait that takes 300 ms (a replica in
// another zone; WAITAOF's fsync with appendfsync everysec takes up to a
// second) lets a 1 s batch hold three tenants: the records of the fourth
// and fifth tenant of the batch are refused (their calls get 503
// audit_unavailable), though every node is healthy and each record would
// have been durable in 300 ms - and under load with many tenants, most
// batches hold that many. Each master now gets one pipeline, its tenants'
// scripts then one wait, the masters side by side.
func TestClusterWaitsOnePipelineANode(t *testing.T) {
	sc := redistest.SharedCluster(t)
	rdb := clusterClientAsServed(t, sc.Addrs(), waitDelay{300 * time.Millisecond})
	tenants := []string{"contoso", "fabrikam", "northwind", "adatum", "tailspin"}
	f := newBatchFixture(t, rdb, rdb.Pipeline(), tenants...)
	g, err := NewGroupCommit(GroupCommitConfig{Log: f.log, Timeout: time.Second, Durability: Durability{Replicas: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	w := newBatchWriter(g, rdb.Pipeline())
	// Warm up: the script loaded on every master.
	for _, tenant := range tenants {
		p := f.pending(t, tenant)
		w.write([]*pending{p})
		if err := <-p.done; err != nil {
			t.Fatalf("warm-up %s: %v", tenant, err)
		}
	}
	var batch []*pending
	for _, tenant := range tenants {
		batch = append(batch, f.pending(t, tenant))
	}
	start := time.Now()
	w.write(batch)
	took := time.Since(start)
	var failed []string
	for _, p := range batch {
		if err := <-p.done; err != nil {
			failed = append(failed, p.tenant+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		t.Errorf("one batch of %d tenants, each wait 300 ms, batch timeout 1s: took %v, refused %q", len(tenants), took, failed)
	}
	// Each record is in its tenant's log once, its chain intact.
	for _, tenant := range tenants {
		if n, err := rdb.XLen(context.Background(), keys.Audit(tenant)).Result(); err != nil || n != 2 {
			t.Errorf("%s: %d records (%v), want the warm-up's and the batch's", tenant, n, err)
		}
	}
}

// TestClusterHungMasterFailsOnlyItsTenants: a batch spanning two masters,
// one of them hung (SIGSTOP: a frozen VM). In one cluster pipeline the
// healthy master's tenants were answered only when the hung one timed out,
// and go-redis stamped that timeout on every command of the pipeline: the
// healthy tenant's record was written and its caller told it failed (a
// call refused, 503, with its record in the log). Each master's callers
// are now answered from its own pipeline, as soon as it returns.
func TestClusterHungMasterFailsOnlyItsTenants(t *testing.T) {
	c := redistest.StartOwnCluster(t, 3, 0)
	rdb := clusterClientAsServed(t, c.Addrs())
	ctx := context.Background()
	f := newBatchFixture(t, rdb, rdb.Pipeline(), "contoso", "fabrikam")
	healthy, hung := twoMasters(t, rdb)
	const timeout = 500 * time.Millisecond
	g, err := NewGroupCommit(GroupCommitConfig{Log: f.log, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	w := newBatchWriter(g, rdb.Pipeline())
	for _, tenant := range []string{"contoso", "fabrikam"} { // the script loaded on both
		p := f.pending(t, tenant)
		w.write([]*pending{p})
		if err := <-p.done; err != nil {
			t.Fatalf("before the freeze: %s: %v", tenant, err)
		}
	}
	thaw := nodeAt(t, c, hung.Options().Addr).Freeze(t)
	defer thaw()
	ok, stuck := f.pending(t, "contoso"), f.pending(t, "fabrikam")
	start := time.Now()
	written := make(chan struct{})
	go func() {
		w.write([]*pending{stuck, ok})
		close(written)
	}()
	err = <-ok.done
	took := time.Since(start)
	if err != nil || took >= timeout/2 {
		t.Errorf("contoso, on a healthy master, in a batch with fabrikam's hung one: %v after %v (timeout %v); want written at once", err, took, timeout)
	}
	<-written
	if err := <-stuck.done; err == nil {
		t.Error("fabrikam's record was acknowledged by a hung master")
	}
	thaw()
	if n, err := healthy.XLen(ctx, keys.Audit("contoso")).Result(); err != nil || n != 2 {
		t.Errorf("contoso's log holds %d records (%v), want 2", n, err)
	}
}

// TestClusterHungMasterHoldsNoOtherMastersRecords: with one master hung,
// the records of tenants on the other masters are still written at once,
// batch after batch. Each batch's masters were written side by side, but
// one writer wrote one batch at a time: the next batch waited for the hung
// master's timeout, and every tenant's calls were refused (503
// audit_unavailable) or held for the whole timeout while one master of
// three was frozen. Each master now has writers of its own.
func TestClusterHungMasterHoldsNoOtherMastersRecords(t *testing.T) {
	c := redistest.StartOwnCluster(t, 3, 0)
	sent := &sentFor{key: keys.Audit("fabrikam"), ch: make(chan struct{})}
	rdb := clusterClientAsServed(t, c.Addrs(), sent)
	ctx := context.Background()
	f := newBatchFixture(t, rdb, rdb.Pipeline(), "contoso", "fabrikam")
	healthy, hung := twoMasters(t, rdb)
	const timeout = 600 * time.Millisecond
	// Batches of one record, queues of four: fabrikam's fills below.
	g, err := NewGroupCommit(GroupCommitConfig{Log: f.log, Timeout: timeout, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	for _, tenant := range []string{"contoso", "fabrikam"} { // scripts loaded, GUIDs read
		if _, err := g.Append(ctx, operatorAction(tenant)); err != nil {
			t.Fatalf("before the freeze: %s: %v", tenant, err)
		}
	}
	thaw := nodeAt(t, c, hung.Options().Addr).Freeze(t)
	defer thaw()
	sent.arm()
	stuck := make(chan error, 1)
	go func() {
		_, err := g.Append(ctx, operatorAction("fabrikam"))
		stuck <- err
	}()
	<-sent.ch // fabrikam's batch is on its way to the hung master
	for i := range 5 {
		start := time.Now()
		_, err := g.Append(ctx, operatorAction("contoso"))
		if took := time.Since(start); err != nil || took >= timeout/2 {
			t.Fatalf("contoso's record %d, on a healthy master, while fabrikam's master is hung: %v after %v (timeout %v); want written at once", i, err, took, timeout)
		}
	}
	// Behind the record in flight, four of fabrikam's fill its master's
	// queue and two more wait for room: none is acknowledged, and none
	// holds contoso's up.
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := g.Append(ctx, operatorAction("fabrikam")); err == nil {
				t.Error("fabrikam's record was acknowledged by a hung master")
			}
		})
	}
	start := time.Now()
	if _, err := g.Append(ctx, operatorAction("contoso")); err != nil || time.Since(start) >= timeout/2 {
		t.Fatalf("contoso, beside fabrikam's full queue: %v after %v", err, time.Since(start))
	}
	if err := <-stuck; err == nil {
		t.Error("fabrikam's record was acknowledged by a hung master")
	}
	wg.Wait()
	thaw()
	if n, err := healthy.XLen(ctx, keys.Audit("contoso")).Result(); err != nil || n != 7 {
		t.Errorf("contoso's log holds %d records (%v), want 7", n, err)
	}
}

// nodeAt returns c's node at addr.
func nodeAt(t *testing.T, c *redistest.Cluster, addr string) *redistest.Server {
	t.Helper()
	for _, n := range c.Nodes {
		_, port, _ := strings.Cut(n.Addr, ":")
		if strings.HasSuffix(addr, ":"+port) {
			return n
		}
	}
	t.Fatalf("no node at %s", addr)
	return nil
}

// sentFor closes ch, once armed, when a pipeline naming key is sent.
type sentFor struct {
	key   string
	ch    chan struct{}
	armed atomic.Bool
	once  sync.Once
}

func (h *sentFor) arm() { h.armed.Store(true) }

func (*sentFor) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*sentFor) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *sentFor) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.armed.Load() {
			for _, c := range cmds {
				for _, a := range c.Args() {
					if a == h.key {
						h.once.Do(func() { close(h.ch) })
					}
				}
			}
		}
		return next(ctx, cmds)
	}
}

// TestClusterLaneOfAnIdleMasterCloses: a master's lane (its queue and
// writer) is closed once unused for laneIdle, the others kept, and started
// again by the master's next record. A failover or a node replaced leaves
// an address no record is routed to again: its writer would stay for the
// life of the process, one more at each.
func TestClusterLaneOfAnIdleMasterCloses(t *testing.T) {
	rdb := clusterClientAsServed(t, redistest.SharedCluster(t).Addrs())
	ctx := context.Background()
	tenants := []string{"contoso", "fabrikam"}
	f := newBatchFixture(t, rdb, rdb.Pipeline(), tenants...)
	twoMasters(t, rdb)
	writers := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "audit.(*GroupCommit).writer(")
	}
	waitWriters := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); writers() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("%d writers, want %d", writers(), want)
			}
			runtime.Gosched()
		}
	}
	base := writers()
	clk := clock.NewFake(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	g, err := NewGroupCommit(GroupCommitConfig{Log: f.log, now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	appendFor := func(tenant string) {
		t.Helper()
		if _, err := g.Append(ctx, operatorAction(tenant)); err != nil {
			t.Fatalf("%s: %v", tenant, err)
		}
	}
	appendFor("contoso")
	appendFor("fabrikam")
	waitWriters(base + 2)
	clk.Advance(laneIdle - time.Minute)
	appendFor("contoso")
	clk.Advance(time.Minute)
	appendFor("contoso") // fabrikam's master unused for laneIdle: its lane closes
	waitWriters(base + 1)
	appendFor("fabrikam")
	waitWriters(base + 2)
	for _, tenant := range tenants {
		if n, err := rdb.XLen(ctx, keys.Audit(tenant)).Result(); err != nil || n != map[string]int64{"contoso": 3, "fabrikam": 2}[tenant] {
			t.Errorf("%s's log holds %d records (%v)", tenant, n, err)
		}
	}
	g.Close()
	waitWriters(base)
}

// twoMasters returns the masters of contoso's and fabrikam's logs, which
// the tests need apart.
func twoMasters(t *testing.T, rdb *redis.ClusterClient) (contoso, fabrikam *redis.Client) {
	t.Helper()
	ctx := context.Background()
	contoso, err := rdb.MasterForKey(ctx, keys.Audit("contoso"))
	if err != nil {
		t.Fatal(err)
	}
	fabrikam, err = rdb.MasterForKey(ctx, keys.Audit("fabrikam"))
	if err != nil {
		t.Fatal(err)
	}
	if contoso.Options().Addr == fabrikam.Options().Addr {
		t.Fatal("contoso and fabrikam share a master")
	}
	return contoso, fabrikam
}

// slowPipes holds every pipeline d before sending it: a healthy
// master that takes d a round trip (a WAIT for a replica, a busy node).
type slowPipes struct{ d time.Duration }

func (slowPipes) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (slowPipes) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h slowPipes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		time.Sleep(h.d)
		return next(ctx, cmds)
	}
}

// TestBurstWaitsForRoom: a burst of records larger than the queue waits
// for room up to each record's deadline and is written whole, on one Redis
// and on a Cluster, where each master has a queue of its own. A master's
// full queue refused its records at once, so a burst on a healthy master
// failed (503 audit_unavailable) though every record would have been
// written well within its deadline. Here: 40 records, batches of 2 taking
// 20 ms a round trip (400 ms in all), queues of 8, a 2 s timeout.
func TestBurstWaitsForRoom(t *testing.T) {
	const tenant = "burst"
	run := func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		f := newBatchFixture(t, rdb, rdb.Pipeline(), tenant)
		g, err := NewGroupCommit(GroupCommitConfig{Log: f.log, Timeout: 2 * time.Second, MaxBatch: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		if _, err := g.Append(ctx, operatorAction(tenant)); err != nil { // script loaded, GUID read
			t.Fatal(err)
		}
		before, _ := rdb.XLen(ctx, keys.Audit(tenant)).Result()
		const burst = 40
		var mu sync.Mutex
		var failed []string
		var wg sync.WaitGroup
		start := time.Now()
		for range burst {
			wg.Go(func() {
				if _, err := g.Append(ctx, operatorAction(tenant)); err != nil {
					mu.Lock()
					failed = append(failed, err.Error())
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		if len(failed) > 0 {
			t.Errorf("%d of %d records of a burst on a healthy node refused (all done in %v, timeout 2s); first: %s", len(failed), burst, took, failed[0])
		}
		if after, _ := rdb.XLen(ctx, keys.Audit(tenant)).Result(); after-before != burst {
			t.Errorf("%d of %d records written in %v", after-before, burst, took)
		}
	}
	t.Run("one Redis", func(t *testing.T) {
		rdb := redistest.Client(t)
		rdb.AddHook(slowPipes{20 * time.Millisecond})
		run(t, rdb)
	})
	t.Run("Cluster", func(t *testing.T) {
		sc := redistest.SharedCluster(t)
		rdb := clusterClientAsServed(t, sc.Addrs(), slowPipes{20 * time.Millisecond})
		if err := rdb.Del(context.Background(), keys.Audit(tenant), keys.AuditHead(tenant)).Err(); err != nil {
			t.Logf("cleanup: %v", err)
		}
		run(t, rdb)
	})
}
