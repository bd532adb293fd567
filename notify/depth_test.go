package notify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestOutboxDepthRoundTripsDoNotGrowWithTenants: a scrape reads the outbox
// depth in the same number of round trips to Redis however many tenants
// have notifications waiting. The gauge has 2 s to answer, and -1 is what
// LockboxRedisUnreadable pages on: one round trip per tenant turned a
// deployment-wide backlog (an SMTP outage queues for every tenant at once)
// over a couple of thousand tenants at a millisecond each into -1, so the
// backlog alert fell silent and a critical alert sent whoever was on call
// to look for a Redis outage that was not there.
func TestOutboxDepthRoundTripsDoNotGrowWithTenants(t *testing.T) {
	few, fewTrips := outboxDepthScrape(t, 3)
	many, manyTrips := outboxDepthScrape(t, 300)
	if few != 2*3 || many != 2*300 {
		t.Fatalf("depth = %v with 3 tenants, %v with 300; want 6 and 600", few, many)
	}
	if manyTrips != fewTrips {
		t.Errorf("a scrape of the outbox depth costs %d round trips to Redis with 300 tenants waiting and %d with 3", manyTrips, fewTrips)
	}
}

// outboxDepthScrape queues two entries for each of n tenants, scheduled for
// the notification job as a committed transition schedules them, and
// returns the outbox depth a scrape reads and the round trips it took.
func outboxDepthScrape(t *testing.T, n int) (float64, int64) {
	t.Helper()
	rdb := testRedis(t)
	ctx := context.Background()
	for i := range n {
		tenant := fmt.Sprintf("tenant-%03d", i)
		for range 2 {
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: notify.OutboxKey(tenant), Values: []any{"event", "{}"}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := due.Set(ctx, rdb, tenant, due.Mark{Job: due.Notify, At: t0, Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	newWorker(t, notify.Config{Redis: rdb, Now: func() time.Time { return t0 }, Consumer: "a", Registerer: reg})
	trips := &redistest.RoundTrips{}
	rdb.AddHook(trips)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "lockbox_notifications_outbox_depth" {
			return mf.GetMetric()[0].GetGauge().GetValue(), trips.N()
		}
	}
	t.Fatal("no lockbox_notifications_outbox_depth in the scrape")
	return 0, 0
}
