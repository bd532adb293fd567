package grants_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

const day = 24 * time.Hour

// listed returns the ids of the requests each listing shows: the
// provider-wide one (a manager's), the operator's own and the tenant's.
func listed(t *testing.T, e *env) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, c := range map[string]struct {
		p identity.Principal
		f grants.Filter
	}{
		"provider": {manager.Principal, grants.Filter{}},
		"operator": {operator.Principal, grants.Filter{}},
		"tenant":   {globalAdmin.Principal, grants.Filter{Tenant: "contoso"}},
	} {
		rs, err := e.store.List(context.Background(), c.p, c.f)
		if err != nil {
			t.Fatalf("%s listing: %v", name, err)
		}
		for _, r := range rs {
			out[name] = append(out[name], r.ID)
		}
	}
	return out
}

// indexed reports which of the request's keys and index entries exist.
func indexed(t *testing.T, e *env, id string) []string {
	t.Helper()
	ctx := context.Background()
	var in []string
	if n, _ := e.rdb.Exists(ctx, keys.Request("contoso", id)).Result(); n == 1 {
		in = append(in, "req")
	}
	if n, _ := e.rdb.Exists(ctx, keys.RequestIndex(id)).Result(); n == 1 {
		in = append(in, "reqidx")
	}
	for name, k := range map[string]string{
		"tenant": keys.TenantRequests("contoso"), "provider": keys.AllRequests(),
		"operator": keys.OperatorRequests(operator.Principal.Subject),
	} {
		member := "contoso/" + id
		if name == "tenant" {
			member = id
		}
		if err := e.rdb.ZScore(ctx, k, member).Err(); err == nil {
			in = append(in, name)
		} else if !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
	}
	slices.Sort(in)
	return in
}

var allIndexes = []string{"operator", "provider", "req", "reqidx", "tenant"}

// TestRequestRetentionDeletesEndedRequests: a request that ended more than
// the retention ago is gone, from Get, every listing and every index; one
// that ended since stays, and so do a pending and an approved one however
// old (the sweep, not retention, ends them).
func TestRequestRetentionDeletesEndedRequests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.file(t, operator, "exchange")
	e.act(t, old.ID, grants.ActionCancel, operator)
	pending := e.file(t, operator, "sharepoint")
	approved := e.file(t, operator, "onedrive")
	e.act(t, approved.ID, grants.ActionApprove, manager)
	e.act(t, approved.ID, grants.ActionApprove, globalAdmin)
	e.clock.Advance(2 * day)
	recent := e.create(t, time.Hour) // exchange again: old has ended
	e.act(t, recent.ID, grants.ActionDeny, manager)
	e.clock.Advance(2 * day)
	// The cut is one and a half days after recent ended: old ended four
	// days ago, recent two.
	n, _, err := e.store.DeleteEnded(ctx, 3*day)
	if err != nil || n != 1 {
		t.Fatalf("DeleteEnded = %d, %v; want 1 (old)", n, err)
	}
	if _, err := e.store.Get(ctx, manager.Principal, old.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("Get of the deleted request: %v, want not found", err)
	}
	if in := indexed(t, e, old.ID); len(in) != 0 {
		t.Errorf("deleted request still in %q", in)
	}
	for name, ids := range listed(t, e) {
		if slices.Contains(ids, old.ID) {
			t.Errorf("%s listing still shows the deleted request", name)
		}
		for _, id := range []string{pending.ID, approved.ID, recent.ID} {
			if !slices.Contains(ids, id) {
				t.Errorf("%s listing lost request %s, which had not ended before the cut", name, id)
			}
		}
	}
	for _, id := range []string{pending.ID, approved.ID, recent.ID} {
		if in := indexed(t, e, id); !slices.Equal(in, allIndexes) {
			t.Errorf("request %s kept only in %q", id, in)
		}
	}
	if n, _ := e.rdb.Exists(ctx, keys.RequestsDeleting("contoso")).Result(); n != 0 {
		t.Error("the deletion's note was left behind")
	}
	// Reindex, which rebuilds the provider-wide indexes, does not bring
	// it back.
	if _, err := e.store.Reindex(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if in := indexed(t, e, old.ID); len(in) != 0 {
		t.Errorf("after Reindex the deleted request is in %q", in)
	}
}

// TestRequestRetentionZeroKeepsEverything: the default, 0, deletes nothing.
func TestRequestRetentionZeroKeepsEverything(t *testing.T) {
	e := newEnv(t)
	r := e.file(t, operator, "exchange")
	e.act(t, r.ID, grants.ActionCancel, operator)
	e.clock.Advance(10 * 365 * day)
	if n, _, err := e.store.DeleteEnded(context.Background(), 0); err != nil || n != 0 {
		t.Fatalf("DeleteEnded(0) = %d, %v; want 0", n, err)
	}
	if in := indexed(t, e, r.ID); !slices.Equal(in, allIndexes) {
		t.Errorf("request kept only in %q", in)
	}
}

