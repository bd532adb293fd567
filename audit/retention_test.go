package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestRetentionKeepsTheChainVerifiable(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	onboard(t, rdb, "contoso")
	for range 10 {
		appendN(t, log, 1)
		c.Advance(time.Hour)
	}
	// Records at t0 .. t0+9h; keep those from t0+4h on.
	n, err := log.Trim(ctx, "contoso", t0.Add(4*time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("trimmed %d, %v", n, err)
	}
	v, err := log.Verify(ctx, auditor, "contoso")
	if err != nil || !v.OK || v.Records != 6 {
		t.Fatalf("after trimming: %+v %v", v, err)
	}
	// Trimming again at the same cutoff removes nothing.
	if n, _ := log.Trim(ctx, "contoso", t0.Add(4*time.Hour)); n != 0 {
		t.Fatalf("second trim removed %d", n)
	}
	// Replicas trimming at once, with different cutoffs, leave a
	// verifiable chain.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := log.Trim(ctx, "contoso", t0.Add(time.Duration(5+i)*time.Hour)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	v, err = log.Verify(ctx, auditor, "contoso")
	if err != nil || !v.OK || v.Records != 2 {
		t.Fatalf("after concurrent trims: %+v %v", v, err)
	}
	// Deleting the oldest remaining record is still caught.
	first := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()[0]
	rdb.XDel(ctx, keys.Audit("contoso"), first.ID)
	if v, _ := log.Verify(ctx, auditor, "contoso"); v.OK {
		t.Fatal("a record deleted after trimming went unnoticed")
	}
}

func TestTrimAll(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	onboard(t, rdb, "contoso")
	rdb.SAdd(ctx, keys.Tenants(), "contoso")
	appendN(t, log, 3)
	c.Advance(48 * time.Hour)
	appendN(t, log, 1)
	if n, err := log.TrimAll(ctx, 24*time.Hour); err != nil || n != 3 {
		t.Fatalf("TrimAll: %d %v", n, err)
	}
	if v, _ := log.Verify(ctx, auditor, "contoso"); !v.OK || v.Records != 1 {
		t.Fatalf("after TrimAll: %+v", v)
	}
}

// TestRetentionAcrossReplicasWithOneKilled: three replicas apply retention
// to many tenants at once after a fourth was killed between reading a
// tenant's oldest records and trimming them; every tenant loses exactly its
// records past retention, and every chain still verifies. Each tenant is
// visited when its oldest record passes retention, not before.
func TestRetentionAcrossReplicasWithOneKilled(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	var tenants []string
	for i := range 10 {
		tenants = append(tenants, fmt.Sprintf("tenant-%d", i))
	}
	onboard(t, rdb, tenants...)
	// Each tenant: 3 records a day for 4 days.
	for range 4 {
		for range 3 {
			for _, tn := range tenants {
				if _, err := log.Append(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: tn,
					RecordType: record.RecordTypeDataCenterSecurityCmdlet, Workload: "exchange", UserId: record.OperatorUserID}); err != nil {
					t.Fatal(err)
				}
			}
		}
		c.Advance(24 * time.Hour)
	}
	// Now t0+96h: the records of t0 and t0+24h are past retention.
	const retention = 60 * time.Hour
	replicaLog := func(rdb redis.UniversalClient) *audit.Log { return audit.NewLog(rdb, c.Now) }
	dying := redistest.Killable(t, rdb)
	dying.KillAfter(redistest.Command("xrange"))
	if _, err := replicaLog(dying).TrimAll(ctx, retention); err == nil {
		t.Fatal("the killed replica's pass succeeded")
	}
	var mu sync.Mutex
	removed := 0
	pass := func() {
		var wg sync.WaitGroup
		for range 3 {
			l := replicaLog(redistest.Killable(t, rdb))
			wg.Go(func() {
				n, err := l.TrimAll(ctx, retention)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				removed += n
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	pass()
	c.Advance(time.Minute) // the dead replica's claims end
	pass()
	if removed != 6*len(tenants) {
		t.Fatalf("removed %d records, want %d", removed, 6*len(tenants))
	}
	for _, tn := range tenants {
		v, err := log.Verify(ctx, auditor, tn)
		if err != nil || !v.OK || v.Records != 6 {
			t.Fatalf("%s after retention: %+v %v", tn, v, err)
		}
	}
	// Nothing is due until the oldest remaining day passes retention.
	pass()
	if removed != 6*len(tenants) {
		t.Fatalf("an early pass removed records: %d", removed)
	}
	if s, err := rdb.ZScore(ctx, keys.Due("retention"), tenants[0]).Result(); err != nil || int64(s) != t0.Add(48*time.Hour+retention).UnixMilli() {
		t.Fatalf("next retention visit at %v (%v), want when the oldest kept record is %s old", time.UnixMilli(int64(s)).UTC(), err, retention)
	}
}

// TestVerifyDuringTrim: retention trimming while a verification reads
// moves the chain's anchor; the verification must not take the new first
// record's link for a deleted record.
func TestVerifyDuringTrim(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	for range 2500 {
		appendN(t, log, 1)
		c.Advance(time.Second)
	}
	tr := audit.NewLog(redistest.Clone(t, rdb), c.Now)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for cut := t0; ; {
			select {
			case <-done:
				return
			default:
			}
			cut = cut.Add(time.Second)
			if _, err := tr.Trim(ctx, "contoso", cut); err != nil {
				t.Error(err)
				return
			}
		}
	})
	bad := 0
	for range 40 {
		v, err := log.Verify(ctx, auditor, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK {
			if bad++; bad == 1 {
				t.Errorf("an intact chain reported broken while retention trimmed: %+v", v)
			}
		}
	}
	close(done)
	wg.Wait()
	if bad > 1 {
		t.Errorf("%d of 40 verifications failed", bad)
	}
}
