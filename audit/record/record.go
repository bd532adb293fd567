// Package record owns the shape of Lockbox's audit records — the Office 365
// Management Activity API common schema, the shape of the Microsoft 365
// unified audit log — and their encodings: JSON (AppendJSON, byte for byte
// what encoding/json writes), the CSV columns of the unified audit log's
// export, and the export writer that streams either.
//
// It is apart from package audit, which stores records in Redis, so that
// the API client and lockboxctl can read and write records without linking
// Redis. It must import nothing of Lockbox but internal/keys, and nothing
// outside the standard library: no Redis, no identity, no HTTP.
package record

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lockbox-oss/lockbox/internal/keys"
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
	// OpRemoveRequest: request retention (LOCKBOX_REQUEST_RETENTION)
	// deleted an ended request, with its history and index entries.
	OpRemoveRequest  = "Remove-AccessToCustomerDataRequest"
	OpSetSettings    = "Set-CustomerLockboxSettings"
	OpAddApprover    = "Add-CustomerLockboxApprover"
	OpRemoveApprover = "Remove-CustomerLockboxApprover"
	OpOnboardTenant  = "New-CustomerLockboxTenant"
	OpUpdateTenant   = "Set-CustomerLockboxTenant"
	OpOffboardTenant = "Remove-CustomerLockboxTenant"
	// OpRedriveNotification: the provider put a dead-lettered
	// notification back in a tenant's outbox (lockbox notify redrive).
	OpRedriveNotification = "Resume-CustomerLockboxNotification"
)

// Operations lists every control-plane operation.
var Operations = []string{
	OpNewRequest, OpManagerDecision, OpTenantDecision, OpCancelRequest, OpRevokeAccess, OpExpireRequest,
	OpCompleteAccess, OpRemoveRequest, OpSetSettings, OpAddApprover, OpRemoveApprover, OpOnboardTenant, OpUpdateTenant,
	OpOffboardTenant, OpRedriveNotification,
}

// Values of record fields.
const (
	ApprovalApprove = "Approve"
	ApprovalDeny    = "Deny"
	ResultSucceeded = "Succeeded"
	// OperatorUserID is how everyone but the provider's own auditors sees
	// a support engineer: in operator actions through the proxy and in the
	// engineer's own steps (filing, canceling a request). The real id is
	// kept in ProviderUserId.
	OperatorUserID = "Microsoft Operator"
	// ProviderUserID is how tenants see the provider's staff other than
	// its engineers: support managers deciding or revoking requests,
	// Lockbox administrators onboarding tenants. The real id is kept in
	// ProviderUserId.
	ProviderUserID = "Microsoft Support"
	// SystemUserID is Lockbox itself (expiry, the end of a window,
	// tenants registered on upgrade).
	SystemUserID    = "Customer Lockbox"
	WorkloadLockbox = "CustomerLockbox"
	// SchemaVersion is the common schema's Version of every record.
	SchemaVersion = 1
)

// RecordType is the common schema's AuditLogRecordType: what kind of
// record this is, as an integer.
type RecordType int

// The record types Lockbox writes.
const (
	// RecordTypeExchangeAdmin (1) is an Exchange admin cmdlet event. In
	// Microsoft 365 the Customer Lockbox cmdlets (New-/Set-
	// AccessToCustomerDataRequest, ...) are Exchange Online cmdlets, so
	// every control-plane record has this type: requests, decisions,
	// settings, approvers, tenant onboarding.
	RecordTypeExchangeAdmin RecordType = 1
	// RecordTypeDataCenterSecurityCmdlet (10) is a Data Center security
	// cmdlet event: what a datacenter operator did. Operator actions
	// through the proxy have this type.
	RecordTypeDataCenterSecurityCmdlet RecordType = 10
)

// Known reports whether t is a record type Lockbox writes.
func (t RecordType) Known() bool {
	return t == RecordTypeExchangeAdmin || t == RecordTypeDataCenterSecurityCmdlet
}

// UserType is the common schema's UserType: the kind of user behind
// UserId, as an integer.
type UserType int

// The common schema's user types.
const (
	UserTypeRegular          UserType = 0 // a regular user
	UserTypeReserved         UserType = 1
	UserTypeAdmin            UserType = 2 // an administrator of the tenant
	UserTypeDcAdmin          UserType = 3 // a Microsoft datacenter operator
	UserTypeSystem           UserType = 4 // a system account
	UserTypeApplication      UserType = 5
	UserTypeServicePrincipal UserType = 6
	UserTypeCustomPolicy     UserType = 7
	UserTypeSystemPolicy     UserType = 8
)

