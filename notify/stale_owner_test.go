package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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

// heldHook is a webhook receiver whose first delivery waits until release
// and is answered 429 with a Retry-After of 10 minutes; every later one is
// answered 200. It counts the deliveries.
type heldHook struct {
	*httptest.Server
	entered chan struct{}
	free    chan struct{}
	once    sync.Once
	freed   sync.Once
	mu      sync.Mutex
	hits    int
}

func startHeldHook(t *testing.T) *heldHook {
	h := &heldHook{entered: make(chan struct{}), free: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits++
		first := h.hits == 1
		h.mu.Unlock()
		if !first {
			return
		}
		h.once.Do(func() { close(h.entered) })
		select {
		case <-h.free:
		case <-r.Context().Done():
		}
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(h.Close)
	t.Cleanup(h.release)
	return h
}

func (h *heldHook) release() { h.freed.Do(func() { close(h.free) }) }

func (h *heldHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits
}

// TestRetryAfterHoldsAfterTakeOverDuringSend: replica a calls a webhook
// receiver that takes its time, then answers 429 with Retry-After: 10
// minutes. Meanwhile replica b took the entry over, so a, no longer
// holding it, writes no retry schedule. The receiver's wait holds all the
// same: b calls it again only once the 10 minutes are over.
func TestRetryAfterHoldsAfterTakeOverDuringSend(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: the manager's e-mail, then the webhook
	hook := startHeldHook(t)
	const claimAfter = 2 * time.Minute
	mb := &mailbox{}
	worker := func(name string) *notify.Worker {
		return newWorker(t, notify.WithMailer(notify.Config{
			Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter, MaxAttempts: 16,
			ManagerAddresses: []string{"mary@provider.example"},
			Webhooks:         []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}},
		}, mb))
	}
	a, b := worker("a"), worker("b")
	aRound := startRound(t, a, hook.entered, "without calling the webhook", "called the webhook")
	// Redis sees the entry idle at a for an hour, and a's claim of the
	// tenant has ended: b takes the entry over, finds the manager's e-mail
	// sent and the webhook being called by a.
	idleAtA(t, e, oneEntry(t, e))
	e.clock.Advance(claimAfter + time.Millisecond)
	tickAll(t, b)
	hook.release()
	aRound.end(t)
	// Four minutes after the receiver asked for ten, b visits again.
	e.clock.Advance(claimAfter + time.Millisecond)
	tickAll(t, b)
	if n := hook.count(); n != 1 {
		t.Errorf("the receiver was called %d times 2 minutes after it asked replica a for 10, want once", n)
	}
	e.clock.Advance(claimAfter + time.Millisecond)
	tickAll(t, a, b)
	if n := hook.count(); n != 1 {
		t.Errorf("the receiver was called %d times 4 minutes after it asked replica a for 10, want once", n)
	}
	// Waiting is no failed attempt.
	tries, err := e.rdb.Get(ctx, notify.SentKey("contoso", oneEntry(t, e), "webhook:"+hook.URL)+":tries").Result()
	if err != nil || tries != "1" {
		t.Errorf("the receiver's failed attempts are %q, %v; want 1 (replica a's)", tries, err)
	}
	// Once the wait is over the entry is retried and finished.
	e.clock.Advance(7 * time.Minute)
	tickAll(t, b)
	if n := hook.count(); n != 2 {
		t.Errorf("the receiver was called %d times once its wait was over, want twice", n)
	}
	if n := len(mb.to("mary@provider.example")); n != 1 {
		t.Errorf("the manager got %d e-mails, want 1", n)
	}
	if n, err := b.Depth(ctx); err != nil || n != 0 {
		t.Errorf("depth = %d, %v; want the entry finished", n, err)
	}
	if n, err := e.rdb.HLen(ctx, keys.OutboxRetry("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("%d retry schedules left for the finished entry, %v", n, err)
	}
}
