package console_test

import (
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestAuthorizationMatrix pins who may open each page and post each form
// of the admin center, for every role of the provider and the tenant, a
// user of another tenant and no session, as DESIGN.md and the README's
// "Who may do what" say. The request in it is alice's, filed for contoso
// and awaiting the manager. Every post a principal must be refused is
// checked to leave Redis as it was (sessions aside); posts that are
// allowed are left to the tests of each page, as they change what the
// rest reads.
//
// A page about a request or a registry entry the principal may not see
// must answer as it does for a missing one, so that its existence is not
// confirmed.
func TestAuthorizationMatrix(t *testing.T) {
	parallel(t)
	bob := identity.Principal{Subject: "bob", Roles: []identity.Role{identity.RoleOperator}}
	contosoAuditor := identity.Principal{Subject: "auditor@contoso.example", Roles: []identity.Role{identity.RoleAuditReader}, TenantID: "contoso"}
	e := newEnv(t, func(cfg *console.Config) {
		for _, p := range []identity.Principal{bob, contosoAuditor} {
			cfg.DevIdentities = append(cfg.DevIdentities, console.DevIdentity{Principal: p, Description: "matrix"})
		}
	})
	req := e.file("contoso")
	const missing = "00000000-0000-4000-8000-000000000000"

	who := []struct {
		name string
		p    *identity.Principal // nil: no session
	}{
		{"no session", nil},
		{"requester (operator)", &alice},
		{"other operator", &bob},
		{"support manager", &mia},
		{"provider audit reader", &auditor},
		{"lockbox admin", &lara},
		{"tenant global admin", &contosoAdmin},
		{"tenant assigned approver", &contosoApprover},
		{"tenant audit reader", &contosoAuditor},
		{"other tenant's global admin", &fabrikamAdmin},
	}
	browsers := make([]*browser, len(who))
	for i, w := range who {
		if w.p == nil {
			browsers[i] = e.browser()
		} else {
			browsers[i] = e.signIn(*w.p)
		}
	}

	const (
		out = -1 // the redirect to sign in
		ok  = http.StatusOK
		no  = http.StatusForbidden
		nf  = http.StatusNotFound
		cf  = http.StatusConflict
		bad = http.StatusBadRequest
		yes = 0 // allowed, and a post would change what the rest reads
		// seen is a post's redirect to the page that shows its result.
		seen = http.StatusSeeOther
	)
	type call struct {
		name, method, path string
		form               url.Values
		want               [10]int
		// hides is the path with a missing object, whose answer a refused
		// principal (404) must get too.
		hides string
	}
	reqPath := "/console/requests/" + req.ID
	calls := []call{
		//                                                            none alice bob  mia  audr lara cAdm cAppr cAud fAdm
		{"request page", "GET", reqPath, nil, [10]int{out, ok, nf, ok, ok, nf, ok, ok, ok, nf}, "/console/requests/" + missing},
		{"confirm page", "GET", reqPath + "/approve", nil, [10]int{out, ok, nf, ok, ok, nf, ok, ok, ok, nf}, "/console/requests/" + missing + "/approve"},
		{"approve", "POST", reqPath + "/approve", url.Values{}, [10]int{out, no, nf, yes, no, nf, cf, cf, no, nf}, "/console/requests/" + missing + "/approve"},
		{"deny", "POST", reqPath + "/deny", url.Values{}, [10]int{out, no, nf, yes, no, nf, cf, cf, no, nf}, "/console/requests/" + missing + "/deny"},
		{"revoke", "POST", reqPath + "/revoke", url.Values{}, [10]int{out, no, nf, cf, no, nf, cf, cf, no, nf}, "/console/requests/" + missing + "/revoke"},
		{"cancel", "POST", reqPath + "/cancel", url.Values{}, [10]int{out, yes, nf, no, no, nf, no, no, no, nf}, "/console/requests/" + missing + "/cancel"},
		{"new request page", "GET", "/console/requests/new", nil, [10]int{out, ok, ok, no, no, no, no, no, no, no}, ""},
		{"file a request", "POST", "/console/requests", url.Values{"tenant": {"contoso"}, "service": {"sharepoint"}, "service_request": {"SR-2"}, "reason": {"r"}, "duration": {"1h"}},
			[10]int{out, yes, yes, no, no, no, no, no, no, no}, ""},
		{"settings page", "GET", "/console/settings?tenant=contoso", nil, [10]int{out, no, no, ok, no, no, ok, ok, no, ok}, ""},
		// The form's unticked switch would turn contoso's lockbox off.
		// The provider's staff have no tenant to save settings for: they are
		// refused as the API refuses them, not shown a form to try again.
		{"save settings", "POST", "/console/settings", url.Values{}, [10]int{out, no, no, no, no, no, yes, yes, no, yes}, ""},
		{"approvers page", "GET", "/console/approvers?tenant=contoso", nil, [10]int{out, no, no, ok, no, no, ok, ok, no, ok}, ""},
		// The forms change the session's own tenant: fabrikam's admin can't
		// add contoso's user to fabrikam, and removing one from fabrikam,
		// where they are no approver, changes nothing.
		{"add approver", "POST", "/console/approvers", url.Values{"user": {"eve@contoso.example"}}, [10]int{out, no, no, no, no, no, yes, no, no, bad}, ""},
		{"remove approver", "POST", "/console/approvers/remove", url.Values{"user": {contosoApprover.Subject}}, [10]int{out, no, no, no, no, no, yes, no, no, seen}, ""},
		{"tenants page", "GET", "/console/tenants", nil, [10]int{out, ok, ok, ok, ok, ok, ok, ok, ok, ok}, ""},
		{"tenant page", "GET", "/console/tenants/contoso", nil, [10]int{out, ok, ok, ok, ok, ok, ok, ok, ok, nf}, "/console/tenants/northwind"},
		{"onboard a tenant", "POST", "/console/tenants", url.Values{"id": {"northwind"}, "display_name": {"Northwind"}, "domains": {"northwind.example"}},
			[10]int{out, no, no, no, no, yes, no, no, no, no}, ""},
		{"change a registry entry", "POST", "/console/tenants/contoso", url.Values{"display_name": {"Contoso"}, "domains": {"contoso.example"}},
			[10]int{out, no, no, no, no, yes, no, no, no, no}, ""},
		{"audit page", "GET", "/console/audit?tenant=contoso", nil, [10]int{out, no, no, no, ok, no, ok, no, ok, ok}, ""},
		{"audit export", "GET", "/console/audit/export.csv?tenant=contoso", nil, [10]int{out, no, no, no, ok, no, ok, no, ok, ok}, ""},
		{"audit verification", "GET", "/console/audit?tenant=contoso&verify=1", nil, [10]int{out, no, no, no, ok, no, ok, no, ok, ok}, ""},
	}
	// state is what a refused post must leave as it was: everything in
	// Redis but the console's own sessions.
	session := regexp.MustCompile(`console:`)
	state := func() map[string]string {
		all := e.dump()
		maps.DeleteFunc(all, func(k, _ string) bool { return session.MatchString(k) })
		return all
	}
	for _, c := range calls {
		for i, w := range who {
			want := c.want[i]
			if want == yes {
				continue
			}
			t.Run(c.name+"/"+w.name, func(t *testing.T) {
				b := browsers[i]
				send := func(path string) resp {
					if c.method == http.MethodGet {
						return b.get(path)
					}
					form := url.Values{}
					maps.Copy(form, c.form)
					if w.p != nil {
						form = b.form(form)
					}
					return b.post(path, form)
				}
				before := state()
				r := send(c.path)
				switch {
				case want == out:
					if !signedOut(r) {
						t.Fatalf("%s %s without a session: %s", c.method, c.path, r)
					}
				case r.status != want:
					t.Fatalf("%s %s as %s: status %d, want %d\n%s", c.method, c.path, w.name, r.status, want, r)
				}
				if r.status == no {
					// A refusal offers no form to try again.
					mustNotContain(t, c.name, r, `id="lockbox_enabled"`, `data-testid="add-approver"`, `id="new-request"`)
				}
				if c.method == http.MethodPost {
					if after := state(); !maps.Equal(before, after) {
						t.Errorf("the refused %s changed Redis", c.name)
					}
				}
				// Another tenant's users see nothing of contoso's, whatever
				// the page answers.
				if w.p != nil && !w.p.IsProvider() && !w.p.InTenant("contoso") {
					mustNotContain(t, c.name, r, "SR-contoso", "Mailbox of contoso", contosoAdmin.Subject, contosoApprover.Subject)
				}
				// Tenant users never see who the provider's staff are.
				if w.p != nil && !w.p.IsProvider() && r.status == ok {
					for _, name := range []string{alice.Subject, mia.Subject} {
						if regexp.MustCompile(`>\s*` + name + `\b`).MatchString(r.body) {
							t.Errorf("%s shows the provider's %q to a tenant user", c.name, name)
						}
					}
				}
				if want != nf || c.hides == "" {
					return
				}
				m := send(c.hides)
				if m.status != r.status || strings.ReplaceAll(r.body, req.ID, missing) != strings.ReplaceAll(strings.ReplaceAll(m.body, "northwind", "contoso"), req.ID, missing) {
					t.Errorf("refused and missing differ:\n%s\n---\n%s", r, m)
				}
			})
		}
	}
}
