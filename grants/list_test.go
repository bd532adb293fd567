package grants_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

// createAs files a request of tenant for a new operator sub: one operator
// has one open request a tenant and service.
func (e *env) createAs(t *testing.T, sub, tenant string) grants.Request {
	t.Helper()
	r, err := e.store.Create(context.Background(), who(sub, "", identity.RoleOperator), grants.CreateInput{
		Tenant: tenant, Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestListPagesAcrossCreations pages through a listing while requests are
// created between the pages, some newer than everything listed and some,
// from a replica whose clock is behind, among the requests still to come;
// and while a request still to come changes state. Every request there at
// the first page comes exactly once, in the listing's order.
func TestListPagesAcrossCreations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		filter grants.Filter
		by     grants.Actor
	}{
		{"provider-wide", grants.Filter{}, manager},
		{"one tenant", grants.Filter{Tenant: "contoso"}, manager},
		{"tenant user", grants.Filter{}, globalAdmin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			n := 0
			create := func(e *env, tenant string) grants.Request {
				n++
				return e.createAs(t, fmt.Sprintf("op-%03d", n), tenant)
			}
			// Several requests share a millisecond, so pages end within
			// one and must continue by id.
			for i := range 12 {
				create(e, "contoso")
				create(e, "fabrikam")
				if i%3 == 2 {
					e.clock.Advance(time.Millisecond)
				}
			}
			before, err := e.store.List(ctx, tc.by.Principal, grants.Filter{Tenant: tc.filter.Tenant, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			// A replica whose clock is 2 ms behind files requests that sort
			// among those not listed yet.
			behind := newEnvOn(t, e.rdb, clock.NewFake(e.clock.Now().Add(-2*time.Millisecond)))

			f := tc.filter
			f.Limit = 5
			var got []string
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("the listing does not end")
				}
				pg, err := e.store.ListPage(ctx, tc.by.Principal, f)
				if err != nil {
					t.Fatalf("page %d: %v", pages, err)
				}
				if len(pg.Requests) > f.Limit {
					t.Fatalf("page %d has %d requests, limit %d", pages, len(pg.Requests), f.Limit)
				}
				for _, r := range pg.Requests {
					got = append(got, r.ID)
				}
				if pg.Next == "" {
					break
				}
				// Between pages: newer requests, older ones from the
				// replica behind, and a change of state further down.
				e.clock.Advance(time.Millisecond)
				create(e, "contoso")
				create(behind, "contoso")
				if pages == 0 {
					e.act(t, before[len(before)-1].ID, grants.ActionDeny, manager)
				}
				f.Cursor = pg.Next
			}
			seen := map[string]int{}
			for _, id := range got {
				if seen[id]++; seen[id] > 1 {
					t.Errorf("request %s listed twice", id)
				}
			}
			for _, r := range before {
				if seen[r.ID] != 1 {
					t.Errorf("request %s, there at the first page, listed %d times", r.ID, seen[r.ID])
				}
			}
			// The pages keep the order of one listing.
			var order []string
			for _, r := range before {
				order = append(order, r.ID)
			}
			got = slices.DeleteFunc(got, func(id string) bool { return !slices.Contains(order, id) })
			if !slices.Equal(got, order) {
				t.Errorf("pages list\n%v\nwant\n%v", got, order)
			}
		})
	}
}

