package grants_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestReindexRestoresNoEntryOfADeletedRequest: request retention deletes
// an ended request, and then its provider-wide index entries, while a
// replica's Reindex is between reading the tenant's index (which still
// named the request) and restoring the entries it found missing. Reindex
// restored the entries retention had just removed: they named a request
// that no longer existed, and nothing would ever remove them again (the
// deletion was finished), while Reindex reported them as writes a Redis
// failover had lost. With a pass over the recent requests (which reads
// each request) and with one over every request (which reads only those
// it restored), it restores nothing of a request that is gone.
func TestReindexRestoresNoEntryOfADeletedRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		since func(now time.Time) time.Time
	}{
		{"every request", func(time.Time) time.Time { return time.Time{} }},
		{"recent requests", func(now time.Time) time.Time { return now.Add(-10 * day) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			gone := e.file(t, operator, "exchange")
			e.act(t, gone.ID, grants.ActionCancel, operator)
			e.clock.Advance(2 * day)
			kept := e.file(t, operator, "sharepoint")

			rdbB := redistest.Clone(t, e.rdb)
			hook := &afterReply{when: redistest.Command("zrangebyscore", keys.TenantRequests("contoso")), then: func() {
				if n, _, err := e.store.DeleteEnded(ctx, day); err != nil || n != 1 {
					t.Errorf("retention meanwhile: %d, %v; want the ended request deleted", n, err)
				}
			}}
			rdbB.AddHook(hook)
			b := newEnvOn(t, rdbB, e.clock)
			hook.armed.Store(true)
			n, err := b.store.Reindex(ctx, tc.since(e.clock.Now()))
			if err != nil {
				t.Fatal(err)
			}
			if hook.armed.Load() {
				t.Fatal("retention never ran")
			}
			if in := indexed(t, e, gone.ID); len(in) != 0 {
				t.Errorf("the deleted request is still in %q", in)
			}
			if in := indexed(t, e, kept.ID); len(in) != len(allIndexes) {
				t.Errorf("the live request is only in %q", in)
			}
			if n != 0 {
				t.Errorf("Reindex restored %d entries, want 0: no write was lost", n)
			}
		})
	}
}
