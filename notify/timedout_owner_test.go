package notify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// timingOutMailbox answers every message as a mail server that never
// answers does, once the delivery's deadline is over (without waiting for
// it), and tells whom it was asked to send to, in order.
type timingOutMailbox struct {
	mu sync.Mutex
	to []string
}

func (m *timingOutMailbox) Name() string { return "dev" }

func (m *timingOutMailbox) Send(_ context.Context, _ string, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.to = append(m.to, msg.To)
	return fmt.Errorf("smtp: no answer: %w", context.DeadlineExceeded)
}

func (m *timingOutMailbox) first() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.to) == 0 {
		return ""
	}
	return m.to[0]
}

// TestTimedOutSkipNotCountedAfterTakeOver: replica a's round sends an
// entry to its first recipient, whose server does not answer in time, so
// a counts the entry's second recipient, on the same server, a failed
// attempt without sending to it. Paused in between, a has the entry taken
// over by replica b, which tries both recipients. Let go, a no longer
// holds the entry: it must not count a failed attempt for the second
// recipient, which b already counted, bringing its dead letter closer.
func TestTimedOutSkipNotCountedAfterTakeOver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: an e-mail to each manager
	const claimAfter = 2 * time.Minute
	managers := []string{"mary@provider.example", "mark@provider.example"}
	mb := &timingOutMailbox{}
	aRdb, pause := pauseAfterDel(t, e) // after a frees the first recipient it failed
	cfg := notify.Config{Now: e.clock.Now, ClaimAfter: claimAfter, MaxAttempts: 16,
		Backoff: func(int) time.Duration { return time.Minute }, ManagerAddresses: managers}
	aCfg, bCfg := cfg, cfg
	aCfg.Redis, aCfg.Consumer = aRdb, "a"
	bCfg.Redis, bCfg.Consumer = redistest.Clone(t, e.rdb), "b"
	a, b := newWorker(t, notify.WithMailer(aCfg, mb)), newWorker(t, notify.WithMailer(bCfg, mb))
	aRound := startRound(t, a, pause.paused, "without failing a recipient", "failed a recipient")
	first := mb.first()
	second := managers[0]
	if first == second {
		second = managers[1]
	}
	// Redis sees the entry idle at a for an hour, and a's claim of the
	// tenant has ended: b takes the entry over; the first recipient times
	// out again, and the second is counted as not tried in b's round.
	idleAtA(t, e, oneEntry(t, e))
	e.clock.Advance(claimAfter + time.Millisecond)
	tickAll(t, b)
	tries := func(addr string) string {
		n, err := e.rdb.Get(ctx, notify.SentKey("contoso", oneEntry(t, e), "mail:"+addr)+":tries").Result()
		if err != nil {
			return err.Error()
		}
		return n
	}
	if got := tries(second); got != "1" {
		t.Fatalf("after replica b's round the second recipient's failed attempts are %q, want 1 (b's)", got)
	}
	pause.release()
	aRound.end(t)
	if got := tries(first); got != "2" {
		t.Errorf("the first recipient's failed attempts are %q, want 2 (replica a's, replica b's)", got)
	}
	if got := tries(second); got != "1" {
		t.Errorf("the second recipient's failed attempts are %q, want 1: replica a, no longer holding the entry, counted its skip after replica b took the entry over and counted its own", got)
	}
}
