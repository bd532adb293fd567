package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestOnboardingOverLegacySwitchOffEndsManagerOnlyGrants: a tenant with
// Lockbox data from before onboarding existed (settings with the switch
// off, and a grant only the provider's manager approved, but no registry
// entry) onboarded with the switch on gets what turning it on gives
// (PutSettings' guard): every live grant no tenant approver approved ends
// in the same transaction. Onboarding replaced the settings and left that
// grant running under a switch that says only the tenant's approvers
// grant access.
func TestOnboardingOverLegacySwitchOffEndsManagerOnlyGrants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	lara := who("lara", "", identity.RoleLockboxAdmin)

	e.setLockbox(t, globalAdmin, false)
	managerOnly := e.file(t, operator, "exchange")
	if r := e.act(t, managerOnly.ID, grants.ActionApprove, manager); r.State != grants.StateApproved || grants.TenantApproved(r) {
		t.Fatalf("approved while off: %+v", r)
	}
	// As before onboarding existed: the settings and the grant, no
	// registry entry.
	if err := e.rdb.Del(ctx, keys.Tenant("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	_, st, err := e.tenants.Onboard(ctx, lara.Principal, lara.ClientIP, tenants.Onboarding{
		ID: "contoso", DisplayName: "Contoso", Domains: []string{"contoso.example"}, GlobalAdmins: []string{"gina@contoso.example"}})
	if err != nil || !st.LockboxEnabled {
		t.Fatalf("onboarding: %+v, %v", st, err)
	}
	if g, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("the manager-only grant survived onboarding with Customer Lockbox on: %+v, %v", g, err)
	}
	r, err := e.store.Get(ctx, manager.Principal, managerOnly.ID)
	if err != nil || r.State != grants.StateRevoked {
		t.Fatalf("manager-only request = %+v, %v; want revoked", r.State, err)
	}
	if last := r.History[len(r.History)-1]; last.Actor != "lara" || last.Comment != grants.LockboxOnComment {
		t.Fatalf("revocation event = %+v", last)
	}
}

// TestOnboardingOverLegacySwitchOffKeptOff: onboarded with the switch off,
// as the legacy settings had it, the manager-only grant runs on.
func TestOnboardingOverLegacySwitchOffKeptOff(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	lara := who("lara", "", identity.RoleLockboxAdmin)
	e.setLockbox(t, globalAdmin, false)
	managerOnly := e.file(t, operator, "exchange")
	e.act(t, managerOnly.ID, grants.ActionApprove, manager)
	if err := e.rdb.Del(ctx, keys.Tenant("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, _, err := e.tenants.Onboard(ctx, lara.Principal, lara.ClientIP, tenants.Onboarding{
		ID: "contoso", DisplayName: "Contoso", Domains: []string{"contoso.example"}, LockboxEnabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil {
		t.Fatalf("the grant ended though the switch stayed off: %v", err)
	}
}
