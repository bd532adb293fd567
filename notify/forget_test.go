package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/notify"
)

func outboxConsumers(t *testing.T, rdb redis.UniversalClient, tenant string) map[string]redis.XInfoConsumer {
	t.Helper()
	cs, err := rdb.XInfoConsumers(context.Background(), notify.OutboxKey(tenant), notify.Group).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]redis.XInfoConsumer{}
	for _, c := range cs {
		out[c.Name] = c
	}
	return out
}

// visit runs w's round until it sent what the last request queued (the
// entry pod-stuck holds keeps the outbox from draining).
func visit(t *testing.T, w *notify.Worker) {
	t.Helper()
	for range 50 {
		n, err := w.Tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("the worker sent nothing in 50 rounds")
}

// TestWorkerForgetsGoneReplicas: replicas are named by pod, and every
// rollout's names stayed in the consumer group of every tenant's outbox
// they read, for good. A worker visiting a tenant now removes the
// consumers there with nothing pending that Redis has seen idle for
// ForgetAfter (a day by default); one holding an entry stays with it.
func TestWorkerForgetsGoneReplicas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stream := notify.OutboxKey("contoso")
	e.create(t, operator(0))
	drain(t, newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "pod-new", DevDir: t.TempDir()}))

	// The previous rollout's pod, gone with nothing pending; and a pod
	// that read an entry and stopped before it was through with it.
	if err := e.rdb.XGroupCreateConsumer(ctx, stream, notify.Group, "pod-old").Err(); err != nil {
		t.Fatal(err)
	}
	e.create(t, operator(1))
	held, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: notify.Group, Consumer: "pod-stuck", Streams: []string{stream, ">"}, Count: 1}).Result()
	if err != nil || len(held) != 1 || len(held[0].Messages) != 1 {
		t.Fatalf("pod-stuck's read: %v, %v", held, err)
	}

	// Wait for Redis to see both idle past forgetAfter (the deadline only
	// bounds a failure).
	const forgetAfter = 20 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for c := outboxConsumers(t, e.rdb, "contoso"); c["pod-old"].Idle < forgetAfter || c["pod-stuck"].Idle < forgetAfter; c = outboxConsumers(t, e.rdb, "contoso") {
		if time.Now().After(deadline) {
			t.Fatalf("consumers not idle for %v in 10s: %v", forgetAfter, c)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// By default a day must pass: a visit keeps both.
	e.create(t, operator(2))
	visit(t, newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "pod-new", DevDir: t.TempDir()}))
	if got := outboxConsumers(t, e.rdb, "contoso"); len(got) != 3 {
		t.Fatalf("consumers after a visit with the default ForgetAfter: %v, want pod-old, pod-stuck and pod-new", got)
	}

	e.create(t, operator(3))
	visit(t, newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "pod-new", DevDir: t.TempDir(), ForgetAfter: forgetAfter}))
	got := outboxConsumers(t, e.rdb, "contoso")
	if _, ok := got["pod-old"]; ok {
		t.Errorf("a pod with nothing pending, idle past ForgetAfter, stayed: %v", got)
	}
	if c, ok := got["pod-stuck"]; !ok || c.Pending != 1 {
		t.Errorf("the pod holding an entry: %+v (present %v), want it kept with its entry", c, ok)
	}
	if _, ok := got["pod-new"]; !ok {
		t.Errorf("the visiting worker forgot itself: %v", got)
	}
}
