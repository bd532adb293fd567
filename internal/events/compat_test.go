package events_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestUnknownMessageClearsCaches: during a rolling upgrade a newer replica
// may publish events in a form this version does not know (more than a
// tenant's name). Such a message still says that something changed, and
// this version can't tell what: it clears every cache rather than
// forgetting a tenant of that name or nothing at all, which would keep a
// revoked grant cached until its age limit. A tenant's name is applied as
// before.
func TestUnknownMessageClearsCaches(t *testing.T) {
	rdb := redistest.Client(t)
	rec := &recorder{got: make(chan struct{}, 8)}
	l := events.NewListener(rdb, nil, rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not end with its context")
		}
	})
	select {
	case <-l.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("never subscribed")
	}
	for _, msg := range []string{`{"tenant":"contoso","what":"grants"}`, "grants:contoso", "", "fabrikam"} {
		if err := rdb.Publish(ctx, events.Channel, msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Messages arrive in order: once the last is applied, so are the
	// ones before it.
	select {
	case <-rec.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	rec.mu.Lock()
	got, resets := slices.Clone(rec.tenants), rec.resets
	rec.mu.Unlock()
	if !slices.Equal(got, []string{"fabrikam"}) || resets != 1+3 {
		t.Fatalf("invalidated %v with %d resets; want [fabrikam] and 4 resets (subscribing, then each unknown message)", got, resets)
	}
}
