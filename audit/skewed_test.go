package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestAMisdatedRecordHidesNoOther: one replica's clock ran a day behind,
// or a year ahead, while it wrote a stretch of a tenant's log. Its records
// carry that wrong CreationTime, and a search by date places them by it;
// but the records the other replicas wrote, before and after them, must
// all be found by their right times. A scan cut short at a misdated
// record (the newest-first scan's stop at From, the bisection that seeks
// to To, the way back to newer pages stopping at To) hid them.
func TestAMisdatedRecordHidesNoOther(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 600
	for _, tc := range []struct {
		name     string
		bad      func(i int) bool
		skew     time.Duration
		from, to time.Duration // from t0
		hasFrom  bool
		hasTo    bool
	}{
		// Newest first from the newest record, the scan met the stretch
		// dated a day back and stopped, short of 280..299.
		{name: "behind, from only", bad: func(i int) bool { return i >= 300 && i < 400 }, skew: -24 * time.Hour,
			from: 280 * time.Minute, hasFrom: true},
		{name: "behind, from and to", bad: func(i int) bool { return i >= 300 && i < 400 }, skew: -24 * time.Hour,
			from: 280 * time.Minute, to: 420 * time.Minute, hasFrom: true, hasTo: true},
		// The bisection probed the stretch dated a year ahead, took the
		// range's end to be before it, and started the scan below 450.
		{name: "ahead, to after it", bad: func(i int) bool { return i >= 250 && i < 400 }, skew: 365 * 24 * time.Hour,
			from: 450 * time.Minute, to: 500 * time.Minute, hasFrom: true, hasTo: true},
		{name: "ahead, across it", bad: func(i int) bool { return i >= 250 && i < 400 }, skew: 365 * 24 * time.Hour,
			from: 200 * time.Minute, to: 450 * time.Minute, hasFrom: true, hasTo: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testRedis(t)
			log := audit.NewLog(rdb, nil)
			onboard(t, rdb, "contoso")
			// Record i was appended at t0 + i minutes by Redis's clock,
			// and stamped then, or skew off by the misdating replica.
			p := rdb.Pipeline()
			var all []record.Record
			for i := range n {
				at := t0.Add(time.Duration(i) * time.Minute)
				created := at
				if tc.bad(i) {
					created = at.Add(tc.skew)
				}
				r := log.Prepare(record.Record{
					CreationTime: record.Time{Time: created}, Operation: fmt.Sprintf("Get-Mailbox-%d", i),
					LockboxTenant: "contoso", OrganizationId: orgID("contoso"),
					RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin,
					UserId: record.OperatorUserID, Workload: "exchange", LockboxMethod: "GET",
				})
				all = append(all, r)
				p.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit("contoso"), ID: fmt.Sprintf("%d-0", at.UnixMilli()),
					Values: []any{"r", string(r.AppendJSON(nil)), "p", "", "h", "x"}})
			}
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			q := audit.Query{Tenant: "contoso", Limit: 7}
			if tc.hasFrom {
				q.From = t0.Add(tc.from)
			}
			if tc.hasTo {
				q.To = t0.Add(tc.to)
			}
			var want []string // newest first
			for _, r := range slices.Backward(all) {
				if (!tc.hasFrom || !r.CreationTime.Before(q.From)) && (!tc.hasTo || !r.CreationTime.After(q.To)) {
					want = append(want, r.Operation)
				}
			}
			// Every record a right time places in the range is found,
			// and the misdated ones wherever their CreationTime places
			// them (here: outside it).
			var got []string
			var pages []audit.Page
			for pq := q; ; {
				pg, err := log.Search(ctx, providerAuditor, pq)
				if err != nil {
					t.Fatal(err)
				}
				pages = append(pages, pg)
				for _, r := range pg.Records {
					got = append(got, r.Operation)
				}
				if pq.Cursor = pg.Next; pq.Cursor == "" {
					break
				}
			}
			missing := func(got []string) []string {
				return slices.DeleteFunc(slices.Clone(want), func(op string) bool { return slices.Contains(got, op) })
			}
			if !slices.Equal(got, want) {
				t.Fatalf("paging Next found %d records, want %d; missing %v", len(got), len(want), missing(got))
			}
			got = got[:0]
			if err := log.Export(ctx, providerAuditor, q, func(r record.Record) error {
				got = append(got, r.Operation)
				return nil
			}); err != nil || !slices.Equal(got, want) {
				t.Fatalf("export found %d records, want %d (%v); missing %v", len(got), len(want), err, missing(got))
			}
			// Back from the last page, Prev by Prev, to the first: the
			// same pages again.
			ops := func(pg audit.Page) []string {
				var out []string
				for _, r := range pg.Records {
					out = append(out, r.Operation)
				}
				return out
			}
			cur := pages[len(pages)-1]
			for i := len(pages) - 1; i > 0; i-- {
				pq := q
				if pq.Cursor = cur.Prev; pq.Cursor == "" {
					t.Fatalf("page %d of %d has no Prev", i+1, len(pages))
				}
				var err error
				if cur, err = log.Search(ctx, providerAuditor, pq); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ops(cur), ops(pages[i-1])) {
					t.Fatalf("Prev of page %d: %v, want page %d again: %v", i+1, ops(cur), i, ops(pages[i-1]))
				}
			}
		})
	}
}
