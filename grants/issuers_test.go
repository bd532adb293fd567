package grants_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

// TestTwoPersonRuleAcrossIssuers holds the separation of duties to
// principals as the verifier makes them from tokens of several issuers:
// two provider issuers (a provider may run more than one identity
// provider for its staff) and contoso's own.
//
// A person is their user id, whichever issuer signed the token. The
// provider's staff are one namespace of ids, whoever signs them in: their
// grants, their own requests and the right to cancel are keyed by the id
// alone, so the same id from the provider's second issuer is the
// requester, and is refused as manager (self_approval), as is the same id
// in another ASCII case. Under the tenant's issuer the requester's or the
// manager's id is refused as the tenant's approver too (the same person
// known to both sides). Provider roles come only from the provider's
// issuers: contoso's issuer naming the support-manager role makes no
// manager. A different manager, and then a different approver of the
// tenant, decide.
func TestTwoPersonRuleAcrossIssuers(t *testing.T) {
	ctx := context.Background()
	const (
		provA    = "https://login.provider.example"
		provB    = "https://sts.provider.example"
		contoso  = "https://login.contoso.example/v2"
		audience = "lockbox"
	)
	dir := t.TempDir()
	keys := map[string][]byte{}
	var issuers []identity.IssuerConfig
	for i, is := range []struct {
		iss   string
		scope identity.Scope
	}{{provA, identity.ProviderScope()}, {provB, identity.ProviderScope()}, {contoso, identity.TenantScope("contoso")}} {
		key, err := identity.GenerateDevKey()
		if err != nil {
			t.Fatal(err)
		}
		_, jwks, err := identity.WriteDevKeys(filepath.Join(dir, string(rune('a'+i))), key)
		if err != nil {
			t.Fatal(err)
		}
		keys[is.iss] = key
		issuers = append(issuers, identity.IssuerConfig{Issuer: is.iss, Audience: audience, Scope: is.scope, JWKSFile: jwks})
	}
	e := newEnv(t)
	v, err := identity.NewVerifier(identity.Config{Issuers: issuers, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// signedIn is the actor the verifier makes of a token iss signs for
	// sub with roles (a tenant issuer's token claiming the tenant, as
	// identity providers that know nothing of Lockbox's scopes do).
	signedIn := func(iss, sub string, roles ...identity.Role) grants.Actor {
		t.Helper()
		c := identity.Claims{Subject: sub, Roles: roles}
		if iss == contoso {
			c.TenantID = "contoso"
		}
		raw, err := identity.Mint(keys[iss], iss, audience, c, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("%s %s: %v", iss, sub, err)
		}
		return grants.Actor{Principal: p, ClientIP: "198.51.100.4"}
	}
	const engineer, boss = "alice@contoso.example", "mary@contoso.example"
	r, err := e.store.Create(ctx, signedIn(provA, engineer, identity.RoleOperator), grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "repair", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []struct {
		name  string
		actor grants.Actor
		code  string // the refusal's (403 but for not_found); "" for none
		want  grants.State
	}{
		{"the requester's id from the provider's second issuer", signedIn(provB, engineer, identity.RoleSupportManager), "self_approval", grants.StatePendingManager},
		{"the requester's id in another case", signedIn(provA, "Alice@Contoso.example", identity.RoleSupportManager), "self_approval", grants.StatePendingManager},
		// Dropped by the scope, the role leaves a user of contoso with no
		// right to see the request.
		{"the manager's id from the tenant's issuer, claiming the manager's role", signedIn(contoso, boss, identity.RoleSupportManager), "not_found", grants.StatePendingManager},
		{"another manager, from the provider's second issuer", signedIn(provB, boss, identity.RoleSupportManager), "", grants.StatePendingCustomer},
		{"the requester's id from the tenant's issuer", signedIn(contoso, engineer, identity.RoleGlobalAdmin), "self_approval", grants.StatePendingCustomer},
		{"the manager's id from the tenant's issuer", signedIn(contoso, "MARY@contoso.example", identity.RoleGlobalAdmin), "self_approval", grants.StatePendingCustomer},
		{"the requester from the provider's issuer, claiming the tenant's role", signedIn(provB, engineer, identity.RoleOperator, identity.RoleGlobalAdmin), "forbidden", grants.StatePendingCustomer},
		{"another user of the tenant, its global admin", signedIn(contoso, "gina@contoso.example", identity.RoleGlobalAdmin), "", grants.StateApproved},
	} {
		got, err := e.store.Act(ctx, r.ID, grants.ActionApprove, s.actor, "")
		switch fe, _ := errors.AsType[*fault.Error](err); {
		case s.code == "" && err != nil:
			t.Fatalf("step %d (%s): %v", i, s.name, err)
		case s.code != "" && (fe == nil || fe.Code != s.code):
			t.Fatalf("step %d (%s): %v, want it refused: %s", i, s.name, err, s.code)
		}
		if got, err = e.store.Get(ctx, globalAdmin.Principal, r.ID); err != nil || got.State != s.want {
			t.Fatalf("step %d (%s): state %s, %v; want %s", i, s.name, got.State, err, s.want)
		}
	}
}
