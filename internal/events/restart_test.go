package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/readcache"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestListenerClearsWhatWasCachedWhileRedisWasDown: Redis is killed and
// started again (a restart, a crash), which ends the subscription. A read
// made while no subscription is alive is kept (Redis answered it, and
// its age bounds it), but changes committed meanwhile published events
// nobody heard: once the Listener subscribes again it must treat
// everything cached as stale. The cache's clock stands still, so only
// the Listener can clear the entry.
func TestListenerClearsWhatWasCachedWhileRedisWasDown(t *testing.T) {
	srv := redistest.StartServer(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(serverOptions(opts))
	defer rdb.Close()
	pub := redis.NewClient(serverOptions(opts))
	defer pub.Close()

	cache := readcache.New[string, string](time.Second, clock.NewFake(time.Unix(1_700_000_000, 0)).Now)
	c := &counter{}
	l := events.NewListener(rdb, nil, c, cache)
	l.PingInterval, l.PingTimeout = 50*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-l.Ready()
	if !heardWithin(t, pub, c, 5*time.Second) {
		t.Fatal("the Listener does not hear events")
	}

	srv.Stop()
	if !within(10*time.Second, func() bool { return !l.Subscribed() }) {
		t.Fatal("the Listener still says it is subscribed 10 s after its Redis died")
	}
	// A read while no subscription is alive: kept. (heardWithin publishes
	// events for contoso only.)
	_, _, _, st := cache.Get("fabrikam", "settings")
	cache.Put("fabrikam", "settings", "lockbox off", nil, st)
	if _, _, ok, _ := cache.Get("fabrikam", "settings"); !ok {
		t.Fatal("the entry was not kept: the test no longer exercises the cache")
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if !heardWithin(t, pub, c, 10*time.Second) {
		t.Fatal("the Listener hears no event after Redis started again")
	}
	if v, _, ok, _ := cache.Get("fabrikam", "settings"); ok {
		t.Fatalf("the Listener subscribed again and still serves %q, cached while it heard nothing", v)
	}
}