// TestListPagesWithinOneMillisecond pages through more requests than one
// index read returns, all created in the same millisecond.
func TestListPagesWithinOneMillisecond(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 205 {
		want[e.createAs(t, fmt.Sprintf("op-%03d", i), "contoso").ID] = true
	}
	f := grants.Filter{Tenant: "contoso", Limit: 100}
	var got []string
	for range 4 {
		pg, err := e.store.ListPage(ctx, manager.Principal, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range pg.Requests {
			got = append(got, r.ID)
		}
		if f.Cursor = pg.Next; f.Cursor == "" {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d requests, want %d", len(got), len(want))
	}
	for i, id := range got {
		if !want[id] {
			t.Fatalf("request %d (%s) listed twice or unknown", i, id)
		}
		delete(want, id)
	}
}

// TestListPageNext: a page has a next cursor only when a request after it
// matches, and List (which doesn't return one) reads no further.
func TestListPageNext(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.createAs(t, "op-1", "contoso")
	e.clock.Advance(time.Second)
	b := e.createAs(t, "op-2", "contoso")
	e.clock.Advance(time.Second)
	c := e.createAs(t, "op-3", "contoso")
	e.act(t, c.ID, grants.ActionDeny, manager)
	e.act(t, a.ID, grants.ActionDeny, manager)

	for _, tc := range []struct {
		name     string
		f        grants.Filter
		want     []string
		wantNext bool
	}{
		{"page cut", grants.Filter{Limit: 2}, []string{c.ID, b.ID}, true},
		{"exactly full", grants.Filter{Limit: 3}, []string{c.ID, b.ID, a.ID}, false},
		{"filtered, more further down", grants.Filter{State: grants.StateDenied, Limit: 1}, []string{c.ID}, true},
		{"filtered, nothing further down", grants.Filter{State: grants.StatePendingManager, Limit: 1}, []string{b.ID}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, err := e.store.ListPage(ctx, manager.Principal, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range pg.Requests {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(ids, tc.want) || (pg.Next != "") != tc.wantNext {
				t.Fatalf("page %v next %q, want %v next %v", ids, pg.Next, tc.want, tc.wantNext)
			}
			if pg.Next == "" {
				return
			}
			f := tc.f
			f.Cursor = pg.Next
			rest, err := e.store.ListPage(ctx, manager.Principal, f)
			if err != nil || len(rest.Requests) == 0 || rest.Requests[0].CreatedAt.After(pg.Requests[len(pg.Requests)-1].CreatedAt) {
				t.Fatalf("next page %+v, %v", rest, err)
			}
		})
	}
}

// TestListCursorBinding: a cursor continues only the listing, and the
// caller, it was returned for.
func TestListCursorBinding(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 3 {
		e.createAs(t, fmt.Sprintf("op-%d", i), "contoso")
		e.clock.Advance(time.Second)
	}
	first := grants.Filter{Tenant: "contoso", Limit: 1}
	pg, err := e.store.ListPage(ctx, manager.Principal, first)
	if err != nil || pg.Next == "" {
		t.Fatalf("first page: %+v, %v", pg, err)
	}
	next := pg.Next
	flip := []byte(next)
	flip[len(flip)/2] ^= 1
	mgr2 := who("max", "", identity.RoleSupportManager)
	for _, tc := range []struct {
		name string
		p    grants.Actor
		f    grants.Filter
	}{
		{"other tenant filter", manager, grants.Filter{Tenant: "fabrikam", Cursor: next}},
		{"no tenant filter", manager, grants.Filter{Cursor: next}},
		{"state filter added", manager, grants.Filter{Tenant: "contoso", State: grants.StatePendingManager, Cursor: next}},
		{"created_after added", manager, grants.Filter{Tenant: "contoso", CreatedAfter: t0, Cursor: next}},
		{"created_before added", manager, grants.Filter{Tenant: "contoso", CreatedBefore: t0.Add(time.Hour), Cursor: next}},
		{"pending left out", manager, grants.Filter{Tenant: "contoso", ExcludePending: true, Cursor: next}},
		{"another caller", mgr2, grants.Filter{Tenant: "contoso", Cursor: next}},
		{"changed", manager, grants.Filter{Tenant: "contoso", Cursor: string(flip)}},
		{"not base64", manager, grants.Filter{Tenant: "contoso", Cursor: "not a cursor!"}},
		{"truncated", manager, grants.Filter{Tenant: "contoso", Cursor: next[:len(next)-4]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.store.ListPage(ctx, tc.p.Principal, tc.f)
			if fe, ok := errors.AsType[*fault.Error](err); !ok || fe.Kind != grants.ErrInvalid || fe.Code != "invalid_cursor" {
				t.Fatalf("err = %v, want invalid_cursor", err)
			}
		})
	}
	// The same filter with another page size continues.
	if _, err := e.store.ListPage(ctx, manager.Principal, grants.Filter{Tenant: "contoso", Limit: 5, Cursor: next}); err != nil {
		t.Fatal(err)
	}
}

// TestListCreatedBeforeAndExcludePending: the admin center's history
// bounds are matched before a page is cut, so a page is full, and has a
// next one, whenever older matching requests exist, however many newer or
// pending ones there are; a cursor of a bounded listing continues only
// that listing.
func TestListCreatedBeforeAndExcludePending(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var old []string // newest first, as listed
	for i := range 3 {
		r := e.createAs(t, fmt.Sprintf("old-%d", i), "contoso")
		e.act(t, r.ID, grants.ActionDeny, manager)
		old = append([]string{r.ID}, old...)
		e.clock.Advance(time.Second)
	}
	bound := e.clock.Now()
	// At the bound exactly, and after it: left out.
	at := e.createAs(t, "at-bound", "contoso")
	e.act(t, at.ID, grants.ActionDeny, manager)
	e.clock.Advance(time.Hour)
	for i := range 5 {
		e.createAs(t, fmt.Sprintf("new-%d", i), "contoso")
	}
	// Older than the bound but pending: left out of the history only.
	behind := newEnvOn(t, e.rdb, clock.NewFake(bound.Add(-500*time.Millisecond)))
	pending := behind.createAs(t, "behind", "contoso")

	list := func(f grants.Filter) (ids []string) {
		t.Helper()
		for pages := 0; ; pages++ {
			pg, err := e.store.ListPage(ctx, manager.Principal, f)
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			if len(pg.Requests) == 0 {
				t.Fatalf("page %d is empty", pages)
			}
			for _, r := range pg.Requests {
				ids = append(ids, r.ID)
			}
			if f.Cursor = pg.Next; f.Cursor == "" {
				return ids
			}
		}
	}
	if got, want := list(grants.Filter{CreatedBefore: bound, Limit: 1}), append([]string{pending.ID}, old...); !slices.Equal(got, want) {
		t.Errorf("created before: %v, want %v", got, want)
	}
	if got := list(grants.Filter{Tenant: "contoso", CreatedBefore: bound, ExcludePending: true, Limit: 2}); !slices.Equal(got, old) {
		t.Errorf("history before: %v, want %v", got, old)
	}
	if got := list(grants.Filter{ExcludePending: true, Limit: 3}); !slices.Equal(got, append([]string{at.ID}, old...)) {
		t.Errorf("history: %v", got)
	}
	// The bounds are part of what a cursor continues.
	pg, err := e.store.ListPage(ctx, manager.Principal, grants.Filter{CreatedBefore: bound, ExcludePending: true, Limit: 1})
	if err != nil || pg.Next == "" {
		t.Fatalf("first page: %+v, %v", pg, err)
	}
	for _, f := range []grants.Filter{
		{CreatedBefore: bound.Add(time.Millisecond), ExcludePending: true},
		{CreatedBefore: bound},
		{ExcludePending: true},
	} {
		f.Cursor = pg.Next
		if _, err := e.store.ListPage(ctx, manager.Principal, f); !errors.Is(err, grants.ErrInvalid) {
			t.Errorf("cursor with %+v: %v, want invalid", f, err)
		}
	}
}
