package grants_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

func ids(reqs []grants.Request) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.ID)
	}
	return out
}

// TestListNewerWalk walks a listing Older, Older, Newer, Older, Newer,
// Newer, Newer while requests are created at its head between the steps:
// each page read again is the page it was, going Newer from the first
// page's place leads to the requests created since, the first page has no
// Prev and the last no Next, and the pages read from the newest down at
// the end hold every request once, in the listing's order.
func TestListNewerWalk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		filter grants.Filter
		by     grants.Actor
	}{
		{"provider-wide", grants.Filter{}, manager},
		{"one tenant", grants.Filter{Tenant: "contoso"}, manager},
		{"tenant user", grants.Filter{}, globalAdmin},
		{"history", grants.Filter{Tenant: "contoso", ExcludePending: true, CreatedBefore: t0.Add(time.Hour)}, manager},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			n := 0
			create := func() {
				n++
				r := e.createAs(t, fmt.Sprintf("op-%03d", n), "contoso")
				if tc.filter.ExcludePending {
					e.act(t, r.ID, grants.ActionDeny, manager)
				}
				// Other tenants' requests interleave, unseen by the
				// tenant's users.
				e.createAs(t, fmt.Sprintf("op-%03d", n), "fabrikam")
			}
			// Pages end within a millisecond, and must continue by id.
			for i := range 10 {
				create()
				if i%2 == 1 {
					e.clock.Advance(time.Millisecond)
				}
			}
			f := tc.filter
			f.Limit = 3
			if tc.by.Principal.TenantID == "" && f.Tenant == "" {
				f.Limit = 5 // both tenants' requests
			}
			page := func(cursor string) grants.Page {
				t.Helper()
				f := f
				f.Cursor = cursor
				pg, err := e.store.ListPage(ctx, tc.by.Principal, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(pg.Requests) > f.Limit {
					t.Fatalf("a page of %d requests, limit %d", len(pg.Requests), f.Limit)
				}
				return pg
			}
			same := func(step string, got, want grants.Page) {
				t.Helper()
				if !slices.Equal(ids(got.Requests), ids(want.Requests)) {
					t.Fatalf("%s: page\n%v\nwant\n%v", step, ids(got.Requests), ids(want.Requests))
				}
			}
			first := page("")
			if first.Prev != "" || first.Next == "" {
				t.Fatalf("first page: prev %q next %q", first.Prev, first.Next)
			}
			second := page(first.Next)
			if second.Prev == "" {
				t.Fatal("the second page has no Prev")
			}
			e.clock.Advance(time.Millisecond)
			create()
			third := page(second.Next)
			e.clock.Advance(time.Millisecond)
			create()
			back := page(third.Prev)
			same("Newer from the third page", back, second)
			if back.Prev == "" || back.Next == "" {
				t.Fatalf("second page read Newer: prev %q next %q", back.Prev, back.Next)
			}
			create()
			same("Older again", page(back.Next), third)
			again := page(back.Prev)
			same("Newer from the second page", again, first)
			if again.Prev == "" {
				t.Fatal("the first page's place has no Prev, though requests were created since")
			}
			top := page(again.Prev)
			if len(top.Requests) == 0 || top.Next == "" {
				t.Fatalf("Newer from the first page: %v, next %q", ids(top.Requests), top.Next)
			}
			same("Older from the requests created since", page(top.Next), first)
			for i := 0; top.Prev != ""; i++ {
				if i > 3 {
					t.Fatal("Newer does not end")
				}
				top = page(top.Prev)
			}

			// Every request, read Older from the newest: each once, in
			// the order of one listing, and the last page has no Next.
			all, err := e.store.List(ctx, tc.by.Principal, grants.Filter{Tenant: f.Tenant, ExcludePending: f.ExcludePending, CreatedBefore: f.CreatedBefore, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			got := ids(top.Requests)
			for c := top.Next; c != ""; {
				pg := page(c)
				got = append(got, ids(pg.Requests)...)
				c = pg.Next
			}
			if !slices.Equal(got, ids(all)) {
				t.Fatalf("walk from the newest:\n%v\nwant\n%v", got, ids(all))
			}
		})
	}
}

