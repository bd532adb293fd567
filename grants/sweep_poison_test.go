package grants_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestSweepGoesPastAnUnreadableRequest: a request the sweep can't decode
// is reported, and the tenant's other due requests are settled all the
// same. The sweep visited a tenant's due requests in deadline order and
// gave up at the first error, so one unreadable request, first in line
// at every retry, kept every later request of its tenant from expiring.
func TestSweepGoesPastAnUnreadableRequest(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	s := replica(t, rdb, c)
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, c.Now), c.Now), "contoso")
	for _, op := range []string{"alice", "bob", "carol"} {
		if _, err := s.Create(ctx, who(op, "", identity.RoleOperator), grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := rdb.ZRange(ctx, keys.TenantDeadlines("contoso"), 0, -1).Result()
	if err != nil || len(ids) != 3 {
		t.Fatalf("deadlines: %v %v", ids, err)
	}
	// The first in deadline order can't be read.
	if err := rdb.Set(ctx, keys.Request("contoso", ids[0]), "{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.Advance(12 * time.Hour)
	n, err := s.Sweep(ctx)
	if err == nil {
		t.Fatal("the unreadable request went unreported")
	}
	if n != 2 {
		t.Fatalf("settled %d, want the 2 readable requests (%v)", n, err)
	}
	for _, id := range ids[1:] {
		b, err := rdb.Get(ctx, keys.Request("contoso", id)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var r grants.Request
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.State != grants.StateExpired {
			t.Fatalf("request %s is %s after the sweep, want expired", id, r.State)
		}
	}
}
