package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

// TestProviderStaffCannotDecideForTheTenant: one person known to the
// provider's issuer as an engineer or a support manager and to the
// tenant's as its global admin (the same user id, in any case) is not a
// second pair of eyes on their own request. Neither the engineer who filed
// it nor the manager who approved it decides it for the tenant; another
// approver of the tenant still does.
func TestProviderStaffCannotDecideForTheTenant(t *testing.T) {
	ctx := context.Background()
	engineer := who("alice@contoso.example", "", identity.RoleOperator)
	boss := who("mary@contoso.example", "", identity.RoleSupportManager)
	refused := []grants.Actor{
		// The engineer and the manager as the tenant's identity provider
		// signs them in.
		who("alice@contoso.example", "contoso", identity.RoleGlobalAdmin),
		who("Alice@Contoso.example", "contoso", identity.RoleGlobalAdmin),
		who("mary@contoso.example", "contoso", identity.RoleGlobalAdmin),
		who("MARY@contoso.example", "contoso", identity.RoleApprover),
	}
	e := newEnv(t)
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "mary@contoso.example"); err != nil {
		t.Fatal(err)
	}
	r, err := e.store.Create(ctx, engineer, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "repair", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.act(t, r.ID, grants.ActionApprove, boss)
	for _, a := range refused {
		for _, act := range []grants.Action{grants.ActionApprove, grants.ActionDeny} {
			_, err := e.store.Act(ctx, r.ID, act, a, "")
			fe, _ := errors.AsType[*fault.Error](err)
			if !errors.Is(err, grants.ErrForbidden) || fe == nil || fe.Code != "self_approval" {
				t.Errorf("%s %v: %s: %v, want 403 self_approval", a.Principal.Subject, a.Principal.Roles, act, err)
			}
		}
	}
	got, err := e.store.Get(ctx, globalAdmin.Principal, r.ID)
	if err != nil || got.State != grants.StatePendingCustomer {
		t.Fatalf("after the refused decisions: state %s, %v; want pending_customer", got.State, err)
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice@contoso.example", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("grant after the refused decisions: %v, want none", err)
	}
	if got = e.act(t, r.ID, grants.ActionApprove, globalAdmin); got.State != grants.StateApproved {
		t.Fatalf("another approver of the tenant: state %s, want approved", got.State)
	}
	// Ending access stays open to them: it can only take access away.
	if got = e.act(t, r.ID, grants.ActionRevoke, refused[0]); got.State != grants.StateRevoked {
		t.Fatalf("revoked by the engineer's tenant identity: state %s, want revoked", got.State)
	}
}

// TestSelfApprovalIsTheLifecyclesRule: SelfApproval, which the admin
// center asks before it offers a tenant user Approve and Deny, answers
// as the lifecycle refuses (self_approval) for the engineer's and the
// manager's tenant identities and for no other approver; and it answers
// nobody who may not see the request, so it tells no one outside the
// tenant that the request exists, nor who took part in it.
func TestSelfApprovalIsTheLifecyclesRule(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	engineer := who("alice@contoso.example", "", identity.RoleOperator)
	r, err := e.store.Create(ctx, engineer, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "repair", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.act(t, r.ID, grants.ActionApprove, who("mary@contoso.example", "", identity.RoleSupportManager))
	for _, c := range []struct {
		who  grants.Actor
		took bool
	}{
		{who("ALICE@contoso.example", "contoso", identity.RoleGlobalAdmin), true},
		{who("Mary@contoso.example", "contoso", identity.RoleGlobalAdmin), true},
		{globalAdmin, false},
	} {
		took, err := e.store.SelfApproval(ctx, c.who.Principal, r.ID)
		if err != nil || took != c.took {
			t.Errorf("%s: SelfApproval = %v, %v; want %v", c.who.Principal.Subject, took, err, c.took)
		}
		_, err = e.store.Act(ctx, r.ID, grants.ActionDeny, c.who, "")
		fe, _ := errors.AsType[*fault.Error](err)
		if refused := fe != nil && fe.Code == "self_approval"; refused != c.took {
			t.Errorf("%s: deny = %v; SelfApproval said %v", c.who.Principal.Subject, err, c.took)
		}
		if !c.took {
			break // the denial went through: the request is decided
		}
	}
	outsider := who("alice@fabrikam.example", "fabrikam", identity.RoleGlobalAdmin)
	_, getErr := e.store.Get(ctx, outsider.Principal, r.ID)
	if took, err := e.store.SelfApproval(ctx, outsider.Principal, r.ID); took || err == nil || getErr == nil || err.Error() != getErr.Error() {
		t.Errorf("another tenant's admin: SelfApproval = %v, %v; want Get's refusal %v", took, err, getErr)
	}
}

// TestOnlyTheRequesterCancels: withdrawing a request is a right, and
// rights follow the user id exactly as the provider's token spells it
// (Filed), unlike the two-person rule's refusals. The engineer's id in
// another case, even on a manager who sees every request, and the
// engineer's id signed in by the tenant's identity provider, who sees the
// tenant's requests, are refused (403); an operator whose own index does
// not hold the request is told it is not found. Nothing is written; the
// engineer then cancels it.
func TestOnlyTheRequesterCancels(t *testing.T) {
	ctx := context.Background()
	engineer := who("alice@contoso.example", "", identity.RoleOperator)
	e := newEnv(t)
	r, err := e.store.Create(ctx, engineer, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "repair", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name  string
		actor grants.Actor
		kind  error
	}{
		{"the engineer's id in another case, as a manager", who("Alice@Contoso.example", "", identity.RoleOperator, identity.RoleSupportManager), grants.ErrForbidden},
		{"the engineer's id in another case, as an operator", who("ALICE@contoso.example", "", identity.RoleOperator), grants.ErrNotFound},
		{"the engineer's id as the tenant's global admin", who("alice@contoso.example", "contoso", identity.RoleGlobalAdmin), grants.ErrForbidden},
		{"the tenant's global admin", globalAdmin, grants.ErrForbidden},
		{"a support manager", manager, grants.ErrForbidden},
	}
	for stage := range 2 {
		if stage == 1 {
			r = e.act(t, r.ID, grants.ActionApprove, manager)
		}
		for _, tc := range refused {
			if err := e.store.CanAct(ctx, tc.actor.Principal, r.ID, grants.ActionCancel); !errors.Is(err, tc.kind) {
				t.Errorf("%s, at %s: CanAct: %v, want %v", tc.name, r.State, err, tc.kind)
			}
			if _, err := e.store.Act(ctx, r.ID, grants.ActionCancel, tc.actor, ""); !errors.Is(err, tc.kind) {
				t.Errorf("%s, at %s: %v, want %v", tc.name, r.State, err, tc.kind)
			}
		}
	}
	got, err := e.store.Get(ctx, manager.Principal, r.ID)
	if err != nil || got.State != grants.StatePendingCustomer || len(got.History) != 2 {
		t.Fatalf("after the refused cancellations: %s with %d events, %v; want pending_customer with 2", got.State, len(got.History), err)
	}
	if got = e.act(t, r.ID, grants.ActionCancel, engineer); got.State != grants.StateCanceled {
		t.Fatalf("canceled by the engineer: state %s", got.State)
	}
}
