package policy

import "slices"

// The reasons the default policy (rego/lockbox/authz/authz.rego) gives for a
// denial. rego/README.md documents each; TestDefaultPolicyReasons keeps this
// list and the policy in step.
//
// An allowed call has no reasons. A security team's own policy may add
// reasons of its own, so a caller that turns reasons into metric labels maps
// any reason that KnownReason rejects to one fixed value, keeping the label
// set bounded.
const (
	ReasonNoGrant              = "no_grant"                 // no grant for this operator, tenant and service
	ReasonTenantMismatch       = "tenant_mismatch"          // the grant is for another tenant
	ReasonServiceMismatch      = "service_mismatch"         // the grant is for another service
	ReasonOperatorMismatch     = "operator_mismatch"        // the grant is for another operator
	ReasonGrantExpired         = "grant_expired"            // now is at or past the grant's expires_at
	ReasonGrantWindowTooLong   = "grant_window_too_long"    // the grant's expires_at is more than 4 h after its approved_at, or not after it
	ReasonUnknownActivity      = "unknown_activity"         // not in the catalog for the service, method and access
	ReasonActivityNotRequested = "activity_not_requested"   // the grant names activities, not this one
	ReasonWriteNotRequested    = "write_not_requested"      // a write, and the grant names no activities
	ReasonTenantApproval       = "tenant_approval_required" // the tenant's lockbox is on and no tenant approver approved the grant
	ReasonNotAllowed           = "not_allowed"              // no rule allowed and none gave a reason
)

var reasons = []string{
	ReasonNoGrant,
	ReasonTenantMismatch,
	ReasonServiceMismatch,
	ReasonOperatorMismatch,
	ReasonGrantExpired,
	ReasonGrantWindowTooLong,
	ReasonUnknownActivity,
	ReasonActivityNotRequested,
	ReasonWriteNotRequested,
	ReasonTenantApproval,
	ReasonNotAllowed,
}

// Reasons returns the default policy's denial reasons. The slice is the
// caller's.
func Reasons() []string { return slices.Clone(reasons) }

// KnownReason reports whether r is one of Reasons.
func KnownReason(r string) bool { return slices.Contains(reasons, r) }