// TestListNewerLinksOnlyToMatches: a Newer cursor whose newer requests no
// longer match leads to the first page, and a Newer page has a Next only
// when an older request still matches.
func TestListNewerLinksOnlyToMatches(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var reqs []grants.Request
	for i := range 4 {
		reqs = append(reqs, e.createAs(t, fmt.Sprintf("op-%d", i), "contoso"))
		e.clock.Advance(time.Second)
	}
	f := grants.Filter{State: grants.StatePendingManager, Limit: 2}
	read := func(cursor string) grants.Page {
		t.Helper()
		f := f
		f.Cursor = cursor
		pg, err := e.store.ListPage(ctx, manager.Principal, f)
		if err != nil {
			t.Fatal(err)
		}
		return pg
	}
	first := read("")
	second := read(first.Next)
	if want := []string{reqs[1].ID, reqs[0].ID}; !slices.Equal(ids(second.Requests), want) || second.Prev == "" || second.Next != "" {
		t.Fatalf("second page %v prev %q next %q, want %v with prev only", ids(second.Requests), second.Prev, second.Next, want)
	}
	// The newer requests are decided: nothing newer matches.
	e.act(t, reqs[3].ID, grants.ActionDeny, manager)
	e.act(t, reqs[2].ID, grants.ActionDeny, manager)
	back := read(read(first.Next).Prev)
	if !slices.Equal(ids(back.Requests), ids(second.Requests)) || back.Prev != "" || back.Next != "" {
		t.Fatalf("Newer to requests no longer matching: %v prev %q next %q, want the first page %v alone",
			ids(back.Requests), back.Prev, back.Next, ids(second.Requests))
	}
	// And the older ones: the Newer page has no Next.
	third := e.createAs(t, "op-9", "contoso")
	e.clock.Advance(time.Second)
	top := read("")
	if !slices.Equal(ids(top.Requests), []string{third.ID, reqs[1].ID}) {
		t.Fatalf("first page %v", ids(top.Requests))
	}
	older := read(top.Next)
	e.act(t, reqs[1].ID, grants.ActionDeny, manager)
	e.act(t, reqs[0].ID, grants.ActionDeny, manager)
	newer := read(older.Prev)
	if !slices.Equal(ids(newer.Requests), []string{third.ID}) || newer.Next != "" {
		t.Fatalf("Newer page %v next %q, want %v and no Next", ids(newer.Requests), newer.Next, third.ID)
	}
}

// TestListNewerCursorBinding: a Newer cursor is bound like a Next one, and
// can't be turned into a Next cursor of the same place.
func TestListNewerCursorBinding(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 3 {
		e.createAs(t, fmt.Sprintf("op-%d", i), "contoso")
		e.clock.Advance(time.Second)
	}
	f := grants.Filter{Tenant: "contoso", Limit: 1}
	pg, err := e.store.ListPage(ctx, manager.Principal, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Cursor = pg.Next
	if pg, err = e.store.ListPage(ctx, manager.Principal, f); err != nil || pg.Prev == "" {
		t.Fatalf("second page: %+v, %v", pg, err)
	}
	prev := pg.Prev
	raw, err := base64.RawURLEncoding.DecodeString(prev)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(raw), ":")
	turned := base64.RawURLEncoding.EncodeToString([]byte("r1:" + rest))
	flip := []byte(prev)
	flip[len(flip)/2] ^= 1
	for _, tc := range []struct {
		name string
		p    grants.Actor
		f    grants.Filter
	}{
		{"other tenant filter", manager, grants.Filter{Tenant: "fabrikam", Cursor: prev}},
		{"state filter added", manager, grants.Filter{Tenant: "contoso", State: grants.StatePendingManager, Cursor: prev}},
		{"pending left out", manager, grants.Filter{Tenant: "contoso", ExcludePending: true, Cursor: prev}},
		{"another caller", who("max", "", identity.RoleSupportManager), grants.Filter{Tenant: "contoso", Cursor: prev}},
		{"tenant user", globalAdmin, grants.Filter{Cursor: prev}},
		{"changed", manager, grants.Filter{Tenant: "contoso", Cursor: string(flip)}},
		{"turned into a Next cursor", manager, grants.Filter{Tenant: "contoso", Cursor: turned}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.store.ListPage(ctx, tc.p.Principal, tc.f)
			if fe, ok := errors.AsType[*fault.Error](err); !ok || fe.Kind != grants.ErrInvalid || fe.Code != "invalid_cursor" {
				t.Fatalf("err = %v, want invalid_cursor", err)
			}
		})
	}
}
