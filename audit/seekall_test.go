package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestSearchOfEveryTenantSeeksSideBySide: the provider's auditors search
// every tenant's log at once (no tenant), e.g. "last week" in the admin
// center. With a "to" bound every tenant's reader seeks to the range's
// end, and the merge's first step sought each tenant's stream one after
// another: about log2(span in ms) one-entry XREVRANGEs a tenant (34 for a
// month), each its own round trip, and one more a tenant for its first
// batch. At the 10 000 tenants mergeBudget is sized for, some 340 000
// sequential round trips: far past any call's deadline, so the search
// answered 503 every time. The seeks now run side by side, one pipeline a
// bisection step, and the first batches in one pipeline: the round trips
// no longer grow with the tenants.
func TestSearchOfEveryTenantSeeksSideBySide(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	const tenants = 300
	log := audit.NewLog(rdb, nil)
	p := rdb.Pipeline()
	for i := range tenants {
		tn := fmt.Sprintf("t%03d", i)
		onboard(t, rdb, tn)
		// One record in the range, and a month of records after it.
		for _, at := range []time.Time{t0, t0.Add(10 * 24 * time.Hour), t0.Add(20 * 24 * time.Hour), t0.Add(30 * 24 * time.Hour)} {
			r := log.Prepare(record.Record{
				CreationTime: record.Time{Time: at},
				Operation:    "Get-Mailbox", LockboxTenant: tn, OrganizationId: orgID(tn),
				RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin,
				UserId: "gina@" + tn + ".example", Workload: record.WorkloadLockbox,
			})
			p.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit(tn), ID: fmt.Sprintf("%d-0", at.UnixMilli()),
				Values: []any{"r", string(r.AppendJSON(nil)), "p", "", "h", "x"}})
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rt := &redistest.RoundTrips{}
	rdb.AddHook(rt)

	page := func(q audit.Query, want time.Time) (int64, time.Duration) {
		t.Helper()
		rt.Reset()
		start := time.Now()
		pg, err := log.Search(ctx, providerAuditor, q)
		took := time.Since(start)
		if err != nil || len(pg.Records) != 1 || !pg.Records[0].CreationTime.Time.Equal(want) {
			t.Fatalf("%+v: %d records (%+v), %v; want the one of %v", q, len(pg.Records), pg.Records, err, want)
		}
		return rt.N(), took
	}
	fromOnly, fromTook := page(audit.Query{From: t0.Add(-time.Hour), Limit: 1}, t0.Add(30*24*time.Hour))
	n, took := page(audit.Query{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Limit: 1}, t0)
	t.Logf("one-record page of %d tenants: from only %d round trips (%v); from and to %d round trips (%v)",
		tenants, fromOnly, fromTook, n, took)
	// A month's span: about 35 bisection steps, whatever the tenants.
	if n > 40 || fromOnly > 3 {
		t.Errorf("the first page over %d tenants took %d round trips to Redis with a date range (%v), %d without its end (%v): "+
			"want them side by side, not one tenant after another", tenants, n, took, fromOnly, fromTook)
	}
}
