package grants_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/tenants"
)

// requestReads counts the GETs of request keys ("lockbox:{tenant}:req:id")
// sent through a client, alone or in a pipeline, while on.
type requestReads struct {
	on atomic.Bool
	n  atomic.Int64
}

func (h *requestReads) count(cmds ...redis.Cmder) {
	if !h.on.Load() {
		return
	}
	for _, c := range cmds {
		if args := c.Args(); strings.EqualFold(c.Name(), "get") && len(args) == 2 {
			if k, _ := args[1].(string); strings.HasPrefix(k, "lockbox:{") && strings.Contains(k, "}:req:") {
				h.n.Add(1)
			}
		}
	}
}

func (h *requestReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *requestReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}
func (h *requestReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.count(cmds...)
		return next(ctx, cmds)
	}
}

// during returns how many requests f read.
func (h *requestReads) during(f func()) int {
	h.n.Store(0)
	h.on.Store(true)
	defer h.on.Store(false)
	f()
	return int(h.n.Load())
}

// countReads counts the request reads of e's store from now on.
func (e *env) countReads() *requestReads {
	h := &requestReads{}
	e.rdb.AddHook(h)
	return h
}

// fileOwn files n requests as operator op, each ended (canceled) so the
// next may be filed for the same tenant and service.
func (e *env) fileOwn(t *testing.T, op grants.Actor, n int) []grants.Request {
	t.Helper()
	var out []grants.Request
	for i := range n {
		r, err := e.store.Create(context.Background(), op, grants.CreateInput{
			Tenant: []string{"contoso", "fabrikam"}[i%2], Service: "exchange", ServiceRequest: fmt.Sprintf("SR-%d", i),
			Reason: "repair", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
		if i < n-1 {
			e.act(t, r.ID, grants.ActionCancel, op)
		}
		e.clock.Advance(time.Millisecond)
	}
	return out
}

// fileAmongOthers files n requests of other operators, alternating
// tenants, and after every every-th of them (the first included) one of
// op's, cancelled; it returns op's, oldest first. Some of op's share a
// millisecond with another's, so pages may end within one.
func (e *env) fileAmongOthers(t *testing.T, op grants.Actor, n, every int) []grants.Request {
	t.Helper()
	var own []grants.Request
	for i := range n {
		e.createAs(t, fmt.Sprintf("other-%03d", i), []string{"contoso", "fabrikam"}[i%2])
		if i%every == 0 {
			own = append(own, e.fileOwn(t, op, 1)...)
			e.act(t, own[len(own)-1].ID, grants.ActionCancel, op)
		}
	}
	return own
}

// TestOperatorListingReadsOnlyOwnRequests: an operator's listing of their
// own requests reads those requests, not every other operator's on the
// way: with 250 requests of others (more than one index batch) around 4
// of their own, a page reads at most the operator's 4.
func TestOperatorListingReadsOnlyOwnRequests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reads := e.countReads()
	bob := who("bob", "", identity.RoleOperator)
	own := e.fileAmongOthers(t, bob, 250, 64)
	if _, err := e.store.Reindex(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var pg grants.Page
	n := reads.during(func() {
		var err error
		if pg, err = e.store.ListPage(ctx, bob.Principal, grants.Filter{Limit: 2}); err != nil {
			t.Fatal(err)
		}
	})
	if len(pg.Requests) != 2 || pg.Requests[0].ID != own[len(own)-1].ID || pg.Next == "" {
		t.Fatalf("first page %+v", pg)
	}
	if n > len(own) {
		t.Fatalf("a page of 2 of the operator's %d requests read %d requests", len(own), n)
	}
	n = reads.during(func() {
		var err error
		if pg, err = e.store.ListPage(ctx, bob.Principal, grants.Filter{Limit: 2, Cursor: pg.Next}); err != nil {
			t.Fatal(err)
		}
	})
	if len(pg.Requests) != 2 || pg.Requests[1].ID != own[0].ID || pg.Next != "" {
		t.Fatalf("second page %+v", pg)
	}
	if n > len(own) {
		t.Fatalf("the second page read %d requests", n)
	}
}

// TestListingForNoneReadsNothing: a provider principal that sees no
// request (a Lockbox administrator's roles alone) gets an empty listing
// without reading every request to find that none is for it.
func TestListingForNoneReadsNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reads := e.countReads()
	for i := range 20 {
		e.createAs(t, fmt.Sprintf("other-%02d", i), []string{"contoso", "fabrikam"}[i%2])
	}
	admin := who("lara", "", identity.RoleLockboxAdmin).Principal
	for _, f := range []grants.Filter{{}, {Tenant: "contoso"}} {
		var pg grants.Page
		n := reads.during(func() {
			var err error
			if pg, err = e.store.ListPage(ctx, admin, f); err != nil {
				t.Fatal(err)
			}
		})
		if len(pg.Requests) != 0 || pg.Next != "" || n != 0 {
			t.Errorf("filter %+v: %d requests, next %q, %d read; want none of each", f, len(pg.Requests), pg.Next, n)
		}
	}
	// Its cursor is checked all the same.
	if _, err := e.store.ListPage(ctx, admin, grants.Filter{Cursor: "not-a-cursor"}); !errors.Is(err, grants.ErrInvalid) {
		t.Errorf("a bad cursor: %v, want ErrInvalid", err)
	}
}

// pages lists every page of f for p, with each page's ids and next cursor.
func (e *env) pages(t *testing.T, p identity.Principal, f grants.Filter) []string {
	t.Helper()
	var out []string
	for n := 0; ; n++ {
		if n > 200 {
			t.Fatal("the listing does not end")
		}
		pg, err := e.store.ListPage(context.Background(), p, f)
		if err != nil {
			t.Fatalf("page %d with %+v: %v", n, f, err)
		}
		line := make([]string, 0, len(pg.Requests)+1)
		for _, r := range pg.Requests {
			line = append(line, r.ID)
		}
		out = append(out, strings.Join(append(line, "next="+pg.Next), " "))
		if f.Cursor = pg.Next; f.Cursor == "" {
			return out
		}
	}
}

// unbuilt removes the mark that the operators' listings were back-filled,
// as before the repair job's first pass: operators list from the
// provider-wide index again.
func (e *env) unbuilt(t *testing.T) {
	t.Helper()
	if err := e.rdb.Del(context.Background(), keys.OperatorRequestsBuilt()).Err(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) built(t *testing.T) {
	t.Helper()
	if err := e.rdb.Set(context.Background(), keys.OperatorRequestsBuilt(), "test", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestOperatorListingMatchesProviderWideScan: generated requests of
// several operators (two of them one name in two cases), in two tenants,
// in every state, some within one millisecond and some hours apart; for
// every viewer and filter, each page (its requests and its next cursor)
// read from an operator's own index is the page read from the
// provider-wide index, and an operator's index holds exactly the requests
// that operator filed.
func TestOperatorListingMatchesProviderWideScan(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reads := e.countReads()
	ops := []grants.Actor{
		who("alice", "", identity.RoleOperator), who("Alice", "", identity.RoleOperator),
		who("bob", "", identity.RoleOperator), who("carol@provider.example", "", identity.RoleOperator),
	}
	if _, err := e.tenants.PutSettings(ctx, otherAdmin.Principal, "", "fabrikam", tenants.Settings{LockboxEnabled: false}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"exchange", "sharepoint", "onedrive"}
	var mid time.Time
	filed := map[string][]string{} // operator → "tenant/id"
	for i := range 150 {
		if i == 75 {
			mid = e.clock.Now()
		}
		op := ops[rng.IntN(len(ops))]
		r, err := e.store.Create(ctx, op, grants.CreateInput{Tenant: []string{"contoso", "fabrikam"}[rng.IntN(2)],
			Service: services[rng.IntN(len(services))], ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)})
		if errors.Is(err, grants.ErrConflict) {
			continue // that operator's request for it is still open
		}
		if err != nil {
			t.Fatal(err)
		}
		filed[op.Principal.Subject] = append(filed[op.Principal.Subject], r.Tenant+"/"+r.ID)
		switch rng.IntN(6) {
		case 0: // left pending
		case 1:
			e.act(t, r.ID, grants.ActionCancel, op)
		case 2:
			e.act(t, r.ID, grants.ActionDeny, manager)
		case 3: // pending the customer in contoso, approved in fabrikam
			e.act(t, r.ID, grants.ActionApprove, manager)
		case 4:
			if e.act(t, r.ID, grants.ActionApprove, manager).State == grants.StateApproved {
				e.act(t, r.ID, grants.ActionRevoke, manager)
			} else {
				e.act(t, r.ID, grants.ActionDeny, globalAdmin)
			}
		case 5: // expires or completes as time passes
		}
		switch rng.IntN(4) {
		case 0: // the same millisecond
		case 1, 2:
			e.clock.Advance(time.Duration(1+rng.IntN(3)) * time.Millisecond)
		case 3:
			e.clock.Advance(time.Duration(1+rng.IntN(5)) * time.Hour)
		}
	}

	// And a live grant of each operator's (fabrikam has lockbox off), which
	// no later time ends.
	for _, op := range ops {
		ok := false
		for _, svc := range services {
			r, err := e.store.Create(ctx, op, grants.CreateInput{Tenant: "fabrikam", Service: svc,
				ServiceRequest: "SR-2", Reason: "repair", Duration: grants.Duration(time.Hour)})
			if errors.Is(err, grants.ErrConflict) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			filed[op.Principal.Subject] = append(filed[op.Principal.Subject], r.Tenant+"/"+r.ID)
			e.act(t, r.ID, grants.ActionApprove, manager)
			ok = true
			break
		}
		if !ok {
			t.Fatalf("%s has an open request for every service", op.Principal.Subject)
		}
	}

	// Exactly each operator's own requests, "alice" apart from "Alice".
	for _, op := range ops {
		sub := op.Principal.Subject
		got, err := e.rdb.ZRange(ctx, keys.OperatorRequests(sub), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(filed[sub]))
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s's index holds %d requests, filed %d:\n%v\nwant\n%v", sub, len(got), len(want), got, want)
		}
	}

	viewers := []grants.Actor{ops[0], ops[1], ops[2], ops[3],
		who("alice", "", identity.RoleOperator, identity.RoleAuditReader), // sees every request
		who("lena", "", identity.RoleLockboxAdmin),                        // sees none
	}
	var filters []grants.Filter
	for _, limit := range []int{2, 1000} {
		for _, f := range []grants.Filter{
			{}, {State: grants.StatePendingManager}, {State: grants.StateApproved}, {State: grants.StateDenied},
			{State: grants.StateExpired}, {ExcludePending: true},
			{CreatedAfter: mid}, {CreatedBefore: mid}, {CreatedAfter: t0.Add(time.Hour), CreatedBefore: mid, ExcludePending: true},
			{Tenant: "fabrikam"},
		} {
			f.Limit = limit
			filters = append(filters, f)
		}
	}
	type result struct {
		pages []string
		reads int
	}
	list := func() map[string]result {
		out := map[string]result{}
		for _, v := range viewers {
			for _, f := range filters {
				var r result
				r.reads = reads.during(func() { r.pages = e.pages(t, v.Principal, f) })
				out[fmt.Sprintf("%s %v %+v", v.Principal.Subject, v.Principal.Roles, f)] = r
			}
		}
		return out
	}
	own := list()
	e.unbuilt(t)
	wide := list()
	total := 0
	for _, f := range filed {
		total += len(f)
	}
	for name, w := range wide {
		if o := own[name]; !slices.Equal(o.pages, w.pages) {
			t.Errorf("%s: from the operator's index\n%s\nfrom the provider-wide one\n%s",
				name, strings.Join(o.pages, "\n"), strings.Join(w.pages, "\n"))
		}
	}
	// Every filter matches some of the generated requests, and some of
	// each operator's: none of the comparisons above is of empty pages.
	for _, f := range filters {
		if f.Limit != 1000 {
			continue
		}
		for _, v := range viewers[:5] {
			if pg := wide[fmt.Sprintf("%s %v %+v", v.Principal.Subject, v.Principal.Roles, f)].pages; pg[0] == "next=" {
				t.Errorf("%s lists nothing with %+v", v.Principal.Subject, f)
			}
		}
	}
	// The unfiltered listing in one page read each of the operator's own
	// requests once from their index, and every request from the other.
	for _, op := range ops {
		name := fmt.Sprintf("%s %v %+v", op.Principal.Subject, op.Principal.Roles, grants.Filter{Limit: 1000})
		if o, w := own[name].reads, wide[name].reads; o != len(filed[op.Principal.Subject]) || w != total {
			t.Errorf("%s read %d requests from their index (want %d), %d from the provider-wide one (want %d)",
				op.Principal.Subject, o, len(filed[op.Principal.Subject]), w, total)
		}
	}
}

// TestOperatorListingBeforeTheBackFill: requests filed before the
// operators' listings existed are in none of them; an operator's listing
// shows them all the same, from the provider-wide index, until the repair
// job's pass over every request has back-filled them, and from the
// operator's own index after it.
func TestOperatorListingBeforeTheBackFill(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reads := e.countReads()
	bob := who("bob", "", identity.RoleOperator)
	for i := range 10 {
		e.createAs(t, fmt.Sprintf("other-%02d", i), "contoso")
	}
	old := e.fileOwn(t, bob, 3)
	// As a version without the operators' listings left them (one key at
	// a time: on Redis Cluster they are in different slots).
	for _, k := range []string{keys.OperatorRequests("bob"), keys.OperatorRequestsBuilt()} {
		if err := e.rdb.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	e.act(t, old[2].ID, grants.ActionCancel, bob)
	e.clock.Advance(time.Hour)
	newer := e.fileOwn(t, bob, 1)[0]

	want := []string{newer.ID, old[2].ID, old[1].ID, old[0].ID}
	// fromOwn: the listing's two pages read bob's requests only, at most
	// each of them on each page; else every request, through the
	// provider-wide index.
	check := func(stage string, fromOwn bool) {
		t.Helper()
		var ids []string
		n := reads.during(func() {
			f := grants.Filter{Limit: 3}
			for {
				pg, err := e.store.ListPage(ctx, bob.Principal, f)
				if err != nil {
					t.Fatalf("%s: %v", stage, err)
				}
				for _, r := range pg.Requests {
					ids = append(ids, r.ID)
				}
				if f.Cursor = pg.Next; f.Cursor == "" {
					return
				}
			}
		})
		if !slices.Equal(ids, want) {
			t.Fatalf("%s: bob lists %v, want %v", stage, ids, want)
		}
		if all := 10 + len(want); fromOwn && n > 2*len(want) || !fromOwn && n < all {
			t.Fatalf("%s: bob's listing read %d requests (of %d, %d his)", stage, n, all, len(want))
		}
	}
	check("before any pass", false)
	// A pass over the recent requests only: the older ones are still
	// missing from bob's index, and his listing still reads the other.
	if n, err := e.store.Reindex(ctx, e.clock.Now().Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("recent pass: %d restored, %v", n, err)
	}
	if n, _ := e.rdb.Exists(ctx, keys.OperatorRequestsBuilt()).Result(); n != 0 {
		t.Fatal("a pass over recent requests marked the listings built")
	}
	check("after a recent pass", false)
	// The pass over every request back-fills them: not counted as lost
	// writes restored.
	if n, err := e.store.Reindex(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("back-fill pass: %d restored, %v", n, err)
	}
	check("after the back-fill", true)
	// Once built, a pass over every request (the start-up's) reads no
	// request whose provider-wide entries are all there: at a million
	// requests that would be gigabytes on every restart.
	if err := e.rdb.ZRem(ctx, keys.OperatorRequests("bob"), "contoso/"+old[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	var n int
	var err error
	if reads := reads.during(func() { n, err = e.store.Reindex(ctx, time.Time{}) }); err != nil || n != 0 || reads != 0 {
		t.Fatalf("full pass once built: %d restored, %d requests read, %v; want none", n, reads, err)
	}
	// A pass over the hours that hold it reads its requests, and counts
	// the operator entry lost on its own as a lost write restored.
	if n, err := e.store.Reindex(ctx, old[0].CreatedAt.Add(-time.Millisecond)); err != nil || n != 1 {
		t.Fatalf("repair pass: %d restored, %v", n, err)
	}
	check("after the repair", true)
	// Older than those hours, it comes back when the mark is deleted:
	// the next full pass back-fills every listing again.
	if err := e.rdb.ZRem(ctx, keys.OperatorRequests("bob"), "contoso/"+old[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Del(ctx, keys.OperatorRequestsBuilt()).Err(); err != nil {
		t.Fatal(err)
	}
	check("with the mark deleted", false)
	if n, err := e.store.Reindex(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("second back-fill pass: %d restored, %v", n, err)
	}
	check("after the second back-fill", true)
}

// TestOperatorCursorAcrossIndexes: the indexes share members and scores,
// so a cursor handed out while operators listed from the provider-wide
// index continues on their own index once it is built (and back, should
// the mark be lost), page for page as if nothing had changed.
func TestOperatorCursorAcrossIndexes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reads := e.countReads()
	bob := who("bob", "", identity.RoleOperator)
	own := e.fileAmongOthers(t, bob, 40, 5)
	f := grants.Filter{Limit: 3}
	e.unbuilt(t)
	wide := e.pages(t, bob.Principal, f)
	e.built(t)
	if own := e.pages(t, bob.Principal, f); !slices.Equal(own, wide) {
		t.Fatalf("pages\n%s\nwant\n%s", strings.Join(own, "\n"), strings.Join(wide, "\n"))
	}
	if len(wide) != 3 {
		t.Fatalf("%d pages of %d requests", len(wide), len(own))
	}
	for _, tc := range []struct {
		name        string
		first, then func(*testing.T)
		maxReads    int
	}{
		{"provider-wide, then own", e.unbuilt, e.built, len(own)},
		{"own, then provider-wide", e.built, e.unbuilt, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.first(t)
			pg, err := e.store.ListPage(ctx, bob.Principal, f)
			if err != nil {
				t.Fatal(err)
			}
			tc.then(t)
			var rest []string
			n := reads.during(func() { rest = e.pages(t, bob.Principal, grants.Filter{Limit: 3, Cursor: pg.Next}) })
			if !slices.Equal(rest, wide[1:]) {
				t.Fatalf("continued with\n%s\nwant\n%s", strings.Join(rest, "\n"), strings.Join(wide[1:], "\n"))
			}
			if n > tc.maxReads {
				t.Fatalf("continuing read %d requests", n)
			}
		})
	}
}
