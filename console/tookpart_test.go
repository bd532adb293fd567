package console_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// tookPartNote is what the request page tells a tenant user whose user id
// is the engineer's or the manager's of the request.
const tookPartNote = "You took part in this request for the provider; another approver of your organization must decide."

// TestProviderStaffAreNotOfferedTheTenantsDecision: one person known to
// the provider's issuer as the engineer who filed a request, or as the
// manager who approved it, and to the tenant's by the same user id (in
// any case) is refused the tenant's approval or denial by the lifecycle
// (self_approval). The page does not offer them Approve or Deny, and
// says why, to them alone: another approver of the tenant sees the
// buttons and no note, which would tell them who the provider's staff
// were.
func TestProviderStaffAreNotOfferedTheTenantsDecision(t *testing.T) {
	parallel(t)
	engineer := identity.Principal{Subject: "eve@contoso.example", Roles: []identity.Role{identity.RoleOperator}}
	manager := identity.Principal{Subject: "boss@contoso.example", Roles: []identity.Role{identity.RoleSupportManager}}
	// The same people as the tenant's identity provider signs them in.
	engineerAsAdmin := identity.Principal{Subject: "Eve@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"}
	managerAsApprover := identity.Principal{Subject: "BOSS@contoso.example", Roles: []identity.Role{identity.RoleApprover}, TenantID: "contoso"}
	e := newEnv(t, func(c *console.Config) {
		c.DevIdentities = append(c.DevIdentities,
			console.DevIdentity{Principal: engineerAsAdmin, Description: "global-admin"},
			console.DevIdentity{Principal: managerAsApprover, Description: "approver"})
	})
	ctx := context.Background()
	if err := e.ten.AddApprover(ctx, contosoAdmin, "192.0.2.1", "contoso", "boss@contoso.example"); err != nil {
		t.Fatal(err)
	}
	req := e.fileAs(engineer, "contoso")
	if _, err := e.reqs.Act(ctx, req.ID, grants.ActionApprove, grants.Actor{Principal: manager, ClientIP: "192.0.2.11"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []identity.Principal{engineerAsAdmin, managerAsApprover} {
		b := e.signIn(p)
		page := b.get("/console/requests/" + req.ID)
		mustContain(t, p.Subject+"'s view", page, tookPartNote)
		mustNotContain(t, p.Subject+"'s view", page, `data-testid="action-approve"`, `data-testid="action-deny"`)
		for _, a := range []string{"approve", "deny"} {
			mustContain(t, p.Subject+"'s "+a+" form", b.get("/console/requests/"+req.ID+"/"+a), "is not open to you")
		}
	}
	// Another approver of the tenant decides, and is told nothing of the
	// provider's staff.
	b := e.signIn(contosoAdmin)
	page := b.get("/console/requests/" + req.ID)
	mustContain(t, "another admin's view", page, `data-testid="action-approve"`, `data-testid="action-deny"`)
	mustNotContain(t, "another admin's view", page, tookPartNote, engineer.Subject, manager.Subject)
	if got := e.request(req.ID); got.State != grants.StatePendingCustomer {
		t.Fatalf("state %s, want pending_customer", got.State)
	}
}

// TestPendingListMarksWhatTheLifecycleLetsDecide: the requests page marks
// "Your decision" only on the requests the lifecycle would let its viewer
// decide, by the rules grants applies, whatever the case of the ids: not
// for a tenant user who filed the request, or approved it as the
// provider's manager, under the same user id (the tenant's rows are its
// view, which names neither); not for a manager whose token spells the
// engineer's id in other letters. Cancel stays the engineer's own, by the
// id exactly as their token spells it, as the lifecycle has it.
func TestPendingListMarksWhatTheLifecycleLetsDecide(t *testing.T) {
	parallel(t)
	engineer := identity.Principal{Subject: "eve@contoso.example", Roles: []identity.Role{identity.RoleOperator}}
	engineerAsAdmin := identity.Principal{Subject: "Eve@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"}
	// sam's id in other letters, with sam's roles: the two-person rule
	// takes them for sam.
	samAgain := identity.Principal{Subject: "SAM", Roles: []identity.Role{identity.RoleOperator, identity.RoleSupportManager}}
	e := newEnv(t, func(c *console.Config) {
		c.DevIdentities = append(c.DevIdentities,
			console.DevIdentity{Principal: engineerAsAdmin, Description: "global-admin"},
			console.DevIdentity{Principal: samAgain, Description: "operator, support-manager"})
	})
	ctx := context.Background()
	atTenant := e.fileAs(engineer, "contoso")
	if _, err := e.reqs.Act(ctx, atTenant.ID, grants.ActionApprove, grants.Actor{Principal: mia, ClientIP: "192.0.2.11"}, ""); err != nil {
		t.Fatal(err)
	}
	atManager := e.fileAs(sam, "fabrikam")

	for _, c := range []struct {
		who  identity.Principal
		id   string
		mine bool
	}{
		{engineerAsAdmin, atTenant.ID, false},
		{contosoAdmin, atTenant.ID, true},
		{samAgain, atManager.ID, false},
		{mia, atManager.ID, true},
	} {
		b := e.signIn(c.who)
		page := b.get("/console/requests")
		row := pendingRow(t, page, c.id)
		if got := strings.Contains(row, "Your decision"); got != c.mine {
			t.Errorf("%s: request %s marked as their decision: %v, want %v:\n%s", c.who.Subject, c.id, got, c.mine, row)
		}
		// What the lifecycle says of it.
		_, err := e.reqs.Act(ctx, c.id, grants.ActionDeny, grants.Actor{Principal: c.who}, "")
		refused := errors.Is(err, grants.ErrForbidden)
		if refused == c.mine {
			t.Errorf("%s: deny of %s: %v, yet the list marks it %v", c.who.Subject, c.id, err, c.mine)
		}
	}

	// The engineer's id in other letters cancels nothing, and is offered
	// no Cancel; the engineer is.
	req := e.fileAs(sam, "contoso")
	for _, c := range []struct {
		who    identity.Principal
		offers bool
	}{{samAgain, false}, {sam, true}} {
		page := e.signIn(c.who).get("/console/requests/" + req.ID)
		if c.offers {
			mustContain(t, c.who.Subject+"'s request page", page, `data-testid="action-cancel"`)
		} else if page.status == http.StatusOK {
			mustNotContain(t, c.who.Subject+"'s request page", page, `data-testid="action-cancel"`)
		}
		_, err := e.reqs.Act(ctx, req.ID, grants.ActionCancel, grants.Actor{Principal: c.who}, "")
		if (err == nil) != c.offers {
			t.Errorf("%s cancels %s: %v; the page offers it: %v", c.who.Subject, req.ID, err, c.offers)
		}
	}
}

// pendingRow returns the row of request id in the pending list of page.
func pendingRow(t *testing.T, page resp, id string) string {
	t.Helper()
	body := page.body
	if i := strings.Index(body, `id="history-h"`); i >= 0 {
		body = body[:i]
	}
	start := strings.Index(body, `<tr data-request="`+id+`"`)
	if start < 0 {
		t.Fatalf("request %s not in the pending list:\n%s", id, page.body)
	}
	end := strings.Index(body[start:], "</tr>")
	if end < 0 {
		t.Fatalf("row of %s does not end", id)
	}
	return body[start : start+end]
}
