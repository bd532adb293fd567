package console_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestFormRightJudgedBeforeItsRevision: saving the settings or a registry
// entry read the form's revision before the domain judged the user's
// right, so a user who may not make the change got the 400 "the form's
// revision is not one this page writes" for a form with a bad one, and
// learned how the page checks it. The right comes first; to a user who
// holds it the answer is unchanged.
func TestFormRightJudgedBeforeItsRevision(t *testing.T) {
	parallel(t)
	// A user of contoso who reads its audit log and neither decides
	// its requests nor configures Customer Lockbox.
	contosoAuditor := identity.Principal{Subject: "auditor@contoso.example", Roles: []identity.Role{identity.RoleAuditReader}, TenantID: "contoso"}
	e := newEnv(t, func(c *console.Config) {
		c.DevIdentities = append(c.DevIdentities, console.DevIdentity{Principal: contosoAuditor, Description: "tenant audit reader"})
	})
	for _, c := range []struct {
		name           string
		path           string
		allowed, other identity.Principal
	}{
		{"settings", "/console/settings", contosoAdmin, contosoAuditor},
		{"registry entry", "/console/tenants/contoso", lara, contosoAdmin},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, revision := range []string{"seven", "-1"} {
				b := e.signIn(c.other)
				r := b.post(c.path, b.form(url.Values{"revision": {revision}, "display_name": {"Contoso"}}))
				if r.status != http.StatusForbidden {
					t.Errorf("%s, who may not change it, saves revision %q: %s\nwant 403", c.other.Subject, revision, r)
				}
				b = e.signIn(c.allowed)
				r = b.post(c.path, b.form(url.Values{"revision": {revision}, "display_name": {"Contoso"}}))
				if r.status != http.StatusBadRequest {
					t.Errorf("%s saves revision %q: %s\nwant 400", c.allowed.Subject, revision, r)
				}
				mustContain(t, c.allowed.Subject+" revision "+revision, r, "reload the page and save again")
			}
		})
	}
}

// TestAuditRightJudgedBeforeItsFilters: the audit page and its export
// read the page's dates before the domain judged the user's right, so a
// user who may not read the log (an operator) got the 400 page about a
// bad date instead of 403. The right comes first; to a user who holds it
// the page is unchanged.
func TestAuditRightJudgedBeforeItsFilters(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	for _, path := range []string{
		"/console/audit?tenant=contoso&from=yesterday",
		"/console/audit?tenant=contoso&from=2025-03-02&to=2025-03-01",
		"/console/audit/export.csv?tenant=contoso&to=tomorrow",
	} {
		t.Run(path, func(t *testing.T) {
			if r := e.signIn(alice).get(path); r.status != http.StatusForbidden {
				t.Errorf("an operator, who may not read the log: %s\nwant 403", r)
			}
			for _, p := range []identity.Principal{contosoAdmin, auditor} {
				if r := e.signIn(p).get(path); r.status != http.StatusBadRequest {
					t.Errorf("%s: %s\nwant 400", p.Subject, r)
				}
			}
		})
	}
}

// TestFilingRightJudgedBeforeTheForm: the new-request form's duration was
// checked before the lifecycle judged whether the user may file at all,
// so a tenant's admin posting the form got the 400 form page, "Choose a
// duration from the list", instead of 403. The right comes first; an
// operator's form is answered as before.
func TestFilingRightJudgedBeforeTheForm(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	form := url.Values{"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-1"}, "reason": {"r"}, "duration": {"5h"}}
	for _, p := range []identity.Principal{contosoAdmin, mia, auditor} {
		b := e.signIn(p)
		if r := b.post("/console/requests", b.form(form)); r.status != http.StatusForbidden {
			t.Errorf("%s, who may not file: %s\nwant 403", p.Subject, r)
		}
	}
	b := e.signIn(alice)
	r := b.post("/console/requests", b.form(form))
	if r.status != http.StatusBadRequest {
		t.Fatalf("an operator's form with a bad duration: %s\nwant 400", r)
	}
	mustContain(t, "bad duration", r, "Choose a duration from the list")
}
