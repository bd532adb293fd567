package notify_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestTakeoverOfARetryIsNoDeadReplica: from about its sixth attempt a
// message backs off for longer than ClaimAfter, and another replica then
// takes it over when its retry is due. Each such handover was logged at
// info as "took over entries of another consumer", the line that also
// says a replica died: with two replicas it came every few minutes, and
// an SRE read each one as a crash. A retry handed over is now logged at
// debug; a message a replica read and never finished (it died or stalled
// sending it, at its first attempt or at a retry) is still logged at info,
// naming that replica.
func TestTakeoverOfARetryIsNoDeadReplica(t *testing.T) {
	const backoff, claimAfter = 10 * time.Minute, 2 * time.Minute
	for _, c := range []struct {
		name string
		// held leaves the message pending at replica a, as Redis then
		// sees it idle since a's last read, and returns that time.
		held func(t *testing.T, e *env, a *notify.Worker) time.Duration
		// dead: a was sending it when it stopped.
		dead bool
	}{
		{"backing off", func(t *testing.T, e *env, a *notify.Worker) time.Duration {
			tick(t, a) // the attempt fails; its retry is due after backoff
			return backoff + time.Minute
		}, false},
		{"read and never sent", func(t *testing.T, e *env, _ *notify.Worker) time.Duration {
			readAs(t, e, "a", ">")
			return claimAfter + time.Minute
		}, true},
		{"read again at its retry and never sent", func(t *testing.T, e *env, a *notify.Worker) time.Duration {
			tick(t, a)
			e.clock.Advance(backoff + time.Second)
			readAs(t, e, "a", "0") // a's next visit reads it, then a stops
			return claimAfter + time.Minute
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			replica := func(name string, m notify.Mailer, logs *logBuffer) *notify.Worker {
				w, err := notify.NewWorker(notify.WithMailer(notify.Config{
					Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter,
					ManagerAddresses: []string{"mary@provider.example"}, Registerer: prometheus.NewRegistry(),
					Backoff: func(int) time.Duration { return backoff },
					Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				}, m))
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			a := replica("a", &refusingMailbox{refuse: "mary@provider.example"}, &logBuffer{})
			mb, logs := &mailbox{}, &logBuffer{}
			b := replica("b", mb, logs)
			e.create(t, operator(0)) // request.created, to the manager
			idle := c.held(t, e, a)
			// Idle that long, as Redis measures it, without waiting.
			id := oneEntry(t, e)
			if err := e.rdb.Do(context.Background(), "XCLAIM", notify.OutboxKey("contoso"), notify.Group, "a", 0, id,
				"IDLE", idle.Milliseconds(), "JUSTID").Err(); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(idle)
			tick(t, b)
			if n := len(mb.to("mary@provider.example")); n != 1 {
				t.Fatalf("replica b sent the manager %d e-mails, want the one it took over", n)
			}
			var info, debug []string
			for _, l := range logs.lines("took over entries") {
				if strings.Contains(l, `"level":"INFO"`) {
					info = append(info, l)
				} else {
					debug = append(debug, l)
				}
			}
			if !c.dead {
				if len(info) != 0 || len(debug) != 1 {
					t.Fatalf("a retry handed over was logged at info %q, at debug %q; want once at debug", info, debug)
				}
				return
			}
			if len(info) != 1 || !strings.Contains(info[0], `"consumers":["a"]`) {
				t.Fatalf("a message replica a died sending was logged at info %q, at debug %q; want once at info, naming a", info, debug)
			}
		})
	}
}

func tick(t *testing.T, w *notify.Worker) {
	t.Helper()
	if _, err := w.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// readAs reads contoso's outbox as consumer of the notification group
// from id (">" new entries, "0" its pending ones), as a replica's visit
// does before it works on them.
func readAs(t *testing.T, e *env, consumer, id string) {
	t.Helper()
	ctx := context.Background()
	key := notify.OutboxKey("contoso")
	if err := e.rdb.XGroupCreateMkStream(ctx, key, notify.Group, "0").Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		t.Fatal(err)
	}
	res, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: notify.Group, Consumer: consumer, Streams: []string{key, id}, Count: 10, Block: -1,
	}).Result()
	if err != nil || len(res) != 1 || len(res[0].Messages) != 1 {
		t.Fatalf("read as %s: %v, %v; want the one entry", consumer, res, err)
	}
}
