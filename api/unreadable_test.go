package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestListShowsUnreadableRequest: a request whose stored record does not
// decode made GET /v1/requests answer 503 for the whole page; now the page
// lists the others and names it under "unreadable", and reading it alone
// says it cannot be read.
func TestListShowsUnreadableRequest(t *testing.T) {
	e := newEnv(t)
	first := e.file(alice, "contoso", "exchange")
	e.clk.Advance(time.Minute)
	bad := e.file(bob, "contoso", "sharepoint")
	e.clk.Advance(time.Minute)
	third := e.file(alice, "contoso", "onedrive")
	if err := e.rdb.Set(context.Background(), keys.Request("contoso", bad.ID), `{"id":"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"?tenant=contoso", "", "?state=pending_manager"} {
		list := decode[wire.RequestList](t, e.do(mia, "GET", "/v1/requests"+q, nil), http.StatusOK)
		if len(list.Requests) != 2 || list.Requests[0].ID != third.ID || list.Requests[1].ID != first.ID {
			t.Errorf("%s: requests %+v, want %s and %s", q, list.Requests, third.ID, first.ID)
		}
		want := wire.UnreadableRequest{ID: bad.ID, Tenant: "contoso", Error: "cannot be read"}
		if len(list.Unreadable) != 1 || list.Unreadable[0] != want {
			t.Errorf("%s: unreadable %+v, want %+v", q, list.Unreadable, want)
		}
	}
	wantError(t, e.do(mia, "GET", "/v1/requests/"+bad.ID, nil), http.StatusInternalServerError, "record_unreadable", bad.ID+" cannot be read")
	wantError(t, e.do(mia, "POST", "/v1/requests/"+bad.ID+"/approve", nil), http.StatusInternalServerError, "record_unreadable", bad.ID)
}

// TestAuditSearchShowsUnreadableRecord: an audit record that does not
// decode made GET /v1/audit answer 500 for the whole page and the export
// 500 "internal error"; now the search shows the others and names it by
// its stream id, and the export, which must leave no record out, stops
// with record_unreadable naming it.
func TestAuditSearchShowsUnreadableRecord(t *testing.T) {
	e := newEnv(t)
	e.file(alice, "contoso", "exchange")
	ctx := context.Background()
	// Cut short, as a partial write leaves it.
	bad, err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":"x","CreationTime":"20`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	page := decode[wire.RecordPage](t, e.do(auditor, "GET", "/v1/audit?tenant=contoso", nil), http.StatusOK)
	if len(page.Records) == 0 {
		t.Errorf("the readable records are not shown: %+v", page)
	}
	want := wire.UnreadableRecord{StreamID: bad, Tenant: "contoso", Error: "cannot be read"}
	if len(page.Unreadable) != 1 || page.Unreadable[0] != want {
		t.Errorf("unreadable %+v, want %+v", page.Unreadable, want)
	}
	wantError(t, e.do(auditor, "GET", "/v1/audit/export?tenant=contoso&format=jsonl", nil), http.StatusInternalServerError, "record_unreadable", bad)
}

// TestActivityNamesUnreadableRecord: an audit record of the tenant's log
// that does not decode, appended within a request's span, was left out of
// GET /v1/requests/{id}/activity in silence, while the audit search and
// the admin center's request page name it; now the activity keeps the
// readable records and names it under "unreadable", as the search does,
// to whoever may read the request. A request whose span ended before the
// record was appended names nothing, and its body has no "unreadable".
func TestActivityNamesUnreadableRecord(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	ended := e.file(bob, "contoso", "sharepoint")
	decode[wire.Request](t, e.do(bob, "POST", "/v1/requests/"+ended.ID+"/cancel", nil), http.StatusOK)
	req := e.file(alice, "contoso", "exchange")
	decode[wire.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)
	// Cut short, as a partial write leaves it; Redis appends it now, long
	// after the cancellation by the test's clock, within the span of the
	// request still awaiting the tenant.
	bad, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":"x","CreationTime":"20`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := wire.UnreadableRecord{StreamID: bad, Tenant: "contoso", Error: "cannot be read"}
	for _, u := range []user{mia, alice, contosoApprover} {
		list := decode[wire.RecordPage](t, e.do(u, "GET", "/v1/requests/"+req.ID+"/activity", nil), http.StatusOK)
		if len(list.Records) != 2 || list.Records[1].Operation != record.OpNewRequest || list.Records[0].Operation != record.OpManagerDecision {
			t.Errorf("as %s: records %+v, want the filing and the manager's approval", u.sub, list.Records)
		}
		if len(list.Unreadable) != 1 || list.Unreadable[0] != want {
			t.Errorf("as %s: unreadable %+v, want [%+v]", u.sub, list.Unreadable, want)
		}
	}
	r := e.do(mia, "GET", "/v1/requests/"+ended.ID+"/activity", nil)
	if list := decode[wire.RecordPage](t, r, http.StatusOK); len(list.Records) != 2 || strings.Contains(string(r.body), "unreadable") {
		t.Errorf("the ended request's activity: %s, want its two records and no unreadable", r.body)
	}
}

// TestTenantListNamesUnreadableEntry: one tenant's registry entry that
// does not decode made GET /v1/tenants answer 500 record_unreadable for
// every tenant; now the list holds the others and names it under
// "unreadable", in the shape of a request listing's, to the provider's
// staff, who see every tenant whatever its entry holds. Reading it alone
// still answers 500 record_unreadable, and a tenant user's list of its own
// tenant names nothing of another's.
func TestTenantListNamesUnreadableEntry(t *testing.T) {
	e := newEnv(t)
	if err := e.rdb.Set(context.Background(), keys.Tenant("fabrikam"), `{"id":"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	want := wire.UnreadableTenant{ID: "fabrikam", Tenant: "fabrikam", Error: "cannot be read"}
	for _, u := range []user{mia, alice, auditor} {
		list := decode[wire.TenantList](t, e.do(u, "GET", "/v1/tenants", nil), http.StatusOK)
		if len(list.Tenants) != 1 || list.Tenants[0].ID != "contoso" {
			t.Errorf("as %s: tenants %+v, want contoso", u.sub, list.Tenants)
		}
		if len(list.Unreadable) != 1 || list.Unreadable[0] != want {
			t.Errorf("as %s: unreadable %+v, want [%+v]", u.sub, list.Unreadable, want)
		}
	}
	wantError(t, e.do(mia, "GET", "/v1/tenants/fabrikam", nil), http.StatusInternalServerError, "record_unreadable", "registry entry of tenant fabrikam cannot be read")
	r := e.do(contosoAdmin, "GET", "/v1/tenants", nil)
	if list := decode[wire.TenantList](t, r, http.StatusOK); len(list.Tenants) != 1 || strings.Contains(string(r.body), "unreadable") {
		t.Errorf("contoso's admin lists %s, want contoso alone and no unreadable", r.body)
	}
}
