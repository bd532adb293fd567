package notify_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// stallHook holds a client's nth command matching match until release is
// called, as a replica busy elsewhere between two of its commands would.
type stallHook struct {
	match   func(redis.Cmder) bool
	n       int
	mu      sync.Mutex
	seen    int
	stalled chan struct{}
	free    chan struct{}
	once    sync.Once
}

func newStallHook(t *testing.T, n int, match func(redis.Cmder) bool) *stallHook {
	h := &stallHook{match: match, n: n, stalled: make(chan struct{}), free: make(chan struct{})}
	t.Cleanup(h.release)
	return h
}

func (h *stallHook) release() { h.once.Do(func() { close(h.free) }) }

func (h *stallHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *stallHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.match(cmd) {
			h.mu.Lock()
			h.seen++
			hit := h.seen == h.n
			h.mu.Unlock()
			if hit {
				close(h.stalled)
				<-h.free
			}
		}
		return next(ctx, cmd)
	}
}

func (h *stallHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// waitFor polls cond until it holds; the deadline only bounds a failure.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPermanentFailureDeadLetteredOnceUnderSlowReplica: a replica whose
// webhook receiver answers 410 goes on to the entry's later recipients,
// whose sends may together take longer than the recipient's lease. Another
// replica that takes the entry over meanwhile (it was idle for ClaimAfter)
// must not call the gone receiver again nor dead-letter it a second time:
// the recipient is dead-lettered, and marked dead, before the first
// replica moves on.
func TestPermanentFailureDeadLetteredOnceUnderSlowReplica(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: the manager's e-mail and both webhooks
	gone := startStatusHook(t, answer{status: http.StatusGone})
	ok := startStatusHook(t, answer{status: http.StatusOK})
	const claimAfter = 2 * time.Minute
	mb := &mailbox{}
	tk := startTakeover(t, e, gone.URL, ok.URL, claimAfter, mb)
	// Time passes at replica a: the gone receiver's lease runs out unless
	// it was settled, and Redis sees the entry idle for ClaimAfter.
	endLease(t, e, notify.SentKey("contoso", tk.id, "webhook:"+gone.URL))
	tk.makeIdle(t, e)
	// Replica a's claim of the tenant ends; replica b visits it and takes
	// the entry over.
	e.clock.Advance(claimAfter + time.Millisecond)
	if _, err := tk.worker("b", redistest.Clone(t, e.rdb)).Tick(ctx); err != nil {
		t.Fatal(err)
	}
	tk.finish(t)
	if n := ok.count(); n != 1 {
		t.Fatalf("the second webhook was called %d times, want once (by replica b, which took the entry over)", n)
	}
	if n := gone.count(); n != 1 {
		t.Errorf("the gone receiver was called %d times, want once", n)
	}
	dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Values["recipients"] != "webhook:0" {
		var got []any
		for _, d := range dead {
			got = append(got, d.Values["recipients"])
		}
		t.Errorf("dead letters for recipients %v, want one, for webhook:0", got)
	}
	if n := len(mb.to("mary@provider.example")); n != 1 {
		t.Errorf("the manager got %d e-mails, want 1", n)
	}
	if n, err := tk.slow.Depth(ctx); err != nil || n != 0 {
		t.Errorf("depth = %d, %v; want the entry finished", n, err)
	}
}

// endLease ends the lease on a recipient that the sent mark mk still
// holds, as ClaimAfter passing does in Redis; a mark that settled the
// recipient (sent, dead, skipped) stays.
func endLease(t *testing.T, e *env, mk string) {
	t.Helper()
	ctx := context.Background()
	v, err := e.rdb.Get(ctx, mk).Result()
	if errors.Is(err, redis.Nil) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(v, "sending:") {
		if err := e.rdb.Del(ctx, mk).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// takeover is two replicas of the notification worker on request.created's
// one entry (the manager's e-mail, then two webhooks): replica a (slow),
// whose round is under way and stalled before its lease of the entry's
// third recipient, the second webhook; worker makes the others.
type takeover struct {
	worker func(name string, rdb redis.UniversalClient) *notify.Worker
	slow   *notify.Worker
	stall  *stallHook
	round  round  // replica a's
	id     string // the entry
}

// startTakeover starts replica a on e's outbox, with webhooks first and
// second, ClaimAfter claimAfter and e-mails to mb, and returns once it is
// stalled.
func startTakeover(t *testing.T, e *env, first, second string, claimAfter time.Duration, mb *mailbox) *takeover {
	t.Helper()
	tk := &takeover{}
	tk.worker = func(name string, rdb redis.UniversalClient) *notify.Worker {
		return newWorker(t, notify.WithMailer(notify.Config{
			Redis: rdb, Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter, MaxAttempts: 16,
			ManagerAddresses: []string{"mary@provider.example"},
			Webhooks: []notify.WebhookConfig{
				{URL: first, Secret: []byte("k")},
				{URL: second, Secret: []byte("k")},
			},
		}, mb))
	}
	slowRdb := redistest.Clone(t, e.rdb)
	loadLease(t, e)
	tk.stall = newStallHook(t, 3, leaseBy("a"))
	slowRdb.AddHook(tk.stall)
	tk.slow = tk.worker("a", slowRdb)
	tk.round = startRound(t, tk.slow, tk.stall.stalled, "without reaching the second webhook", "reached the second webhook")
	tk.id = oneEntry(t, e)
	return tk
}

// makeIdle makes Redis see the entry idle at replica a past ClaimAfter
// (idleAtA): another replica may take it over. The tests leave no lease to
// real time: ClaimAfter is long enough that neither a lease nor a send's
// timeout (ClaimAfter/2) can run out while a loaded machine runs them
// slowly, which would let a replica send again what it already sent.
func (tk *takeover) makeIdle(t *testing.T, e *env) {
	t.Helper()
	idleAtA(t, e, tk.id)
}

// finish releases replica a and waits for its round to end.
func (tk *takeover) finish(t *testing.T) {
	t.Helper()
	tk.stall.release()
	tk.round.end(t)
}
