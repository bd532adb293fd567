package grants_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// fillIndexes writes n copies of request tmpl (a canceled one) into
// contoso's and the provider-wide indexes, scores from+1 .. from+n (ms),
// with requester replaced by as when set. It returns the copies' ids.
func fillIndexes(t *testing.T, e *env, tmpl grants.Request, from int64, n int, as string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	b, err := e.rdb.Get(ctx, keys.Request("contoso", tmpl.ID)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if as != "" {
		b = bytes.ReplaceAll(b, []byte(`"requester":"`+tmpl.Requester+`"`), []byte(`"requester":"`+as+`"`))
	}
	ids := map[string]bool{}
	if _, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 1; i <= n; i++ {
			id := uuid.NewString()
			ids[id] = true
			p.Set(ctx, keys.Request("contoso", id), bytes.ReplaceAll(b, []byte(tmpl.ID), []byte(id)), 0)
			p.ZAdd(ctx, keys.TenantRequests("contoso"), redis.Z{Score: float64(from + int64(i)), Member: id})
			p.ZAdd(ctx, keys.AllRequests(), redis.Z{Score: float64(from + int64(i)), Member: "contoso/" + id})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func fileAs(t *testing.T, e *env, sub string) grants.Request {
	t.Helper()
	r, err := e.store.Create(context.Background(), who(sub, "", identity.RoleOperator), grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "r", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pageIDs(pg grants.Page) []string {
	var out []string
	for _, r := range pg.Requests {
		out = append(out, r.ID)
	}
	return out
}

// TestListNewerPageOutOfBudgetLeadsOlderPastIt: a page read back (Prev)
// whose scan budget runs out after it found a match leads Older past the
// oldest request it shows. Its Next stood at the last entry it read, newer
// than that request, so Older showed the same request again instead of
// the page the Prev link came from.
func TestListNewerPageOutOfBudgetLeadsOlderPastIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tmpl := e.create(t, time.Hour)
	e.act(t, tmpl.ID, grants.ActionCancel, operator)
	e.clock.Advance(time.Second)
	d := fileAs(t, e, "op-d")
	e.clock.Advance(time.Second)
	c := fileAs(t, e, "op-c")
	e.clock.Advance(time.Second)
	b := fileAs(t, e, "op-b")
	e.clock.Advance(10 * time.Second)
	fillIndexes(t, e, tmpl, b.CreatedAt.UnixMilli(), 1500, "") // between B and M
	m := fileAs(t, e, "op-m")
	e.clock.Advance(10 * time.Second)
	fillIndexes(t, e, tmpl, m.CreatedAt.UnixMilli(), 1000, "") // between M and A
	a := fileAs(t, e, "op-a")
	_ = d

	f := grants.Filter{State: grants.StatePendingManager, Limit: 2}
	p := globalAdmin.Principal
	p1, err := e.store.ListPage(ctx, p, f)
	if err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(p1); len(got) != 2 || got[0] != a.ID || got[1] != m.ID || p1.Next == "" {
		t.Fatalf("page 1: %v next %q; want [A M] and a next page", got, p1.Next)
	}
	f.Cursor = p1.Next
	p2, err := e.store.ListPage(ctx, p, f)
	if err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(p2); len(got) != 2 || got[0] != b.ID || got[1] != c.ID || p2.Prev == "" {
		t.Fatalf("page 2: %v prev %q; want [B C] and a way back", got, p2.Prev)
	}
	// Back (Newer) from page 2.
	f.Cursor = p2.Prev
	p3, err := e.store.ListPage(ctx, p, f)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, id := range pageIDs(p3) {
		shown[id] = true
	}
	if !shown[m.ID] {
		t.Fatalf("page back from page 2: %v; want M on it", pageIDs(p3))
	}
	if p3.Next == "" {
		t.Fatal("page back from page 2 has no Older link")
	}
	// Older again from that page: the requests older than what it shows.
	f.Cursor = p3.Next
	p4, err := e.store.ListPage(ctx, p, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range pageIDs(p4) {
		if shown[id] {
			t.Errorf("Older from the page read back shows %s again (page back %v, older %v): Next was set at the budget's stop, newer than the page's requests", id, pageIDs(p3), pageIDs(p4))
		}
	}
}

// TestListCursorNamesNoUnseenRequest: a cursor whose listing ran out of
// budget names no request: it stands at the edge of the last millisecond
// read. At the last entry read, matching or not, an operator listing a
// tenant's requests (they see only their own) got a Next cursor whose
// plain base64 text held the id of another operator's request, which no
// answer may confirm exists.
func TestListCursorNamesNoUnseenRequest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mine := e.create(t, time.Hour) // alice's, pending
	e.clock.Advance(10 * time.Second)
	bobs := fileAs(t, e, "bob")
	e.act(t, bobs.ID, grants.ActionCancel, who("bob", "", identity.RoleOperator))
	others := fillIndexes(t, e, bobs, mine.CreatedAt.UnixMilli(), 2100, "")
	others[bobs.ID] = true

	pg, err := e.store.ListPage(ctx, operator.Principal, grants.Filter{Tenant: "contoso", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Requests) != 0 || pg.Next == "" {
		t.Fatalf("page 1: %d requests, next %q; want an empty page out of budget", len(pg.Requests), pg.Next)
	}
	raw, err := base64.RawURLEncoding.DecodeString(pg.Next)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) == 4 && others[parts[2]] {
		t.Errorf("alice's Next cursor %q names request %s, bob's, which alice may not see", raw, parts[2])
		if _, err := e.store.Get(ctx, operator.Principal, parts[2]); err == nil {
			t.Error("(and alice can read it)")
		}
	}
	// The listing still reaches alice's request.
	f := grants.Filter{Tenant: "contoso", Limit: 10, Cursor: pg.Next}
	for f.Cursor != "" {
		pg, err = e.store.ListPage(ctx, operator.Principal, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Requests) > 0 {
			if pg.Requests[0].ID != mine.ID {
				t.Errorf("alice sees %s", pg.Requests[0].ID)
			}
			return
		}
		f.Cursor = pg.Next
	}
	t.Error("the listing never reached alice's request")
}

// TestTrailCursorOutlivesTheRequestsEnd: a trail's cursors are bound to
// its tenant and request alone. Bound to its span, whose end moves when
// the request ends (a revocation, or the sweep recording a completion
// late), the Older link of a live request's trail was refused with
// invalid_cursor once it ended.
func TestTrailCursorOutlivesTheRequestsEnd(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*env, grants.Request, grants.Trail) {
		e := newEnv(t)
		if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "adam@contoso.example"); err != nil {
			t.Fatal(err)
		}
		r := e.create(t, time.Hour)
		e.clock.Advance(time.Minute)
		e.act(t, r.ID, grants.ActionApprove, manager)
		e.clock.Advance(time.Minute)
		e.act(t, r.ID, grants.ActionApprove, approver)
		e.clock.Advance(time.Minute)
		first, err := e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if first.Next == "" {
			t.Fatal("no next page of a trail of 3 records, limit 1")
		}
		return e, r, first
	}
	t.Run("revoked", func(t *testing.T) {
		e, r, first := setup(t)
		e.act(t, r.ID, grants.ActionRevoke, globalAdmin)
		if _, err := e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Cursor: first.Next, Limit: 1}); err != nil {
			t.Errorf("Older link of the trail, taken while approved, after the revocation: %v", err)
		}
	})
	t.Run("completed by a late sweep", func(t *testing.T) {
		e, r, first := setup(t)
		e.clock.Advance(time.Hour + time.Minute) // the sweep runs a minute after the window
		if _, err := e.store.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Cursor: first.Next, Limit: 1}); err != nil {
			t.Errorf("Older link of the trail, taken while approved, after the window ran out: %v", err)
		}
	})
}
