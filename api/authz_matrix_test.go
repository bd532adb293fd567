package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestAuthorizationMatrix pins who may call each route, as DESIGN.md and
// openapi.yaml say, for every role of the provider and the tenant, a user
// of another tenant, and no token. The request in it is alice's, filed for
// contoso and awaiting the manager; the calls that would change it or the
// tenant are those the principal must be refused (or that change nothing),
// and the request is checked unchanged at the end.
//
// Where a principal may not see a request, or another tenant's registry
// entry, the answer must be the one a missing one gets, so that the id's
// or the tenant's existence is not confirmed.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	req := e.file(alice, "contoso", "exchange")
	const missing = "00000000-0000-4000-8000-000000000000"
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}

	who := []struct {
		name string
		u    user
	}{
		{"no token", anonymous},
		{"requester (operator)", alice},
		{"other operator", bob},
		{"support manager", mia},
		{"provider audit reader", auditor},
		{"lockbox admin", lara},
		{"tenant global admin", contosoAdmin},
		{"tenant assigned approver", contosoApprover},
		{"tenant audit reader", contosoAuditor},
		{"tenant user without a role", contosoUser},
		{"other tenant's global admin", fabrikamAdmin},
	}
	// want lists a status for each entry of who, in order.
	type call struct {
		name, method, path string
		body               any
		want               [11]int
		// hides: the path with a missing object, whose answer a refused
		// principal (status 404) must get too.
		hides string
		// alike: a 403 too must be the answer the missing object gets
		// (the tenant's existence is not the refused principal's to learn).
		alike bool
	}
	const (
		_401 = http.StatusUnauthorized
		_403 = http.StatusForbidden
		_404 = http.StatusNotFound
		_409 = http.StatusConflict
		_200 = http.StatusOK
		_204 = http.StatusNoContent
	)
	settingsOn := map[string]any{"lockbox_enabled": true, "notification_addresses": []string{}}
	calls := []call{
		//                                                                  anon  alice bob   mia   audr  lara  cAdm  cAppr cAud  cUser fAdm
		{"read request", "GET", "/v1/requests/" + req.ID, nil, [11]int{_401, _200, _404, _200, _200, _404, _200, _200, _200, _404, _404}, "/v1/requests/" + missing, false},
		{"read activity", "GET", "/v1/requests/" + req.ID + "/activity", nil, [11]int{_401, _200, _404, _200, _200, _404, _200, _200, _200, _404, _404}, "/v1/requests/" + missing + "/activity", false},
		// A manager's decision is the support manager's alone; the tenant's
		// approvers see the request but it has not reached them yet (409).
		{"approve", "POST", "/v1/requests/" + req.ID + "/approve", nil, [11]int{_401, _403, _404, 0, _403, _404, _409, _409, _403, _404, _404}, "/v1/requests/" + missing + "/approve", false},
		{"deny", "POST", "/v1/requests/" + req.ID + "/deny", nil, [11]int{_401, _403, _404, 0, _403, _404, _409, _409, _403, _404, _404}, "/v1/requests/" + missing + "/deny", false},
		{"revoke", "POST", "/v1/requests/" + req.ID + "/revoke", nil, [11]int{_401, _403, _404, _409, _403, _404, _409, _409, _403, _404, _404}, "/v1/requests/" + missing + "/revoke", false},
		{"cancel", "POST", "/v1/requests/" + req.ID + "/cancel", nil, [11]int{_401, 0, _404, _403, _403, _404, _403, _403, _403, _404, _404}, "/v1/requests/" + missing + "/cancel", false},
		{"list tenant's requests", "GET", "/v1/requests?tenant=contoso", nil, [11]int{_401, _200, _200, _200, _200, _200, _200, _200, _200, _200, _403}, "/v1/requests?tenant=northwind", true},
		{"file a request", "POST", "/v1/requests", grants.CreateInput{Tenant: "contoso", Service: "sharepoint", ServiceRequest: "SR-2", Reason: "r", Duration: grants.Duration(3600e9)},
			[11]int{_401, 0, 0, _403, _403, _403, _403, _403, _403, _403, _403}, "", false},
		{"read registry entry", "GET", "/v1/tenants/contoso", nil, [11]int{_401, _200, _200, _200, _200, _200, _200, _200, _200, _200, _404}, "/v1/tenants/northwind", false},
		{"change registry entry", "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": "Contoso"}, [11]int{_401, _403, _403, _403, _403, 0, _403, _403, _403, _403, _403}, "", false},
		{"onboard a tenant", "POST", "/v1/tenants", map[string]any{"id": "northwind", "display_name": "Northwind", "domains": []string{"northwind.example"}},
			[11]int{_401, _403, _403, _403, _403, 0, _403, _403, _403, _403, _403}, "", false},
		{"offboard a tenant", "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": "contract ended"},
			[11]int{_401, _403, _403, _403, _403, 0, _403, _403, _403, _403, _403}, "", false},
		{"read settings", "GET", "/v1/tenants/contoso/settings", nil, [11]int{_401, _403, _403, _200, _403, _403, _200, _200, _403, _403, _403}, "/v1/tenants/northwind/settings", true},
		// lockbox_enabled true is what contoso has: saving it changes nothing.
		{"save settings", "PUT", "/v1/tenants/contoso/settings", settingsOn, [11]int{_401, _403, _403, _403, _403, _403, _200, _200, _403, _403, _403}, "/v1/tenants/northwind/settings", true},
		{"read approvers", "GET", "/v1/tenants/contoso/approvers", nil, [11]int{_401, _403, _403, _200, _403, _403, _200, _200, _403, _403, _403}, "/v1/tenants/northwind/approvers", true},
		{"assign approver", "PUT", "/v1/tenants/contoso/approvers/" + contosoApprover.sub, nil, [11]int{_401, _403, _403, _403, _403, _403, _204, _403, _403, _403, _403}, "", false},
		// other@ is no approver: the global admin, allowed, is told so
		// (404 approver_not_found) and nothing changes.
		{"remove approver", "DELETE", "/v1/tenants/contoso/approvers/other@contoso.example", nil, [11]int{_401, _403, _403, _403, _403, _403, _404, _403, _403, _403, _403}, "", false},
		{"search audit", "GET", "/v1/audit?tenant=contoso", nil, [11]int{_401, _403, _403, _403, _200, _403, _200, _403, _200, _403, _403}, "/v1/audit?tenant=northwind", true},
		{"export audit", "GET", "/v1/audit/export?tenant=contoso", nil, [11]int{_401, _403, _403, _403, _200, _403, _200, _403, _200, _403, _403}, "", false},
		{"verify audit", "GET", "/v1/audit/verify?tenant=contoso", nil, [11]int{_401, _403, _403, _403, _200, _403, _200, _403, _200, _403, _403}, "/v1/audit/verify?tenant=northwind", true},
	}
	for _, c := range calls {
		for i, w := range who {
			want := c.want[i]
			if want == 0 {
				continue // allowed, and it would change what the rest reads: other tests cover it
			}
			t.Run(c.name+"/"+w.name, func(t *testing.T) {
				r := e.do(w.u, c.method, c.path, c.body)
				if r.status != want {
					t.Fatalf("%s %s as %s: status %d, want %d; body: %s", c.method, c.path, w.name, r.status, want, r.body)
				}
				if want >= 400 && want != _409 {
					if got := errorOf(t, r); strings.Contains(got.Message, alice.sub) || strings.Contains(got.Message, mia.sub) {
						t.Errorf("the refusal names a provider identity: %q", got.Message)
					}
				}
				if c.hides == "" || (want != _404 && !(want == _403 && c.alike)) {
					return
				}
				m := e.do(w.u, c.method, c.hides, c.body)
				got, gone := errorOf(t, r), errorOf(t, m)
				if m.status != r.status || got.Code != gone.Code ||
					strings.ReplaceAll(got.Message, req.ID, missing) != strings.ReplaceAll(strings.ReplaceAll(gone.Message, "northwind", "contoso"), req.ID, missing) {
					t.Errorf("refused: %d %+v; missing: %d %+v: the answers differ", r.status, got, m.status, gone)
				}
			})
		}
	}

	after := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK)
	if after.State != grants.StatePendingManager || len(after.History) != len(req.History) {
		t.Errorf("the refused calls changed the request: state %s, %d events (was %d)", after.State, len(after.History), len(req.History))
	}
}
