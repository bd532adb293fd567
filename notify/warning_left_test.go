package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestExpiryWarningCountsFromDelivery: an expiry warning says how long
// access has left when it goes out, not when it was queued. A mail server
// down for ten minutes after the warning was queued with 15 minutes left
// delivers "ends in 5m", not a promise of time that is gone; the end it
// names stays the same.
func TestExpiryWarningCountsFromDelivery(t *testing.T) {
	e := newEnv(t)
	r := e.createWith(t, operator(0), time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, adam)
	ends := e.clock.Now().Add(time.Hour)
	mb := &flakyMailbox{}
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		ExpiryWarning: 15 * time.Minute}, mb))
	drain(t, w)
	mb.reset()
	mb.setDown(true)
	e.clock.Set(ends.Add(-15 * time.Minute))
	if _, err := w.Tick(context.Background()); err != nil { // queues the warning; the mail fails
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	mb.setDown(false)
	drain(t, w)
	got := mb.to("alice0@provider.example")
	if len(got) != 1 {
		t.Fatalf("engineer's e-mails = %+v", got)
	}
	if !strings.Contains(got[0].Subject, "your access ends in 5m (") {
		t.Errorf("subject = %q, want access ending in 5m", got[0].Subject)
	}
	if !strings.Contains(got[0].Body, "ends at 2026-11-23 10:00 UTC,\nin 5m.") {
		t.Errorf("body:\n%s", got[0].Body)
	}
}
