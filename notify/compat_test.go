package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestUnknownKindLeftForNewerReplica: during a rolling upgrade a newer
// replica may queue an entry of a kind this version does not know. This
// version neither dead-letters nor acknowledges it, which would lose it
// for the newer replicas too: it stays in the outbox, pending, for a
// replica that knows the kind, while the tenant's other entries are
// delivered. It is logged and counted once, however many rounds see it.
func TestUnknownKindLeftForNewerReplica(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.create(t, operator(0))
	newer, _ := json.Marshal(notify.Event{Kind: "request.unheard_of", Request: r1})
	id, err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: notify.OutboxKey("contoso"), Values: []any{"event", newer}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	e.create(t, operator(1))

	mb := &mailbox{}
	reg := prometheus.NewRegistry()
	logs := &logBuffer{}
	w := newWorker(t, notify.WithMailer(notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "old", Registerer: reg, MaxAttempts: 2,
		ManagerAddresses: []string{"mary@provider.example"}, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	}, mb))
	for i := range 5 {
		if _, err := w.Tick(ctx); err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
		e.clock.Advance(time.Hour)
	}
	if got := len(mb.to("mary@provider.example")); got != 2 {
		t.Errorf("the manager got %d e-mails, want 2 (both creations)", got)
	}
	if n, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("%d entries dead-lettered (%v), want none", n, err)
	}
	left, err := e.rdb.XRange(ctx, notify.OutboxKey("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != id || left[0].Values["event"] != string(newer) {
		t.Fatalf("outbox = %v, want only the entry of the unknown kind, intact", left)
	}
	pending, err := e.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: notify.OutboxKey("contoso"), Group: notify.Group, Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != id {
		t.Fatalf("pending = %v, want the entry of the unknown kind, unacknowledged", pending)
	}
	// A replica that knows the kind takes it over once this one is gone
	// (upgraded under another name), as it takes over a dead replica's.
	claimed, _, err := e.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: notify.OutboxKey("contoso"), Group: notify.Group, Consumer: "new", Start: "0-0", Count: 10,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ID != id || claimed[0].Values["event"] != string(newer) {
		t.Errorf("a newer replica claimed %v, want the entry of the unknown kind", claimed)
	}
	if got := len(logs.lines("request.unheard_of")); got != 1 {
		t.Errorf("the unknown kind was logged %d times, want once", got)
	}
	if got := gathered(t, reg, "lockbox_notifications_unknown_kind_total"); got != 1 {
		t.Errorf("lockbox_notifications_unknown_kind_total = %v, want 1", got)
	}
}

// gathered returns the value of the counter name, with no labels, in reg;
// -1 when reg has no such counter.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
