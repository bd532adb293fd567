package notify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// failRead fails, in the pipelines sent through it, the commands matching
// match without sending them, as a node that timed out or restarted
// mid-pipeline would.
type failRead struct{ match func(redis.Cmder) bool }

func (f failRead) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f failRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f failRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var send []redis.Cmder
		for _, c := range cmds {
			if f.match(c) {
				c.SetErr(errors.New("i/o timeout"))
			} else {
				send = append(send, c)
			}
		}
		if len(send) == 0 {
			return nil
		}
		return next(ctx, send)
	}
}

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
	scanner.AddHook(failRead{redistest.Command("zrangebyscore", keys.TenantActive("contoso"))})
	if s, err := rescan(scanner); err != nil || s != float64(t0.UnixMilli()) {
		t.Fatalf("after a rescan that could not read the grants: scheduled at %v (%v), want at once", s, err)
	}
}
