package due_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func score(t *testing.T, rdb redis.Cmdable, job due.Job, tenant string) (float64, bool) {
	t.Helper()
	s, err := rdb.ZScore(context.Background(), keys.Due(string(job)), tenant).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, true
}

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

func TestMarksOnlyMoveEarlier(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	set := func(m due.Mark) {
		t.Helper()
		if err := due.Set(ctx, rdb, "contoso", m); err != nil {
			t.Fatal(err)
		}
	}
	set(due.Mark{Job: due.Sweep, At: t0.Add(time.Hour)})
	set(due.Mark{Job: due.Sweep, At: t0.Add(2 * time.Hour)})
	if s, _ := score(t, rdb, due.Sweep, "contoso"); s != ms(t0.Add(time.Hour)) {
		t.Fatalf("a later mark moved the time: %v", s)
	}
	set(due.Mark{Job: due.Sweep, At: t0})
	if s, _ := score(t, rdb, due.Sweep, "contoso"); s != ms(t0) {
		t.Fatalf("an earlier mark did not move the time: %v", s)
	}
	set(due.Mark{Job: due.Retention, At: t0.Add(time.Hour), IfAbsent: true})
	set(due.Mark{Job: due.Retention, At: t0, IfAbsent: true})
	if s, _ := score(t, rdb, due.Retention, "contoso"); s != ms(t0.Add(time.Hour)) {
		t.Fatalf("IfAbsent changed a known tenant's time: %v", s)
	}
}

