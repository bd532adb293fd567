// Package identity turns a bearer token into a verified Principal. It owns the
// role names and the rules that derive from them (provider vs tenant users).
// Identity comes only from a token whose signature, issuer, audience and
// validity window were checked here; nothing else in a request is trusted.
//
// It knows nothing of HTTP: callers hand it the raw token string.
package identity

import (
	"slices"
	"strings"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Role is a coarse permission carried in the token's roles claim.
type Role string

// The roles Lockbox understands. Unknown roles in a token are ignored.
const (
	RoleOperator       Role = "operator"
	RoleSupportManager Role = "support-manager"
	RoleGlobalAdmin    Role = "global-admin"
	RoleApprover       Role = "lockbox-approver"
	RoleAuditReader    Role = "audit-reader"
	// RoleLockboxAdmin is the provider's Lockbox administrator: onboards
	// tenants and keeps their registry entries.
	RoleLockboxAdmin Role = "lockbox-admin"
)

// Known reports whether r is one of the roles above. Verify drops the others,
// so a role added for another application can never grant anything here.
func (r Role) Known() bool {
	switch r {
	case RoleOperator, RoleSupportManager, RoleGlobalAdmin, RoleApprover, RoleAuditReader, RoleLockboxAdmin:
		return true
	}
	return false
}

// ValidSubject reports whether s may be a Principal's Subject. Subjects end up
// in Redis keys and audit records, so the alphabet leaves out separators,
// spaces and control characters that could forge a key or a log line.
func ValidSubject(s string) bool { return keys.IsUser(s) }

// FoldSubject is s with its ASCII letters in lower case and every other
// byte as it is: the form in which two spellings of one user id compare
// equal. User principal names, which most identity providers put in the
// subject of people, are case-insensitive (Alice@Contoso.com and
// alice@contoso.com are one person). Only ASCII is folded: subjects are
// ASCII (ValidSubject), and Unicode folding (strings.EqualFold,
// strings.ToLower) would make a name that is no subject (a Kelvin sign for
// k) equal to one that is.
func FoldSubject(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// SameSubject reports whether a and b may name one person: equal without
// ASCII case (FoldSubject). It is for refusals, such as the two-person
// rule, where taking two ids for one person fails closed; what an id may
// see or do is still keyed by the id exactly as its token spells it.
func SameSubject(a, b string) bool {
	return len(a) == len(b) && FoldSubject(a) == FoldSubject(b)
}

// ValidTenantID reports whether t may be a Principal's TenantID. The shape is
// a DNS label, for the same reason as ValidSubject and so that a tenant id is
// safe to use in host names and paths unescaped.
func ValidTenantID(t string) bool { return keys.IsTenant(t) }

// Principal is a verified identity.
type Principal struct {
	// Subject is the token's "sub": a stable user identifier.
	Subject string
	// Roles are the known roles the token carries.
	Roles []Role
	// TenantID is set for tenant users, empty for the provider's own
	// staff. It comes from the scope of the issuer that signed the user in
	// (the token's "tid" only for an issuer in the shared scope). A
	// principal with a TenantID is never a provider identity, whatever roles
	// it claims.
	TenantID string
	// Email is the user's e-mail address when the token has one; for
	// display only, never for a decision.
	Email string `json:",omitempty"`
}

// Has reports whether p carries role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

// IsProvider reports whether p is one of the provider's staff (no tenant).
func (p Principal) IsProvider() bool { return p.TenantID == "" }

// InTenant reports whether p is a user of tenant t.
func (p Principal) InTenant(t string) bool { return p.TenantID != "" && p.TenantID == t }

// HasProviderOnlyRole reports whether p carries a role that only the
// provider's staff hold: operator, support-manager or lockbox-admin.
// (audit-reader is a tenant role too, so it is not one of them.) Only the
// shared scope can give such a role to a principal with a tenant; whoever
// carries one never acts as a tenant's approver or administrator, whatever
// tenant roles the token claims beside it.
func (p Principal) HasProviderOnlyRole() bool {
	return slices.ContainsFunc(p.Roles, func(r Role) bool { return r.ProviderRole() && !r.TenantRole() })
}

// ActsInTenant reports whether p may act or read as a user of tenant t,
// before the tenant's own rule on who its users are (its registered
// domains), which only its registry knows: p is in t and carries no
// provider-only role.
func (p Principal) ActsInTenant(t string) bool { return p.InTenant(t) && !p.HasProviderOnlyRole() }

// IsGlobalAdminOf reports whether p is a global administrator of tenant t.
func (p Principal) IsGlobalAdminOf(t string) bool { return p.InTenant(t) && p.Has(RoleGlobalAdmin) }
