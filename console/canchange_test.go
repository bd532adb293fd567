package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestTenantFormsFollowTheDomain renders the approvers and settings pages
// of contoso as every kind of principal that names the tenant, and holds
// their forms to the tenants store's answer for that principal: shown
// exactly when the store would take what they send. A form the store
// refuses would only offer a dead end; one withheld from someone it
// accepts would hide a right. The principals that differ from contoso's
// global admin only in what the store checks beyond the global-admin role
// (a provider-only role beside it, a domain that is not the tenant's) are
// the ones a page asking the role alone would get wrong.
func TestTenantFormsFollowTheDomain(t *testing.T) {
	parallel(t)
	ga, op, sm, la, ar, ap := identity.RoleGlobalAdmin, identity.RoleOperator, identity.RoleSupportManager, identity.RoleLockboxAdmin,
		identity.RoleAuditReader, identity.RoleApprover
	contoso := func(sub string, roles ...identity.Role) identity.Principal {
		return identity.Principal{Subject: sub, TenantID: "contoso", Roles: roles}
	}
	extra := map[string]identity.Principal{
		"global admin and operator":          contoso("gaop@contoso.example", ga, op),
		"global admin and support manager":   contoso("gasm@contoso.example", ga, sm),
		"global admin and lockbox admin":     contoso("gala@contoso.example", ga, la),
		"global admin and audit reader":      contoso("gaar@contoso.example", ga, ar),
		"global admin of another domain":     contoso("admin@elsewhere.example", ga),
		"approver and global admin":          contoso("approver2@contoso.example", ap, ga),
		"approver and operator":              contoso("approver3@contoso.example", ap, op),
		"tenant audit reader":                contoso("reader@contoso.example", ar),
		"support manager and lockbox admin":  {Subject: "mila", Roles: []identity.Role{sm, la}},
		"global admin role without a tenant": {Subject: "gus", Roles: []identity.Role{ga}},
	}
	who := map[string]identity.Principal{"global admin": contosoAdmin, "assigned approver": contosoApprover,
		"support manager": mia, "lockbox admin": lara}
	e := newEnv(t, func(cfg *console.Config) {
		for name, p := range extra {
			cfg.DevIdentities = append(cfg.DevIdentities, console.DevIdentity{Principal: p, Description: name})
		}
	})
	ctx := context.Background()
	for name, p := range extra {
		who[name] = p
		if p.Has(identity.RoleApprover) {
			if err := e.ten.AddApprover(ctx, contosoAdmin, "192.0.2.1", "contoso", p.Subject); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, p := range who {
		b := e.signIn(p)
		r := b.get("/console/approvers?tenant=contoso")
		shown := r.status == http.StatusOK && containsAll(r.body, `data-testid="add-approver"`, `action="/console/approvers/remove"`)
		const newbie = "newbie@contoso.example"
		err := e.ten.AddApprover(ctx, p, "192.0.2.1", "contoso", newbie)
		if err == nil {
			if err := e.ten.RemoveApprover(ctx, contosoAdmin, "192.0.2.1", "contoso", newbie); err != nil {
				t.Fatal(err)
			}
		}
		if name == "global admin" && !shown {
			t.Fatalf("contoso's global admin is not shown the approvers forms: %s", r)
		}
		if accepted := err == nil; shown != accepted {
			t.Errorf("%s (%+v): approvers page shows the forms: %v, the store takes an assignment: %v (%v); page: %d", name, p, shown, accepted, err, r.status)
		}

		r = b.get("/console/settings?tenant=contoso")
		shown = r.status == http.StatusOK && containsAll(r.body, `action="/console/settings"`, `data-testid="save"`)
		err = e.ten.CanConfigure(ctx, p, "contoso")
		if accepted := err == nil; shown != accepted {
			t.Errorf("%s (%+v): settings page shows the form: %v, the store takes a change: %v (%v); page: %d", name, p, shown, accepted, err, r.status)
		}
	}
}

func containsAll(s string, want ...string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
