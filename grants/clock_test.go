package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// ticking is a clock that has moved on by step each time it is read
// again, as a real one has after the Redis round trips between two reads.
type ticking struct {
	c    *clock.Fake
	step time.Duration
}

func (k ticking) Now() time.Time {
	now := k.c.Now()
	k.c.Advance(k.step)
	return now
}

// replicaOn returns another replica's store over e's Redis, reading the
// time from now.
func (e *env) replicaOn(t *testing.T, now func() time.Time) *grants.Store {
	t.Helper()
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGrantTTLFromTheDecisionsTime: a grant's TTL runs from the time the
// decision was judged at, the one its expires_at counts from. Read again
// when the grant was written, the clock had moved on by as long as the
// transaction's reads took; with a short grant that was all of its
// duration or more, and the grant key was written with no TTL at all
// (a SET with a TTL of zero or less keeps the key for good).
func TestGrantTTLFromTheDecisionsTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const d = time.Minute
	r := e.create(t, d)
	e.act(t, r.ID, grants.ActionApprove, manager)

	// The tenant decides on a replica whose clock moves on by the grant's
	// whole duration between two reads.
	tick := ticking{c: clock.NewFake(t0.Add(time.Hour)), step: d}
	approvedAt := tick.c.Now()
	got, err := e.replicaOn(t, tick.Now).Act(ctx, r.ID, grants.ActionApprove, globalAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != grants.StateApproved || !got.ApprovedAt.Equal(approvedAt) || !got.ExpiresAt.Equal(approvedAt.Add(d)) {
		t.Fatalf("approved %s at %v until %v, want at %v for %s", got.State, got.ApprovedAt, got.ExpiresAt, approvedAt, d)
	}
	// Redis counts the TTL down in real time: a minute is far more than
	// this test takes between the write and the read, however loaded.
	ttl := e.rdb.PTTL(ctx, keys.Grant("contoso", "alice", "exchange")).Val()
	if ttl <= 0 || ttl > d {
		t.Fatalf("grant TTL = %v, want at most %s and more than 0 (-1: none)", ttl, d)
	}
}

// TestCreateJudgedAtOneTime: filing a request is judged at one time, the
// one it is filed at. Create read the clock for the new request's
// created_at and again to see whether the engineer's previous request for
// the tenant and service had ended, so a request could be filed "at" a time
// when the previous grant was still live, and be recorded so: two open
// requests of one engineer for one tenant and service at once.
func TestCreateJudgedAtOneTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	prev := e.create(t, time.Hour)
	e.act(t, prev.ID, grants.ActionApprove, manager)
	prev = e.act(t, prev.ID, grants.ActionApprove, globalAdmin)
	end := *prev.ExpiresAt
	next := grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-8", Reason: "again", Duration: grants.Duration(time.Hour)}

	// A minute before the grant ends, on a replica whose clock moves on
	// by a minute between two reads.
	tick := ticking{c: clock.NewFake(end.Add(-time.Minute)), step: time.Minute}
	if r, err := e.replicaOn(t, tick.Now).Create(ctx, operator, next); codeOf(err) != "open_request_exists" {
		t.Fatalf("filed while the previous grant was live: %v; created at %v, previous grant until %v", err, r.CreatedAt, end)
	}
	if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil || g.RequestID != prev.ID {
		t.Fatalf("the previous grant after the refusal: %+v, %v", g, err)
	}

	// At its end, the next request is filed, and the previous one is
	// recorded as completed then, not after.
	tick = ticking{c: clock.NewFake(end), step: time.Minute}
	r, err := e.replicaOn(t, tick.Now).Create(ctx, operator, next)
	if err != nil {
		t.Fatal(err)
	}
	if !r.CreatedAt.Equal(end) {
		t.Fatalf("created at %v, want %v", r.CreatedAt, end)
	}
	done, err := e.store.Get(ctx, manager.Principal, prev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := done.History[len(done.History)-1]; done.State != grants.StateCompleted || !last.At.Equal(end) {
		t.Fatalf("previous request %s, last event %+v", done.State, last)
	}
}

// codeOf returns the code of a categorized error, or "".
func codeOf(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}
