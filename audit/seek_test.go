package audit_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestDateRangeSeeksToItsEnd: a search or export of a date range long
// before the newest record reads about the range, not every record newer
// than it, and finds exactly what a scan of everything finds — also when
// records were appended out of CreationTime order within ClockSkew, and
// for a range past either end of the log.
func TestDateRangeSeeksToItsEnd(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 6000
	for _, jitter := range []bool{false, true} {
		rdb := testRedis(t)
		// A record a minute; with jitter, every third was stamped up to
		// four minutes before the one appended ahead of it.
		if err := writeLog(rdb, n, func(i int) time.Time {
			at := t0.Add(time.Duration(i) * time.Minute)
			if jitter && i%3 == 1 {
				at = at.Add(-4 * time.Minute)
			}
			return at
		}); err != nil {
			t.Fatal(err)
		}
		count := &redistest.EntriesRead{}
		rdb.AddHook(count)
		log := audit.NewLog(rdb, nil)
		var all []record.Record
		if err := log.Export(ctx, providerAuditor, audit.Query{Tenant: bigTenant}, func(r record.Record) error {
			all = append(all, r)
			return nil
		}); err != nil || len(all) != n {
			t.Fatalf("export of everything: %d records, %v", len(all), err)
		}
		for _, rng := range []struct{ from, to time.Time }{
			{t0.Add(10 * time.Hour), t0.Add(12 * time.Hour)},
			{t0.Add(time.Hour), t0.Add(time.Hour)},
			{time.Time{}, t0.Add(30 * time.Minute)},
			{t0.Add(-48 * time.Hour), t0.Add(-24 * time.Hour)},
			{t0.Add(90 * time.Hour), t0.Add(200 * time.Hour)},
		} {
			var want []record.Record
			for _, r := range all {
				if !r.CreationTime.Before(rng.from) && !r.CreationTime.After(rng.to) {
					want = append(want, r)
				}
			}
			count.Reset()
			var got []record.Record
			q := audit.Query{Tenant: bigTenant, From: rng.from, To: rng.to}
			pages := 0
			for {
				pages++
				pg, err := log.Search(ctx, providerAuditor, q)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, pg.Records...)
				if q.Cursor = pg.Next; q.Cursor == "" {
					break
				}
			}
			same := func(a, b record.Record) bool { return a.Id == b.Id }
			if !slices.EqualFunc(got, want, same) {
				t.Fatalf("jitter %v, %v..%v: search found %d records, a scan of everything %d", jitter, rng.from, rng.to, len(got), len(want))
			}
			// The range, a batch of margin for each page (each reads on
			// from its cursor), and the bisection's probes.
			if read := count.N(); read > int64(len(want)+(pages+1)*500+60) {
				t.Errorf("jitter %v, %v..%v: the search read %d entries for %d records", jitter, rng.from, rng.to, read, len(want))
			}
			count.Reset()
			got = got[:0]
			if err := log.Export(ctx, providerAuditor, audit.Query{Tenant: bigTenant, From: rng.from, To: rng.to}, func(r record.Record) error {
				got = append(got, r)
				return nil
			}); err != nil || !slices.EqualFunc(got, want, same) {
				t.Fatalf("jitter %v: export found %d records, want %d (%v)", jitter, len(got), len(want), err)
			}
			if read := count.N(); read > int64(len(want))+2*500+60 {
				t.Errorf("jitter %v, %v..%v: the export read %d entries for %d records", jitter, rng.from, rng.to, read, len(want))
			}
		}
	}
}
