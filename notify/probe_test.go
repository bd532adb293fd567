package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestProbeThatCantReadTheGrantsLooks: a rescan whose read of a tenant's
// grants fails schedules the tenant's notification visit at once, as
// due.Probe asks of a probe that can't tell, even though its outbox is
// empty: the grant's expiry warning is still to come, and "nothing to do"
// would leave its lost mark lost for another rescan interval, past the
// warning's time.
func TestProbeThatCantReadTheGrantsLooks(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	w := newWorker(t, notify.Config{Redis: rdb, Now: c.Now, ExpiryWarning: 30 * time.Minute})
	if err := rdb.SAdd(ctx, keys.Tenants(), "contoso").Err(); err != nil {
		t.Fatal(err)
	}
	// An approved grant, ending in 4 hours; its schedule entry is lost.
	if err := rdb.ZAdd(ctx, keys.TenantActive("contoso"), redis.Z{Score: float64(t0.Add(4 * time.Hour).UnixMilli()), Member: "r1"}).Err(); err != nil {
		t.Fatal(err)
	}
	rescan := func(rdb redis.UniversalClient) (float64, error) {
		t.Helper()
		rdb.ZRem(ctx, keys.Due(string(due.Notify)), "contoso")
		r := &due.Rescan{Redis: rdb, Now: c.Now, Probes: map[due.Job]due.Probe{due.Notify: w.Probe}}
		if _, _, err := r.Once(ctx); err != nil {
			t.Fatal(err)
		}
		return rdb.ZScore(ctx, keys.Due(string(due.Notify)), "contoso").Result()
	}
	// The probe, reading: due when the warning is.
	if s, err := rescan(rdb); err != nil || s != float64(t0.Add(4*time.Hour-30*time.Minute).UnixMilli()) {
		t.Fatalf("scheduled at %v (%v), want the warning's time", s, err)
	}
	scanner := redistest.Clone(t, rdb)
	scanner.AddHook(redistest.FailInPipelines{Match: redistest.Command("zrangebyscore", keys.TenantActive("contoso"))})
	if s, err := rescan(scanner); err != nil || s != float64(t0.UnixMilli()) {
		t.Fatalf("after a rescan that could not read the grants: scheduled at %v (%v), want at once", s, err)
	}
}
