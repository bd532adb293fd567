package grants_test

import (
	"context"
	"errors"
	"slices"
	"strings"
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
	n, err := e.store.DeleteEnded(ctx, 3*day)
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
	if n, err := e.store.DeleteEnded(context.Background(), 0); err != nil || n != 0 {
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
	if n, err := replica.store.DeleteEnded(ctx, day); err != nil || n != 0 {
		t.Fatalf("DeleteEnded with the request changed meanwhile = %d, %v; want 0", n, err)
	}
	if hook.armed.Load() {
		t.Fatal("the concurrent change never ran")
	}
	if in := indexed(t, e, r.ID); !slices.Equal(in, allIndexes) {
		t.Fatalf("request changed meanwhile kept only in %q", in)
	}
	if n, err := replica.store.DeleteEnded(ctx, day); err != nil || n != 1 {
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
	if _, err := replica.store.DeleteEnded(ctx, day); err == nil {
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
	if n, err := e.store.DeleteEnded(ctx, day); err != nil || n != 0 {
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
	if n, err := s.DeleteEnded(ctx, day); err != nil || n != 2 {
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
