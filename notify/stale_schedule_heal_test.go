package notify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestStaleRetryScheduleHeals: a deployment that ran a version before
// retry schedules were written only by the entry's holder may keep, in a
// tenant's retry hash, the schedule of an entry finished since (written
// by a replica that no longer held it). No visit finds that entry to
// delete its schedule, and its due time, once past, made the tenant due
// at once after every visit for good while its outbox held others. A
// visit now deletes a due schedule whose entry no consumer holds, and
// keeps a due one whose entry another replica holds, backing off.
func TestStaleRetryScheduleHeals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: the manager's e-mail alone
	worker := func(name string) *notify.Worker {
		// Not newWorker, which backs off for no time.
		w, err := notify.NewWorker(notify.WithMailer(notify.Config{
			Redis: e.rdb, Now: e.clock.Now, Consumer: name, MaxAttempts: 5, Registerer: prometheus.NewRegistry(),
			Backoff:          func(int) time.Duration { return time.Hour },
			ManagerAddresses: []string{"mary@provider.example"},
		}, &failingMailbox{}))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// Replica a fails the entry's first attempt: it backs off for an
	// hour, pending at a.
	if _, err := worker("a").Tick(ctx); err != nil {
		t.Fatal(err)
	}
	retry := keys.OutboxRetry("contoso")
	live, err := e.rdb.HGetAll(ctx, retry).Result()
	if err != nil || len(live) != 1 {
		t.Fatalf("retry schedules %v, %v; want the failed entry's", live, err)
	}
	liveAt := t0.Add(time.Hour).UnixMilli()
	for id, st := range live {
		if want := fmt.Sprintf("1:%d", liveAt); st != want {
			t.Fatalf("entry %s scheduled %q, want %q", id, st, want)
		}
	}
	// An entry replica b read and finished (acknowledged and deleted),
	// and the schedule an old version's paused replica wrote for it
	// afterwards, due a minute after t0.
	outbox := notify.OutboxKey("contoso")
	gone, err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: outbox, Values: []string{"event", "{}"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: notify.Group, Consumer: "b", Streams: []string{outbox, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XAck(ctx, outbox, notify.Group, gone).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XDel(ctx, outbox, gone).Err(); err != nil {
		t.Fatal(err)
	}
	staleAt := t0.Add(time.Minute).UnixMilli()
	if err := e.rdb.HSet(ctx, retry, gone, fmt.Sprintf("1:%d", staleAt)).Err(); err != nil {
		t.Fatal(err)
	}
	// Replica c visits the tenant once each schedule is due.
	c := worker("c")
	visit := func() float64 {
		t.Helper()
		now := e.clock.Now()
		if err := due.Set(ctx, e.rdb, "contoso", due.Mark{Job: due.Notify, At: now, Now: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		at, err := e.rdb.ZScore(ctx, keys.Due(string(due.Notify)), "contoso").Result()
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	e.clock.Advance(2 * time.Minute)
	if at := visit(); at != float64(liveAt) {
		t.Errorf("next visit at %v, want the live schedule's %d (the finished entry's was %d)", int64(at), liveAt, staleAt)
	}
	left, err := e.rdb.HGetAll(ctx, retry).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := left[gone]; ok {
		t.Errorf("the finished entry's schedule stayed: %v", left)
	}
	// The live schedule is due now, its entry still at a (for Redis, idle
	// for less than ClaimAfter): c neither takes it over nor forgets it.
	e.clock.Advance(time.Hour)
	if at := visit(); at != float64(liveAt) {
		t.Errorf("next visit at %v, want the live schedule's %d", int64(at), liveAt)
	}
	if after, err := e.rdb.HGetAll(ctx, retry).Result(); err != nil || len(after) != 1 || fmt.Sprint(after) != fmt.Sprint(live) {
		t.Errorf("retry schedules %v, %v; want the live one alone, %v", after, err, live)
	}
}

// TestStaleRetryScheduleWithoutOutbox: a schedule left behind when the
// tenant's outbox (and so its consumer group) is gone altogether is no
// entry's either: the visit deletes it rather than failing on the group
// it can't find.
func TestStaleRetryScheduleWithoutOutbox(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if n, err := e.rdb.Exists(ctx, notify.OutboxKey("contoso")).Result(); err != nil || n != 0 {
		t.Fatalf("outbox exists: %d, %v; want none", n, err)
	}
	retry := keys.OutboxRetry("contoso")
	if err := e.rdb.HSet(ctx, retry, "1796540722130-0", fmt.Sprintf("1:%d", t0.UnixMilli())).Err(); err != nil {
		t.Fatal(err)
	}
	if err := due.Set(ctx, e.rdb, "contoso", due.Mark{Job: due.Notify, At: t0, Now: t0}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if _, err := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a"}).Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if left, err := e.rdb.HGetAll(ctx, retry).Result(); err != nil || len(left) != 0 {
		t.Errorf("retry schedules left: %v, %v; want none", left, err)
	}
}
