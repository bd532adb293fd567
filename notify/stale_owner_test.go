package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// nth matches the n-th command that match matches, and no other.
func nth(n int, match func(redis.Cmder) bool) func(redis.Cmder) bool {
	var mu sync.Mutex
	seen := 0
	return func(c redis.Cmder) bool {
		if !match(c) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		return seen == n
	}
}

// tried is how many messages m refused.
func (m *failingMailbox) tried() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// TestTakenOverEntryNotSentOnStaleSchedule: replica a reads the retry
// schedule of an entry it holds (due) and is paused before it sends;
// replica b takes the entry over, tries it, fails and schedules the next
// retry a minute later. Let go, a no longer holds the entry: it must not
// act on the schedule it read before (send to the recipient b just
// tried, and count an attempt of it), but leave the entry to b.
func TestTakenOverEntryNotSentOnStaleSchedule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: the manager's e-mail alone
	const claimAfter = 2 * time.Minute
	down := &failingMailbox{}
	worker := func(name string, rdb redis.UniversalClient) *notify.Worker {
		w, err := notify.NewWorker(notify.WithMailer(notify.Config{
			Redis: rdb, Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter, MaxAttempts: 16,
			Backoff:          func(int) time.Duration { return time.Minute },
			ManagerAddresses: []string{"mary@provider.example"},
			Registerer:       prometheus.NewRegistry(),
		}, down))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// Replica a's second read of the retry schedule, in its second round,
	// is the one it pauses after.
	aRdb := redistest.Clone(t, e.rdb)
	pause := newPauseAfter(t, nth(2, redistest.Command("hget", keys.OutboxRetry("contoso"))))
	aRdb.AddHook(pause)
	a := worker("a", aRdb)
	tickAll(t, a) // the first attempt fails: retried a minute later
	if n := down.tried(); n != 1 {
		t.Fatalf("the mail server was tried %d times in replica a's first round, want once", n)
	}
	e.clock.Advance(time.Minute + time.Millisecond)
	aRound := startRound(t, a, pause.paused, "without reading the entry's schedule", "read the entry's schedule")
	// Redis sees the entry idle at a for an hour, and a's claim of the
	// tenant has ended: b takes the entry over and fails its second attempt.
	idleAtA(t, e, oneEntry(t, e))
	e.clock.Advance(claimAfter + time.Millisecond)
	b := worker("b", redistest.Clone(t, e.rdb))
	tickAll(t, b)
	bSchedule, err := e.rdb.HGet(ctx, keys.OutboxRetry("contoso"), oneEntry(t, e)).Result()
	if err != nil || !strings.HasPrefix(bSchedule, "2:") {
		t.Fatalf("after replica b's attempt the entry's schedule is %q, %v; want its second attempt's", bSchedule, err)
	}
	pause.release()
	aRound.end(t)
	if n := down.tried(); n != 2 {
		t.Errorf("the mail server was tried %d times, want 2: replica a, no longer holding the entry, sent on the schedule it read before replica b took the entry over and tried it", n)
	}
	if got, err := e.rdb.HGet(ctx, keys.OutboxRetry("contoso"), oneEntry(t, e)).Result(); err != nil || got != bSchedule {
		t.Errorf("the entry's schedule is %q, %v; want replica b's %q", got, err, bSchedule)
	}
	tries, err := e.rdb.Get(ctx, notify.SentKey("contoso", oneEntry(t, e), "mail:mary@provider.example")+":tries").Result()
	if err != nil || tries != "2" {
		t.Errorf("the recipient's failed attempts are %q, %v; want 2 (replica a's first, replica b's)", tries, err)
	}
}