// TestClaimsAreExclusive: replicas claiming at once get disjoint tenants,
// every due tenant once, and none that is not due yet.
func TestClaimsAreExclusive(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	const tenants = 500
	for i := range tenants {
		if err := due.Set(ctx, rdb, fmt.Sprintf("t%03d", i), due.Mark{Job: due.Notify, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	due.Set(ctx, rdb, "later", due.Mark{Job: due.Notify, At: t0.Add(time.Millisecond)})
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			x := due.New(rdb, due.Notify, c.Now)
			for {
				cs, err := x.Claim(ctx, 7, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, cl := range cs {
					got[cl.Tenant]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != tenants {
		t.Fatalf("claimed %d tenants, want %d", len(got), tenants)
	}
	for tn, n := range got {
		if n != 1 || tn == "later" {
			t.Fatalf("tenant %s claimed %d times", tn, n)
		}
	}
}

func TestDoneReschedulesUnlessMarkedMeanwhile(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	x := due.New(rdb, due.Sweep, c.Now)
	for _, tn := range []string{"a", "b", "c"} {
		x.Mark(ctx, tn, t0)
	}
	cs, err := x.Claim(ctx, 10, time.Minute)
	if err != nil || len(cs) != 3 {
		t.Fatalf("claim: %v %v", cs, err)
	}
	// While a is visited, a writer commits new work for it.
	c.Advance(time.Second)
	if err := x.Mark(ctx, "a", c.Now()); err != nil {
		t.Fatal(err)
	}
	for _, cl := range cs {
		if err := x.Done(ctx, cl, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := score(t, rdb, due.Sweep, "a"); s != ms(t0.Add(time.Second)) {
		t.Fatalf("the visit's answer overwrote a mark made during it: %v", s)
	}
	if s, _ := score(t, rdb, due.Sweep, "b"); s != ms(t0.Add(time.Hour)) {
		t.Fatalf("b rescheduled at %v", s)
	}
	cs, _ = x.Claim(ctx, 10, time.Minute)
	if len(cs) != 1 || cs[0].Tenant != "a" {
		t.Fatalf("due after the visit: %v, want a", cs)
	}
	if err := x.Done(ctx, cs[0], time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := score(t, rdb, due.Sweep, "a"); ok {
		t.Fatal("a tenant with nothing due stayed scheduled")
	}
}

// TestDeadReplicasClaimFallsDue: a replica that claims and dies holds its
// tenants only for the lease.
func TestDeadReplicasClaimFallsDue(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	x := due.New(rdb, due.SIEM, c.Now)
	x.Mark(ctx, "contoso", t0)
	if cs, _ := x.Claim(ctx, 10, time.Minute); len(cs) != 1 {
		t.Fatalf("claimed %v", cs)
	} // ... and dies.
	c.Advance(time.Minute - time.Millisecond)
	if cs, _ := x.Claim(ctx, 10, time.Minute); len(cs) != 0 {
		t.Fatalf("claimed during another replica's lease: %v", cs)
	}
	c.Advance(time.Millisecond)
	if cs, _ := x.Claim(ctx, 10, time.Minute); len(cs) != 1 {
		t.Fatalf("not claimable once the lease ended: %v", cs)
	}
}

func TestDrain(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	x := due.New(rdb, due.Notify, c.Now)
	var tenants []string
	for i := range 25 {
		tn := fmt.Sprintf("t%02d", i)
		tenants = append(tenants, tn)
		x.Mark(ctx, tn, t0)
	}
	d := due.Drainer{Index: x, Lease: time.Minute, Batch: 4, RetryAfter: time.Second}
	var visited []string
	n, err := d.Drain(ctx, func(ctx context.Context, tn string) (time.Time, error) {
		visited = append(visited, tn)
		switch tn {
		case "t03":
			return time.Time{}, errors.New("boom")
		case "t04":
			return c.Now(), nil // more to do: not again in this call
		}
		return t0.Add(time.Hour), nil
	})
	if n != 25 || err == nil || !slices.Equal(visited, tenants) {
		t.Fatalf("visited %d %v, err %v", n, visited, err)
	}
	if s, _ := score(t, rdb, due.Notify, "t03"); s != ms(t0.Add(time.Second)) {
		t.Fatalf("failed visit due again at %v, want RetryAfter", s)
	}
	visited = nil
	n, err = d.Drain(ctx, func(ctx context.Context, tn string) (time.Time, error) {
		visited = append(visited, tn)
		return time.Time{}, nil
	})
	if err != nil || !slices.Equal(visited, []string{"t04"}) {
		t.Fatalf("second drain visited %v (%v)", visited, err)
	}
}

// TestDrainReleasesClaimsWhenStopped: a replica stopped mid-drain hands the
// tenants it claimed but did not finish back at once.
func TestDrainReleasesClaimsWhenStopped(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	x := due.New(rdb, due.Notify, c.Now)
	for i := range 10 {
		x.Mark(context.Background(), fmt.Sprintf("t%d", i), t0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := due.Drainer{Index: x, Lease: time.Hour}
	done := 0
	d.Drain(ctx, func(ctx context.Context, tn string) (time.Time, error) {
		if done == 3 {
			cancel()
			return time.Time{}, ctx.Err()
		}
		done++
		return time.Time{}, nil
	})
	other := due.Drainer{Index: x, Lease: time.Hour}
	var rest []string
	other.Drain(context.Background(), func(ctx context.Context, tn string) (time.Time, error) {
		rest = append(rest, tn)
		return time.Time{}, nil
	})
	if len(rest) != 7 {
		t.Fatalf("another replica found %v, want the 7 not finished", rest)
	}
}

func TestRescanRepairsLostMarks(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	var ids []string
	for i := range 1200 {
		ids = append(ids, fmt.Sprintf("t%04d", i))
	}
	rdb.SAdd(ctx, keys.Tenants(), ids)
	// Every third tenant has work at a time of its own, in a key of its
	// slot; the schedule knows of none of it.
	probe := func(ctx context.Context, p redis.Pipeliner, tn string, now time.Time) func() (time.Time, bool) {
		c := p.Get(ctx, "work:"+tn)
		return func() (time.Time, bool) {
			v, err := c.Int64()
			return time.UnixMilli(v), err == nil
		}
	}
	for i, tn := range ids {
		if i%3 == 0 {
			rdb.Set(ctx, "work:"+tn, t0.Add(time.Duration(i)*time.Second).UnixMilli(), 0)
		}
	}
	// A tenant already scheduled later than its work is moved earlier.
	due.Set(ctx, rdb, "t0000", due.Mark{Job: due.Sweep, At: t0.Add(time.Hour)})
	r := &due.Rescan{Redis: rdb, Now: c.Now, Probes: map[due.Job]due.Probe{due.Sweep: probe}, Interval: time.Hour, Chunk: 100}
	n, marked, ran, err := r.TryOnce(ctx)
	if err != nil || !ran || n != 1200 || marked != 400 {
		t.Fatalf("rescan: %d tenants, %d marked, ran %v, %v", n, marked, ran, err)
	}
	for i, tn := range ids {
		s, ok := score(t, rdb, due.Sweep, tn)
		if want := i%3 == 0; ok != want || ok && s != ms(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("%s scheduled %v at %v", tn, ok, s)
		}
	}
	if _, _, ran, _ := r.TryOnce(ctx); ran {
		t.Fatal("a second replica rescanned within the interval")
	}
}

func TestBatchMarksEachTenantOncePerFlush(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	b := due.NewBatch(rdb, c.Now, nil, due.AuditWritten)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { b.Add(fmt.Sprintf("t%d", i%5)) })
	}
	wg.Wait()
	b.Flush(ctx)
	for i := range 5 {
		if s, ok := score(t, rdb, due.SIEM, fmt.Sprintf("t%d", i)); !ok || s != ms(t0) {
			t.Fatalf("t%d: %v %v", i, ok, s)
		}
		if _, ok := score(t, rdb, due.Retention, fmt.Sprintf("t%d", i)); !ok {
			t.Fatalf("t%d not scheduled for retention", i)
		}
	}
	// Nothing added since: a flush writes nothing, even after the schedule
	// entry is gone (the forwarder visited the tenant).
	rdb.Del(ctx, keys.Due(string(due.SIEM)))
	b.Flush(ctx)
	if n := rdb.ZCard(ctx, keys.Due(string(due.SIEM))).Val(); n != 0 {
		t.Fatalf("a flush with nothing added wrote %d marks", n)
	}
	// A flush that fails keeps its marks for the next.
	b.Add("t9")
	rdb.Set(ctx, keys.Due(string(due.SIEM)), "not a sorted set", 0)
	b.Flush(ctx)
	rdb.Del(ctx, keys.Due(string(due.SIEM)))
	b.Flush(ctx)
	if _, ok := score(t, rdb, due.SIEM, "t9"); !ok {
		t.Fatal("a mark whose flush failed was lost")
	}
}
