package due_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
)

// TestIfAbsentMarkDuringAVisitStands: a writer's IfAbsent mark (audit
// records for retention) that arrives while a visit holds the tenant's
// lease is not undone by the visit's Done. Retention's visit that trimmed
// the tenant's last record answers "nothing to do" (zero); a record
// written meanwhile marked the tenant IfAbsent, which found the lease and
// did nothing, and Done then removed the tenant: the new record was off
// the retention schedule until the next rescan.
func TestIfAbsentMarkDuringAVisitStands(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	x := due.New(rdb, due.Retention, c.Now)
	if err := x.Mark(ctx, "contoso", t0); err != nil {
		t.Fatal(err)
	}
	cs, err := x.Claim(ctx, 10, time.Minute)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %v %v", cs, err)
	}
	// The visit found the stream empty; a record is written and marked.
	c.Advance(time.Second)
	if err := due.Set(ctx, rdb, "contoso", due.AuditWritten(c.Now())...); err != nil {
		t.Fatal(err)
	}
	if err := x.Done(ctx, cs[0], time.Time{}); err != nil {
		t.Fatal(err)
	}
	s, ok := score(t, rdb, due.Retention, "contoso")
	if !ok {
		t.Fatal("the tenant left the retention schedule, though a record was written during the visit")
	}
	if s > ms(c.Now()) {
		t.Fatalf("due at %v, want at once (%v): the next visit reads the oldest record", s, ms(c.Now()))
	}
	// Without a lease, IfAbsent still leaves a known tenant's time alone.
	if err := x.Mark(ctx, "contoso", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	before, _ := score(t, rdb, due.Retention, "contoso")
	if err := due.Set(ctx, rdb, "contoso", due.Mark{Job: due.Retention, At: t0, IfAbsent: true, Now: c.Now()}); err != nil {
		t.Fatal(err)
	}
	if s, _ := score(t, rdb, due.Retention, "contoso"); s != before {
		t.Fatalf("IfAbsent moved a known tenant from %v to %v", before, s)
	}
}
