package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// ageRecords has Redis count d more of idle time for every record pending
// in tenant's SIEM group, as d of real time would, without waiting for
// it: each entry is claimed by its own consumer again with IDLE set to
// what Redis shows plus d (JUSTID leaves its delivery count). What a
// replica's read did to an entry's idle time stays in what Redis shows.
func ageRecords(t *testing.T, rdb redis.UniversalClient, tenant string, d time.Duration) {
	t.Helper()
	ageEntries(t, rdb, keys.Audit(tenant), d)
}

// ageEntries is ageRecords for any stream the SIEM group reads.
func ageEntries(t *testing.T, rdb redis.UniversalClient, stream string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: audit.SIEMGroup, Start: "-", End: "+", Count: 1000}).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := rdb.Do(ctx, "XCLAIM", stream, audit.SIEMGroup, p.Consumer, 0, p.ID,
			"IDLE", (p.Idle + d).Milliseconds(), "JUSTID").Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSIEMFailingReplicasRecordsAreTakenOver: a replica whose sink keeps
// failing (stdout's pipe broke) is alive and keeps retrying the records it
// had read, a pass at a time. Each retry read them again through the
// consumer group, which restarted the idle time Redis keeps for them, so
// they never became idle for ClaimAfter and the healthy replica never took
// them over: they waited for the failing replica's restart. The failing
// replica's retries must leave their idle time alone, so that the healthy
// replica forwards them, once, in order, ClaimAfter after the failing one
// read them; meanwhile nothing is acknowledged and the failed count grows.
func TestSIEMFailingReplicasRecordsAreTakenOver(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 5, "contoso")
	const claimAfter = time.Minute
	clk := clock.NewFake(time.Now())
	reg := prometheus.NewRegistry()
	broken := &memSink{failing: true}
	failing := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: broken, Consumer: "r1",
		ClaimAfter: claimAfter, Now: clk.Now, Registerer: reg})
	if n, err := failing.Poll(ctx); err == nil || n != 0 {
		t.Fatalf("pass with a broken sink: wrote %d, err %v", n, err)
	}
	if p := pending(t, rdb, "contoso"); p != 5 {
		t.Fatalf("%d pending at the failing replica, want 5", p)
	}
	healthy := &memSink{}
	live := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: healthy, Consumer: "r2",
		ClaimAfter: claimAfter, Now: clk.Now})

	// Both replicas go on with their passes while time passes, the
	// failing one first at every step.
	const step = 10 * time.Second
	var elapsed time.Duration
	for elapsed < 3*claimAfter && len(healthy.got()) < 5 {
		elapsed += step
		ageRecords(t, rdb, "contoso", step)
		clk.Advance(step)
		_, _ = failing.Poll(ctx) // fails while it holds records
		if _, err := live.Poll(ctx); err != nil {
			t.Fatalf("healthy replica's pass %v in: %v", elapsed, err)
		}
		if elapsed < claimAfter {
			if got := healthy.got(); len(got) != 0 {
				t.Fatalf("healthy replica took over records idle for less than ClaimAfter (%v in): %q", elapsed, got)
			}
			if p := pending(t, rdb, "contoso"); p != 5 {
				t.Fatalf("%v in: %d records pending, want the 5 the failing replica can't write", elapsed, p)
			}
		}
	}
	if got, want := healthy.got(), streamRecords(t, rdb, "contoso")["contoso"]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after %v the healthy replica forwarded %d records, want the 5 the failing replica held, in order:\ngot  %q\nwant %q",
			elapsed, len(got), got, want)
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Fatalf("%d pending after the take-over", p)
	}
	if f := siemFailed(t, reg); f < 1 {
		t.Fatalf("failing replica counted %v failed records", f)
	}
	if got := broken.got(); len(got) != 0 {
		t.Fatalf("the broken sink took %q", got)
	}
}
