package due_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
)

// TestDrainRecordsAVisitFinishedAsItStops: a visit that finished its work
// just as the replica was told to stop still has its answer written. Done
// ran under the canceled context and failed, and the tenant kept its lease
// (a minute for the sweep and the SIEM, an hour here) although nobody was
// visiting it: no other replica could visit it until the lease ended.
func TestDrainRecordsAVisitFinishedAsItStops(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	x := due.New(rdb, due.SIEM, c.Now)
	if err := x.Mark(context.Background(), "contoso", t0); err != nil {
		t.Fatal(err)
	}
	if err := x.Mark(context.Background(), "fabrikam", t0.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := due.Drainer{Index: x, Lease: time.Hour}
	var visited []string
	d.Drain(ctx, func(ctx context.Context, tn string) (time.Time, error) {
		visited = append(visited, tn)
		// The work is done; the stop arrives before Drain records it.
		cancel()
		return c.Now().Add(10 * time.Minute), nil
	})
	if len(visited) != 1 || visited[0] != "contoso" {
		t.Fatalf("visited %v, want contoso alone", visited)
	}
	if s, ok := score(t, rdb, due.SIEM, "contoso"); !ok || s != ms(c.Now().Add(10*time.Minute)) {
		t.Fatalf("contoso scheduled %t at %v, want the visit's answer %v", ok, s, ms(c.Now().Add(10*time.Minute)))
	}
	// The tenant not visited is handed back at once.
	if s, ok := score(t, rdb, due.SIEM, "fabrikam"); !ok || s > ms(c.Now()) {
		t.Fatalf("fabrikam scheduled %t at %v, want due now", ok, s)
	}
}
