package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
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
