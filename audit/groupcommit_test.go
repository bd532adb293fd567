package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func operatorRecord(tenant string, i int) record.Record {
	return record.Record{Operation: "Get-Mailbox", LockboxTenant: tenant, Workload: "exchange",
		RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin,
		UserId: record.OperatorUserID, ProviderUserId: "alice", ObjectId: fmt.Sprint(i)}
}

// TestGroupCommitChainsStayWhole: many callers at once, across tenants,
// each told only once its own record is in Redis; records share round trips
// (batches of more than one), and every tenant's chain still verifies and
// holds exactly the records acknowledged.
func TestGroupCommitChainsStayWhole(t *testing.T) {
	rdb := testRedis(t)
	onboard(t, rdb, "contoso", "fabrikam", "northwind")
	log := audit.NewLog(rdb, nil)
	reg := prometheus.NewPedanticRegistry()
	g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, Writers: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tenants := []string{"contoso", "fabrikam", "northwind"}
	const n = 600
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			r, err := g.Append(context.Background(), operatorRecord(tenants[i%3], i))
			if err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
			ids[i] = r.Id
		})
	}
	wg.Wait()
	auditor := identity.Principal{Subject: "sue", Roles: []identity.Role{identity.RoleAuditReader}}
	for _, tenant := range tenants {
		v, err := log.Verify(context.Background(), auditor, tenant)
		if err != nil || !v.OK || v.Records != n/3 {
			t.Errorf("%s: verification %+v, %v; want %d records, intact", tenant, v, err, n/3)
		}
	}
	seen := map[string]bool{}
	for _, tenant := range tenants {
		recs, _ := log.List(context.Background(), tenant, n)
		for _, r := range recs {
			seen[r.Id] = true
		}
	}
	for i, id := range ids {
		if !seen[id] {
			t.Fatalf("record %d (%s) acknowledged but not in its stream", i, id)
		}
	}
	mfs, _ := reg.Gather()
	var batches uint64
	for _, mf := range mfs {
		if mf.GetName() == "lockbox_audit_batch_records" {
			batches = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if batches == 0 || batches >= n {
		t.Fatalf("%d records in %d round trips: nothing was batched", n, batches)
	}
	t.Logf("%d records in %d round trips", n, batches)
}

// TestGroupCommitFailures: a batch whose tenant can't be written fails its
// callers only; a caller whose deadline passes is told so; a flushed
// script cache is reloaded; a stopped writer refuses.
func TestGroupCommitFailures(t *testing.T) {
	rdb := testRedis(t)
	onboard(t, rdb, "contoso", "broken")
	log := audit.NewLog(rdb, nil)
	g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rdb.Set(ctx, keys.Audit("broken"), "not a stream", 0)
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range 40 {
		wg.Go(func() { _, errs[i] = g.Append(ctx, operatorRecord([]string{"contoso", "broken"}[i%2], i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%2 == 1; (err != nil) != want || (err != nil && !errors.Is(err, audit.ErrUnavailable)) {
			t.Errorf("append %d: %v (want failure: %t)", i, err, want)
		}
	}
	if n, _ := rdb.XLen(ctx, keys.Audit("contoso")).Result(); n != 20 {
		t.Errorf("contoso's stream holds %d records, want 20", n)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Append(ctx, operatorRecord("contoso", 99)); err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.Append(done, operatorRecord("contoso", 100)); !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("canceled caller: %v", err)
	}
	g.Close()
	if _, err := g.Append(ctx, operatorRecord("contoso", 101)); !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("after Close: %v", err)
	}
}

// TestGroupCommitQueueFull: a burst larger than the queue waits for room
// rather than being refused while Redis keeps up; while Redis stalls,
// callers are refused within about twice the timeout, and a record refused
// for it is never written afterwards.
func TestGroupCommitQueueFull(t *testing.T) {
	// A server of its own, which the test pauses, and a client that
	// honours deadlines as lockbox serve's does.
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	onboard(t, rdb, "contoso")
	log := audit.NewLog(rdb, nil)
	ctx := context.Background()
	// The burst goes through a queue of 8 records with a patient timeout:
	// the last of its records waits for the hundred or so batches before
	// it, which took longer than 300 ms on a loaded machine. A queue that
	// refused instead of waiting for room would still fail it.
	burst, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, MaxBatch: 2, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer burst.Close()
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Go(func() { _, errs[i] = burst.Append(ctx, operatorRecord("contoso", i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("burst append %d: %v", i, err)
		}
	}

	// A queue of 8 records again, for the stall, whose timeout bounds how
	// long a caller waits. A second: at 300 ms, the slack the bound below
	// leaves (a timeout) was less than a loaded machine's stall.
	const timeout = time.Second
	g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, MaxBatch: 2, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	before, _ := rdb.XLen(ctx, keys.Audit("contoso")).Result()
	// Redis answers nothing for five timeouts: a caller held by the stall
	// waits about five, one that keeps Append's bound (twice the timeout
	// after the call) two. Each call is timed from its own start, so a
	// goroutine a loaded machine started late is not counted against it.
	const pause = 5 * timeout
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	refused := make([]bool, 40)
	took := make([]time.Duration, len(refused))
	for i := range refused {
		wg.Go(func() {
			start := time.Now()
			_, err := g.Append(ctx, operatorRecord("contoso", 1000+i))
			took[i] = time.Since(start)
			refused[i] = err != nil
			if err != nil && !errors.Is(err, audit.ErrUnavailable) {
				t.Errorf("stalled append %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if longest := slices.Max(took); longest > 3*timeout {
		t.Errorf("a stalled append returned after %v, want within about %v (Redis was paused for %v)", longest, 2*timeout, pause)
	}
	n := 0
	for _, r := range refused {
		if r {
			n++
		}
	}
	if n == 0 {
		t.Fatal("every append succeeded while Redis was paused")
	}
	// PING answers once the pause is over.
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Once Redis answers again, a new record goes through, and the stream
	// holds no more than the records acknowledged.
	if _, err := g.Append(ctx, operatorRecord("contoso", 2000)); err != nil {
		t.Fatalf("after the pause: %v", err)
	}
	after, _ := rdb.XLen(ctx, keys.Audit("contoso")).Result()
	if acked := int64(len(refused)-n) + 1; after-before > acked+int64(8) {
		// A batch already sent when its callers gave up may land (over-
		// reporting); records still queued past their deadline may not.
		t.Errorf("%d records written during and after the pause, %d acknowledged", after-before, acked)
	}
}

// TestGroupCommitOutOfMemory: a batch Redis refuses for its memory limit
// adds no entry (the limit is checked before a script's first write), so
// the chain still verifies, and grows again once memory is available.
func TestGroupCommitOutOfMemory(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	onboard(t, rdb, "contoso")
	log := audit.NewLog(rdb, nil)
	g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if _, err := g.Append(ctx, operatorRecord("contoso", 0)); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := g.Append(ctx, operatorRecord("contoso", i+1)); !errors.Is(err, audit.ErrUnavailable) || !strings.Contains(err.Error(), "OOM") {
				t.Errorf("append %d over the memory limit: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n, _ := rdb.XLen(ctx, keys.Audit("contoso")).Result(); n != 1 {
		t.Errorf("the stream holds %d records after the refused batches, want 1", n)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Append(ctx, operatorRecord("contoso", 99)); err != nil {
		t.Fatal(err)
	}
	auditor := identity.Principal{Subject: "sue", Roles: []identity.Role{identity.RoleAuditReader}}
	if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != 2 {
		t.Errorf("verification %+v, %v; want 2 records, intact", v, err)
	}
}

// TestGroupCommitWaitsForReplicas: with Durability.Replicas, a caller is
// told its record is written only once a replica has it; without a
// replica, the records are refused (and so are the calls they record).
func TestGroupCommitWaitsForReplicas(t *testing.T) {
	primary := redistest.StartServer(t)
	host, port, _ := strings.Cut(primary.Addr, ":")
	opts, _ := redis.ParseURL(primary.URL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	onboard(t, rdb, "contoso")
	log := audit.NewLog(rdb, nil)
	alone, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, Durability: audit.Durability{Replicas: 1}, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	if _, err := alone.Append(context.Background(), operatorRecord("contoso", 1)); err == nil || !strings.Contains(err.Error(), "0 of the 1 replicas") {
		t.Fatalf("without a replica: %v", err)
	}

	replica := redistest.StartServer(t, "--replicaof", host, port)
	ropts, _ := redis.ParseURL(replica.URL)
	rc := redis.NewClient(ropts)
	defer rc.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		info, _ := rc.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica never synced: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	reg := prometheus.NewRegistry()
	g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, Durability: audit.Durability{Replicas: 1}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r, err := g.Append(context.Background(), operatorRecord("contoso", 2))
	if err != nil {
		t.Fatalf("with a replica: %v", err)
	}
	// Acknowledged means the replica has it.
	msgs, err := rc.XRange(context.Background(), keys.Audit("contoso"), "-", "+").Result()
	if err != nil || len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1].Values["r"].(string), r.Id) {
		t.Fatalf("the replica lacks the acknowledged record: %v, %v", msgs, err)
	}
	if testutil.CollectAndCount(reg, "lockbox_audit_batch_records") != 1 {
		t.Error("batch histogram not registered")
	}
}
