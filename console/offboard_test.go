package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestOffboardInTheAdminCenter: the provider's Lockbox administrator
// offboards a tenant from its page, through a confirmation step that asks
// for the reason (a form post with the session's token); the tenant's
// pending request ends, its page says offboarded and offers no change any
// more, and its own admin sees the provider's label, not who did it. Other
// staff are offered nothing and refused.
func TestOffboardInTheAdminCenter(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	pending := e.file("contoso")

	m := e.signIn(mia)
	mustNotContain(t, "manager's tenant page", m.get("/console/tenants/contoso"), `data-testid="offboard"`)
	if r := m.get("/console/tenants/contoso/offboard"); r.status != http.StatusForbidden {
		t.Errorf("manager's confirmation page: %s", r)
	}
	if r := m.post("/console/tenants/contoso/offboard", m.form(url.Values{"reason": {"x"}})); r.status != http.StatusForbidden {
		t.Errorf("manager offboarded: %s", r)
	}

	b := e.signIn(lara)
	mustContain(t, "tenant page", b.get("/console/tenants/contoso"), `data-testid="offboard"`, `href="/console/tenants/contoso/offboard"`, "Active")
	mustContain(t, "confirmation page", b.get("/console/tenants/contoso/offboard"),
		`action="/console/tenants/contoso/offboard"`, `name="csrf_token"`, `data-testid="confirm-offboard"`, "It deletes nothing")
	// Without the session's token the post is refused, and nothing ends.
	if r := b.post("/console/tenants/contoso/offboard", url.Values{"reason": {"contract ended"}}); r.status != http.StatusForbidden {
		t.Errorf("post without the form token: %s", r)
	}
	r := b.post("/console/tenants/contoso/offboard", b.form(url.Values{"reason": {"  "}}))
	if r.status != http.StatusBadRequest {
		t.Fatalf("empty reason: %s", r)
	}
	mustContain(t, "refused offboarding", r, "reason is required", `aria-invalid="true"`)
	if got, _ := e.ten.Get(ctx, "contoso"); got.Offboarded != nil {
		t.Fatalf("refused offboarding offboarded: %+v", got.Offboarded)
	}

	r = b.post("/console/tenants/contoso/offboard", b.form(url.Values{"reason": {"contract ended"}}))
	if r.status != http.StatusSeeOther || r.location() != "/console/tenants/contoso?done=tenant_offboarded" {
		t.Fatalf("offboard: %s", r)
	}
	page := b.get(r.location())
	mustContain(t, "offboarded tenant page", page, "The tenant was offboarded", "Offboarded", "by lara", "contract ended")
	mustNotContain(t, "offboarded tenant page", page, `data-testid="save-tenant"`, `data-testid="offboard"`)
	if got := e.request(pending.ID); got.State != grants.StateCanceled {
		t.Errorf("pending request after offboarding: %s", got.State)
	}
	if recs := e.records("contoso"); len(recs) < 2 || recs[1].Operation != record.OpOffboardTenant {
		t.Errorf("audit of the offboarding: %+v", recs)
	}
	// Sent again (a double click): answered as done, nothing more written.
	n := len(e.records("contoso"))
	if r := b.post("/console/tenants/contoso/offboard", b.form(url.Values{"reason": {"contract ended"}})); r.status != http.StatusSeeOther {
		t.Errorf("offboarding sent again: %s", r)
	}
	if again := len(e.records("contoso")); again != n {
		t.Errorf("offboarding sent again wrote %d records", again-n)
	}

	list := b.get("/console/tenants")
	mustContain(t, "tenants page", list, `data-testid="offboarded"`)
	// Filing for it, or onboarding its id again, is refused on the form,
	// the field marked.
	o := e.signIn(alice)
	r = o.post("/console/requests", o.form(url.Values{
		"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-78"}, "reason": {"r"}, "duration": {"1h"},
	}))
	if r.status != http.StatusConflict {
		t.Fatalf("filing for the offboarded tenant: %s", r)
	}
	mustContain(t, "filing for the offboarded tenant", r, "was offboarded", `id="tenant" name="tenant" required value="contoso"`, `aria-invalid="true" autofocus`)
	r = b.post("/console/tenants", b.form(url.Values{"id": {"contoso"}, "display_name": {"Contoso again"}, "domains": {"contoso.example"}}))
	if r.status != http.StatusConflict {
		t.Fatalf("onboarding the id again: %s", r)
	}
	mustContain(t, "onboarding the id again", r, "another id", `aria-invalid="true"`)

	a := e.signIn(contosoAdmin)
	seen := a.get("/console/tenants/contoso")
	mustContain(t, "tenant admin's page", seen, "by "+record.ProviderUserID, "contract ended")
	mustNotContain(t, "tenant admin's page", seen, "lara")
}

