package proxy

import (
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
)

func TestGrantViewsOncePerGrant(t *testing.T) {
	approved := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	base := grants.Grant{
		RequestID: "0195a000-0000-7000-8000-000000000001", Tenant: "contoso", Operator: alice.Subject, Service: "exchange",
		Activities: []string{"Get-Mailbox"}, Approver: "admin@contoso.example", ApprovedBy: grants.KindTenant,
		ApprovedAt: approved, ExpiresAt: approved.Add(2 * time.Hour),
	}
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := grantsig.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	views := newGrantViews(signer, DefaultAssertionIssuer)
	first, err := views.view(&base, approved.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	same := base
	again, err := views.view(&same, approved.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("an equal grant got a new view: its assertion template was made twice")
	}

	// Under the same request and window, anything the policy sees that
	// differs gets a view of its own, never the remembered one.
	for name, change := range map[string]func(*grants.Grant){
		"approver":    func(g *grants.Grant) { g.Approver = "other@contoso.example" },
		"approved by": func(g *grants.Grant) { g.ApprovedBy = grants.KindProvider },
		"approved at": func(g *grants.Grant) { g.ApprovedAt = approved.Add(time.Second) },
		"activities":  func(g *grants.Grant) { g.Activities = []string{"Get-Mailbox", "Set-Mailbox"} },
		"operator":    func(g *grants.Grant) { g.Operator = "bob@provider.example" },
	} {
		g := base
		g.Activities = append([]string(nil), base.Activities...)
		change(&g)
		v, err := views.view(&g, approved.Add(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if v == first {
			t.Errorf("%s changed: the remembered view was reused", name)
		}
		if want := policyGrant(&g); v.policy.Approver != want.Approver || v.policy.TenantApproved != want.TenantApproved ||
			v.policy.ApprovedAt != want.ApprovedAt || len(v.policy.Activities) != len(want.Activities) || v.policy.Operator != want.Operator {
			t.Errorf("%s changed: view %+v, want %+v", name, v.policy, want)
		}
	}
}
