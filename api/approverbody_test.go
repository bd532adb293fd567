package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api"
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

// TestApproverBodyOverTheLimit: a body over the size limit is refused
// with 413 body_too_large, told by its Content-Length or, without one,
// once the limit is read past, as every other route refuses one; and the
// status is one openapi.yaml declares for the call, which it did not.
// Only after the caller's right, as for any other body.
func TestApproverBodyOverTheLimit(t *testing.T) {
	e := newEnv(t)
	path := "/v1/tenants/contoso/approvers/" + contosoApprover.sub
	big := strings.Repeat(" ", api.DefaultMaxBodyBytes) + "{}"
	for _, method := range []string{"PUT", "DELETE"} {
		for name, body := range map[string]func() any{
			"with a length":    func() any { return big },
			"without a length": func() any { return io.MultiReader(strings.NewReader(big)) },
		} {
			wantError(t, e.do(contosoApprover, method, path, body()), http.StatusForbidden, "forbidden", "")
			r := e.do(contosoAdmin, method, path, body())
			if r.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%s %s: %d %s, want 413", method, name, r.status, r.body)
			}
			wantError(t, r, http.StatusRequestEntityTooLarge, "body_too_large", "")
		}
	}
	list := e.do(contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil)
	if list.status != http.StatusOK || strings.Contains(string(list.body), contosoApprover.sub) {
		t.Fatalf("approvers after refused calls: %d %s", list.status, list.body)
	}
}
