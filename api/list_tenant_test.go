package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestListRequestsOfATenantNotOnboarded: listing the requests of a tenant
// that was never onboarded answers what searching its audit log answers,
// 404 tenant_not_found, rather than an empty list that reads as "no
// request was ever filed there", to the provider's staff, who may read
// any tenant's registry entry already. A tenant user may list only its
// own tenant's: any other, onboarded or not, is 403, so the 404 tells it
// nothing. An onboarded tenant without requests, or with none that
// matches, is still an empty 200.
func TestListRequestsOfATenantNotOnboarded(t *testing.T) {
	e := newEnv(t)
	e.file(alice, "contoso", "exchange")
	search := e.do(auditor, http.MethodGet, "/v1/audit?tenant=northwind", nil)
	want := errorOf(t, search)
	if search.status != http.StatusNotFound || want.Code != "tenant_not_found" {
		t.Fatalf("audit search answered %d %+v", search.status, want)
	}
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	for _, u := range []user{mia, alice, auditor, lara} {
		for _, query := range []string{
			"?tenant=northwind",
			"?tenant=northwind&state=pending_manager",
			"?tenant=northwind&limit=1&created_after=2025-03-01T00:00:00Z",
		} {
			r := e.do(u, http.MethodGet, "/v1/requests"+query, nil)
			if r.status != http.StatusNotFound {
				t.Errorf("%s: GET /v1/requests%s: %d %s, want 404", u.sub, query, r.status, r.body)
				continue
			}
			if got := errorOf(t, r); got != want {
				t.Errorf("%s: GET /v1/requests%s: %+v, want the audit search's %+v", u.sub, query, got, want)
			}
		}
	}
	// A tenant user is refused as for any other tenant's requests.
	for _, u := range []user{contosoAdmin, contosoAuditor, contosoUser} {
		wantError(t, e.do(u, http.MethodGet, "/v1/requests?tenant=northwind", nil), http.StatusForbidden, "forbidden", "")
	}

	for _, c := range []struct {
		who   user
		query string
	}{
		// Onboarded, no request at all.
		{mia, "?tenant=fabrikam"},
		{lara, "?tenant=fabrikam"},
		{fabrikamAdmin, "?tenant=fabrikam"},
		// Onboarded, requests, none that matches.
		{mia, "?tenant=contoso&state=denied"},
		{bob, "?tenant=contoso"},
		{lara, "?tenant=contoso"},
	} {
		if r := e.do(c.who, http.MethodGet, "/v1/requests"+c.query, nil); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"requests":[]}` {
			t.Errorf("%s: GET /v1/requests%s: %d %s, want an empty list", c.who.sub, c.query, r.status, r.body)
		}
	}
}
