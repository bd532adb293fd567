package notify_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// pauseAfter holds a client right after its first command matching match
// returned, until release is called: a replica paused between two of its
// commands (a garbage collection, a stalled network) for as long as the
// test likes.
type pauseAfter struct {
	match  func(redis.Cmder) bool
	once   sync.Once
	paused chan struct{}
	free   chan struct{}
	rel    sync.Once
}

func newPauseAfter(t *testing.T, match func(redis.Cmder) bool) *pauseAfter {
	p := &pauseAfter{match: match, paused: make(chan struct{}), free: make(chan struct{})}
	t.Cleanup(p.release)
	return p
}

func (p *pauseAfter) release() { p.rel.Do(func() { close(p.free) }) }

func (p *pauseAfter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (p *pauseAfter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if p.match(cmd) {
			hit := false
			p.once.Do(func() { hit = true; close(p.paused) })
			if hit {
				<-p.free
			}
		}
		return err
	}
}

func (p *pauseAfter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// failingMailbox refuses every message for now, as a mail server that is
// down does, and counts the attempts.
type failingMailbox struct {
	mu       sync.Mutex
	attempts int
}

func (m *failingMailbox) Name() string { return "dev" }

func (m *failingMailbox) Send(context.Context, string, notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	return errors.New("451 4.3.0 mail server busy, try again later")
}

// TestLastAttemptDeadLetteredOnceAcrossReplicas: replica a fails an
// entry's last attempt and is paused before it writes the dead letter,
// long enough for Redis to see the entry idle for ClaimAfter; replica b
// takes the entry over (XAUTOCLAIM) and tries the recipient again. Only
// the replica holding the entry decides its fate: when b's try fails too,
// the entry is one dead letter, not one from each replica (a re-drive of
// both would send it twice); when b's try delivers it, no dead letter
// says it was given up on.
func TestLastAttemptDeadLetteredOnceAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bDelivers bool
		letters   int
	}{
		{"the other replica fails too", false, 1},
		{"the other replica delivers", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.create(t, operator(0)) // request.created: the manager's e-mail alone
			const claimAfter = 2 * time.Minute
			worker := func(name string, rdb redis.UniversalClient, m notify.Mailer) *notify.Worker {
				return newWorker(t, notify.WithMailer(notify.Config{
					Redis: rdb, Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter, MaxAttempts: 1,
					ManagerAddresses: []string{"mary@provider.example"},
				}, m))
			}
			// Replica a pauses right after it frees the recipient it failed,
			// the last step before it writes the dead letter.
			aRdb, pause := pauseAfterDel(t, e)
			down := &failingMailbox{}
			a := worker("a", aRdb, down)
			aRound := startRound(t, a, pause.paused, "without failing the recipient", "failed the recipient")
			// Redis sees the entry idle at a for an hour, and a's claim of
			// the tenant has ended.
			idleAtA(t, e, oneEntry(t, e))
			e.clock.Advance(claimAfter + time.Millisecond)
			var bMail notify.Mailer = down
			mb := &mailbox{}
			if tc.bDelivers {
				bMail = mb
			}
			b := worker("b", redistest.Clone(t, e.rdb), bMail)
			if _, err := b.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			pause.release()
			aRound.end(t)
			dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != tc.letters {
				var got []any
				for _, d := range dead {
					got = append(got, d.Values["recipients"], d.Values["attempts"])
				}
				t.Errorf("%d dead letters for the entry (recipients, attempts: %v), want %d", len(dead), got, tc.letters)
			}
			if tc.bDelivers && len(mb.to("mary@provider.example")) != 1 {
				t.Errorf("replica b delivered %d e-mails, want 1", len(mb.to("mary@provider.example")))
			}
			tickAll(t, a, b)
			if n, err := e.rdb.XLen(ctx, notify.OutboxKey("contoso")).Result(); err != nil || n != 0 {
				t.Errorf("outbox holds %d entries, %v; want the entry finished", n, err)
			}
			if n, err := e.rdb.HLen(ctx, keys.OutboxRetry("contoso")).Result(); err != nil || n != 0 {
				t.Errorf("%d retry schedules left for the finished entry, %v", n, err)
			}
		})
	}
}
