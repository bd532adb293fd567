package notify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// failSentMark fails, once, the write that marks the recipient whose sent
// marks end in suffix as sent, as a Redis that timed out would, and keeps
// the key it failed.
type failSentMark struct {
	suffix string
	mu     sync.Mutex
	failed string
}

func (f *failSentMark) key() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *failSentMark) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failSentMark) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if strings.EqualFold(cmd.Name(), "set") && len(args) > 2 && args[2] == "sent" {
			if k, _ := args[1].(string); strings.HasSuffix(k, f.suffix) {
				f.mu.Lock()
				first := f.failed == ""
				if first {
					f.failed = k
				}
				f.mu.Unlock()
				if first {
					cmd.SetErr(errors.New("i/o timeout"))
					return cmd.Err()
				}
			}
		}
		return next(ctx, cmd)
	}
}
func (f *failSentMark) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestNoLongerPendingFollowsAnAskSentButNotMarked: the mail server took
// the ask to eve, but the write recording so failed. Once its lease ended
// the ask was sent again (delivery is at least once), and her mailbox,
// busy now, turned the second copy away: that refusal was recorded as the
// ask never having reached her, and the request's cancellation, delivered
// before the ask's next retry (which then finds it stale), passed her by.
// She had been asked, and is told it no longer needs her decision.
func TestNoLongerPendingFollowsAnAskSentButNotMarked(t *testing.T) {
	const eve = "eve@contoso.example"
	e := newEnv(t)
	ctx := context.Background()
	srv := startSMTP(t)
	srv.stop()
	var mu sync.Mutex
	busy := map[string]bool{}
	srv.session = func() smtp.Session { return &busySession{session: session{s: srv}, mu: &mu, busy: busy} }
	srv.start()
	field := notify.SentKey("contoso", "x", "mail:"+eve)
	hook := &failSentMark{suffix: field[strings.LastIndexByte(field, ':'):]}
	rdb := redistest.Clone(t, e.rdb)
	rdb.AddHook(hook)
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{Redis: rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone}})
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	// The ask reaches eve; marking it sent fails.
	_, _ = w.Tick(ctx)
	if hook.key() == "" {
		t.Fatal("eve's ask was never marked sent")
	}
	// Its lease ends, and eve's mailbox is busy when it is sent again.
	if err := e.rdb.Del(ctx, hook.key()).Err(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	busy[eve] = true
	mu.Unlock()
	e.clock.Advance(time.Second)
	if _, err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "error")); got != 1 {
		t.Fatalf("sent_total{smtp,error} = %v; want 1, eve's ask sent again and turned away", got)
	}
	mu.Lock()
	delete(busy, eve)
	mu.Unlock()
	e.clock.Advance(time.Second)
	e.act(t, r.ID, grants.ActionCancel, operator(0))
	if n, err := drainWithTime(t, e, w); err != nil || n != 0 {
		t.Fatalf("outbox depth = %d, %v; want it drained", n, err)
	}
	var got []string
	for _, m := range srv.messages() {
		if m.To == eve {
			got = append(got, m.Subject)
		}
	}
	if len(got) != 2 || !strings.Contains(got[0], "awaits your decision") || !strings.Contains(got[1], "no longer needs your decision") {
		t.Errorf("eve got %q; want the ask, then the withdrawal", got)
	}
}
