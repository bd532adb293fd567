package due_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
)

// TestMarkAfterTheLeaseEndedStands: a writer that marks a tenant after the
// lease of a visit under way ended (the visit overran it: a slow sink, a
// loaded machine; or the clock moved on) is not undone by that visit's
// Done. The visit read the tenant before the writer's work, so the mark is
// the only trace of that work in the schedule: the SIEM forwarder would
// leave the new records unforwarded until the next mark or rescan. (A mark
// is a ZADD LT, and the lease's score is below a mark made after it ended,
// so the mark used to leave the lease, which Done then replaced.)
func TestMarkAfterTheLeaseEndedStands(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark func(ctx context.Context, rdb redis.Cmdable, x *due.Index, c *clock.Fake) error
		// want is when the tenant is due after the visit's Done.
		want func(c *clock.Fake) time.Time
	}{
		{"a writer's commit", func(ctx context.Context, rdb redis.Cmdable, x *due.Index, c *clock.Fake) error {
			return due.Set(ctx, rdb, "contoso", due.AuditWritten(c.Now())...)
		}, (*clock.Fake).Now},
		{"the index's own mark", func(ctx context.Context, rdb redis.Cmdable, x *due.Index, c *clock.Fake) error {
			return x.Mark(ctx, "contoso", c.Now())
		}, (*clock.Fake).Now},
		{"a deadline further on", func(ctx context.Context, rdb redis.Cmdable, x *due.Index, c *clock.Fake) error {
			// A deadline mark says nothing of when the visit's answer is
			// due: the tenant is visited at once, and that visit reads
			// its deadlines again.
			return due.Set(ctx, rdb, "contoso", due.Mark{Job: due.SIEM, At: c.Now().Add(12 * time.Hour), Now: c.Now()})
		}, (*clock.Fake).Now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			c := clock.NewFake(t0)
			x := due.New(rdb, due.SIEM, c.Now)
			if err := x.Mark(ctx, "contoso", t0); err != nil {
				t.Fatal(err)
			}
			cs, err := x.Claim(ctx, 10, time.Minute)
			if err != nil || len(cs) != 1 {
				t.Fatalf("claim: %v %v", cs, err)
			}
			// The visit reads the tenant, then takes longer than its lease;
			// meanwhile a writer commits new work and marks the tenant.
			c.Advance(30 * time.Minute)
			if err := tc.mark(ctx, rdb, x, c); err != nil {
				t.Fatal(err)
			}
			if err := x.Done(ctx, cs[0], time.Time{}); err != nil {
				t.Fatal(err)
			}
			s, ok := score(t, rdb, due.SIEM, "contoso")
			if want := tc.want(c); !ok || s != ms(want) {
				t.Fatalf("after the overrun visit: scheduled %t at %v, want %v (%v)", ok, s, ms(want), want)
			}
			if cs, _ := x.Claim(ctx, 10, time.Minute); len(cs) != 1 {
				t.Fatalf("the tenant is not claimable for the writer's work: %v", cs)
			}
		})
	}
}

// TestLaterMarkDuringALiveLeaseStands: a writer that commits work due
// after the lease of a visit under way ends (a new request's decision
// deadline, 12 hours on) and marks the tenant is not undone by that
// visit's Done. The visit may have read the tenant before the writer's
// work: its answer (nothing more to do, or a deadline of its own that
// comes later) knows nothing of it. So the tenant is visited again, at
// once, and that visit reads its deadlines again; were the mark dropped,
// the work would wait for the next rescan, an hour by default. Meanwhile
// the mark leaves the lease, so no other replica visits the tenant while
// it runs; and a deadline of the visit's own that comes first is not lost
// either: the tenant is due at once, earlier than any answer.
func TestLaterMarkDuringALiveLeaseStands(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer time.Duration // the visit's answer after t0; 0: nothing due
	}{
		{"the visit found nothing more to do", 0},
		{"the visit's own deadline comes after the writer's", 13 * time.Hour},
		{"the visit's own deadline comes before the writer's", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			c := clock.NewFake(t0)
			x := due.New(rdb, due.Sweep, c.Now)
			if err := x.Mark(ctx, "contoso", t0); err != nil {
				t.Fatal(err)
			}
			cs, err := x.Claim(ctx, 10, time.Minute)
			if err != nil || len(cs) != 1 {
				t.Fatalf("claim: %v %v", cs, err)
			}
			// The visit has read the tenant; a writer commits a request
			// due in 12 hours and marks it, well within the lease.
			c.Advance(time.Second)
			deadline := c.Now().Add(12 * time.Hour)
			if err := due.Set(ctx, rdb, "contoso", due.Mark{Job: due.Sweep, At: deadline, Now: c.Now()}); err != nil {
				t.Fatal(err)
			}
			if other, err := x.Claim(ctx, 10, time.Minute); err != nil || len(other) != 0 {
				t.Fatalf("claimed during the lease: %v %v", other, err)
			}
			var answer time.Time
			if tc.answer > 0 {
				answer = t0.Add(tc.answer)
			}
			if err := x.Done(ctx, cs[0], answer); err != nil {
				t.Fatal(err)
			}
			s, ok := score(t, rdb, due.Sweep, "contoso")
			if !ok || s > ms(deadline) {
				t.Fatalf("after the visit: scheduled %t at %v; the writer's deadline %v is lost", ok, s, ms(deadline))
			}
			if s != ms(c.Now()) {
				t.Fatalf("due at %v, want at once (%v), before the visit's answer %v", s, ms(c.Now()), answer)
			}
			// The next visit reads the tenant, writer's work included,
			// and its answer stands.
			cs, err = x.Claim(ctx, 10, time.Minute)
			if err != nil || len(cs) != 1 {
				t.Fatalf("the tenant is not claimable to read the writer's work: %v %v", cs, err)
			}
			if err := x.Done(ctx, cs[0], deadline); err != nil {
				t.Fatal(err)
			}
			if s, ok := score(t, rdb, due.Sweep, "contoso"); !ok || s != ms(deadline) {
				t.Fatalf("after the next visit: scheduled %t at %v, want %v", ok, s, ms(deadline))
			}
		})
	}
}
