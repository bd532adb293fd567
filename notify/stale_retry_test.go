package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestTakenOverEntryLeavesNoRetrySchedule: replica a fails an entry's
// first attempt and is paused before it writes the entry's retry
// schedule for the last time; replica b takes the entry over (XAUTOCLAIM),
// delivers it and finishes it. a's schedule, written after that, was a
// retry state of an entry gone from the outbox, kept in the tenant's
// retry hash for good: nothing deletes the state of an entry no visit
// finds, and each schedule left so brought the tenant's next visit
// forward whenever its outbox held other entries.
func TestTakenOverEntryLeavesNoRetrySchedule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: the manager's e-mail alone
	const claimAfter = 2 * time.Minute
	worker := func(name string, rdb redis.UniversalClient, m notify.Mailer) *notify.Worker {
		return newWorker(t, notify.WithMailer(notify.Config{
			Redis: rdb, Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter, MaxAttempts: 5,
			Backoff:          func(int) time.Duration { return time.Minute },
			ManagerAddresses: []string{"mary@provider.example"},
		}, m))
	}
	// Replica a pauses right after it frees the recipient it failed,
	// having written the attempt's schedule once; the entry's schedule is
	// written again when the entry's round ends.
	aRdb, pause := pauseAfterDel(t, e)
	a := worker("a", aRdb, &failingMailbox{})
	aRound := startRound(t, a, pause.paused, "without failing the recipient", "failed the recipient")
	// Redis sees the entry idle at a for an hour, and both a's claim of
	// the tenant and the entry's backoff have ended.
	idleAtA(t, e, oneEntry(t, e))
	e.clock.Advance(claimAfter + time.Minute + time.Millisecond)
	mb := &mailbox{}
	b := worker("b", redistest.Clone(t, e.rdb), mb)
	if n, err := b.Tick(ctx); err != nil || n != 1 {
		t.Fatalf("replica b finished %d entries, %v; want the entry delivered", n, err)
	}
	if got := len(mb.to("mary@provider.example")); got != 1 {
		t.Fatalf("replica b delivered %d e-mails, want 1", got)
	}
	pause.release()
	aRound.end(t)
	tickAll(t, a, b)
	if n, err := e.rdb.XLen(ctx, notify.OutboxKey("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("outbox holds %d entries, %v; want the entry finished", n, err)
	}
	if left, err := e.rdb.HGetAll(ctx, keys.OutboxRetry("contoso")).Result(); err != nil || len(left) != 0 {
		t.Errorf("retry schedules left for the finished entry: %v, %v", left, err)
	}
}
