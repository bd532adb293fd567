package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestApproverCallsTakeNoBody: assigning or removing an approver is named
// whole by its path, so a body (a client meaning a list of users or a role)
// is refused, not ignored; and only to whoever may make the change, so
// that a caller without the right gets the answer it always got.
func TestApproverCallsTakeNoBody(t *testing.T) {
	e := newEnv(t)
	northwindAdmin := user{sub: "admin@northwind.example", roles: []identity.Role{identity.RoleGlobalAdmin}, tenant: "northwind"}
	path := "/v1/tenants/contoso/approvers/" + contosoApprover.sub
	bodies := []any{`{"users":["approver@contoso.example"]}`, `{}`, `null`, "x"}
	for _, method := range []string{"PUT", "DELETE"} {
		for _, body := range bodies {
			for _, who := range []user{alice, mia, contosoApprover, contosoUser, fabrikamAdmin} {
				wantError(t, e.do(who, method, path, body), http.StatusForbidden, "forbidden", "")
			}
			wantError(t, e.do(northwindAdmin, method, "/v1/tenants/northwind/approvers/ann@northwind.example", body), http.StatusNotFound, "tenant_not_found", "")
			wantError(t, e.do(contosoAdmin, method, path, body), http.StatusBadRequest, "invalid_json", "no request body")
		}
	}
	list := e.do(contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil)
	if list.status != http.StatusOK || strings.Contains(string(list.body), contosoApprover.sub) {
		t.Fatalf("approvers after refused calls: %d %s", list.status, list.body)
	}
	for _, c := range []struct {
		method string
		body   any
		has    bool
	}{{"PUT", nil, true}, {"DELETE", " \r\n", false}, {"PUT", "\n", true}, {"DELETE", nil, false}} {
		if r := e.do(contosoAdmin, c.method, path, c.body); r.status != http.StatusNoContent {
			t.Fatalf("%s with body %q: %d %s", c.method, c.body, r.status, r.body)
		}
		list := e.do(contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil)
		if strings.Contains(string(list.body), contosoApprover.sub) != c.has {
			t.Fatalf("after %s: approvers %s", c.method, list.body)
		}
	}
}
