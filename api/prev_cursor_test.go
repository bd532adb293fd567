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

// TestListRequestsPrevCursor: a page after the first has prev_cursor,
// which, passed as cursor, answers the page before it (with its own
// next_cursor) whatever was filed meanwhile; the first page has none, and
// a changed one is refused.
func TestListRequestsPrevCursor(t *testing.T) {
	e := newEnv(t)
	var filed []string
	for _, f := range []struct {
		u               user
		tenant, service string
	}{{alice, "contoso", "exchange"}, {bob, "contoso", "sharepoint"}, {alice, "fabrikam", "onedrive"}, {bob, "fabrikam", "exchange"}} {
		filed = append(filed, e.file(f.u, f.tenant, f.service).ID)
		e.clk.Advance(time.Minute)
	}
	slices.Reverse(filed)
	ids := func(l wire.RequestList) []string {
		var out []string
		for _, r := range l.Requests {
			out = append(out, r.ID)
		}
		return out
	}
	get := func(query string) (wire.RequestList, string) {
		t.Helper()
		r := e.do(mia, "GET", "/v1/requests?limit=2"+query, nil)
		return decode[wire.RequestList](t, r, http.StatusOK), string(r.body)
	}
	p1, body := get("")
	if strings.Contains(body, "prev_cursor") {
		t.Fatalf("the first page names a page before it: %s", body)
	}
	p2, _ := get("&cursor=" + url.QueryEscape(p1.NextCursor))
	if !slices.Equal(ids(p2), filed[2:]) || p2.PrevCursor == "" {
		t.Fatalf("second page %v, prev %q", ids(p2), p2.PrevCursor)
	}
	e.file(alice, "contoso", "onedrive")
	back, _ := get("&cursor=" + url.QueryEscape(p2.PrevCursor))
	if !slices.Equal(ids(back), filed[:2]) || back.NextCursor == "" || back.PrevCursor == "" {
		t.Fatalf("prev_cursor answered %v, next %q, prev %q; want %v with both", ids(back), back.NextCursor, back.PrevCursor, filed[:2])
	}
	if again, _ := get("&cursor=" + url.QueryEscape(back.NextCursor)); !slices.Equal(ids(again), filed[2:]) {
		t.Fatalf("next_cursor of the page before answered %v, want %v", ids(again), filed[2:])
	}
	tampered := []byte(p2.PrevCursor)
	tampered[len(tampered)/2] ^= 1
	wantError(t, e.do(mia, "GET", "/v1/requests?limit=2&cursor="+url.QueryEscape(string(tampered)), nil), http.StatusBadRequest, "invalid_cursor", "")
	wantError(t, e.do(mia, "GET", "/v1/requests?limit=2&tenant=contoso&cursor="+url.QueryEscape(p2.PrevCursor), nil), http.StatusBadRequest, "invalid_cursor", "")
}

// TestAuditSearchPrevCursor: GET /v1/audit pages back with prev_cursor
// whatever was written meanwhile, and refuses one changed.
func TestAuditSearchPrevCursor(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 6, "Get-Mailbox")
	type recordPage struct {
		wire.RecordPage
		body string
	}
	get := func(query string) recordPage {
		t.Helper()
		r := e.do(contosoAdmin, "GET", "/v1/audit?operation=Get-Mailbox&limit=2"+query, nil)
		return recordPage{decode[wire.RecordPage](t, r, http.StatusOK), string(r.body)}
	}
	objects := func(p recordPage) []string {
		var out []string
		for _, r := range p.Records {
			out = append(out, r.ObjectId)
		}
		return out
	}
	p1 := get("")
	if strings.Contains(p1.body, "prev_cursor") {
		t.Fatalf("the first page names a page before it: %s", p1.body)
	}
	p2 := get("&cursor=" + url.QueryEscape(p1.NextCursor))
	p3 := get("&cursor=" + url.QueryEscape(p2.NextCursor))
	e.operatorActions(req, 2, "Get-Mailbox")
	back := get("&cursor=" + url.QueryEscape(p3.PrevCursor))
	if want := objects(p2); len(want) != 2 || !slices.Equal(objects(back), want) || back.PrevCursor == "" || back.NextCursor == "" {
		t.Fatalf("prev_cursor of the third page answered %v (prev %q, next %q), want the second page %v", objects(back), back.PrevCursor, back.NextCursor, want)
	}
	wantError(t, e.do(contosoAdmin, "GET", "/v1/audit?operation=Get-Mailbox&cursor="+url.QueryEscape(p3.PrevCursor+"!"), nil), http.StatusBadRequest, "invalid_cursor", "")
}

// TestAuditCursorOfOtherFilters: GET /v1/audit answered a cursor returned
// for operation=Get-Mailbox, sent with operation=Set-Mailbox, with a page
// of the Set-Mailbox search read from the Get-Mailbox search's place. It
// is now 400 invalid_cursor, saying the cursor belongs to other filters;
// with its own filters (the operation in another case, another limit) it
// answers as before.
func TestAuditCursorOfOtherFilters(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 6, "Get-Mailbox", "Set-Mailbox")
	r := e.do(contosoAdmin, "GET", "/v1/audit?operation=Get-Mailbox&limit=1", nil)
	p1 := decode[wire.RecordPage](t, r, http.StatusOK)
	if p1.NextCursor == "" {
		t.Fatal("no next_cursor")
	}
	cursor := "&cursor=" + url.QueryEscape(p1.NextCursor)
	for _, other := range []string{"operation=Set-Mailbox", "operation=Get-Mailbox&user=someone@contoso.example",
		"operation=Get-Mailbox&from=2020-01-01T00:00:00Z", "operation=Get-Mailbox&request_id=" + req.ID, ""} {
		wantError(t, e.do(contosoAdmin, "GET", "/v1/audit?"+other+cursor, nil), http.StatusBadRequest, "invalid_cursor", "other filters")
	}
	if r := e.do(contosoAdmin, "GET", "/v1/audit?operation=get-mailbox&limit=5"+cursor, nil); r.status != http.StatusOK {
		t.Errorf("its own filters: %d %s", r.status, r.body)
	}
}
