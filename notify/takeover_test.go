package notify_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestRetryAfterHoldsForReplicaTakingOver: a replica whose webhook
// receiver answers 429 with Retry-After goes on to the entry's later
// recipients, whose sends may outlast ClaimAfter. Another replica that
// takes the entry over meanwhile must find it backing off: it calls the
// receiver no earlier than it asked, and the retry it schedules is not
// left behind once the entry is done.
func TestRetryAfterHoldsForReplicaTakingOver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: the manager's e-mail and both webhooks
	throttled := startStatusHook(t, answer{status: http.StatusTooManyRequests, retryAfter: "600"}, answer{status: http.StatusOK})
	ok := startStatusHook(t, answer{status: http.StatusOK})
	const claimAfter = 300 * time.Millisecond
	mb := &mailbox{}
	worker := func(name string, rdb redis.UniversalClient) *notify.Worker {
		return newWorker(t, notify.WithMailer(notify.Config{
			Redis: rdb, Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter, MaxAttempts: 16,
			ManagerAddresses: []string{"mary@provider.example"},
			Webhooks: []notify.WebhookConfig{
				{URL: throttled.URL, Secret: []byte("k")},
				{URL: ok.URL, Secret: []byte("k")},
			},
		}, mb))
	}
	// Replica a stalls before its lease of the third recipient (the
	// second webhook), after the manager's e-mail and the throttled
	// receiver.
	slowRdb := redistest.Clone(t, e.rdb)
	stall := newStallHook(t, 3, redistest.Command("set", "nx"))
	slowRdb.AddHook(stall)
	slow := worker("a", slowRdb)
	done := make(chan error, 1)
	go func() {
		_, err := slow.Tick(ctx)
		done <- err
	}()
	select {
	case <-stall.stalled:
	case err := <-done:
		t.Fatalf("replica a finished its round without reaching the second webhook: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("replica a never reached the second webhook")
	}
	entries, err := e.rdb.XRange(ctx, notify.OutboxKey("contoso"), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("outbox = %v, %v; want the one entry", entries, err)
	}
	id := entries[0].ID
	waitFor(t, "the entry to be idle for ClaimAfter", func() (bool, error) {
		p, err := e.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: notify.OutboxKey("contoso"), Group: notify.Group, Start: id, End: id, Count: 1,
		}).Result()
		return err == nil && len(p) == 1 && p[0].Idle >= claimAfter, err
	})
	// Replica a's claim of the tenant ends; replica b visits it, a few
	// minutes before the throttled receiver's Retry-After ends.
	e.clock.Advance(5 * time.Minute)
	other := worker("b", redistest.Clone(t, e.rdb))
	if _, err := other.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := throttled.count(); n != 1 {
		t.Errorf("the throttled receiver was called %d times 5 minutes after it asked for 10, want once", n)
	}
	stall.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replica a's round never ended")
	}
	// Once the wait is over (counted from the end of replica a's attempt,
	// 5 minutes in), the entry is retried and finished.
	e.clock.Advance(11 * time.Minute)
	waitFor(t, "the entry to be finished", func() (bool, error) {
		for _, w := range []*notify.Worker{other, slow} {
			if _, err := w.Tick(ctx); err != nil {
				return false, err
			}
		}
		n, err := other.Depth(ctx)
		return n == 0, err
	})
	if n := throttled.count(); n != 2 {
		t.Errorf("the throttled receiver was called %d times, want twice", n)
	}
	if n := ok.count(); n != 1 {
		t.Errorf("the second webhook was called %d times, want once", n)
	}
	if n := len(mb.to("mary@provider.example")); n != 1 {
		t.Errorf("the manager got %d e-mails, want 1", n)
	}
	if n, err := e.rdb.HLen(ctx, keys.OutboxRetry("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("%d retry schedules left for finished entries, %v", n, err)
	}
}
