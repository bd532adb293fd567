package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestListRequestsPages follows next_cursor through a listing and refuses
// a cursor used with other filters, by another caller, or changed.
func TestListRequestsPages(t *testing.T) {
	e := newEnv(t)
	first := e.file(alice, "contoso", "exchange")
	e.clk.Advance(time.Minute)
	second := e.file(bob, "contoso", "sharepoint")
	e.clk.Advance(time.Minute)
	third := e.file(alice, "fabrikam", "onedrive")

	page := func(u user, query string) wire.RequestList {
		t.Helper()
		return decode[wire.RequestList](t, e.do(u, "GET", "/v1/requests"+query, nil), http.StatusOK)
	}
	ids := func(l wire.RequestList) []string {
		var out []string
		for _, r := range l.Requests {
			out = append(out, r.ID)
		}
		return out
	}

	t.Run("next_cursor until the last page", func(t *testing.T) {
		p1 := page(mia, "?limit=2")
		if got := ids(p1); !slices.Equal(got, []string{third.ID, second.ID}) || p1.NextCursor == "" {
			t.Fatalf("first page %v, next %q", got, p1.NextCursor)
		}
		// A request filed meanwhile comes on no later page.
		e.clk.Advance(time.Minute)
		e.file(bob, "fabrikam", "exchange")
		r := e.do(mia, "GET", "/v1/requests?limit=2&cursor="+url.QueryEscape(p1.NextCursor), nil)
		p2 := decode[wire.RequestList](t, r, http.StatusOK)
		if got := ids(p2); !slices.Equal(got, []string{first.ID}) || p2.NextCursor != "" {
			t.Fatalf("second page %v, next %q", got, p2.NextCursor)
		}
		if strings.Contains(string(r.body), "next_cursor") {
			t.Errorf("last page names a next one: %s", r.body)
		}
	})
	t.Run("a full last page has no next_cursor", func(t *testing.T) {
		r := e.do(mia, "GET", "/v1/requests?tenant=contoso&limit=2", nil)
		if l := decode[wire.RequestList](t, r, http.StatusOK); len(l.Requests) != 2 || strings.Contains(string(r.body), "next_cursor") {
			t.Errorf("body = %s", r.body)
		}
	})
	t.Run("an empty cursor is the first page", func(t *testing.T) {
		if got := ids(page(mia, "?tenant=contoso&cursor=")); !slices.Equal(got, []string{second.ID, first.ID}) {
			t.Errorf("ids = %v", got)
		}
	})
	t.Run("a tenant user pages through the tenant's", func(t *testing.T) {
		p1 := page(contosoAdmin, "?limit=1")
		p2 := page(contosoAdmin, "?limit=1&cursor="+url.QueryEscape(p1.NextCursor))
		if got := append(ids(p1), ids(p2)...); !slices.Equal(got, []string{second.ID, first.ID}) || p2.NextCursor != "" {
			t.Errorf("pages %v, next %q", got, p2.NextCursor)
		}
		// The tenant filled in or named: the same listing.
		if got := ids(page(contosoAdmin, "?tenant=contoso&limit=1&cursor="+url.QueryEscape(p1.NextCursor))); !slices.Equal(got, []string{first.ID}) {
			t.Errorf("with tenant=contoso: %v", got)
		}
	})

	cur := page(mia, "?tenant=contoso&limit=1").NextCursor
	if cur == "" {
		t.Fatal("no next_cursor")
	}
	tampered := []byte(cur)
	tampered[len(tampered)-3] ^= 1
	for _, tc := range []struct {
		name  string
		who   user
		query string
	}{
		{"another tenant", mia, "?tenant=fabrikam&cursor=" + cur},
		{"tenant left out", mia, "?cursor=" + cur},
		{"state added", mia, "?tenant=contoso&state=pending_manager&cursor=" + cur},
		{"created_after added", mia, "?tenant=contoso&created_after=2025-03-01T00:00:00Z&cursor=" + cur},
		{"another manager", nina, "?tenant=contoso&cursor=" + cur},
		{"a tenant user", contosoAdmin, "?tenant=contoso&cursor=" + cur},
		{"tampered", mia, "?tenant=contoso&cursor=" + url.QueryEscape(string(tampered))},
		{"garbage", mia, "?tenant=contoso&cursor=bm90IGEgY3Vyc29y"},
		{"too long", mia, "?tenant=contoso&cursor=" + strings.Repeat("A", 300)},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			wantError(t, e.do(tc.who, "GET", "/v1/requests"+tc.query, nil), http.StatusBadRequest, "invalid_cursor", "same tenant, state and created_after")
		})
	}
	t.Run("refused: repeated", func(t *testing.T) {
		wantError(t, e.do(mia, "GET", "/v1/requests?tenant=contoso&cursor="+cur+"&cursor="+cur, nil), http.StatusBadRequest, "invalid_query", "")
	})
	t.Run("the page size may change", func(t *testing.T) {
		if got := ids(page(mia, "?tenant=contoso&limit=5&cursor="+cur)); !slices.Equal(got, []string{first.ID}) {
			t.Errorf("ids = %v", got)
		}
	})
}
