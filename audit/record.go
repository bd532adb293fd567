// Package audit owns Lockbox's audit records — shaped like the Microsoft 365
// unified audit log — and their durable storage: one Redis stream per
// tenant, appended inside the same transaction as the change it records, so
// a change and its record are committed together or not at all.
//
// It knows nothing of HTTP; callers decide who may read which view.
package audit

import (
	"time"
)

// Operations recorded by the control plane. Operator actions through the
// proxy use the activity names of the catalog (e.g. "Get-Mailbox").
const (
	OpNewRequest      = "New-AccessToCustomerDataRequest"
	OpManagerDecision = "Set-ManagerApprovalForCustomerDataRequest"
	OpTenantDecision  = "Set-AccessToCustomerDataRequest"
	OpCancelRequest   = "Stop-AccessToCustomerDataRequest"
	OpRevokeAccess    = "Revoke-AccessToCustomerDataRequest"
	OpExpireRequest   = "Expire-AccessToCustomerDataRequest"
	OpCompleteAccess  = "Complete-AccessToCustomerDataRequest"
	OpSetSettings     = "Set-CustomerLockboxSettings"
	OpAddApprover     = "Add-CustomerLockboxApprover"
	OpRemoveApprover  = "Remove-CustomerLockboxApprover"
	OpOnboardTenant   = "New-CustomerLockboxTenant"
	OpUpdateTenant    = "Set-CustomerLockboxTenant"
	ApprovalApprove   = "Approve"
	ApprovalDeny      = "Deny"
	ResultSucceeded   = "Succeeded"
	UserTypeDcAdmin   = "DcAdmin"
	OperatorUserID    = "Microsoft Operator"
	// ProviderUserID is how tenants see the provider's staff other than
	// its engineers: support managers deciding requests, Lockbox
	// administrators onboarding tenants. The real id is kept in
	// ProviderUserId.
	ProviderUserID     = "Microsoft Support"
	SystemUserID       = "Customer Lockbox"
	WorkloadLockbox    = "CustomerLockbox"
	creationTimeLayout = time.RFC3339
)

// Record is one audit record. Field names follow the unified audit log so
// existing tooling and habits carry over.
type Record struct {
	Id             string    `json:"Id"`
	CreationTime   time.Time `json:"CreationTime"`
	Operation      string    `json:"Operation"`
	OrganizationId string    `json:"OrganizationId"`
	// Workload is the service (exchange, sharepoint, onedrive) for request
	// and operator records, CustomerLockbox for tenant settings.
	Workload string `json:"Workload"`
	// UserId is "Microsoft Operator" for the provider's actions, the real
	// user for the tenant's own, and "Customer Lockbox" for Lockbox itself.
	UserId string `json:"UserId"`
	// UserType follows the unified audit log's names: "DcAdmin" (a
	// datacenter operator) for operator actions through the proxy.
	UserType         string `json:"UserType,omitempty"`
	ClientIP         string `json:"ClientIP,omitempty"`
	ObjectId         string `json:"ObjectId,omitempty"`
	ResultStatus     string `json:"ResultStatus"`
	LockboxRequestId string `json:"LockboxRequestId,omitempty"`
	ApprovalDecision string `json:"ApprovalDecision,omitempty"`
	Comment          string `json:"Comment,omitempty"`
	// LockboxApprover and LockboxApprovalTime name the approval an operator
	// action was done under.
	LockboxApprover     string     `json:"LockboxApprover,omitempty"`
	LockboxApprovalTime *time.Time `json:"LockboxApprovalTime,omitempty"`
	// Method and Path are the canonical call behind an operator action.
	Method string `json:"Method,omitempty"`
	Path   string `json:"Path,omitempty"`
	// ModifiedProperties lists what a change changed, old and new, as the
	// unified audit log's admin records do.
	ModifiedProperties []ModifiedProperty `json:"ModifiedProperties,omitempty"`
	// LockboxPolicyRevision names the policy version (catalog and rules,
	// loaded together) that classified and permitted an operator action:
	// the hex SHA-256 the proxy's log lines call policy_revision. Tenants
	// see it too; it says which rules applied, not who acted.
	LockboxPolicyRevision string `json:"LockboxPolicyRevision,omitempty"`
	// ProviderUserId is the provider staff member behind "Microsoft
	// Operator". It is provider-only: TenantView removes it.
	ProviderUserId string `json:"ProviderUserId,omitempty"`
}

// ModifiedProperty is one changed setting of a change record.
type ModifiedProperty struct {
	Name     string `json:"Name"`
	OldValue string `json:"OldValue"`
	NewValue string `json:"NewValue"`
}

// TenantView returns the record as tenant users may see it.
func (r Record) TenantView() Record {
	if r.ProviderUserId != "" {
		// The provider's network is the provider's business too.
		r.ProviderUserId, r.ClientIP = "", ""
	}
	return r
}
