package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// askedTimer stands in for time.After: it tells each duration asked for,
// and fires the last one asked when the test sends on fire.
type askedTimer struct {
	d    chan time.Duration
	fire chan time.Time
}

func (a *askedTimer) after(d time.Duration) <-chan time.Time {
	a.d <- d
	return a.fire
}

// TestReindexRetriesSoonAfterAFailedPass: the jobs replica's start-up
// pass restores the provider-wide indexes (and back-fills the operators'
// listings) over every request, then passes every hour over the recent
// ones. A start-up pass that failed (Redis failing over, a key it could
// not read) waited the whole hour before it was tried again, with the
// operators' listings unbuilt and the tenants a lost write had dropped
// skipped by the jobs meanwhile. It is retried within a minute.
func TestReindexRetriesSoonAfterAFailedPass(t *testing.T) {
	url := redistest.URL(t)
	rdb := redis.NewClient(mustOptions(t, url))
	defer rdb.Close()
	ctx := context.Background()
	// A tenant whose request index is not one: the pass over every
	// request fails on it.
	if err := rdb.SAdd(ctx, keys.Tenants(), "fabrikam").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, keys.TenantRequests("fabrikam"), "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	timer := &askedTimer{d: make(chan time.Duration, 8), fire: make(chan time.Time)}
	start(t, map[string]string{"LOCKBOX_REDIS_URL": url, "LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"},
		func(o *server.Options) { o.ReindexAfter = timer.after })
	// The deadline only bounds a failure: the loop that waited on a
	// timer of its own never asked.
	select {
	case d := <-timer.d:
		if d > time.Minute {
			t.Fatalf("after a failed pass the next one waits %s, want a minute at most", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no pass was scheduled 30s after start: the failed start-up pass waits its hour on a timer of its own")
	}
	if n, err := rdb.Exists(ctx, keys.OperatorRequestsBuilt()).Result(); err != nil || n != 0 {
		t.Fatalf("operators' listings marked built after a failed pass: %d, %v", n, err)
	}
	// Repaired: the retry passes over every request, then waits its hour.
	if err := rdb.Del(ctx, keys.TenantRequests("fabrikam")).Err(); err != nil {
		t.Fatal(err)
	}
	timer.fire <- time.Time{}
	if d := <-timer.d; d != time.Hour {
		t.Errorf("after the pass that worked the next one waits %s, want an hour", d)
	}
	if n, err := rdb.Exists(ctx, keys.OperatorRequestsBuilt()).Result(); err != nil || n != 1 {
		t.Errorf("operators' listings not marked built by the retried pass: %d, %v", n, err)
	}
}

func mustOptions(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
