package console_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
)

// hiddenRE finds a form's hidden fields.
var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// newRequestForm loads the new-request form as b and returns it filled in
// as an engineer would, with the form's hidden fields.
func newRequestForm(t *testing.T, b *browser, service string) url.Values {
	t.Helper()
	r := b.get("/console/requests/new")
	if r.status != http.StatusOK {
		t.Fatalf("form: %s", r)
	}
	v := url.Values{"tenant": {"contoso"}, "service": {service}, "service_request": {"SR-" + service},
		"reason": {"Mailbox will not sync"}, "duration": {"1h"}}
	for _, m := range hiddenRE.FindAllStringSubmatch(r.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// TestNewRequestFormFilesOnce: the same new-request form sent twice (a
// double click on "File request", or the browser sending it again after
// the answer was lost) files one request, and both answers lead to it.
// Before, the second answer, the one the browser shows, was a refusal:
// "you already have request … cancel it or wait for it to end", as if the
// engineer's request had not been filed by this form. A form refused and
// sent again corrected still files, and a form loaded again files another.
func TestNewRequestFormFilesOnce(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(alice)
	filed := func() []grants.Request {
		t.Helper()
		reqs, err := e.reqs.List(context.Background(), mia, grants.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return reqs
	}

	form := newRequestForm(t, b, "exchange")
	bad := mergeForm(form, url.Values{"duration": {"9h"}})
	if r := b.post("/console/requests", bad); r.status != http.StatusBadRequest {
		t.Fatalf("refused form: %s", r)
	}
	first := b.post("/console/requests", form)
	again := b.post("/console/requests", form)
	if first.status != http.StatusSeeOther || again.status != http.StatusSeeOther || again.location() != first.location() {
		t.Fatalf("the form sent twice: %s\nthen %s", first, again)
	}
	if reqs := filed(); len(reqs) != 1 {
		t.Fatalf("the form sent twice filed %d requests", len(reqs))
	}

	// Two at once, as a double click sends them (for another service:
	// an engineer has one live request for each).
	form = newRequestForm(t, b, "sharepoint")
	var wg sync.WaitGroup
	answers := make([]resp, 2)
	for i := range answers {
		wg.Go(func() { answers[i] = b.post("/console/requests", form) })
	}
	wg.Wait()
	if answers[0].status != http.StatusSeeOther || answers[1].location() != answers[0].location() {
		t.Fatalf("the form sent twice at once: %s\nthen %s", answers[0], answers[1])
	}
	if reqs := filed(); len(reqs) != 2 {
		t.Fatalf("two forms, one of them sent twice at once, filed %d requests", len(reqs))
	}
}

// TestSettingsFormSentTwice: the settings form sent twice (a double click
// on Save) saves once, and the second answer, the one the browser shows,
// says so. Before, it said "The settings changed since you opened this
// page, and your change was not saved" of the change the first had just
// saved. A form whose revision someone else's different change passed is
// still refused (TestSettingsChangedSinceTheFormOpened).
func TestSettingsFormSentTwice(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(contosoAdmin)
	form := b.form(url.Values{"revision": {formRevision(t, b.get("/console/settings"))}, "lockbox_enabled": {"on"},
		"notification_addresses": {"soc@contoso.example\nnoc@contoso.example"}})
	before := len(e.records("contoso"))
	for i := range 2 {
		if r := b.post("/console/settings", form); r.status != http.StatusSeeOther || r.location() != "/console/settings?done=settings" {
			t.Fatalf("the form sent %d times: %s", i+1, r)
		}
	}
	st, err := e.ten.Lookup(context.Background(), "contoso")
	if err != nil || !st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, []string{"soc@contoso.example", "noc@contoso.example"}) {
		t.Fatalf("settings %+v, %v", st, err)
	}
	if n := len(e.records("contoso")); n != before+1 {
		t.Errorf("the form sent twice wrote %d audit records, want 1", n-before)
	}

	// The same form with another change is someone else's to review.
	form.Set("notification_addresses", "soc@contoso.example")
	if r := b.post("/console/settings", form); r.status != http.StatusPreconditionFailed {
		t.Errorf("a changed form under the old revision: %s", r)
	}
}

// TestTenantFormSentTwice: the tenant registry's edit form sent twice (a
// double click on Save) saves once, and the second answer, the one the
// browser shows, says so. Before, it said "The registry entry changed since
// you opened this page, and your change was not saved" of the change the
// first had just saved. The form is typed as the store does not keep it
// (domains in capitals, out of order and with a trailing dot, an address
// twice in two spellings): what counts is the entry as stored. A form whose
// revision someone else's different change passed is still refused
// (TestTenantChangedSinceTheFormOpened).
func TestTenantFormSentTwice(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(lara)
	form := b.form(url.Values{"revision": {tenantFormRevision(t, b.get("/console/tenants/contoso"))}, "display_name": {" Contoso Ltd "},
		"domains":       {"Contoso.Example.\ncontoso.com"},
		"global_admins": {"Gina@contoso.example\ngina@Contoso.example, hal@contoso.example"}})
	before := len(e.records("contoso"))
	for i := range 2 {
		if r := b.post("/console/tenants/contoso", form); r.status != http.StatusSeeOther || r.location() != "/console/tenants/contoso?done=tenant_updated" {
			t.Fatalf("the form sent %d times: %s", i+1, r)
		}
	}
	got, err := e.ten.Get(context.Background(), "contoso")
	if err != nil || got.DisplayName != "Contoso Ltd" || !slices.Equal(got.Domains, []string{"contoso.com", "contoso.example"}) ||
		!slices.Equal(got.GlobalAdmins, []string{"Gina@contoso.example", "hal@contoso.example"}) {
		t.Fatalf("entry %+v, %v", got, err)
	}
	if n := len(e.records("contoso")); n != before+1 {
		t.Errorf("the form sent twice wrote %d audit records, want 1", n-before)
	}

	// The same form with another change is someone else's to review.
	for field, v := range map[string]string{"display_name": "Contoso", "domains": "contoso.example", "global_admins": "hal@contoso.example"} {
		changed := mergeForm(form, url.Values{field: {v}})
		if r := b.post("/console/tenants/contoso", changed); r.status != http.StatusPreconditionFailed {
			t.Errorf("a form with another %s under the old revision: %s", field, r)
		}
	}
	if again, _ := e.ten.Get(context.Background(), "contoso"); again.Revision != got.Revision {
		t.Errorf("a refused form changed the entry: revision %d, was %d", again.Revision, got.Revision)
	}
}

// TestOnboardingFormSentTwice: the onboarding form sent twice (a double
// click on Onboard, one after the other or both at once) onboards the
// tenant once, and the second answer, the one the browser shows, leads to
// it as the first does. Before, it was a 409 on the form: "tenant
// northwind is already onboarded", of the tenant this form had just
// onboarded. The form is typed as the store does not keep it (a domain in
// capitals with a trailing dot, an organization id in capitals): what
// counts is the entry as stored. A form that asks for anything else of an
// onboarded tenant (its name, domains, global administrators,
// organization id, or switch) is still the conflict it was.
func TestOnboardingFormSentTwice(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(lara)
	const want = "/console/tenants/northwind?done=tenant_onboarded"
	form := b.form(url.Values{"id": {"northwind"}, "display_name": {" Northwind Traders "}, "domains": {"Northwind.Example.\nnorthwind.test"},
		"global_admins": {"nancy@northwind.example"}, "organization_id": {"0F8FAD5B-D9CB-469F-A165-70867728950E"}, "lockbox_enabled": {"on"}})
	for i := range 2 {
		if r := b.post("/console/tenants", form); r.status != http.StatusSeeOther || r.location() != want {
			t.Fatalf("the form sent %d times: %s", i+1, r)
		}
	}
	if recs := e.records("northwind"); len(recs) != 1 || recs[0].Operation != record.OpOnboardTenant {
		t.Errorf("the form sent twice wrote %+v, want one onboarding record", recs)
	}

	for field, v := range map[string]string{"display_name": "Northwind", "domains": "northwind.example", "global_admins": "",
		"organization_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "lockbox_enabled": ""} {
		other := mergeForm(form, url.Values{field: {v}})
		r := b.post("/console/tenants", other)
		if r.status != http.StatusConflict {
			t.Errorf("a form with another %s for an onboarded tenant: %s", field, r)
		}
		mustContain(t, "conflict", r, "already onboarded")
	}

	// Two at once, as a double click sends them.
	form.Set("id", "tailspin")
	form.Set("domains", "tailspin.example")
	form.Del("organization_id")
	var wg sync.WaitGroup
	answers := make([]resp, 2)
	for i := range answers {
		wg.Go(func() { answers[i] = b.post("/console/tenants", form) })
	}
	wg.Wait()
	for i, r := range answers {
		if r.status != http.StatusSeeOther || r.location() != "/console/tenants/tailspin?done=tenant_onboarded" {
			t.Errorf("answer %d to the form sent twice at once: %s", i+1, r)
		}
	}
	if recs := e.records("tailspin"); len(recs) != 1 {
		t.Errorf("the form sent twice at once wrote %d audit records, want 1", len(recs))
	}
}
