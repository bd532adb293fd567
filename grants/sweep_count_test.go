package grants_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestSweepCountsOnlyWhatItChanged: Sweep's count is the requests its own
// transactions changed. A request another replica settled after the sweep
// read it and before the sweep's transaction (here: read through the API,
// which settles on the way) was not changed by this sweep, and neither was
// a deadline whose request is gone; counting them made the sum of the
// replicas' counts exceed the requests that changed.
func TestSweepCountsOnlyWhatItChanged(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, c.Now), c.Now), "contoso")
	other := replica(t, rdb, c)
	file := func(op string) grants.Request {
		t.Helper()
		r, err := other.Create(ctx, who(op, "", identity.RoleOperator), grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	raced, swept, gone := file("alice"), file("bob"), file("carol")
	// carol's request is gone (deleted by hand), its deadline left behind.
	if err := rdb.Del(ctx, keys.Request("contoso", gone.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	c.Advance(12 * time.Hour)

	// Right after the sweep reads alice's request, another replica's read
	// of it through the API settles it.
	sweeperRdb := redistest.Clone(t, rdb)
	settledElsewhere := false
	sweeperRdb.AddHook(&afterCommand{match: redistest.Command("get", keys.Request("contoso", raced.ID)), do: func() {
		r, err := other.Get(ctx, manager.Principal, raced.ID)
		settledElsewhere = err == nil && r.State == grants.StateExpired
	}})
	n, err := replica(t, sweeperRdb, c).Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !settledElsewhere {
		t.Fatal("alice's request was not settled elsewhere during the sweep")
	}
	if n != 1 {
		t.Errorf("the sweep counted %d requests changed, want 1 (bob's): alice's was settled elsewhere, carol's is gone", n)
	}
	for _, id := range []string{raced.ID, swept.ID} {
		if r, err := other.Get(ctx, manager.Principal, id); err != nil || r.State != grants.StateExpired {
			t.Errorf("request %s: %+v, %v; want expired", id, r.State, err)
		}
	}
}