// TestOffboardedTenantsSettingsReadOnly: once the provider offboarded a
// tenant, its settings and approvers pages show what they hold, with the
// offboarding's date, and offer no form whose saving the tenant's state
// would refuse: no settings form, no approver to add or remove. The same
// pages offered them the moment before.
func TestOffboardedTenantsSettingsReadOnly(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ten.PutSettings(ctx, contosoAdmin, "192.0.2.1", "contoso", tenants.Settings{
		LockboxEnabled: true, NotificationAddresses: []string{"sec@contoso.example"},
	}); err != nil {
		t.Fatal(err)
	}
	a := e.signIn(contosoAdmin)
	mustContain(t, "settings before offboarding", a.get("/console/settings"), `action="/console/settings"`, `data-testid="save"`)
	mustContain(t, "approvers before offboarding", a.get("/console/approvers"), `action="/console/approvers"`, `action="/console/approvers/remove"`)

	e.clk.Advance(time.Hour)
	off, err := e.ten.Offboard(ctx, lara, "192.0.2.9", "contoso", "contract ended")
	if err != nil {
		t.Fatal(err)
	}
	on := off.Offboarded.At.UTC().Format("2006-01-02 15:04 UTC")
	notice := "Offboarded on " + on + " — settings can no longer change."
	forms := []string{`data-testid="save"`, `data-testid="add-approver"`, `name="notification_addresses"`}
	for _, c := range []struct {
		who  identity.Principal
		path string
		want []string
	}{
		{contosoAdmin, "/console/settings", []string{notice, "Customer Lockbox is <strong>on</strong>", "Also notified: sec@contoso.example"}},
		{contosoApprover, "/console/settings", []string{notice, "Customer Lockbox is <strong>on</strong>", "Also notified: sec@contoso.example"}},
		{mia, "/console/settings?tenant=contoso", []string{notice, "Customer Lockbox is <strong>on</strong>"}},
		{contosoAdmin, "/console/approvers", []string{"Offboarded on " + on + " — approvers can no longer change.", contosoApprover.Subject}},
	} {
		s := e.signIn(c.who)
		r := s.get(c.path)
		if r.status != http.StatusOK {
			t.Fatalf("%s reads %s: %s", c.who.Subject, c.path, r)
		}
		what := c.who.Subject + " " + c.path
		mustContain(t, what, r, c.want...)
		unwanted := slices.Clone(forms)
		if c.path == "/console/approvers" {
			unwanted = append(unwanted, `action="/console/approvers/remove"`, "Only global administrators add or remove approvers.")
		} else {
			unwanted = append(unwanted, `action="/console/settings"`, "change these settings.")
		}
		mustNotContain(t, what, r, unwanted...)
	}
	// An active tenant's pages are untouched.
	f := e.signIn(fabrikamAdmin)
	mustContain(t, "another tenant's settings", f.get("/console/settings"), `action="/console/settings"`)
	mustNotContain(t, "another tenant's settings", f.get("/console/settings"), `data-testid="offboarded"`)
}

// TestFormSentAfterOffboarding: a tenant's admin opens the settings and
// approvers pages, the provider offboards the tenant, and the admin then
// sends the forms. Each got a bare 409 error page; now each answers with
// the page as it reads after offboarding (read-only, no form), saying
// when the tenant was offboarded and that nothing was changed; and nothing
// was.
func TestFormSentAfterOffboarding(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ten.PutSettings(ctx, contosoAdmin, "192.0.2.1", "contoso", tenants.Settings{
		LockboxEnabled: true, NotificationAddresses: []string{"sec@contoso.example"},
	}); err != nil {
		t.Fatal(err)
	}
	a := e.signIn(contosoAdmin)
	settings := a.get("/console/settings")
	m := regexp.MustCompile(`name="revision" value="(\d+)"`).FindStringSubmatch(settings.body)
	if m == nil {
		t.Fatalf("no revision on the settings form: %s", settings)
	}
	mustContain(t, "approvers before offboarding", a.get("/console/approvers"), `action="/console/approvers"`, `action="/console/approvers/remove"`)

	e.clk.Advance(2 * time.Minute)
	off, err := e.ten.Offboard(ctx, lara, "192.0.2.9", "contoso", "contract ended")
	if err != nil {
		t.Fatal(err)
	}
	on := off.Offboarded.At.UTC().Format("2006-01-02 15:04 UTC")
	records := len(e.records("contoso"))

	for _, c := range []struct {
		name, path string
		form       url.Values
		want       []string
		unwanted   []string
	}{
		{"settings", "/console/settings", url.Values{"revision": {m[1]}, "notification_addresses": {"other@contoso.example"}},
			[]string{"Your change was not saved: the provider offboarded tenant contoso on " + on + ", and its settings can no longer change. Nothing was changed",
				"Offboarded on " + on, "Customer Lockbox is <strong>on</strong>", "Also notified: sec@contoso.example"},
			[]string{`action="/console/settings"`, `data-testid="save"`, "other@contoso.example"}},
		{"add approver", "/console/approvers", url.Values{"user": {"newbie@contoso.example"}},
			[]string{"Your change was not saved: the provider offboarded tenant contoso on " + on + ", and its approvers can no longer change. Nothing was changed",
				"Offboarded on " + on, contosoApprover.Subject},
			[]string{`action="/console/approvers"`, `data-testid="add-approver"`, "newbie@contoso.example"}},
		{"remove approver", "/console/approvers/remove", url.Values{"user": {contosoApprover.Subject}},
			[]string{"Your change was not saved: the provider offboarded tenant contoso on " + on + ", and its approvers can no longer change. Nothing was changed",
				"Offboarded on " + on, contosoApprover.Subject},
			[]string{`action="/console/approvers/remove"`}},
	} {
		r := a.post(c.path, a.form(c.form))
		if r.status != http.StatusConflict {
			t.Fatalf("%s after offboarding: %s", c.name, r)
		}
		mustContain(t, c.name+" after offboarding", r, c.want...)
		mustNotContain(t, c.name+" after offboarding", r, c.unwanted...)
	}

	st, err := e.ten.Settings(ctx, contosoAdmin, "contoso")
	if err != nil || !st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, []string{"sec@contoso.example"}) {
		t.Errorf("settings after the refused form: %+v, %v", st, err)
	}
	list, err := e.ten.Approvers(ctx, contosoAdmin, "contoso")
	if err != nil || !slices.Equal(list.Approvers, []string{contosoApprover.Subject}) {
		t.Errorf("approvers after the refused forms: %+v, %v", list.Approvers, err)
	}
	if n := len(e.records("contoso")); n != records {
		t.Errorf("the refused forms wrote %d audit records", n-records)
	}
}
