package console_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestAssignedApproverSignsInWithoutARoleClaim: a tenant's approver is
// whom its global administrators assigned in Lockbox (the product
// contract's Customer Lockbox access approver); the lockbox-approver role
// in a token grants nothing by itself, and an identity provider need not
// send it. Such an approver signs in to the admin center, through the
// tenant's identity provider or the shared one, and decides there as the
// API lets them. A user of the tenant who is neither assigned nor given a
// role is still refused, and so is one whose assignment is removed when
// the session is verified again.
func TestAssignedApproverSignsInWithoutARoleClaim(t *testing.T) {
	parallel(t)
	ie := newIssuersEnv(t)
	req := ie.managerApproved("contoso")

	// Neither assigned nor given a role: no session.
	refused := func(sub string) {
		t.Helper()
		b := ie.browser()
		l := startLoginAt(t, ie.contoso, b, "/console/signin/oidc?tenant=contoso", oidcUser{sub: sub})
		wantProblem(t, ie.env, b.get(l.callback), "no_roles")
	}
	refused("bob@contoso.example")
	// An assignment counts in its own tenant only: fabrikam's approver
	// signed in by contoso's identity provider is an unassigned user.
	refused(fabrikamApprover.Subject)

	b := ie.browser()
	p := ie.signIn(t, b, ie.contoso, "/console/signin/oidc?tenant=contoso", oidcUser{sub: contosoApprover.Subject, name: "Alex Approver"})
	if p.Subject != contosoApprover.Subject || p.TenantID != "contoso" || !slices.Equal(p.Roles, []identity.Role{identity.RoleApprover}) {
		t.Fatalf("session principal %+v: want contoso's assigned approver", p)
	}
	mustContain(t, "requests page", b.get("/console/requests"), "Customer Lockbox access approver · contoso", req.ID, "Your decision")
	mustContain(t, "request page", b.get("/console/requests/"+req.ID), `data-testid="action-approve"`)
	if r := b.post("/console/requests/"+req.ID+"/approve", b.form(url.Values{"comment": {"ok"}})); r.status != http.StatusSeeOther {
		t.Fatalf("approve: %s", r)
	}
	if got := ie.request(req.ID); got.State != grants.StateApproved || got.Approver != contosoApprover.Subject {
		t.Fatalf("after the approver's approval: %s by %q", got.State, got.Approver)
	}
	b.post("/console/signout", b.form(nil))

	// The assignment removed, the approver's next sign-in is refused.
	if err := ie.ten.RemoveApprover(context.Background(), contosoAdmin, "192.0.2.1", "contoso", contosoApprover.Subject); err != nil {
		t.Fatal(err)
	}
	refused(contosoApprover.Subject)
}

// TestAssignedApproverSignsInThroughTheSharedIssuer: the same with one
// issuer for everyone, where the tenant claim makes a user the tenant's.
func TestAssignedApproverSignsInThroughTheSharedIssuer(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	b := e.browser()
	l := startLogin(t, e, m, b, oidcUser{sub: contosoApprover.Subject, tid: "contoso"})
	if r := b.get(l.callback); r.status != http.StatusOK || setCookie(t, r, sessionCookie) == nil {
		t.Fatalf("callback: %s", r)
	}
	mustContain(t, "requests page", b.get("/console/requests"), "Customer Lockbox access approver · contoso")

	// No tenant claim: the provider's staff, who have no assignment.
	b.post("/console/signout", b.form(nil))
	b = e.browser()
	l = startLogin(t, e, m, b, oidcUser{sub: contosoApprover.Subject})
	wantProblem(t, e, b.get(l.callback), "no_roles")
}

// TestAssignedApproverSessionEndsWithTheAssignment: a session that an
// assignment alone let in is verified again like any other, and ends once
// the tenant's global administrators removed the assignment: at its next
// request, not only at its next verification.
func TestAssignedApproverSessionEndsWithTheAssignment(t *testing.T) {
	parallel(t)
	e, m, _ := newReverifyEnv(t, oidctest.Config{})
	req := e.managerApproved("contoso")
	b := oidcSignIn(t, e, m, oidcUser{sub: contosoApprover.Subject, tid: "contoso"})
	e.clk.Advance(reverify)
	// Verified again while still assigned: the session goes on.
	mustContain(t, "request page", b.get("/console/requests/"+req.ID), `data-testid="action-approve"`)

	csrf := b.csrf()
	if err := e.ten.RemoveApprover(context.Background(), contosoAdmin, "192.0.2.1", "contoso", contosoApprover.Subject); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, e, b.post("/console/requests/"+req.ID+"/approve", url.Values{"csrf_token": {csrf}}))
	if got := e.request(req.ID); got.State != grants.StatePendingCustomer {
		t.Errorf("the request is %s", got.State)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "session ended") || !strings.Contains(logs, "no longer an approver") {
		t.Errorf("the log does not tell why the session ended:\n%s", logs)
	}
}
