package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestTenantRegistry: the provider's Lockbox administrator onboards and
// edits tenants in the admin center; other staff only read the list, and a
// tenant's users see only their own tenant.
func TestTenantRegistry(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(lara)
	r := b.get("/console/tenants")
	mustContain(t, "tenants page", r, `href="/console/tenants/contoso"`, `data-testid="onboard"`, `href="/console/tenants"`)

	// A mistake keeps what was typed and says what is wrong.
	r = b.post("/console/tenants", b.form(url.Values{"id": {"northwind"}, "display_name": {"Northwind"}, "domains": {"not a domain"}}))
	if r.status != http.StatusBadRequest {
		t.Fatalf("bad domain: %s", r)
	}
	mustContain(t, "refused onboarding", r, "not a DNS name", `value="northwind"`)

	r = b.post("/console/tenants", b.form(url.Values{"id": {"northwind"}, "display_name": {"Northwind Traders"},
		"domains": {"northwind.example\nnorthwind.test"}, "global_admins": {"nancy@northwind.example"}}))
	if r.status != http.StatusSeeOther || r.location() != "/console/tenants/northwind?done=tenant_onboarded" {
		t.Fatalf("onboard: %s", r)
	}
	got, err := e.ten.Get(context.Background(), "northwind")
	if err != nil || got.DisplayName != "Northwind Traders" || len(got.Domains) != 2 || len(got.GlobalAdmins) != 1 {
		t.Fatalf("registry entry = %+v, %v", got, err)
	}
	if on, _ := e.ten.LockboxEnabled(context.Background(), "northwind"); on {
		t.Error("an unchecked switch onboarded the tenant with Customer Lockbox on")
	}
	r = b.get(r.location())
	mustContain(t, "tenant page", r, "The tenant was onboarded.", "northwind.test", `data-testid="save-tenant"`)

	r = b.post("/console/tenants/northwind", b.form(url.Values{"display_name": {"Northwind"}, "domains": {"northwind.example"}}))
	if r.status != http.StatusSeeOther {
		t.Fatalf("update: %s", r)
	}
	if got, _ := e.ten.Get(context.Background(), "northwind"); got.DisplayName != "Northwind" || len(got.Domains) != 1 || len(got.GlobalAdmins) != 0 {
		t.Fatalf("after update: %+v", got)
	}
	if recs := e.records("northwind"); len(recs) != 2 || recs[0].Operation != record.OpUpdateTenant || recs[1].Operation != record.OpOnboardTenant {
		t.Fatalf("audit of the registry: %+v", recs)
	}

	// A support manager reads, without the forms; a forged post is refused
	// by the domain.
	m := e.signIn(mia)
	r = m.get("/console/tenants")
	mustContain(t, "manager's tenants page", r, "northwind")
	mustNotContain(t, "manager's tenants page", r, `data-testid="onboard"`)
	if r := m.post("/console/tenants", m.form(url.Values{"id": {"evil"}, "display_name": {"E"}, "domains": {"evil.example"}})); r.status != http.StatusForbidden {
		t.Errorf("manager onboarded: %s", r)
	}
	// A tenant's user sees no Tenants menu and only their own tenant.
	a := e.signIn(contosoAdmin)
	r = a.get("/console/tenants")
	if strings.Contains(r.body, "northwind") || strings.Contains(r.body, `href="/console/tenants"`) {
		t.Errorf("contoso's admin sees other tenants or the menu entry: %s", r)
	}
	if r := a.get("/console/tenants/northwind"); r.status != http.StatusNotFound {
		t.Errorf("contoso's admin read northwind: %s", r)
	}
	// The approvers page names the domains approvers come from.
	mustContain(t, "approvers page", a.get("/console/approvers"), "a user of contoso.example")
}
