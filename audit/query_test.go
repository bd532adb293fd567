package audit_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

var (
	providerAuditor = identity.Principal{Subject: "sue", Roles: []identity.Role{identity.RoleAuditReader}}
	tenantAuditor   = identity.Principal{Subject: "tom@contoso.example", TenantID: "contoso", Roles: []identity.Role{identity.RoleAuditReader}}
	t0              = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
)

// fill appends n records to contoso's log, one a second from the
// clock's time, in pipelined batches; record i is an operator action under
// request requestID(i%3), of operation "Op-<i%2>", by "alice" or "bob".
func fill(tb testing.TB, rdb redis.UniversalClient, c *clock.Fake, n int) *audit.Log {
	tb.Helper()
	log := newLog(rdb, c.Now)
	onboard(tb, rdb, "contoso")
	ctx := context.Background()
	for start := 0; start < n; start += 5000 {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(n, start+5000); i++ {
				c.Advance(time.Second)
				who := []string{"alice", "bob"}[i%2]
				if err := log.AppendTx(ctx, p, record.Record{
					Operation: fmt.Sprintf("Op-%d", i%2), LockboxTenant: "contoso", Workload: "exchange",
					RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeDcAdmin,
					UserId: record.OperatorUserID, ProviderUserId: who, ClientIP: "10.0.0.1",
					LockboxRequestId: requestID(i % 3), ObjectId: fmt.Sprint(i),
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return log
}

func TestQuerySemantics(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := fill(t, rdb, c, 1200)
	ctx := context.Background()
	at := func(i int) time.Time { return t0.Add(time.Duration(i+1) * time.Second) }

	all := func(p identity.Principal, q audit.Query) []record.Record {
		t.Helper()
		var out []record.Record
		for {
			pg, err := log.Search(ctx, p, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, pg.Records...)
			if pg.Next == "" {
				return out
			}
			q.Cursor = pg.Next
		}
	}
	tests := []struct {
		name string
		who  identity.Principal
		q    audit.Query
		want []int // record numbers, newest first
	}{
		{"range inclusive", providerAuditor, audit.Query{From: at(10), To: at(14)}, []int{14, 13, 12, 11, 10}},
		{"from only", providerAuditor, audit.Query{From: at(1197)}, []int{1199, 1198, 1197}},
		{"to only", providerAuditor, audit.Query{To: at(1)}, []int{1, 0}},
		{"operation, any case", providerAuditor, audit.Query{Operation: "op-1", To: at(7)}, []int{7, 5, 3, 1}},
		{"request id", providerAuditor, audit.Query{RequestID: requestID(2), To: at(9)}, []int{8, 5, 2}},
		{"provider user", providerAuditor, audit.Query{User: "ALICE", To: at(4)}, []int{4, 2, 0}},
		{"tenant users don't match provider users", tenantAuditor, audit.Query{User: "alice"}, nil},
		{"tenant users match UserId", tenantAuditor, audit.Query{User: "microsoft operator", To: at(1)}, []int{1, 0}},
		{"small pages", providerAuditor, audit.Query{From: at(100), To: at(110), Limit: 3}, []int{110, 109, 108, 107, 106, 105, 104, 103, 102, 101, 100}},
		{"pages across batches", providerAuditor, audit.Query{Operation: "Op-0", RequestID: requestID(0), From: at(0), Limit: 150}, everyNth(1199, 6)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Tenant = "contoso"
			got := all(tc.who, tc.q)
			if len(got) != len(tc.want) {
				t.Fatalf("%d records, want %d", len(got), len(tc.want))
			}
			for i, r := range got {
				if r.ObjectId != fmt.Sprint(tc.want[i]) {
					t.Fatalf("record %d is %s, want %d", i, r.ObjectId, tc.want[i])
				}
				if tc.who.TenantID != "" && (r.ProviderUserId != "" || r.ClientIP != "") {
					t.Fatalf("tenant view leaks: %+v", r)
				}
			}
		})
	}

	t.Run("default and maximum limit", func(t *testing.T) {
		pg, err := log.Search(ctx, providerAuditor, audit.Query{Tenant: "contoso"})
		if err != nil || len(pg.Records) != audit.DefaultLimit || pg.Next == "" {
			t.Fatalf("%d records, next %q, %v", len(pg.Records), pg.Next, err)
		}
		if _, err := log.Search(ctx, providerAuditor, audit.Query{Tenant: "contoso", Limit: audit.MaxLimit + 1}); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("limit too large: %v", err)
		}
	})
	t.Run("last page has no cursor", func(t *testing.T) {
		pg, err := log.Search(ctx, providerAuditor, audit.Query{Tenant: "contoso", To: at(5), Limit: 6})
		if err != nil || len(pg.Records) != 6 || pg.Next != "" {
			t.Fatalf("%d records, next %q, %v", len(pg.Records), pg.Next, err)
		}
	})
	t.Run("bad cursors", func(t *testing.T) {
		for _, cur := range []string{"x", "MTIz", "MC0w==", "MDEtMQ", "LTEtMQ", "MS0x\n", "MS0xOA" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			if _, err := log.Search(ctx, providerAuditor, audit.Query{Tenant: "contoso", Cursor: cur}); !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("cursor %q: %v", cur, err)
			}
		}
	})
	t.Run("reversed range", func(t *testing.T) {
		if _, err := log.Search(ctx, providerAuditor, audit.Query{Tenant: "contoso", From: at(2), To: at(1)}); !errors.Is(err, fault.ErrInvalid) {
			t.Fatal(err)
		}
	})
	t.Run("export scoping", func(t *testing.T) {
		other := identity.Principal{Subject: "fay", TenantID: "fabrikam", Roles: []identity.Role{identity.RoleAuditReader}}
		err := log.Export(ctx, other, audit.Query{Tenant: "contoso"}, func(record.Record) error { return nil })
		if !errors.Is(err, fault.ErrForbidden) {
			t.Fatal(err)
		}
	})
	t.Run("export stops at the writer's error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := log.Export(ctx, providerAuditor, audit.Query{Tenant: "contoso"}, func(record.Record) error {
			if n++; n == 700 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 700 {
			t.Fatalf("err %v after %d", err, n)
		}
	})
}

