package api_test

import (
	"testing"

	"github.com/lockbox-oss/lockbox/identity"
)

func TestProbeOffboard(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	req := e.file(alice, "contoso", "exchange")
	req2 := e.file(alice, "contoso", "sharepoint")
	e.do(mia, "POST", "/v1/requests/"+req2.ID+"/approve", nil)
	id := req.ID
	type c struct {
		who          user
		method, path string
		body         any
	}
	for _, c := range []c{
		{lara, "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": "contract ended"}},
		{lara, "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": "contract ended"}},
		{lara, "POST", "/v1/tenants/nowhere/offboard", map[string]any{"reason": "contract ended"}},
		{lara, "POST", "/v1/tenants/nowhere/offboard", "{"},
		{lara, "PATCH", "/v1/tenants/nowhere", "{"},
		{lara, "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": "C"}},
		{mia, "POST", "/v1/requests/" + id + "/approve", nil},
		{mia, "POST", "/v1/requests/" + req2.ID + "/deny", nil},
		{contosoAdmin, "POST", "/v1/requests/" + req2.ID + "/approve", nil},
		{contosoAdmin, "POST", "/v1/requests/" + req2.ID + "/revoke", nil},
		{alice, "POST", "/v1/requests/" + id + "/cancel", nil},
		{alice, "POST", "/v1/requests", map[string]any{"tenant": "contoso", "service": "exchange", "service_request": "SR-1", "reason": "r", "duration": "1h"}},
		{contosoAdmin, "GET", "/v1/tenants/contoso/settings", nil},
		{contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]any{"lockbox_enabled": false}},
		{contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/x@contoso.example", nil},
		{contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil},
		{contosoAdmin, "GET", "/v1/requests?tenant=contoso", nil},
		{contosoAdmin, "GET", "/v1/audit?tenant=contoso&limit=1", nil},
		{contosoAdmin, "GET", "/v1/audit/verify?tenant=contoso", nil},
		{lara, "POST", "/v1/tenants", map[string]any{"id": "contoso", "display_name": "C", "domains": []string{"contoso.example"}, "global_admins": []string{"admin@contoso.example"}}},
		{mia, "GET", "/v1/requests/" + id, nil},
	} {
		r := e.do(c.who, c.method, c.path, c.body)
		b := string(r.body)
		if len(b) > 250 {
			b = b[:250]
		}
		t.Logf("%s %s %s -> %d %s", c.who.sub, c.method, c.path, r.status, b)
	}
}
