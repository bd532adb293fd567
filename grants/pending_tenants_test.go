package grants_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/sendonce"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// manyTenants onboards n tenants on rdb and files one pending request in
// each of those with an even index, a minute apart, so the soonest
// deadline is the first tenant's. It returns the store and the ids filed,
// soonest deadline first.
func manyTenants(t testing.TB, rdb redis.UniversalClient, n int) (*grants.Store, []string) {
	t.Helper()
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("tenant%03d", i)
	}
	tenanttest.Onboard(t, ts, names...)
	var ids []string
	for i, tn := range names {
		if i%2 == 1 {
			continue
		}
		r, err := s.Create(context.Background(), operator, grants.CreateInput{Tenant: tn, Service: "exchange",
			ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		c.Advance(time.Minute)
	}
	return s, ids
}

// TestPendingAcrossTenants: the manager's pending queue holds every
// tenant's pending requests, soonest deadline first, read in a number of
// round trips that does not grow with the tenants: the queue read one
// tenant after another, a round trip or two each. On a Redis Cluster whose
// client is the server's (sendonce), the tenants' keys are on every
// master, and the pipelines split by node find them all.
func TestPendingAcrossTenants(t *testing.T) {
	for name, rdb := range map[string]func(t *testing.T) (redis.UniversalClient, *redistest.RoundTrips){
		"single": func(t *testing.T) (redis.UniversalClient, *redistest.RoundTrips) {
			rdb := redistest.Client(t)
			h := &redistest.RoundTrips{}
			rdb.AddHook(h)
			return rdb, h
		},
		"cluster": func(t *testing.T) (redis.UniversalClient, *redistest.RoundTrips) {
			// SharedCluster empties the cluster first.
			rdb := sendonce.NewClusterClient(&redis.ClusterOptions{Addrs: redistest.SharedCluster(t).Addrs()})
			t.Cleanup(func() { rdb.Close() })
			h := &redistest.RoundTrips{}
			rdb.AddHook(h)
			return rdb, h
		},
	} {
		t.Run(name, func(t *testing.T) {
			rdb, h := rdb(t)
			s, want := manyTenants(t, rdb, 40)
			h.Reset()
			got, err := s.Pending(context.Background(), manager.Principal)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(got))
			for i, r := range got {
				ids[i] = r.ID
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("pending %v, want %v", ids, want)
			}
			// The tenant set, every tenant's index, every request.
			if n := h.N(); n > 3 {
				t.Fatalf("%d round trips for 40 tenants, want 3", n)
			}
		})
	}
}

// BenchmarkPendingAcrossTenants reads the manager's pending queue of 200
// tenants, 100 of them with a pending request; round-trips/op is the
// calls the client sent (a pipeline is one).
func BenchmarkPendingAcrossTenants(b *testing.B) {
	rdb := redistest.Client(b)
	h := &redistest.RoundTrips{}
	rdb.AddHook(h)
	s, want := manyTenants(b, rdb, 200)
	ctx := context.Background()
	h.Reset()
	b.ResetTimer()
	for b.Loop() {
		got, err := s.Pending(ctx, manager.Principal)
		if err != nil || len(got) != len(want) {
			b.Fatalf("%d pending, %v; want %d", len(got), err, len(want))
		}
	}
	b.ReportMetric(float64(h.N())/float64(b.N), "round-trips/op")
}