// everyNth returns hi, hi-n, ... down to 0 or above, for records that
// match every n-th.
func everyNth(hi, n int) []int {
	var out []int
	for i := hi; i >= 0; i-- {
		if i%n == 0 {
			out = append(out, i)
		}
	}
	return out
}

// TestExport100k exports 100 000 records and checks the live heap stays
// under a fixed bound while it runs.
func TestExport100k(t *testing.T) {
	if testing.Short() {
		t.Skip("large export")
	}
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	const n = 100_000
	log := fill(t, rdb, c, n)
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	var peak uint64
	count := 0
	last := time.Time{}
	err := log.Export(context.Background(), tenantAuditor, audit.Query{Tenant: "contoso"}, func(r record.Record) error {
		if !last.IsZero() && r.CreationTime.After(last) {
			return fmt.Errorf("record %d is out of order", count)
		}
		last = r.CreationTime.Time
		if r.ProviderUserId != "" {
			return fmt.Errorf("tenant view leaks")
		}
		if count++; count%10_000 == 0 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("exported %d records, want %d", count, n)
	}
	const bound = 8 << 20
	if peak > base.HeapAlloc+bound {
		t.Fatalf("live heap grew by %d bytes during the export (bound %d)", peak-base.HeapAlloc, bound)
	}

	// A search matching nothing answers within its scan budget with an
	// empty page and a cursor, and the next page finishes it.
	q := audit.Query{Tenant: "contoso", Operation: "Nothing-Like-This"}
	pg, err := log.Search(context.Background(), providerAuditor, q)
	if err != nil || len(pg.Records) != 0 || pg.Next == "" {
		t.Fatalf("first page: %d records, next %q, %v", len(pg.Records), pg.Next, err)
	}
	q.Cursor = pg.Next
	if pg, err = log.Search(context.Background(), providerAuditor, q); err != nil || len(pg.Records) != 0 || pg.Next != "" {
		t.Fatalf("second page: %d records, next %q, %v", len(pg.Records), pg.Next, err)
	}
}

// TestExportAllocationsDoNotGrow compares allocations per record of an
// export of 1 000 and of 10 000 records: a constant-memory export
// allocates the same per record however long it runs.
func TestExportAllocationsDoNotGrow(t *testing.T) {
	perRecord := func(n int) (allocs, bytes float64) {
		rdb := testRedis(t)
		log := fill(t, rdb, clock.NewFake(t0), n)
		run := func() {
			if err := log.Export(context.Background(), providerAuditor, audit.Query{Tenant: "contoso"}, func(record.Record) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		allocs = testing.AllocsPerRun(3, run)
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		run()
		runtime.ReadMemStats(&b)
		return allocs / float64(n), float64(b.TotalAlloc-a.TotalAlloc) / float64(n)
	}
	a1, b1 := perRecord(1_000)
	a10, b10 := perRecord(10_000)
	t.Logf("per record: %.1f allocs, %.0f B (1k); %.1f allocs, %.0f B (10k)", a1, b1, a10, b10)
	if a10 > a1*1.1 {
		t.Errorf("allocations per record grew from %.1f to %.1f", a1, a10)
	}
	if b10 > b1*1.25 {
		t.Errorf("bytes per record grew from %.0f to %.0f", b1, b10)
	}
}

func BenchmarkExport(b *testing.B) {
	rdb := redistest.Client(b)
	const n = 10_000
	log := fill(b, rdb, clock.NewFake(t0), n)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if err := log.Export(context.Background(), providerAuditor, audit.Query{Tenant: "contoso"}, func(record.Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N*n), "B/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*n), "allocs/record")
}

func TestSearchAcrossTenants(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := newLog(rdb, c.Now)
	ctx := context.Background()
	names := []string{"contoso", "fabrikam", "northwind"}
	onboard(t, rdb, names...)
	// Interleaved in one pipeline: many entries of different tenants share
	// a millisecond, the ties the merge must order the same way each time.
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, keys.Tenants(), "contoso", "fabrikam", "northwind", "not a tenant!")
		for i := range 1500 {
			c.Advance(time.Second)
			if err := log.AppendTx(ctx, p, record.Record{Operation: "Get-Mailbox", LockboxTenant: names[i%3],
				RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin,
				UserId: record.OperatorUserID, ObjectId: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var full []record.Record
	if err := log.Export(ctx, providerAuditor, audit.Query{}, func(r record.Record) error { full = append(full, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(full) != 1500 {
		t.Fatalf("exported %d", len(full))
	}
	seen := map[string]bool{}
	for _, r := range full {
		if seen[r.ObjectId] {
			t.Fatalf("record %s twice", r.ObjectId)
		}
		seen[r.ObjectId] = true
	}
	for _, limit := range []int{1, 7, 500} {
		q := audit.Query{Limit: limit}
		var got []record.Record
		for {
			pg, err := log.Search(ctx, providerAuditor, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pg.Records...)
			if pg.Next == "" {
				break
			}
			q.Cursor = pg.Next
		}
		if len(got) != len(full) {
			t.Fatalf("limit %d: paged %d, want %d", limit, len(got), len(full))
		}
		for i := range got {
			if got[i].Id != full[i].Id {
				t.Fatalf("limit %d: record %d differs", limit, i)
			}
		}
	}
	// Time bounds apply across tenants too.
	pg, err := log.Search(ctx, providerAuditor, audit.Query{From: t0.Add(1401 * time.Second), Limit: 1000})
	if err != nil || len(pg.Records) != 100 {
		t.Fatalf("from: %d records, %v", len(pg.Records), err)
	}
	// A tenant user who leaves out the tenant reads its own only.
	own, err := log.Search(ctx, tenantAuditor, audit.Query{Limit: 1000})
	if err != nil || len(own.Records) == 0 {
		t.Fatalf("tenant user without tenant: %d records, %v", len(own.Records), err)
	}
	for _, r := range own.Records {
		if r.LockboxTenant != tenantAuditor.TenantID {
			t.Fatalf("tenant user without tenant read %s's record", r.LockboxTenant)
		}
	}
	// Cursors don't cross kinds of search.
	one, err := log.Search(ctx, providerAuditor, audit.Query{Tenant: "contoso", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Search(ctx, providerAuditor, audit.Query{Cursor: one.Next}); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("single-tenant cursor across tenants: %v", err)
	}
}

// RequestRecords reads one request's records, whole, and refuses a read
// that would name no request (which would match the whole log).
func TestRequestRecords(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := fill(t, rdb, c, 30)
	ctx := context.Background()
	var got []record.Record
	err := log.RequestRecords(ctx, "contoso", requestID(1), time.Time{}, time.Time{}, func(r record.Record) error {
		got = append(got, r)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("%d records, want 10", len(got))
	}
	for i, r := range got {
		if r.LockboxRequestId != requestID(1) || r.ProviderUserId == "" {
			t.Errorf("record %d = %+v", i, r)
		}
		if i > 0 && !r.CreationTime.Before(got[i-1].CreationTime.Time) {
			t.Errorf("record %d is not older than the one before", i)
		}
	}
	// From bounds the scan: records 25 and 28 are request 1's after t0+25s.
	n := 0
	err = log.RequestRecords(ctx, "contoso", requestID(1), t0.Add(25*time.Second), time.Time{}, func(record.Record) error { n++; return nil }, nil)
	if err != nil || n != 2 {
		t.Errorf("from t0+25s: %d records, %v", n, err)
	}
	// To too: records 1, 4 and 7 are request 1's up to t0+10s (record i is
	// stamped t0+i+1s), 10 and 13 from t0+10s to t0+14s.
	n = 0
	err = log.RequestRecords(ctx, "contoso", requestID(1), time.Time{}, t0.Add(10*time.Second), func(record.Record) error { n++; return nil }, nil)
	if err != nil || n != 3 {
		t.Errorf("to t0+10s: %d records, %v", n, err)
	}
	n = 0
	err = log.RequestRecords(ctx, "contoso", requestID(1), t0.Add(10*time.Second), t0.Add(14*time.Second), func(record.Record) error { n++; return nil }, nil)
	if err != nil || n != 2 {
		t.Errorf("from t0+10s to t0+14s: %d records, %v", n, err)
	}
	stop := errors.New("stop")
	if err := log.RequestRecords(ctx, "contoso", requestID(1), time.Time{}, time.Time{}, func(record.Record) error { return stop }, nil); !errors.Is(err, stop) {
		t.Errorf("the callback's error = %v", err)
	}
	for _, c := range []struct{ tenant, id string }{{"contoso", ""}, {"", requestID(1)}, {"Bad Tenant", requestID(1)}} {
		err := log.RequestRecords(ctx, c.tenant, c.id, time.Time{}, time.Time{}, func(record.Record) error {
			t.Fatalf("%q/%q: a record was read", c.tenant, c.id)
			return nil
		}, nil)
		if !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%q/%q: err = %v", c.tenant, c.id, err)
		}
	}
}

// TestRequestRecordsNamesUnreadable: a record that does not decode,
// appended within the range RequestRecords reads, is handed to bad, since
// it may be the request's; one appended well outside it is not, though
// the scan's ClockSkew margin may pass it.
func TestRequestRecordsNamesUnreadable(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := fill(t, rdb, c, 6)
	ctx := context.Background()
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.ParseInt(strings.Split(id, "-")[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(ms)
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     []audit.UnreadableRecord
	}{
		{"unbounded", time.Time{}, time.Time{}, []audit.UnreadableRecord{{Tenant: "contoso", StreamID: id}}},
		{"within the skew", at.Add(time.Minute), time.Time{}, []audit.UnreadableRecord{{Tenant: "contoso", StreamID: id}}},
		{"after the range", time.Time{}, at.Add(-audit.ClockSkew - time.Second), nil},
		{"before the range", at.Add(audit.ClockSkew + time.Second), time.Time{}, nil},
	} {
		var got []audit.UnreadableRecord
		err := log.RequestRecords(ctx, "contoso", requestID(1), c.from, c.to, func(record.Record) error { return nil },
			func(u audit.UnreadableRecord) { got = append(got, u) })
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: unreadable %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}
