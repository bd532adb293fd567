package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/tenants"
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

// tenantFormRevision returns the revision the tenant edit form on r
// carries.
func tenantFormRevision(t *testing.T, r resp) string {
	t.Helper()
	m := regexp.MustCompile(`name="revision" value="([^"]*)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("the tenant form carries no revision: %s", r)
	}
	return m[1]
}

// TestTenantChangedSinceTheFormOpened: the tenant edit form carries the
// revision of the entry it shows, and saving it after another Lockbox
// administrator saved a change saves nothing: one added a domain while
// the other's page, opened before, adds a global administrator and would
// send the domains back without it. The page shows the entry as it is
// now, with a request to review it and save again, and saving that page
// applies.
func TestTenantChangedSinceTheFormOpened(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	b := e.signIn(lara)
	page := b.get("/console/tenants/contoso")
	opened := tenantFormRevision(t, page)
	before, err := e.ten.Get(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}

	// Another administrator adds a domain while the page is open.
	domains := append(slices.Clone(before.Domains), "contoso.com")
	if _, err := e.ten.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &domains}); err != nil {
		t.Fatal(err)
	}
	records := len(e.records("contoso"))
	// This one adds a global administrator on the page as opened: the
	// form sends the domains it showed, without the new one.
	stale := url.Values{"revision": {opened}, "display_name": {before.DisplayName},
		"domains": {strings.Join(before.Domains, "\n")}, "global_admins": {strings.Join(append(slices.Clone(before.GlobalAdmins), "gina@contoso.example"), "\n")}}
	r := b.post("/console/tenants/contoso", b.form(stale))
	if r.status != http.StatusPreconditionFailed {
		t.Fatalf("stale save: %s", r)
	}
	mustContain(t, "stale save", r, `role="alert"`, "The registry entry changed since you opened this page", "Review it below and save again",
		"contoso.com", `name="csrf_token"`)
	// The change typed is shown (TestStaleFormKeepsTheChangeTyped), but
	// the form holds the entry as stored.
	if fields, _, _ := controls(t, r); strings.Contains(fields["global_admins"].text, "gina@contoso.example") {
		t.Errorf("the stale form's change is in the form: %q", fields["global_admins"].text)
	}
	got, err := e.ten.Get(ctx, "contoso")
	if err != nil || !slices.Equal(got.Domains, []string{"contoso.com", "contoso.example"}) || !slices.Equal(got.GlobalAdmins, before.GlobalAdmins) {
		t.Fatalf("after the stale save: %+v, %v; want the other administrator's change alone", got, err)
	}
	if n := len(e.records("contoso")); n != records {
		t.Fatalf("the stale save was audited: %d records, want %d", n, records)
	}

	// The page now carries the current revision: saving it applies.
	current := tenantFormRevision(t, r)
	if current == opened {
		t.Fatalf("the refreshed form still carries revision %s", opened)
	}
	fresh := url.Values{"revision": {current}, "display_name": {before.DisplayName},
		"domains": {strings.Join(got.Domains, "\n")}, "global_admins": {strings.Join(append(slices.Clone(before.GlobalAdmins), "gina@contoso.example"), "\n")}}
	if r := b.post("/console/tenants/contoso", b.form(fresh)); r.status != http.StatusSeeOther {
		t.Fatalf("save after review: %s", r)
	}
	if got, _ := e.ten.Get(ctx, "contoso"); len(got.Domains) != 2 || !slices.Contains(got.GlobalAdmins, "gina@contoso.example") {
		t.Fatalf("after the reviewed save: %+v", got)
	}

	// A mistake keeps what was typed under the revision it was based on.
	bad := url.Values{"revision": {opened}, "display_name": {"Contoso"}, "domains": {"not a domain"}}
	if r := b.post("/console/tenants/contoso", b.form(bad)); r.status != http.StatusBadRequest || tenantFormRevision(t, r) != opened ||
		!strings.Contains(r.body, "not a domain") {
		t.Errorf("bad domain keeps revision %s: %s", opened, r)
	}
	if r := b.post("/console/tenants/contoso", b.form(url.Values{"revision": {"seven"}, "display_name": {"Contoso"}, "domains": {"contoso.example"}})); r.status != http.StatusBadRequest {
		t.Errorf("a revision that is not a number: %s", r)
	}
	if got, _ := e.ten.Get(ctx, "contoso"); got.DisplayName != before.DisplayName || len(got.Domains) != 2 {
		t.Fatalf("a refused form changed the entry: %+v", got)
	}
}