// userTypeNames are the schema's names of the user types. Records written
// before Lockbox followed the schema's types carry the name ("DcAdmin").
var userTypeNames = []string{"Regular", "Reserved", "Admin", "DcAdmin", "System", "Application", "ServicePrincipal", "CustomPolicy", "SystemPolicy"}

// Valid reports whether t is one of the schema's user types.
func (t UserType) Valid() bool { return t >= 0 && int(t) < len(userTypeNames) }

// String is the schema's name of t, e.g. "DcAdmin".
func (t UserType) String() string {
	if t.Valid() {
		return userTypeNames[t]
	}
	return "UserType(" + strconv.Itoa(int(t)) + ")"
}

// UnmarshalJSON reads the integer, or the name older records carry.
func (t *UserType) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*t = UserType(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("UserType must be an integer: %w", err)
	}
	for i, name := range userTypeNames {
		if name == s {
			*t = UserType(i)
			return nil
		}
	}
	return fmt.Errorf("UserType %q is not one of the schema's user types", s)
}

// TimeLayout is how records write times: UTC, whole seconds, no zone, as
// the unified audit log writes CreationTime ("2015-06-29T20:03:19").
const TimeLayout = "2006-01-02T15:04:05"

// Time is a record's time, written in TimeLayout.
//
// Sub-second precision is dropped on purpose: a SIEM parsing the unified
// audit log expects exactly this form, and the order of records is the
// order of their stream (and of their v7 Ids, which carry milliseconds),
// not of CreationTime.
type Time struct{ time.Time }

// TimeOf returns t in UTC, truncated to the second, as records keep it.
func TimeOf(t time.Time) Time { return Time{t.UTC().Truncate(time.Second)} }

// MarshalJSON writes the time in TimeLayout, in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// MarshalText writes the time in TimeLayout, in UTC.
func (t Time) MarshalText() ([]byte, error) { return []byte(t.UTC().Format(TimeLayout)), nil }

// UnmarshalJSON reads TimeLayout (as UTC, fractional seconds allowed) or
// RFC 3339, the form of records written before Lockbox followed the
// common schema: the hash chain keeps those bytes as they are.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time must be a string: %w", err)
	}
	return t.UnmarshalText([]byte(s))
}

// UnmarshalText reads TimeLayout or RFC 3339.
func (t *Time) UnmarshalText(b []byte) error {
	s := string(b)
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// time.Parse accepts a fractional second after the seconds even
		// though the layout has none.
		if v, err = time.Parse(TimeLayout, s); err != nil {
			return fmt.Errorf("time %q is neither %s nor RFC 3339", s, TimeLayout)
		}
	}
	t.Time = v.UTC()
	return nil
}

