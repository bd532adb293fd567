package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestOffboardTenant: POST /v1/tenants/{tenant}/offboard ends the tenant
// for the provider's Lockbox administrators: its grants are revoked and its
// pending requests canceled, its registry entry says offboarded (to its
// users without naming who), a second call answers the same, and the tenant
// takes no new request, settings change or second onboarding (409
// tenant_offboarded), while its users still read and export its audit log.
func TestOffboardTenant(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	live := e.file(alice, "contoso", "exchange")
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+live.ID+"/approve", nil), http.StatusOK)
	decode[grants.Request](t, e.do(contosoAdmin, "POST", "/v1/requests/"+live.ID+"/approve", nil), http.StatusOK)
	pending := e.file(bob, "contoso", "exchange")

	wantError(t, e.do(lara, "POST", "/v1/tenants/northwind/offboard", map[string]any{"reason": "r"}), http.StatusNotFound, "tenant_not_found", "northwind")
	wantError(t, e.do(lara, "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": strings.Repeat("é", 1001)}), http.StatusBadRequest, "invalid_reason", "1000")

	r := e.do(lara, "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": "contract ended"})
	off := decode[wire.Tenant](t, r, http.StatusOK)
	if off.State != wire.TenantOffboarded || off.Offboarded == nil || off.Offboarded.By != lara.sub ||
		off.Offboarded.Reason != "contract ended" || !off.Offboarded.At.Equal(e.clk.Now().Truncate(1e9)) || r.header.Get("ETag") != `"2"` {
		t.Fatalf("offboarded = %+v (%+v), ETag %s", off, off.Offboarded, r.header.Get("ETag"))
	}
	again := decode[wire.Tenant](t, e.do(lara, "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": "again"}), http.StatusOK)
	if again.Offboarded == nil || *again.Offboarded != *off.Offboarded {
		t.Fatalf("second offboarding = %+v, want %+v", again.Offboarded, off.Offboarded)
	}

	for _, c := range []struct {
		id    string
		state grants.State
	}{{live.ID, grants.StateRevoked}, {pending.ID, grants.StateCanceled}} {
		got := decode[grants.Request](t, e.do(contosoAdmin, "GET", "/v1/requests/"+c.id, nil), http.StatusOK)
		if got.State != c.state {
			t.Errorf("request %s: %s, want %s", c.id, got.State, c.state)
		}
	}
	seen := decode[wire.Tenant](t, e.do(contosoAdmin, "GET", "/v1/tenants/contoso", nil), http.StatusOK)
	if seen.State != wire.TenantOffboarded || seen.Offboarded == nil || seen.Offboarded.By != record.ProviderUserID {
		t.Fatalf("tenant admin reads %+v (%+v)", seen, seen.Offboarded)
	}
	if other := decode[wire.Tenant](t, e.do(alice, "GET", "/v1/tenants/fabrikam", nil), http.StatusOK); other.State != wire.TenantActive || other.Offboarded != nil {
		t.Fatalf("fabrikam = %+v", other)
	}

	wantError(t, e.do(bob, "POST", "/v1/requests", grants.CreateInput{Tenant: "contoso", Service: "sharepoint",
		ServiceRequest: "SR-2", Reason: "r", Duration: grants.Duration(3600e9)}), http.StatusConflict, "tenant_offboarded", "contoso")
	wantError(t, e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]any{"lockbox_enabled": false}),
		http.StatusConflict, "tenant_offboarded", "")
	wantError(t, e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/"+contosoApprover.sub, nil),
		http.StatusConflict, "tenant_offboarded", "")
	wantError(t, e.do(lara, "POST", "/v1/tenants", map[string]any{"id": "contoso", "display_name": "Contoso again", "domains": []string{"contoso.example"}}),
		http.StatusConflict, "tenant_offboarded", "another id")

	page := decode[wire.RecordPage](t, e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso&operation="+record.OpOffboardTenant, nil), http.StatusOK)
	if len(page.Records) != 1 || page.Records[0].UserId != record.ProviderUserID || page.Records[0].ProviderUserId != "" {
		t.Fatalf("tenant admin's search = %+v", page.Records)
	}
	if exp := e.do(contosoAdmin, "GET", "/v1/audit/export?tenant=contoso", nil); exp.status != http.StatusOK || !strings.Contains(string(exp.body), record.OpRevokeAccess) {
		t.Fatalf("export: %d %s", exp.status, exp.body)
	}
}
