package audit_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestPagingWithEqualIdsAndTimes: paging a search of every tenant, whose
// streams hold entries with the same ids and records with the same
// CreationTime, lists each matching record once and skips none, whatever
// the page size, filter and date range.
func TestPagingWithEqualIdsAndTimes(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	tenants := []string{"contoso", "fabrikam", "northwind"}
	onboard(t, rdb, tenants...)
	log := newLog(rdb, nil)
	rng := rand.New(rand.NewPCG(7, 11))
	type entry struct {
		id     string
		tenant string
		rec    record.Record
	}
	var all []entry
	// 40 ids, each in some of the tenants' streams, several per
	// millisecond; CreationTime a second per 8 entries, so many share it.
	for i := range 40 {
		id := fmt.Sprintf("%d-%d", 1_700_000_000_000+int64(i/4), i%4)
		for _, tn := range tenants {
			if rng.IntN(3) == 0 {
				continue
			}
			r := log.Prepare(record.Record{
				CreationTime: record.Time{Time: t0.Add(time.Duration(i/8) * time.Second)},
				Operation:    fmt.Sprintf("Op-%d", rng.IntN(2)), LockboxTenant: tn, OrganizationId: orgID(tn),
				RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin,
				UserId: "gina@" + tn + ".example", Workload: record.WorkloadLockbox, ObjectId: id + "/" + tn,
			})
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit(tn), ID: id,
				Values: []any{"r", string(r.AppendJSON(nil)), "p", "", "h", "x"}}).Err(); err != nil {
				t.Fatal(err)
			}
			all = append(all, entry{id, tn, r})
		}
	}
	slices.Reverse(all) // newest first: by id, then tenant, both descending
	for _, q := range []audit.Query{
		{},
		{Operation: "Op-1"},
		{From: t0.Add(time.Second), To: t0.Add(3 * time.Second)},
		{From: t0.Add(2 * time.Second), To: t0.Add(2 * time.Second), Operation: "op-0"},
	} {
		var want []string
		for _, e := range all {
			r := e.rec
			if (q.Operation == "" || r.Operation == "Op-"+q.Operation[3:]) &&
				(q.From.IsZero() || !r.CreationTime.Before(q.From)) && (q.To.IsZero() || !r.CreationTime.After(q.To)) {
				want = append(want, r.ObjectId)
			}
		}
		for limit := 1; limit <= 7; limit++ {
			for _, tenant := range append([]string{""}, tenants...) {
				q := q
				q.Limit, q.Tenant = limit, tenant
				var got []string
				for pages := 0; ; pages++ {
					if pages > 200 {
						t.Fatalf("%+v: paging does not end", q)
					}
					pg, err := log.Search(ctx, providerAuditor, q)
					if err != nil {
						t.Fatalf("%+v: %v", q, err)
					}
					for _, r := range pg.Records {
						got = append(got, r.ObjectId)
					}
					if q.Cursor = pg.Next; q.Cursor == "" {
						break
					}
				}
				w := want
				if tenant != "" {
					w = nil
					for _, o := range want {
						if o[len(o)-len(tenant):] == tenant {
							w = append(w, o)
						}
					}
				}
				if !slices.Equal(got, w) {
					t.Fatalf("tenant %q, limit %d, %+v:\n got %v\nwant %v", tenant, limit, q, got, w)
				}
			}
		}
	}
}

// TestCursorAtTheFirstPossibleId: a cursor at id 0-0 (nothing comes after
// it) ends a search of a date range with an empty page, as it ends one
// without a range, instead of failing.
func TestCursorAtTheFirstPossibleId(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso", "fabrikam")
	log := newLog(rdb, nil)
	for _, tn := range []string{"contoso", "fabrikam"} {
		if _, err := log.Append(ctx, record.Record{Operation: record.OpAddApprover, LockboxTenant: tn,
			RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin, UserId: "gina@" + tn + ".example",
			Workload: record.WorkloadLockbox, ObjectId: "adam@" + tn + ".example", CreationTime: record.Time{Time: t0}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []audit.Query{
		{Tenant: "contoso", Cursor: base64.RawURLEncoding.EncodeToString([]byte("0-0"))},
		{Cursor: base64.RawURLEncoding.EncodeToString([]byte("0-0/contoso"))},
	} {
		for _, to := range []time.Time{{}, t0.Add(time.Hour)} {
			q.To = to
			pg, err := log.Search(ctx, providerAuditor, q)
			if err != nil || len(pg.Records) != 0 || pg.Next != "" {
				t.Errorf("%+v: %d records, next %q, %v", q, len(pg.Records), pg.Next, err)
			}
		}
	}
}