// Record is one audit record in the Office 365 Management Activity API
// common schema (with the Exchange admin schema's Parameters and
// ModifiedProperties), so a SIEM that parses the unified audit log parses
// Lockbox's records without a mapping. Lockbox's own fields are prefixed
// Lockbox; the Provider fields are provider-only (TenantView removes them).
type Record struct {
	// CreationTime is when the action happened, UTC.
	CreationTime Time `json:"CreationTime"`
	// Id is the record's GUID (UUID v7).
	Id        string `json:"Id"`
	Operation string `json:"Operation"`
	// OrganizationId is the tenant's GUID (its registry entry's
	// organization_id); LockboxTenant is its short name.
	OrganizationId string     `json:"OrganizationId"`
	RecordType     RecordType `json:"RecordType"`
	ResultStatus   string     `json:"ResultStatus"`
	// UserKey is the alternative id of the user in UserId: the same stable
	// id (for provider staff, the label tenants see).
	UserKey  string   `json:"UserKey"`
	UserType UserType `json:"UserType"`
	Version  int      `json:"Version"`
	// Workload is the service (exchange, sharepoint, onedrive) for request
	// records and operator actions, CustomerLockbox for tenant settings,
	// approvers and the registry.
	Workload string `json:"Workload"`
	// ClientIP is the address the action came from: the socket peer, or the
	// client behind a trusted proxy (internal/peer); empty for Lockbox's
	// own actions. Tenants see it for operator actions (the engineer's
	// machine, as Microsoft shows it) but not for other provider staff.
	ClientIP string `json:"ClientIP"`
	// ObjectId is what the action touched: for an operator action the
	// service and canonical path ("exchange/tenants/contoso/mailboxes/megan"),
	// the request id for request records, the tenant for settings and
	// registry changes, the user for approver changes.
	ObjectId string `json:"ObjectId"`
	// UserId is "Microsoft Operator" for engineers, "Microsoft Support" for
	// the provider's other staff, the real user for the tenant's own, and
	// "Customer Lockbox" for Lockbox itself.
	UserId string `json:"UserId"`
	// Parameters are the cmdlet's parameters, as Exchange admin records
	// carry them (e.g. Identity, ApprovalDecision, Comment).
	Parameters []Parameter `json:"Parameters,omitempty"`
	// ModifiedProperties lists what a change changed, old and new.
	ModifiedProperties []ModifiedProperty `json:"ModifiedProperties,omitempty"`
	ApprovalDecision   string             `json:"ApprovalDecision,omitempty"`
	Comment            string             `json:"Comment,omitempty"`

	// LockboxTenant is the tenant's short name, as in tokens and paths.
	LockboxTenant    string `json:"LockboxTenant"`
	LockboxRequestId string `json:"LockboxRequestId,omitempty"`
	// LockboxApprover and LockboxApprovalTime name the approval an operator
	// action was done under: a tenant approver, or "Microsoft Support"
	// when the provider's manager approved while the tenant's lockbox was
	// off (the manager is then in ProviderApproverId).
	LockboxApprover     string `json:"LockboxApprover,omitempty"`
	LockboxApprovalTime *Time  `json:"LockboxApprovalTime,omitempty"`
	// LockboxMethod and LockboxPath are the canonical call behind an
	// operator action (the path within the service).
	LockboxMethod string `json:"LockboxMethod,omitempty"`
	LockboxPath   string `json:"LockboxPath,omitempty"`
	// LockboxQuery is the query string of that call, without the "?",
	// exactly as the upstream received it: the path says which mailbox was
	// read, the query what was searched in it. At most MaxQueryBytes of it
	// are kept (QueryOf); LockboxQueryLength then says how long the whole
	// query was, so a cut query can't pass for the complete one.
	LockboxQuery string `json:"LockboxQuery,omitempty"`
	// LockboxQueryLength is the length in bytes of the forwarded query when
	// LockboxQuery holds only its first MaxQueryBytes bytes; absent when
	// LockboxQuery is the whole query.
	LockboxQueryLength int `json:"LockboxQueryLength,omitempty"`
	// LockboxPolicyRevision names the policy version (catalog and rules,
	// loaded together) that classified and permitted an operator action:
	// the hex SHA-256 the proxy's log lines call policy_revision. Tenants
	// see it too; it says which rules applied, not who acted.
	LockboxPolicyRevision string `json:"LockboxPolicyRevision,omitempty"`

	// ProviderUserId is the provider staff member behind "Microsoft
	// Operator" or "Microsoft Support". Provider-only.
	ProviderUserId string `json:"ProviderUserId,omitempty"`
	// ProviderApproverId is the provider's manager whose approval an
	// operator action was done under, when no tenant approver approved.
	// Provider-only.
	ProviderApproverId string `json:"ProviderApproverId,omitempty"`

	// legacy marks a record written before Lockbox followed the common
	// schema, read back and upgraded (see UnmarshalJSON).
	legacy bool
}

// MaxQueryBytes is how much of an operator call's query string a record
// keeps. The proxy accepts a request line of up to net/http's header limit
// (about 1 MiB), and every permitted call writes a record, so a record
// holding any query whole would let one engineer grow the log, and every
// export and SIEM line, by a megabyte a call. 2 KiB keeps every query a
// person or a mail client writes, and the start of any other.
const MaxQueryBytes = 2048

// QueryOf returns what a record keeps of the raw query q: q itself and 0
// when it fits in MaxQueryBytes, else its first MaxQueryBytes bytes and
// len(q), for LockboxQuery and LockboxQueryLength. The kept part shares
// q's memory. A query the proxy forwards is printable ASCII, so the cut
// never splits a character.
func QueryOf(q string) (kept string, length int) {
	if len(q) <= MaxQueryBytes {
		return q, 0
	}
	return q[:MaxQueryBytes], len(q)
}

