package events_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

type recorder struct {
	mu      sync.Mutex
	tenants []string
	resets  int
	got     chan struct{}
}

func (r *recorder) Invalidate(t string) {
	r.mu.Lock()
	r.tenants = append(r.tenants, t)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) Reset() { r.mu.Lock(); r.resets++; r.mu.Unlock() }

// TestListener: an event published in a transaction reaches the listener
// only if the transaction commits; subscribing resets the caches; a
// dropped event is not applied; Run ends with its context.
func TestListener(t *testing.T) {
	rdb := redistest.Client(t)
	rec := &recorder{got: make(chan struct{}, 8)}
	l := events.NewListener(rdb, nil, rec)
	l.Drop = func(tenant string) bool { return tenant == "dropped" }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	<-l.Ready()

	// A transaction that fails (WATCH lost) publishes nothing.
	key := "lockbox:{contoso}:x"
	err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		rdb.Set(ctx, key, "changed meanwhile", 0)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			events.PublishTx(ctx, p, "aborted")
			return nil
		})
		return err
	}, key)
	if err != redis.TxFailedErr {
		t.Fatalf("watch: %v", err)
	}
	for _, tenant := range []string{"dropped", "contoso"} {
		if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			events.PublishTx(ctx, p, tenant)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-rec.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	rec.mu.Lock()
	got, resets := slices.Clone(rec.tenants), rec.resets
	rec.mu.Unlock()
	if !slices.Equal(got, []string{"contoso"}) || resets != 1 {
		t.Fatalf("invalidated %v with %d resets; want [contoso] and the reset of subscribing", got, resets)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}
