package grants_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// endedHistory gives contoso n ended (canceled) requests, as years of an
// operator's filings would, cheaply: one request is filed and canceled
// through the store, and its stored record is copied under n-1 new ids
// into the tenant's and the provider-wide indexes, a millisecond apart
// and older than it.
func endedHistory(t *testing.T, e *env, n int) {
	t.Helper()
	ctx := context.Background()
	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionCancel, operator)
	b, err := e.rdb.Get(ctx, keys.Request("contoso", r.ID)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	at := r.CreatedAt.UnixMilli()
	for start := 1; start < n; start += 1000 {
		if _, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(start+1000, n); i++ {
				id := uuid.NewString()
				p.Set(ctx, keys.Request("contoso", id), bytes.ReplaceAll(b, []byte(r.ID), []byte(id)), 0)
				p.ZAdd(ctx, keys.TenantRequests("contoso"), redis.Z{Score: float64(at - int64(i)), Member: id})
				p.ZAdd(ctx, keys.AllRequests(), redis.Z{Score: float64(at - int64(i)), Member: "contoso/" + id})
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListPageScanIsBounded: a page of a listing whose filter few requests
// match reads at most maxListScan (2 000) index entries, whatever the
// history, and answers what it found with a cursor at the last entry read;
// the cursors lead to every match, once, both ways. The page's size was
// capped but not its scan: a tenant admin asking for ?state=pending_customer
// made one call read and decode the tenant's whole history (20 000
// requests here), a support manager's provider-wide one every tenant's.
func TestListPageScanIsBounded(t *testing.T) {
	e := newEnv(t)
	const history = 6_000
	ctx := context.Background()
	// Ten requests pending the manager, filed among the history: the
	// newest, the oldest and eight in between.
	var want []string
	file := func(i int) {
		e.clock.Advance(time.Second)
		r, err := e.store.Create(ctx, who(fmt.Sprintf("op%d", i), "", identity.RoleOperator), grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "r", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.ID)
	}
	file(0)
	endedHistory(t, e, history) // older than what follows
	for i := 1; i < 10; i++ {
		file(i)
	}
	h := &requestReads{}
	e.rdb.AddHook(h)
	for _, c := range []struct {
		name string
		p    identity.Principal
		f    grants.Filter
	}{
		{"tenant admin, state=pending_manager", globalAdmin.Principal, grants.Filter{State: grants.StatePendingManager, Limit: 4}},
		{"support manager, every tenant, state=pending_manager", manager.Principal, grants.Filter{State: grants.StatePendingManager, Limit: 4}},
		{"support manager, state=approved (none)", manager.Principal, grants.Filter{Tenant: "contoso", State: grants.StateApproved, Limit: 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got, prevs []string
			f := c.f
			pages := 0
			for {
				var pg grants.Page
				var err error
				if n := h.during(func() { pg, err = e.store.ListPage(ctx, c.p, f) }); n > 2_000 {
					t.Fatalf("one page of %d read %d request records of a %d-request history; want at most 2 000", f.Limit, n, history)
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range pg.Requests {
					got = append(got, r.ID)
				}
				if pg.Prev != "" {
					prevs = append(prevs, pg.Prev)
				}
				if pages++; pg.Next == "" {
					break
				}
				f.Cursor = pg.Next
			}
			wantIDs := want
			if c.f.State == grants.StateApproved {
				wantIDs = nil
			}
			if !sameIDs(got, wantIDs) {
				t.Errorf("through %d pages: %d requests %v; want each of %d once", pages, len(got), got, len(wantIDs))
			}
			if wantIDs != nil && pages < 3 {
				t.Errorf("%d pages: the scan was not bounded", pages)
			}
			// Back from the last page, newer, to the first.
			var back []string
			f.Cursor = ""
			if len(prevs) > 0 {
				f.Cursor = prevs[len(prevs)-1]
			}
			for f.Cursor != "" {
				var pg grants.Page
				var err error
				// A page back that finds nothing newer is the newest
				// page, read from the start: two scans at most.
				if n := h.during(func() { pg, err = e.store.ListPage(ctx, c.p, f) }); n > 4_000 {
					t.Fatalf("a page back read %d request records", n)
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range pg.Requests {
					back = append(back, r.ID)
				}
				f.Cursor = pg.Prev
			}
			if wantIDs != nil && len(back) == 0 {
				t.Error("no way back from the last page")
			}
		})
	}
}

// sameIDs reports whether got holds each of want once, in any order.
func sameIDs(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			return false
		}
	}
	return true
}

// TestListByTenantUserWhoReadsNothing: a user of the tenant who is none of
// its readers (no global-admin or audit-reader role, or an approver claim
// the tenant never assigned) sees none of its requests, which one question
// to the tenant directory tells. The listing read and decoded the tenant's
// whole history to return an empty page: any signed-in user of the tenant
// made one GET /v1/requests cost all of it.
func TestListByTenantUserWhoReadsNothing(t *testing.T) {
	e := newEnv(t)
	const history = 3_000
	endedHistory(t, e, history)
	h := &requestReads{}
	e.rdb.AddHook(h)
	ctx := context.Background()
	for _, p := range []identity.Principal{
		{Subject: "pat@contoso.example", TenantID: "contoso"},
		{Subject: "pat@contoso.example", TenantID: "contoso", Roles: []identity.Role{identity.RoleApprover}},
	} {
		var pg grants.Page
		var err error
		got := h.during(func() { pg, err = e.store.ListPage(ctx, p, grants.Filter{}) })
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Requests) != 0 || len(pg.Unreadable) != 0 || pg.Next != "" {
			t.Fatalf("%s %v sees %d requests, next %q; want none", p.Subject, p.Roles, len(pg.Requests), pg.Next)
		}
		if got > 0 {
			t.Errorf("%s %v: an empty page read %d request records (history %d); want none", p.Subject, p.Roles, got, history)
		}
	}
	// The tenant's reader still sees them.
	if pg, err := e.store.ListPage(ctx, globalAdmin.Principal, grants.Filter{Limit: 10}); err != nil || len(pg.Requests) != 10 {
		t.Errorf("the global admin's page: %d requests, %v", len(pg.Requests), err)
	}
}

// TestPendingListReadsWhatTheCallerSees: the pending list (the admin
// center's requests page, which each open tab polls every few seconds)
// read every pending request of every tenant, everyone's, to keep what
// the caller sees: an operator who filed nothing, a Lockbox administrator
// alone and a tenant user who is none of its readers each paid for the
// provider's whole pending queue. An operator now reads their own recent
// filings (their index, once built), and who sees none reads none.
func TestPendingListReadsWhatTheCallerSees(t *testing.T) {
	e := newEnv(t)
	e.built(t)
	ctx := context.Background()
	const others = 200
	for i := range others {
		if _, err := e.store.Create(ctx, who(fmt.Sprintf("op%d", i), "", identity.RoleOperator), grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "r", Duration: grants.Duration(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	mine := e.create(t, time.Hour) // alice's
	h := &requestReads{}
	e.rdb.AddHook(h)
	for _, c := range []struct {
		name        string
		p           identity.Principal
		list, reads int
	}{
		{"an operator who filed nothing", who("bob", "", identity.RoleOperator).Principal, 0, 0},
		{"an operator with one pending", operator.Principal, 1, 1},
		{"a Lockbox administrator alone", who("lee", "", identity.RoleLockboxAdmin).Principal, 0, 0},
		{"a tenant user who reads nothing", identity.Principal{Subject: "pat@contoso.example", TenantID: "contoso"}, 0, 0},
		{"the support manager", manager.Principal, others + 1, others + 1},
	} {
		var l grants.PendingList
		var err error
		n := h.during(func() { l, err = e.store.PendingList(ctx, c.p) })
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(l.Requests) != c.list || n != c.reads {
			t.Errorf("%s: %d pending, %d request records read; want %d and %d", c.name, len(l.Requests), n, c.list, c.reads)
		}
		if c.list == 1 && l.Requests[0].ID != mine.ID {
			t.Errorf("%s: lists %s, want %s", c.name, l.Requests[0].ID, mine.ID)
		}
	}
	// Before the operators' index is built, an operator reads every
	// tenant's pending index, as before.
	e.unbuilt(t)
	if n := h.during(func() { _, _ = e.store.PendingList(ctx, operator.Principal) }); n != others+1 {
		t.Errorf("unbuilt: the operator read %d request records, want %d", n, others+1)
	}
}