// Parameter is one parameter of a cmdlet record.
type Parameter struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// ModifiedProperty is one changed setting of a change record.
type ModifiedProperty struct {
	Name     string `json:"Name"`
	OldValue string `json:"OldValue"`
	NewValue string `json:"NewValue"`
}

// Legacy reports whether r was written before Lockbox followed the common
// schema and upgraded when read (see UnmarshalJSON).
func (r Record) Legacy() bool { return r.legacy }

// Operator reports whether r is an operator action through the proxy.
func (r Record) Operator() bool { return r.RecordType == RecordTypeDataCenterSecurityCmdlet }

// TenantView returns the record as tenant users may see it: no provider
// identity in any field, and the provider's network only where Microsoft
// shows it (the engineer's machine behind an operator action).
func (r Record) TenantView() Record {
	provider := r.ProviderUserId != "" || r.UserType == UserTypeDcAdmin
	if provider && !r.Operator() {
		// A manager's or the engineer's control-plane call: where the
		// provider's staff work from is the provider's business.
		r.ClientIP = ""
	}
	if r.LockboxApprover != "" && !tenantSafeApprover(r) {
		r.LockboxApprover = ""
	}
	r.ProviderUserId, r.ProviderApproverId = "", ""
	return r
}

// tenantSafeApprover reports whether r's LockboxApprover may be shown to
// the tenant. Records written since approvals carry ProviderApproverId hold
// the label there when the provider approved. Older ones held the manager's
// real id in LockboxApprover, and nothing in the record tells a tenant
// approver from a provider one: they are hidden (fail closed on
// disclosure; the request's history still says who approved).
func tenantSafeApprover(r Record) bool {
	switch {
	case r.LockboxApprover == ProviderUserID || r.LockboxApprover == OperatorUserID:
		return true
	case r.legacy, r.ProviderApproverId != "":
		return false
	}
	return true
}

// UnmarshalJSON reads a record, upgrading one written before Lockbox
// followed the common schema (no RecordType) to the current shape, so
// every reader sees one shape: Method and Path become LockboxMethod and
// LockboxPath, OrganizationId (then the short name) LockboxTenant, and the
// schema's RecordType, UserType, UserKey, Version and ObjectId are derived.
// The stored bytes are never rewritten: the hash chain covers them.
// OrganizationId is left as the short name; Log fills the GUID in.
func (r *Record) UnmarshalJSON(b []byte) error {
	var in stored
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = in.record()
	return nil
}

// plain is Record without its methods, so decoding into it does not
// recurse into Record.UnmarshalJSON.
type plain Record

// stored is every field a stored record may hold that this version
// knows: Record's, and the Method and Path of a legacy record.
type stored struct {
	plain
	Method string `json:"Method"`
	Path   string `json:"Path"`
}

// record is the decoded record, a legacy one upgraded.
func (in *stored) record() Record {
	r := Record(in.plain)
	if r.RecordType == 0 {
		r.upgrade(in.Method, in.Path)
	}
	return r
}

// upgrade derives the common schema's fields of a record written before
// Lockbox followed it.
func (r *Record) upgrade(method, path string) {
	r.legacy = true
	if r.LockboxTenant == "" && !IsGUID(r.OrganizationId) {
		r.LockboxTenant = r.OrganizationId
	}
	if r.LockboxMethod == "" && r.LockboxPath == "" {
		r.LockboxMethod, r.LockboxPath = method, path
	}
	// Only operator actions carried a UserType ("DcAdmin") and a method.
	r.RecordType = RecordTypeExchangeAdmin
	if r.UserType == UserTypeDcAdmin && r.LockboxMethod != "" {
		r.RecordType = RecordTypeDataCenterSecurityCmdlet
		if r.ObjectId == "" {
			r.ObjectId = r.Workload + r.LockboxPath
		}
	}
	switch {
	case r.UserType != UserTypeRegular:
	case r.ProviderUserId != "" || r.UserId == OperatorUserID || r.UserId == ProviderUserID:
		r.UserType = UserTypeDcAdmin
	case r.UserId == SystemUserID:
		r.UserType = UserTypeSystem
		// A tenant user stays Regular: whether they were a global admin
		// then is not recorded.
	}
	if r.UserKey == "" {
		r.UserKey = r.UserId
	}
	if r.Version == 0 {
		r.Version = SchemaVersion
	}
}

// IsGUID reports whether s is a GUID in lower-case canonical form, as
// OrganizationId and Id are.
func IsGUID(s string) bool { return keys.IsUUID(s) }
