package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// The tests of two replicas sharing a tenant's outbox stall replica a in
// the middle of its round (a slow mail server, a paused Redis client), let
// replica b act meanwhile, then let a go: the harness they share lives
// here, so that each test reads as the interleaving it is about.

// askGate holds the ask to one recipient (slow) until released, as a slow
// mail server does, telling when it began.
type askGate struct {
	slow    string
	entered chan struct{}
	free    chan struct{}
	once    sync.Once
	freed   sync.Once
}

// newAskGate returns a gate for slow's ask, released at the latest as the
// test ends.
func newAskGate(t *testing.T, slow string) *askGate {
	g := &askGate{slow: slow, entered: make(chan struct{}), free: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

// hold returns, when msg is the ask to slow, once the gate is released or
// ctx ends; at once otherwise.
func (g *askGate) hold(ctx context.Context, msg notify.Message) error {
	if msg.To == g.slow && strings.Contains(msg.Subject, "awaits your decision") {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// release lets the ask go; it may be called more than once.
func (g *askGate) release() { g.freed.Do(func() { close(g.free) }) }

// round is replica a's round, run in the background while the test acts.
type round chan error

// startRound starts a round of replica a and returns once stalled is
// closed: a came to where the test holds it. The failures say what a was
// to do: it finished its round first ("finished its round " + first) or
// never got there ("never " + never).
func startRound(t *testing.T, a *notify.Worker, stalled <-chan struct{}, first, never string) round {
	t.Helper()
	r := make(round, 1)
	go func() {
		_, err := a.Tick(context.Background())
		r <- err
	}()
	select {
	case <-stalled:
	case err := <-r:
		t.Fatalf("replica a finished its round %s: %v", first, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("replica a never %s", never)
	}
	return r
}

// end waits for the round, let go, to end without error.
func (r round) end(t *testing.T) {
	t.Helper()
	select {
	case err := <-r:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replica a's round never ended")
	}
}

// tickAll runs one round of each worker, in order.
func tickAll(t *testing.T, ws ...*notify.Worker) {
	t.Helper()
	for _, w := range ws {
		if _, err := w.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// settle runs the rounds of the replicas, in the order given, the clock a
// minute on before each turn, until the outbox is empty as a reads it, 50
// turns at the most; it returns the depth a reads then.
func settle(t *testing.T, e *env, a *notify.Worker, replicas ...*notify.Worker) (int64, error) {
	t.Helper()
	ctx := context.Background()
	for range 50 {
		if n, err := a.Depth(ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
		e.clock.Advance(time.Minute)
		tickAll(t, replicas...)
	}
	return a.Depth(ctx)
}

// drainWithTime runs w's rounds, the clock a minute on after each, until
// its outbox is empty, 50 rounds at the most; it returns the depth then.
func drainWithTime(t *testing.T, e *env, w *notify.Worker) (int64, error) {
	t.Helper()
	ctx := context.Background()
	for range 50 {
		if n, err := w.Depth(ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
		tickAll(t, w)
		e.clock.Advance(time.Minute)
	}
	return w.Depth(ctx)
}

// pauseAfterDel returns a client of e's Redis for replica a that pauses
// right after its first DEL, the command that frees a recipient it failed,
// until the returned pause is released.
func pauseAfterDel(t *testing.T, e *env) (redis.UniversalClient, *pauseAfter) {
	t.Helper()
	rdb := redistest.Clone(t, e.rdb)
	pause := newPauseAfter(t, redistest.Command("del"))
	rdb.AddHook(pause)
	return rdb, pause
}

// leaseBy matches the lease that replica consumer takes on a recipient
// before sending to it: its EVALSHA, or the EVAL that follows one the
// server answered NOSCRIPT. A hook that counts leases before they run
// loads the script first (loadLease), so that each is one command.
func leaseBy(consumer string) func(redis.Cmder) bool {
	evalsha, eval := redistest.Command("evalsha", "sending:"+consumer), redistest.Command("eval", "sending:"+consumer)
	return func(c redis.Cmder) bool { return evalsha(c) || eval(c) }
}

// loadLease loads the lease's script into e's Redis.
func loadLease(t *testing.T, e *env) {
	t.Helper()
	if err := notify.LoadLeaseScript(context.Background(), e.rdb); err != nil {
		t.Fatal(err)
	}
}

// oneEntry is the ID of the one entry of contoso's outbox.
func oneEntry(t *testing.T, e *env) string {
	t.Helper()
	entries, err := e.rdb.XRange(context.Background(), notify.OutboxKey("contoso"), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("outbox = %v, %v; want the one entry", entries, err)
	}
	return entries[0].ID
}

// idleAtA makes Redis see the entry id idle at replica a for an hour
// (XCLAIM's IDLE sets the time Redis keeps; JUSTID leaves its owner's
// delivery count alone): another replica may take it over.
func idleAtA(t *testing.T, e *env, id string) {
	t.Helper()
	if err := e.rdb.Do(context.Background(), "XCLAIM", notify.OutboxKey("contoso"), notify.Group, "a", 0, id,
		"IDLE", time.Hour.Milliseconds(), "JUSTID").Err(); err != nil {
		t.Fatal(err)
	}
}