// TestRequestRetentionLeavesARequestChangedMeanwhile: a request written
// between the read that judged it ended and the deletion's commit is not
// deleted by that run; the next run judges it again.
func TestRequestRetentionLeavesARequestChangedMeanwhile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.file(t, operator, "exchange")
	e.act(t, r.ID, grants.ActionCancel, operator)
	e.clock.Advance(3 * day)

	key := keys.Request("contoso", r.ID)
	stored, err := e.rdb.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	rdbB := redistest.Clone(t, e.rdb)
	hook := &afterReply{when: redistest.Command("get", key), then: func() {
		// Another writer rewrites it, as it stands, after the read.
		if err := e.rdb.Set(ctx, key, stored, 0).Err(); err != nil {
			t.Error(err)
		}
	}}
	rdbB.AddHook(hook)
	replica := newEnvOn(t, rdbB, e.clock)
	hook.armed.Store(true)
	if n, _, err := replica.store.DeleteEnded(ctx, day); err != nil || n != 0 {
		t.Fatalf("DeleteEnded with the request changed meanwhile = %d, %v; want 0", n, err)
	}
	if hook.armed.Load() {
		t.Fatal("the concurrent change never ran")
	}
	if in := indexed(t, e, r.ID); !slices.Equal(in, allIndexes) {
		t.Fatalf("request changed meanwhile kept only in %q", in)
	}
	if n, _, err := replica.store.DeleteEnded(ctx, day); err != nil || n != 1 {
		t.Fatalf("next run: DeleteEnded = %d, %v; want 1", n, err)
	}
}

// TestRequestRetentionFinishesAfterACrash: a run whose second step (the
// provider-wide index entries, in other slots) fails leaves them, and the
// note that they are due; the next run removes them though it finds no
// request to delete.
func TestRequestRetentionFinishesAfterACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.file(t, operator, "exchange")
	e.act(t, r.ID, grants.ActionCancel, operator)
	e.clock.Advance(3 * day)

	rdbB := redistest.Clone(t, e.rdb)
	rdbB.AddHook(redistest.FailInPipelines{Match: redistest.Command("del", keys.RequestIndex(r.ID))})
	replica := newEnvOn(t, rdbB, e.clock)
	if _, _, err := replica.store.DeleteEnded(ctx, day); err == nil {
		t.Fatal("DeleteEnded reported no error with its second step failed")
	}
	if in := indexed(t, e, r.ID); slices.Contains(in, "req") || slices.Contains(in, "tenant") || !slices.Contains(in, "reqidx") {
		t.Fatalf("after the failed second step the request is in %q; want its provider-wide entries only", in)
	}
	// Readers skip the entries whose request is gone.
	for name, ids := range listed(t, e) {
		if slices.Contains(ids, r.ID) {
			t.Errorf("%s listing shows the deleted request", name)
		}
	}
	if n, _, err := e.store.DeleteEnded(ctx, day); err != nil || n != 0 {
		t.Fatalf("next run: DeleteEnded = %d, %v; want 0 (nothing left to delete but index entries)", n, err)
	}
	if in := indexed(t, e, r.ID); len(in) != 0 {
		t.Errorf("after the next run the request is still in %q", in)
	}
	if n, _ := e.rdb.Exists(ctx, keys.RequestsDeleting("contoso")).Result(); n != 0 {
		t.Error("the deletion's note was left behind")
	}
}

