package console_test

import (
	"context"
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
