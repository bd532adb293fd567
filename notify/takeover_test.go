package notify_test

import (
	"context"
	"net/http"
	"testing"
	"time"

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
	const claimAfter = 2 * time.Minute
	mb := &mailbox{}
	tk := startTakeover(t, e, throttled.URL, ok.URL, claimAfter, mb)
	tk.makeIdle(t, e)
	// Replica a's claim of the tenant ends; replica b visits it, a few
	// minutes before the throttled receiver's Retry-After ends.
	e.clock.Advance(5 * time.Minute)
	other := tk.worker("b", redistest.Clone(t, e.rdb))
	if _, err := other.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := throttled.count(); n != 1 {
		t.Errorf("the throttled receiver was called %d times 5 minutes after it asked for 10, want once", n)
	}
	tk.finish(t)
	// Once the wait is over (counted from the end of replica a's attempt,
	// 5 minutes in), the entry is retried and finished.
	e.clock.Advance(11 * time.Minute)
	waitFor(t, "the entry to be finished", func() (bool, error) {
		for _, w := range []*notify.Worker{other, tk.slow} {
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
