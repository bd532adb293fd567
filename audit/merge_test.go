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

// TestSearchOfEveryTenantReadsABoundedNumberOfEntries: a search or export
// of every tenant's log holds what it read of each tenant's stream until
// the merge takes it. With a fixed batch per tenant, a one-record page of
// a deployment of 10 000 tenants read (and held) a million entries before
// its first result; what it reads ahead stays within a bound however many
// tenants there are, and paging still lists every record once.
func TestSearchOfEveryTenantReadsABoundedNumberOfEntries(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	const tenants, perTenant = 250, 101
	log := audit.NewLog(rdb, nil)
	p := rdb.Pipeline()
	for i := range tenants {
		tn := fmt.Sprintf("t%03d", i)
		onboard(t, rdb, tn)
		for j := range perTenant {
			r := log.Prepare(record.Record{
				CreationTime: record.Time{Time: t0.Add(time.Duration(j) * time.Second)},
				Operation:    "Get-Mailbox", LockboxTenant: tn, OrganizationId: orgID(tn),
				RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin,
				UserId: "gina@" + tn + ".example", Workload: record.WorkloadLockbox,
			})
			// Interleaved: the j-th record of every tenant has the same
			// millisecond.
			p.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit(tn), ID: fmt.Sprintf("%d-%d", 1_700_000_000_000+j, 0),
				Values: []any{"r", string(r.AppendJSON(nil)), "p", "", "h", "x"}})
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	count := &redistest.EntriesRead{}
	rdb.AddHook(count)

	pg, err := log.Search(ctx, providerAuditor, audit.Query{Limit: 1})
	if err != nil || len(pg.Records) != 1 || pg.Next == "" {
		t.Fatalf("first page: %d records, next %q, %v", len(pg.Records), pg.Next, err)
	}
	// 10 000 entries held at most, and a refill of one tenant's batch.
	if read := count.N(); read > 10_000+100 {
		t.Errorf("a one-record page of %d tenants read %d entries", tenants, read)
	}

	// Paging from that page on lists every other record once.
	seen := map[string]bool{pg.Records[0].Id: true}
	for q := (audit.Query{Limit: audit.MaxLimit, Cursor: pg.Next}); q.Cursor != ""; q.Cursor = pg.Next {
		if pg, err = log.Search(ctx, providerAuditor, q); err != nil {
			t.Fatal(err)
		}
		for _, r := range pg.Records {
			if seen[r.Id] {
				t.Fatalf("record %s listed twice", r.Id)
			}
			seen[r.Id] = true
		}
	}
	if len(seen) != tenants*perTenant {
		t.Errorf("paging listed %d records, want %d", len(seen), tenants*perTenant)
	}

	count.Reset()
	n := 0
	if err := log.Export(ctx, providerAuditor, audit.Query{}, func(record.Record) error { n++; return nil }); err != nil || n != tenants*perTenant {
		t.Fatalf("export of every tenant: %d records, want %d (%v)", n, tenants*perTenant, err)
	}
	if read := count.N(); read != int64(tenants*perTenant) {
		t.Errorf("the export read %d entries for %d records", read, tenants*perTenant)
	}
}
