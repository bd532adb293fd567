package identity

import (
	"errors"
	"fmt"
	"slices"
)

// Scope says whose users an issuer may sign in. It is fixed by Lockbox's
// configuration, never by a token: a tenant's identity provider can only
// sign in users of that tenant, and provider roles come only from the
// provider's issuer.
type Scope struct {
	kind   scopeKind
	tenant string
}

type scopeKind uint8

const (
	scopeUnset scopeKind = iota
	// scopeProvider: the provider's staff. No tenant; provider roles only.
	scopeProvider
	// scopeTenant: the users of one tenant, named by the configuration.
	scopeTenant
	// scopeShared: one issuer for everyone, the tenant read from the
	// token's "tid" claim. It is what a single issuer configured by the
	// LOCKBOX_JWT_* variables does, and what "lockbox dev" relies on: whoever
	// controls that issuer can mint a user of any tenant, so several issuers
	// each use one of the other scopes.
	scopeShared
)

// ProviderScope is the scope of the provider's own identity provider: its
// users are provider staff and may carry the provider roles (operator,
// support-manager, audit-reader, lockbox-admin).
func ProviderScope() Scope { return Scope{kind: scopeProvider} }

// TenantScope is the scope of tenant's identity provider: its users belong
// to tenant, whatever their tokens claim, and carry tenant roles only
// (global-admin, lockbox-approver, audit-reader).
func TenantScope(tenant string) Scope { return Scope{kind: scopeTenant, tenant: tenant} }

// SharedScope is the scope of an issuer trusted for everyone: the token's
// "tid" claim makes a tenant user, its absence provider staff, and any known
// role is kept. It exists for the single-issuer configuration (LOCKBOX_JWT_*)
// and development; a deployment with several issuers gives each a provider
// or tenant scope instead.
func SharedScope() Scope { return Scope{kind: scopeShared} }

// IsProvider reports whether s is ProviderScope.
func (s Scope) IsProvider() bool { return s.kind == scopeProvider }

// IsShared reports whether s is SharedScope.
func (s Scope) IsShared() bool { return s.kind == scopeShared }

// Tenant is the tenant of a TenantScope, "" for the others.
func (s Scope) Tenant() string { return s.tenant }

func (s Scope) String() string {
	switch s.kind {
	case scopeProvider:
		return "provider"
	case scopeTenant:
		return "tenant:" + s.tenant
	case scopeShared:
		return "shared"
	}
	return "unset"
}

// Check reports whether s is a scope at all: the zero Scope is a
// configuration mistake, not a default, so that forgetting to set one can
// never yield the shared scope.
func (s Scope) Check() error {
	switch s.kind {
	case scopeProvider, scopeShared:
		return nil
	case scopeTenant:
		if !ValidTenantID(s.tenant) {
			return fmt.Errorf("tenant scope %q is not a valid tenant id", s.tenant)
		}
		return nil
	}
	return errors.New("no scope: use ProviderScope, TenantScope or SharedScope")
}

// ProviderRole reports whether r may only be held by the provider's staff.
// audit-reader is both a provider and a tenant role.
func (r Role) ProviderRole() bool {
	switch r {
	case RoleOperator, RoleSupportManager, RoleLockboxAdmin, RoleAuditReader:
		return true
	}
	return false
}

// TenantRole reports whether r is a role of a tenant's users.
func (r Role) TenantRole() bool {
	switch r {
	case RoleGlobalAdmin, RoleApprover, RoleAuditReader:
		return true
	}
	return false
}

// allows reports whether a user signed in with scope s may hold role r.
func (s Scope) allows(r Role) bool {
	switch s.kind {
	case scopeProvider:
		return r.ProviderRole()
	case scopeTenant:
		return r.TenantRole()
	case scopeShared:
		return r.Known()
	}
	return false
}

// Errors of Scope.Principal, for a caller that explains them (the admin
// center's sign-in page). Verify wraps them as ErrUnauthenticated.
var (
	ErrInvalidSubject = errors.New("invalid subject")
	ErrInvalidTenant  = errors.New("invalid tenant id")
)

// ClaimedTenant reads the tenant claim of a shared-scope token (v, the
// claim's decoded JSON value; present, whether the token has the claim at
// all). In the shared scope a principal without a tenant is the provider's
// own staff, so a claim that is present but null, empty or not a string is
// ErrInvalidTenant, never "no tenant". The API's verifier and the admin
// center's sign-in both read the claim through it, so the two can't drift.
func ClaimedTenant(v any, present bool) (string, error) {
	if !present {
		return "", nil
	}
	if s, ok := v.(string); ok && s != "" {
		return s, nil
	}
	return "", ErrInvalidTenant
}

// Principal makes the principal a user of this scope is: subject and roles
// as the identity provider said, the tenant as the scope says. For the
// shared scope claimedTenant (the token's "tid", "" for none) is the tenant;
// the other scopes never look at it. Unknown roles and roles the scope does
// not allow are dropped, not refused: identity providers put roles of other
// applications in the same token, and a tenant's provider naming a provider
// role grants nothing.
func (s Scope) Principal(subject string, roles []string, claimedTenant string) (Principal, error) {
	if !ValidSubject(subject) {
		return Principal{}, ErrInvalidSubject
	}
	p := Principal{Subject: subject}
	switch s.kind {
	case scopeShared:
		if claimedTenant != "" && !ValidTenantID(claimedTenant) {
			return Principal{}, ErrInvalidTenant
		}
		p.TenantID = claimedTenant
	case scopeTenant:
		p.TenantID = s.tenant
	case scopeProvider:
	default:
		return Principal{}, errors.New("identity: no scope")
	}
	for _, name := range roles {
		r := Role(name)
		if r.Known() && s.allows(r) && !slices.Contains(p.Roles, r) {
			p.Roles = append(p.Roles, r)
		}
	}
	return p, nil
}
