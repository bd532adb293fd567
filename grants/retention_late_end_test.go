package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
)

// TestRetentionKeepsARequestItsAuditTrailStillNames: request retention,
// never shorter than audit retention, keeps a request at least as long as
// the audit records that name it. It dated a request by its history's last
// event, which for an expiry is the decide_by deadline; the expiry's audit
// record is created when the sweep records it, which a jobs replica down
// for three days does three days later (recordFor). With both retentions
// equal, the request went three days before its expiry record, and the
// log named a request that no longer existed. The event now says when it
// was recorded, and the request is dated by that: kept while the record
// is, deleted once it is trimmed.
func TestRetentionKeepsARequestItsAuditTrailStillNames(t *testing.T) {
	const retention = 30 * day
	e := newEnv(t)
	ctx := context.Background()
	r := e.create(t, time.Hour) // pending, decide_by t0+12h
	// The jobs were down: the expiry is recorded three days late.
	e.clock.Advance(12*time.Hour + 3*day)
	if n, err := e.store.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	names := func() []string {
		recs, err := e.log.List(ctx, "contoso", 100)
		if err != nil {
			t.Fatal(err)
		}
		var ops []string
		for _, rec := range recs {
			if rec.LockboxRequestId == r.ID && rec.Operation != record.OpRemoveRequest {
				ops = append(ops, rec.Operation)
			}
		}
		return ops
	}
	for _, tc := range []struct {
		at      time.Time
		deleted int
	}{
		// A retention after the deadline: the expiry's record stays.
		{at: t0.Add(12*time.Hour + retention + time.Minute), deleted: 0},
		// A retention after the expiry was recorded: both go.
		{at: t0.Add(12*time.Hour + 3*day + retention + time.Minute), deleted: 1},
	} {
		e.clock.Set(tc.at)
		if _, err := e.log.TrimAll(ctx, retention); err != nil {
			t.Fatal(err)
		}
		n, _, err := e.store.DeleteEnded(ctx, retention)
		if err != nil || n != tc.deleted {
			t.Fatalf("at %s: DeleteEnded = %d, %v; want %d", tc.at.Format(time.RFC3339), n, err, tc.deleted)
		}
		_, err = e.store.Get(ctx, manager.Principal, r.ID)
		if gone := errors.Is(err, grants.ErrNotFound); gone && len(names()) > 0 {
			t.Fatalf("at %s: request %s deleted by retention %s while the audit log, under the same retention, still names it: %v",
				tc.at.Format(time.RFC3339), r.ID, retention, names())
		}
	}
}
