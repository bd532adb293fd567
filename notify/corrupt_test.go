package notify_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestCorruptEntryDeadLetterIsCounted: an outbox entry that can't be read
// at all is a dead letter at once, and like every other dead letter it is
// counted as lockbox_notifications_sent_total{result="dead"}, on the
// channels it would have gone through, besides being logged at error: the
// LockboxNotificationDeadLettered alert reads the counter. It was written
// to the dead-letter stream and logged, but counted on no channel, so no
// alert told anyone that somebody was never notified.
func TestCorruptEntryDeadLetterIsCounted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: the tenant is due
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: notify.OutboxKey("contoso"), Values: []any{"event", "{corrupt"}}).Err(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	logs := &logBuffer{}
	hook := startStatusHook(t, answer{status: 200})
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}}}, &mailbox{}))
	drain(t, w)
	dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Values["event"] != "{corrupt" {
		t.Fatalf("dead letters %v; want the corrupt entry", dead)
	}
	for _, ch := range []string{"dev", "webhook"} {
		if got := testutil.ToFloat64(mustCounter(t, reg, ch, "dead")); got != 1 {
			t.Errorf(`sent_total{%s,dead} = %v, want 1`, ch, got)
		}
	}
	if lines := logs.lines("notification dead-lettered"); len(lines) != 1 || !strings.Contains(lines[0], "corrupt event") {
		t.Errorf("dead letters logged: %q; want the corrupt entry's, once", lines)
	}
}
