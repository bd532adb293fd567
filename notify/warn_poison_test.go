package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestCorruptRequestHoldsUpNoExpiryWarning: a grant whose request can't
// be read (it does not decode) is reported and passed over, as the sweep
// passes it over: it comes first in expiry order at every visit, and kept
// the tenant's later grants from being warned until it had ended.
func TestCorruptRequestHoldsUpNoExpiryWarning(t *testing.T) {
	e := newEnv(t)
	first := e.createWith(t, operator(0), time.Hour)
	e.act(t, first.ID, grants.ActionApprove, manager)
	e.act(t, first.ID, grants.ActionApprove, adam)
	e.clock.Advance(5 * time.Minute)
	second := e.createWith(t, operator(1), time.Hour)
	e.act(t, second.ID, grants.ActionApprove, manager)
	e.act(t, second.ID, grants.ActionApprove, adam)
	ends := e.clock.Now().Add(time.Hour)
	mb := &mailbox{}
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		ExpiryWarning: 15 * time.Minute}, mb))
	drain(t, w)
	if err := e.rdb.Set(context.Background(), keys.Request("contoso", first.ID), "{corrupt", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Both windows end within the lead time: the corrupt one first.
	e.clock.Set(ends.Add(-10 * time.Minute))
	drain(t, w)
	var warned []string
	for _, m := range mb.to("alice1@provider.example") {
		if strings.Contains(m.Subject, "your access ends in") {
			warned = append(warned, m.Subject)
		}
	}
	if len(warned) != 1 {
		t.Fatalf("the second grant's engineer was warned %d times, want once: %v", len(warned), mb.recipients())
	}
}
