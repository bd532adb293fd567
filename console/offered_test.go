package console_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// consoleLinkRE finds the console links of a page.
var consoleLinkRE = regexp.MustCompile(`href="(/console/[^"]*)"`)

// TestOfferedLinksAreOpen follows, as each kind of user, every link the
// requests page, a pending and an approved request's pages and a tenant's
// registry page offer, and fails on one that leads to a refusal: a menu
// entry or a link to a page the user may not read (403), or a request
// action whose confirmation page says it is not open to them. A page that
// offers what the domain refuses tells its user they may do what they may
// not (a tenant's audit reader was offered Approve and Deny, and marked
// "Your decision" on requests no audit reader decides).
func TestOfferedLinksAreOpen(t *testing.T) {
	parallel(t)
	contosoReader := identity.Principal{Subject: "reader@contoso.example", Roles: []identity.Role{identity.RoleAuditReader}, TenantID: "contoso"}
	e := newEnv(t, func(cfg *console.Config) {
		cfg.DevIdentities = append(cfg.DevIdentities, console.DevIdentity{Principal: contosoReader, Description: "tenant audit reader"})
	})
	ctx := context.Background()
	// One request of alice's in each state that offers actions, one a
	// service: waiting for the manager, for the customer, and approved.
	file := func(service string) grants.Request {
		t.Helper()
		r, err := e.reqs.Create(ctx, grants.Actor{Principal: alice, ClientIP: "192.0.2.10"}, grants.CreateInput{
			Tenant: "contoso", Service: service, ServiceRequest: "SR-" + service, Reason: "the " + service + " data will not sync",
			Duration: grants.Duration(2 * time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	act := func(r grants.Request, p identity.Principal) {
		t.Helper()
		if _, err := e.reqs.Act(ctx, r.ID, grants.ActionApprove, grants.Actor{Principal: p, ClientIP: "192.0.2.12"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	filed, pending, approved := file("exchange"), file("sharepoint"), file("onedrive")
	act(pending, mia)
	act(approved, mia)
	act(approved, contosoApprover)

	for _, p := range []identity.Principal{alice, mia, auditor, lara, contosoAdmin, contosoApprover, contosoReader} {
		t.Run(p.Subject, func(t *testing.T) {
			b := e.signIn(p)
			pages := []string{"/console/requests", "/console/requests/" + pending.ID, "/console/requests/" + approved.ID, "/console/requests/" + filed.ID,
				"/console/tenants/contoso"}
			var links []string
			for _, page := range pages {
				r := b.get(page)
				if r.status == http.StatusNotFound {
					continue // a request this user does not see
				}
				if r.status != http.StatusOK {
					t.Fatalf("GET %s: %s", page, r)
				}
				for _, m := range consoleLinkRE.FindAllStringSubmatch(r.body, -1) {
					l := html.UnescapeString(m[1])
					if !strings.HasPrefix(l, "/console/static/") && !slices.Contains(links, l) {
						links = append(links, l)
					}
				}
			}
			if len(links) == 0 {
				t.Fatal("no links offered")
			}
			for _, l := range links {
				r := b.get(l)
				switch {
				case r.status == http.StatusForbidden:
					t.Errorf("the link %s offered to %s is refused: %s", l, p.Subject, problemOf(r))
				case r.status != http.StatusOK:
					t.Errorf("GET %s: %s", l, r)
				case strings.Contains(r.body, "is not open to you"):
					t.Errorf("the action %s offered to %s is not open to them", l, p.Subject)
				}
			}
		})
	}

	// A request waits for the decision of the tenant's approvers, not of
	// its audit readers.
	reader := e.signIn(contosoReader)
	for _, path := range []string{"/console/requests", "/console/requests/pending"} {
		r := reader.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r)
		}
		mustContain(t, path+" as the tenant's audit reader", r, pending.ID)
		mustNotContain(t, path+" as the tenant's audit reader", r, "Your decision", "wait for your decision")
	}
	// Nor are its audit reader's the decisions and the revocation, which
	// the lifecycle refuses them.
	for id, names := range map[string][]string{pending.ID: {"approve", "deny"}, approved.ID: {"revoke"}} {
		page := reader.get("/console/requests/" + id)
		for _, a := range names {
			mustNotContain(t, "request page as the tenant's audit reader", page, `data-testid="action-`+a+`"`)
			r := reader.get("/console/requests/" + id + "/" + a)
			mustContain(t, a+" page as the tenant's audit reader", r, "is not open to you")
			mustNotContain(t, a+" page as the tenant's audit reader", r, `data-testid="confirm"`)
			if r := reader.post("/console/requests/"+id+"/"+a, reader.form(nil)); r.status != http.StatusForbidden {
				t.Errorf("%s as the tenant's audit reader: %s", a, r)
			}
		}
	}
}

// problemRE finds what an error page says.
var problemRE = regexp.MustCompile(`data-testid="error">([^<]*)<`)

// problemOf is what the error page r says, or r itself when it is none.
func problemOf(r resp) string {
	if m := problemRE.FindStringSubmatch(r.body); m != nil {
		return html.UnescapeString(m[1])
	}
	return r.String()
}

// TestRevokedRequestSaysWhenAccessEnded revokes a grant an hour into its
// two-hour window and reads the request's page: access ended at the
// revocation, and the page must not tell its reader that it ends at the
// end of the window it was cut short of.
func TestRevokedRequestSaysWhenAccessEnded(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	req := e.managerApproved("contoso")
	approvedAt := e.clk.Now()
	if _, err := e.reqs.Act(ctx, req.ID, grants.ActionApprove, grants.Actor{Principal: contosoApprover, ClientIP: "192.0.2.12"}, ""); err != nil {
		t.Fatal(err)
	}
	windowEnd := approvedAt.Add(2 * time.Hour)
	e.clk.Advance(time.Hour)
	revokedAt := e.clk.Now()
	if _, err := e.reqs.Act(ctx, req.ID, grants.ActionRevoke, grants.Actor{Principal: contosoAdmin, ClientIP: "192.0.2.13"}, "done early"); err != nil {
		t.Fatal(err)
	}
	when := func(at time.Time) string { return at.UTC().Format("2006-01-02 15:04 UTC") }
	endRE := regexp.MustCompile(`<dt>(?:Access end[^<]*|Ended)</dt><dd>([^<]*)`)
	for _, p := range []identity.Principal{contosoAdmin, mia} {
		r := e.signIn(p).get("/console/requests/" + req.ID)
		if r.status != http.StatusOK {
			t.Fatalf("request page as %s: %s", p.Subject, r)
		}
		mustContain(t, "revoked request's page", r, `data-testid="state">Revoked<`)
		m := endRE.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("the page as %s does not say when access ended: %s", p.Subject, r)
		}
		if got := strings.TrimSpace(m[1]); got != when(revokedAt) {
			t.Errorf("as %s, access ends %q; it ended at the revocation, %q (the window would have ended %q)", p.Subject, got, when(revokedAt), when(windowEnd))
		}
	}
}

// TestRefusedActionIsNotOfferedAgain posts actions the lifecycle refuses
// (a denial of a request approved meanwhile, a tenant audit reader's
// approval) and reads the answer: it says why, keeps the comment typed,
// and does not offer the same form again, whose confirmation would be
// refused the same way. A comment too long is the user's to fix: that
// form comes back.
func TestRefusedActionIsNotOfferedAgain(t *testing.T) {
	parallel(t)
	contosoReader := identity.Principal{Subject: "reader@contoso.example", Roles: []identity.Role{identity.RoleAuditReader}, TenantID: "contoso"}
	e := newEnv(t, func(cfg *console.Config) {
		cfg.DevIdentities = append(cfg.DevIdentities, console.DevIdentity{Principal: contosoReader, Description: "tenant audit reader"})
	})
	req := e.managerApproved("contoso")
	path := "/console/requests/" + req.ID

	reader := e.signIn(contosoReader)
	r := reader.post(path+"/approve", reader.form(url.Values{"comment": {"looks fine to me"}}))
	if r.status != http.StatusForbidden {
		t.Fatalf("approve as the tenant's audit reader: %s", r)
	}
	mustContain(t, "refused approval", r, `data-testid="problem"`, "looks fine to me")
	mustNotContain(t, "refused approval", r, `data-testid="confirm"`, `action="`+path+`/approve"`)

	approver := e.signIn(contosoApprover)
	long := strings.Repeat("x", 1001)
	r = approver.post(path+"/approve", approver.form(url.Values{"comment": {long}}))
	if r.status != http.StatusBadRequest {
		t.Fatalf("approve with a comment too long: %s", r)
	}
	mustContain(t, "approval with a comment too long", r, `data-testid="problem"`, `data-testid="confirm"`, `action="`+path+`/approve"`)

	if r := approver.post(path+"/approve", approver.form(nil)); r.status != http.StatusSeeOther {
		t.Fatalf("approve: %s", r)
	}
	r = approver.post(path+"/deny", approver.form(url.Values{"comment": {"changed my mind"}}))
	if r.status != http.StatusConflict {
		t.Fatalf("deny an approved request: %s", r)
	}
	mustContain(t, "refused denial", r, `data-testid="problem"`, "changed my mind", `href="`+path+`"`)
	mustNotContain(t, "refused denial", r, `data-testid="confirm"`, `action="`+path+`/deny"`)
}

// TestManagerConfirmationSaysWhenAccessStarts reads the support manager's
// confirmation of an approval: with the tenant's Customer Lockbox on, the
// window starts at the customer's approval, not at the manager's, so the
// page must not promise the engineer access "from now". The customer's
// approver, whose approval starts it, is told "from now".
func TestManagerConfirmationSaysWhenAccessStarts(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.file("contoso")
	r := e.signIn(mia).get("/console/requests/" + req.ID + "/approve")
	if r.status != http.StatusOK {
		t.Fatalf("confirm page: %s", r)
	}
	mustContain(t, "manager's confirmation", r, `data-testid="confirm"`, "from the final approval")
	mustNotContain(t, "manager's confirmation", r, "for 2h from now")

	if _, err := e.reqs.Act(context.Background(), req.ID, grants.ActionApprove, grants.Actor{Principal: mia, ClientIP: "192.0.2.11"}, ""); err != nil {
		t.Fatal(err)
	}
	r = e.signIn(contosoApprover).get("/console/requests/" + req.ID + "/approve")
	mustContain(t, "customer's confirmation", r, `data-testid="confirm"`, "for 2h from now")
}
