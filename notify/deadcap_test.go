package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/notify"
)

// deadLettersDropped reads lockbox_notification_dead_letters_dropped_total,
// failing when the counter is not registered.
func deadLettersDropped(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "lockbox_notification_dead_letters_dropped_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("lockbox_notification_dead_letters_dropped_total is not registered")
	return 0
}

// TestDeadLetterStreamIsCapped: a mail server that refuses for days
// dead-letters every message, and a tenant's dead-letter stream grew
// without bound. It holds the newest 10,000 letters (README); the oldest
// makes room for a new one, counted and logged at error with what it was
// (its request, kind, recipients and error), so that nothing leaves
// without a trace.
func TestDeadLetterStreamIsCapped(t *testing.T) {
	const capacity = 10000
	e := newEnv(t)
	ctx := context.Background()
	dead := notify.DeadKey("contoso")
	// The stream full of older letters, each of its own request.
	if _, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 1; i <= capacity; i++ {
			ev := fmt.Sprintf(`{"kind":"request.created","request":{"id":"old-%d","tenant":"contoso"}}`, i)
			p.XAdd(ctx, &redis.XAddArgs{Stream: dead, ID: fmt.Sprintf("%d-0", i), Values: []any{
				"event", ev, "entry", fmt.Sprintf("%d-0", i), "attempts", 16, "error", "mailbox full",
				"recipients", fmt.Sprintf("mail:old%d@provider.example", i), "at", t0.Format(time.RFC3339)}})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, operator(0)) // request.created: one e-mail to the manager, refused for good
	srv := startRefusingSMTP(t, "250 ok", `550 5.1.1 <mary@provider.example>: no such user`)
	var logs logBuffer
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), ManagerAddresses: []string{"mary@provider.example"},
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 10 * time.Second}})
	drain(t, w)

	if n, err := e.rdb.XLen(ctx, dead).Result(); err != nil || n != capacity {
		t.Fatalf("dead letters = %d, %v; want %d", n, err, capacity)
	}
	first, err := e.rdb.XRangeN(ctx, dead, "-", "+", 1).Result()
	if err != nil || len(first) != 1 || first[0].ID != "2-0" {
		t.Fatalf("oldest letter now %v, %v; want 2-0 (1-0 made room)", first, err)
	}
	last, err := e.rdb.XRevRangeN(ctx, dead, "+", "-", 1).Result()
	if err != nil || len(last) != 1 || !strings.Contains(fmt.Sprint(last[0].Values["event"]), r.ID) {
		t.Fatalf("newest letter %v, %v; want the one of request %s", last, err, r.ID)
	}
	if got := deadLettersDropped(t, reg); got != 1 {
		t.Errorf("dead letters dropped = %v, want 1", got)
	}
	lines := logs.lines(`"dead_letter":"1-0"`)
	if len(lines) != 1 {
		t.Fatalf("the dropped letter logged %d times, want once: %v", len(lines), logs.lines(""))
	}
	var rec struct {
		Level, Tenant, Kind, Error string
		RequestID                  string   `json:"request_id"`
		Recipients                 []string `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Level != "ERROR" || rec.Tenant != "contoso" || rec.RequestID != "old-1" || rec.Kind != "request.created" ||
		len(rec.Recipients) != 1 || rec.Recipients[0] != "mail:old1@provider.example" || rec.Error != "mailbox full" {
		t.Errorf("dropped letter logged as %+v", rec)
	}
}
