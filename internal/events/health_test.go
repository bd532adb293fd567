package events_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// counter counts what the Listener tells it.
type counter struct{ invalidations, resets atomic.Int64 }

func (c *counter) Invalidate(string) { c.invalidations.Add(1) }
func (c *counter) Reset()            { c.resets.Add(1) }

// logBuffer is a log the Listener writes while the test reads it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// within polls cond every few milliseconds for up to d.
func within(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heardWithin publishes an event through pub until the Listener tells c of
// one, for up to d, and reports whether it did. Each PUBLISH has a deadline
// of its own: during a failover the client may still hold connections to
// the old master.
func heardWithin(t *testing.T, pub redis.UniversalClient, c *counter, d time.Duration) bool {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		n := c.invalidations.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_ = pub.Publish(ctx, events.Channel, "contoso").Err()
		cancel()
		if within(200*time.Millisecond, func() bool { return c.invalidations.Load() > n }) {
			return true
		}
	}
	return false
}

// serverOptions are the timeouts internal/server gives its client.
func serverOptions(o *redis.Options) *redis.Options {
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled = 2*time.Second, 2*time.Second, 2*time.Second, true
	return o
}

// TestListenerReplacesAHungSubscription: when the Redis of the subscription
// hangs (SIGSTOP: its kernel keeps the connection open and acknowledges
// what is sent, so neither go-redis nor TCP notices), the Listener finds
// out by its PING going unanswered, says it is no longer subscribed, and
// once Redis answers again it subscribes anew, clearing the caches, since
// it may have missed events meanwhile.
func TestListenerReplacesAHungSubscription(t *testing.T) {
	srv := redistest.StartServer(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(serverOptions(opts))
	defer rdb.Close()
	pub := redis.NewClient(serverOptions(opts))
	defer pub.Close()

	c := &counter{}
	logs := &logBuffer{}
	l := events.NewListener(rdb, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})), c)
	l.PingInterval, l.PingTimeout = 50*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-l.Ready()
	if !l.Subscribed() || !heardWithin(t, pub, c, 2*time.Second) {
		t.Fatal("the Listener does not hear events")
	}

	thaw := srv.Freeze(t)
	// Lost within PingInterval + PingTimeout; the margin is for a loaded
	// machine.
	if !within(2*time.Second, func() bool { return !l.Subscribed() }) {
		t.Fatal("the Listener still says it is subscribed 2 s after its Redis hung")
	}
	lost := c.resets.Load()
	thaw()
	if !heardWithin(t, pub, c, 5*time.Second) {
		t.Fatal("the Listener hears no event after its Redis answers again")
	}
	if !l.Subscribed() {
		t.Error("the Listener hears events but says it is not subscribed")
	}
	if c.resets.Load() <= lost {
		t.Error("the Listener subscribed again without clearing the caches")
	}
	// Both changes are warnings: operators see the loss and the recovery.
	got := logs.String()
	for _, want := range []string{"level=WARN msg=\"cache invalidation events lost", "level=WARN msg=\"cache invalidation events subscribed again"} {
		if !strings.Contains(got, want) {
			t.Errorf("the log has no %s:\n%s", want, got)
		}
	}
}

// TestListenerFollowsSentinelFailover: the master hangs (SIGSTOP) and the
// sentinels promote the replica. go-redis keeps the subscription to the
// hung master (it reads it without a deadline and does not close it on
// failover), which would leave the caches to the age limit for good; the
// Listener's PING finds it dead, and it subscribes on the new master,
// clearing the caches, and hears events published there.
func TestListenerFollowsSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t)
	bg := context.Background()
	old, err := s.MasterAddr(bg)
	if err != nil || old != s.Master.Addr {
		t.Fatalf("master %q (%v), want %s", old, err, s.Master.Addr)
	}
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: redistest.SentinelMaster, SentinelAddrs: s.Addrs(),
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, ContextTimeoutEnabled: true,
	})
	defer rdb.Close()

	c := &counter{}
	l := events.NewListener(rdb, nil, c) // the default health check
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-l.Ready()
	if !heardWithin(t, rdb, c, 2*time.Second) {
		t.Fatal("the Listener does not hear events")
	}

	s.Master.Freeze(t) // thawed when the test ends, then removed
	hung := time.Now()
	if !within(2*time.Second, func() bool { return !l.Subscribed() }) {
		t.Error("the Listener still says it is subscribed 2 s after its master hung")
	}
	lost := c.resets.Load()
	var now string
	if !within(30*time.Second, func() bool { now, _ = s.MasterAddr(bg); return now != "" && now != old }) {
		t.Fatal("no failover")
	}
	t.Logf("failover %s -> %s after %v", old, now, time.Since(hung).Round(time.Millisecond))
	if !heardWithin(t, rdb, c, 10*time.Second) {
		t.Fatalf("the Listener hears no event published on the new master %v after the old one hung", time.Since(hung).Round(time.Millisecond))
	}
	t.Logf("events heard again %v after the master hung", time.Since(hung).Round(time.Millisecond))
	if !l.Subscribed() {
		t.Error("the Listener hears events but says it is not subscribed")
	}
	if c.resets.Load() <= lost {
		t.Error("the Listener subscribed on the new master without clearing the caches")
	}
}