// TestRequestRetentionCountsDeletions: lockbox_requests_deleted_total
// counts the requests retention deleted.
func TestRequestRetentionCountsDeletions(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	reg := prometheus.NewPedanticRegistry()
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	tenanttest.Onboard(t, ts, "contoso", "fabrikam")
	ctx := context.Background()
	for _, svc := range []string{"exchange", "sharepoint"} {
		r, err := s.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: svc, ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Act(ctx, r.ID, grants.ActionCancel, operator, ""); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(2 * day)
	if n, _, err := s.DeleteEnded(ctx, day); err != nil || n != 2 {
		t.Fatalf("DeleteEnded = %d, %v; want 2", n, err)
	}
	want := `
# HELP lockbox_requests_deleted_total Ended requests request retention (LOCKBOX_REQUEST_RETENTION) deleted, with their history and index entries.
# TYPE lockbox_requests_deleted_total counter
lockbox_requests_deleted_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "lockbox_requests_deleted_total"); err != nil {
		t.Error(err)
	}
}

// retentionReplica is a store on rdb, over e's Redis, whose request
// retention deletes at most batch requests per batch and limit per run,
// counting its deletions in reg.
func retentionReplica(t *testing.T, e *env, rdb redis.UniversalClient, batch, limit int) (*grants.Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	log := audit.NewLog(rdb, e.clock.Now)
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: tenants.NewStore(rdb, log, e.clock.Now),
		Catalog: cat, Now: e.clock.Now, Registerer: reg, RetentionBatch: batch, RetentionLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// endedRequests files n requests for tenant, each canceled at once, and
// returns their ids.
func endedRequests(t *testing.T, e *env, tenant string, n int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for range n {
		r, err := e.store.Create(ctx, operator, grants.CreateInput{Tenant: tenant, Service: "exchange",
			ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Act(ctx, r.ID, grants.ActionCancel, operator, ""); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// requestsLeft reports what is left of the requests ids of each tenant:
// each one's own key or reqidx entry that is still there, and each index
// or note of them that is not empty. Key by key, not KEYS, which on
// Cluster reads one node.
func requestsLeft(t *testing.T, e *env, ids map[string][]string) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	for tenant, ids := range ids {
		ks := []string{keys.TenantRequests(tenant), keys.RequestsDeleting(tenant)}
		for _, id := range ids {
			ks = append(ks, keys.Request(tenant, id), keys.RequestIndex(id))
		}
		for _, k := range ks {
			if n, err := e.rdb.Exists(ctx, k).Result(); err != nil || n != 0 {
				left = append(left, k)
			}
		}
	}
	for _, k := range []string{keys.AllRequests(), keys.OperatorRequests(operator.Principal.Subject)} {
		if n, err := e.rdb.ZCard(ctx, k).Result(); err != nil || n != 0 {
			left = append(left, k)
		}
	}
	slices.Sort(left)
	return left
}

// batchWatch is a hook that records the largest pipeline of
// provider-wide index removals (one DEL of a request's reqidx per
// request) and the most notes of deletions (keys.RequestsDeleting) a
// tenant held when one was sent.
type batchWatch struct {
	rdb      redis.UniversalClient
	tenants  []string
	pipeline atomic.Int64
	notes    atomic.Int64
	onBatch  func()
}

func (h *batchWatch) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *batchWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *batchWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := int64(0)
		for _, c := range cmds {
			if redistest.Command("del")(c) && len(c.Args()) > 1 && strings.HasPrefix(fmt.Sprint(c.Args()[1]), keys.RequestIndex("")) {
				n++
			}
		}
		if n == 0 {
			return next(ctx, cmds)
		}
		maxInto(&h.pipeline, n)
		for _, tenant := range h.tenants {
			notes, err := h.rdb.HLen(context.Background(), keys.RequestsDeleting(tenant)).Result()
			if err != nil {
				return err
			}
			maxInto(&h.notes, notes)
		}
		err := next(ctx, cmds)
		if h.onBatch != nil {
			h.onBatch()
		}
		return err
	}
}

func maxInto(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// TestRequestRetentionWorksInBatches: a backlog (retention turned on over
// years of requests) is not deleted in one go. Each batch removes at most
// RetentionBatch requests' provider-wide entries in one pipeline, with no
// more notes than that pending; each run deletes at most RetentionLimit
// and says there is more, and the runs after it go on until every request
// is gone, each deleted once. The tenants take turns by batch, so one
// tenant's backlog does not hold back another's deletions for runs.
func TestRequestRetentionWorksInBatches(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := map[string][]string{"contoso": endedRequests(t, e, "contoso", 11), "fabrikam": endedRequests(t, e, "fabrikam", 4)}
	e.clock.Advance(2 * day)

	const batch, limit, due = 3, 7, 15
	rdb := redistest.Clone(t, e.rdb)
	watch := &batchWatch{rdb: e.rdb, tenants: []string{"contoso", "fabrikam"}}
	rdb.AddHook(watch)
	s, reg := retentionReplica(t, e, rdb, batch, limit)
	total, runs := 0, 0
	for more := true; more; {
		if runs++; runs > 10 {
			t.Fatalf("still more to delete after %d runs, %d deleted of %d", runs-1, total, due)
		}
		before, err := e.rdb.ZCard(ctx, keys.TenantRequests("fabrikam")).Result()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		n, more, err = s.DeleteEnded(ctx, day)
		if err != nil {
			t.Fatalf("run %d: %v", runs, err)
		}
		if n > limit {
			t.Errorf("run %d deleted %d requests, more than its limit of %d", runs, n, limit)
		}
		if more && n < limit {
			t.Errorf("run %d deleted %d requests, under its limit of %d, and said there was more", runs, n, limit)
		}
		after, err := e.rdb.ZCard(ctx, keys.TenantRequests("fabrikam")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if runs == 1 && after == before {
			t.Error("the first run deleted none of fabrikam's requests: contoso's backlog held them back")
		}
		total += n
	}
	if total != due {
		t.Errorf("the runs deleted %d requests in all, want %d", total, due)
	}
	if runs < 3 {
		t.Errorf("%d requests deleted in %d runs of at most %d", due, runs, limit)
	}
	if n := watch.pipeline.Load(); n == 0 {
		t.Error("no pipeline removed provider-wide entries: the batches went unobserved")
	} else if n > batch {
		t.Errorf("one pipeline removed the provider-wide entries of %d requests, more than a batch of %d", n, batch)
	}
	if n := watch.notes.Load(); n > batch {
		t.Errorf("a tenant held %d notes of deletions at once, more than a batch of %d", n, batch)
	}
	if left := requestsLeft(t, e, ids); len(left) != 0 {
		t.Errorf("left after every run: %q", left)
	}
	deletedTotal(t, reg, due)
}

// deletedTotal checks that lockbox_requests_deleted_total of reg is want.
func deletedTotal(t *testing.T, reg prometheus.Gatherer, want int) {
	t.Helper()
	text := fmt.Sprintf(`
# HELP lockbox_requests_deleted_total Ended requests request retention (LOCKBOX_REQUEST_RETENTION) deleted, with their history and index entries.
# TYPE lockbox_requests_deleted_total counter
lockbox_requests_deleted_total %d
`, want)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(text), "lockbox_requests_deleted_total"); err != nil {
		t.Error(err)
	}
}

// TestRequestRetentionStoppedPartWayLosesNothing: a run stopped part way,
// its context canceled once a batch is done or its replica killed after
// deleting requests whose provider-wide entries it has yet to remove,
// stops there, and leaves each request either whole, in every index, or
// deleted, with a note of what is left of it; listings show only the
// whole ones. The next run deletes the rest and finishes the notes: every
// request is deleted, and counted, once.
func TestRequestRetentionStoppedPartWayLosesNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		kill bool
	}{
		{"context canceled after a batch", false},
		{"replica killed within a batch", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			const batch, due = 3, 8
			ids := endedRequests(t, e, "contoso", due)
			e.clock.Advance(2 * day)

			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var rdb redis.UniversalClient
			if c.kill {
				k := redistest.Killable(t, e.rdb)
				// It dies once its fifth deletion committed: the second
				// batch's second, whose provider-wide entries it has
				// not removed.
				notes := 0
				k.KillAfter(func(cmd redis.Cmder) bool {
					if redistest.Command("hset", keys.RequestsDeleting("contoso"))(cmd) {
						notes++
					}
					return notes == 5
				})
				rdb = k
			} else {
				rdb = redistest.Clone(t, e.rdb)
				rdb.AddHook(&batchWatch{rdb: e.rdb, onBatch: cancel})
			}
			s, reg := retentionReplica(t, e, rdb, batch, 100)
			n, _, err := s.DeleteEnded(rctx, day)
			if err == nil {
				t.Fatalf("DeleteEnded stopped part way deleted %d and reported no error", n)
			}
			want := batch
			if c.kill {
				want = 5
			}
			if n != want {
				t.Errorf("the stopped run deleted %d requests, want %d", n, want)
			}
			deletedTotal(t, reg, n)

			var deleted, whole []string
			for _, id := range ids {
				switch in := indexed(t, e, id); {
				case slices.Equal(in, allIndexes):
					whole = append(whole, id)
				case slices.Contains(in, "req") || slices.Contains(in, "tenant"):
					t.Errorf("request %s half deleted: still in %q", id, in)
				case len(in) > 0:
					// Its provider-wide entries wait for the next run:
					// the note says so.
					if err := e.rdb.HGet(ctx, keys.RequestsDeleting("contoso"), id).Err(); err != nil {
						t.Errorf("request %s deleted, still in %q, with no note: %v", id, in, err)
					}
					deleted = append(deleted, id)
				default:
					deleted = append(deleted, id)
				}
			}
			if len(deleted) != n {
				t.Errorf("%d requests gone after a run that deleted %d", len(deleted), n)
			}
			for name, listing := range listed(t, e) {
				slices.Sort(listing)
				slices.Sort(whole)
				if !slices.Equal(listing, whole) {
					t.Errorf("%s listing after the stopped run shows %q, want the requests left whole %q", name, listing, whole)
				}
			}

			next, more, err := e.store.DeleteEnded(ctx, day)
			if err != nil || more || n+next != due {
				t.Fatalf("next run: DeleteEnded = %d, %t, %v; want %d, false (the rest)", next, more, err, due-n)
			}
			if left := requestsLeft(t, e, map[string][]string{"contoso": ids}); len(left) != 0 {
				t.Errorf("left after the next run: %q", left)
			}
		})
	}
}
