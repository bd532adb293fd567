// Package wire holds the bodies of Lockbox's control-plane API (/v1): what
// package api decodes and encodes and what api/client sends and reads. Each
// type is named as its schema in api/openapi.yaml, and a test of package api
// holds the two to the same fields.
//
// The types are the API's, not the domain's: package api converts between
// them and grants, tenants and audit, so a change to a domain type can't
// change the API by accident, and a client of the API links no Redis, no
// policy engine and no token verifier. The audit record is the exception:
// its shape, the Microsoft 365 unified audit log's, is the API's contract,
// so it comes from audit/record, which is as free of dependencies as this
// package.
//
// It must import nothing of Lockbox but audit/record, and nothing outside
// the standard library.
package wire

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// State is where a request is in its lifecycle (schema State).
type State string

// The request states.
const (
	StatePendingManager  State = "pending_manager"
	StatePendingCustomer State = "pending_customer"
	StateApproved        State = "approved"
	StateCompleted       State = "completed"
	StateRevoked         State = "revoked"
	StateDenied          State = "denied"
	StateExpired         State = "expired"
	StateCanceled        State = "canceled"
)

// States lists every state, in lifecycle order.
var States = []State{
	StatePendingManager, StatePendingCustomer, StateApproved, StateCompleted,
	StateRevoked, StateDenied, StateExpired, StateCanceled,
}

// Valid reports whether s is a known state.
func (s State) Valid() bool { return slices.Contains(States, s) }

// Pending reports whether a decision is still awaited.
func (s State) Pending() bool { return s == StatePendingManager || s == StatePendingCustomer }

// Action is what moved a request between states (schema Action).
type Action string

// The actions; expire and complete are taken by Lockbox itself.
const (
	ActionCreate   Action = "create"
	ActionApprove  Action = "approve"
	ActionDeny     Action = "deny"
	ActionCancel   Action = "cancel"
	ActionRevoke   Action = "revoke"
	ActionExpire   Action = "expire"
	ActionComplete Action = "complete"
)

// ActorKind says on whose side an actor stands (schema ActorKind).
type ActorKind string

// The actor kinds.
const (
	KindProvider ActorKind = "provider"
	KindTenant   ActorKind = "tenant"
	KindSystem   ActorKind = "system"
)

// Duration is a time.Duration written as a Go duration string ("4h",
// "90m") in JSON (schema Duration).
type Duration time.Duration

// String returns the duration in its short form: "5h", "1h30m", "45m"
// rather than time.Duration's "5h0m0s", and in ASCII ("1us", not "1µs"),
// as grants.Duration writes it. time.ParseDuration reads it back.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "µs"); ok {
		return t + "us"
	}
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// MarshalJSON writes the duration in the short form of String.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"2h\" or \"90m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		// Not time's own text: it repeats the input with every non-ASCII
		// byte as a \x escape ("1\xc2\xb5"), beside the quote above.
		return fmt.Errorf("duration %q must be a number with a unit, such as \"2h\", \"90m\" or \"1h30m\"", s)
	}
	*d = Duration(v)
	return nil
}

// CreateRequest is the body of POST /v1/requests: what an engineer files.
type CreateRequest struct {
	Tenant         string   `json:"tenant"`
	Service        string   `json:"service"`
	ServiceRequest string   `json:"service_request"`
	Reason         string   `json:"reason"`
	Duration       Duration `json:"duration"`
	// Activities empty means the service's pre-approved read activities.
	Activities []string `json:"activities,omitempty"`
}

// Request is a lockbox request with its history (schema Request).
type Request struct {
	ID              string     `json:"id"`
	Tenant          string     `json:"tenant"`
	Service         string     `json:"service"`
	ServiceRequest  string     `json:"service_request"`
	Reason          string     `json:"reason"`
	Duration        Duration   `json:"duration"`
	Activities      []string   `json:"activities"`
	Requester       string     `json:"requester"`
	RequesterEmail  string     `json:"requester_email,omitempty"`
	State           State      `json:"state"`
	CreatedAt       time.Time  `json:"created_at"`
	DecideBy        *time.Time `json:"decide_by,omitempty"`
	ManagerApprover string     `json:"manager_approver,omitempty"`
	Approver        string     `json:"approver,omitempty"`
	ApprovedAt      *time.Time `json:"approved_at,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	// EndedAt is when a request in a final state (completed, revoked,
	// denied, expired, canceled) ended, the time of the history event that
	// ended it; absent while it is pending or approved. A revoked request
	// keeps the ExpiresAt of the window it was approved for.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	History []Event    `json:"history"`
}

// Event is one entry of a request's history (schema Event).
type Event struct {
	Action           Action    `json:"action"`
	Actor            string    `json:"actor"`
	ActorKind        ActorKind `json:"actor_kind"`
	From             State     `json:"from,omitempty"`
	To               State     `json:"to"`
	ActorGlobalAdmin bool      `json:"actor_global_admin,omitempty"`
	At               time.Time `json:"at"`
	ClientIP         string    `json:"client_ip,omitempty"`
	Comment          string    `json:"comment,omitempty"`
	// Cause says why the event ended the request when its actor did not
	// choose to end that request: "tenant_offboarded".
	Cause string `json:"cause,omitempty"`
	// RecordedAt is when the event was written, for one written more than
	// a second after At (an expiry or completion a late sweep recorded).
	RecordedAt time.Time `json:"recorded_at,omitzero"`
}

// RequestList is the body of GET /v1/requests: one page of requests,
// newest first.
type RequestList struct {
	Requests []Request `json:"requests"`
	// NextCursor continues the listing (as the cursor parameter, with the
	// same filters); empty when no request after this page matched.
	NextCursor string `json:"next_cursor,omitempty"`
	// PrevCursor goes back to the page before, the requests newer than
	// this page (as the cursor parameter, with the same filters); empty on
	// the first page.
	PrevCursor string `json:"prev_cursor,omitempty"`
	// Unreadable names the requests of this page whose stored record does
	// not decode; each takes a place of the page's limit, as it would
	// have readable. Absent when there is none.
	Unreadable []UnreadableRequest `json:"unreadable,omitempty"`
}

// UnreadableRequest stands in a listing for a request Lockbox stored but
// can't read: the others are listed, and this one is named, never dropped.
type UnreadableRequest struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Error is always "cannot be read".
	Error string `json:"error"`
}

// Decision is the optional body of the approve, deny, cancel and revoke
// actions.
type Decision struct {
	Comment string `json:"comment"`
}

// Tenant is a tenant's registry entry (schema Tenant).
type Tenant struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	DisplayName    string    `json:"display_name"`
	Domains        []string  `json:"domains"`
	GlobalAdmins   []string  `json:"global_admins"`
	OnboardedAt    time.Time `json:"onboarded_at"`
	// Offboarded says when, by whom and why; set only when State is
	// TenantOffboarded. A tenant's own users read By as the provider's
	// label.
	Offboarded *Offboarded `json:"offboarded,omitempty"`
	// State is TenantActive, or TenantOffboarded once the provider
	// offboarded the tenant.
	State string `json:"state"`
}

// The states of a tenant (Tenant.State).
const (
	TenantActive     = "active"
	TenantOffboarded = "offboarded"
)

// Offboarded records a tenant's offboarding (schema Offboarded).
type Offboarded struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// Offboarding is the body of POST /v1/tenants/{tenant}/offboard.
type Offboarding struct {
	Reason string `json:"reason"`
}

// Onboarding is the body of POST /v1/tenants.
type Onboarding struct {
	ID             string   `json:"id"`
	OrganizationID string   `json:"organization_id,omitempty"`
	DisplayName    string   `json:"display_name"`
	Domains        []string `json:"domains"`
	GlobalAdmins   []string `json:"global_admins"`
	// LockboxEnabled nil means on.
	LockboxEnabled *bool `json:"lockbox_enabled,omitempty"`
}

// OnboardedTenant is the answer of POST /v1/tenants: the registry entry and
// the settings the tenant starts with.
type OnboardedTenant struct {
	Tenant
	Settings Settings `json:"settings"`
}

// TenantUpdate is the body of PATCH /v1/tenants/{tenant}; nil fields stay
// as they are.
type TenantUpdate struct {
	DisplayName  *string   `json:"display_name,omitempty"`
	Domains      *[]string `json:"domains,omitempty"`
	GlobalAdmins *[]string `json:"global_admins,omitempty"`
}

// TenantList is the body of GET /v1/tenants.
type TenantList struct {
	Tenants []Tenant `json:"tenants"`
	// Unreadable names the tenants whose stored registry entry does not
	// decode, sorted by id; the others are listed all the same. Absent
	// when there is none.
	Unreadable []UnreadableTenant `json:"unreadable,omitempty"`
	// NextCursor continues the listing; empty when it is done.
	NextCursor string `json:"next_cursor,omitempty"`
}

// UnreadableTenant stands in the tenant list for a tenant whose registry
// entry Lockbox stored but can't read, in the shape of a listing's other
// unreadable records (UnreadableRequest).
type UnreadableTenant struct {
	// ID is the tenant's id, as Tenant.ID; Tenant is the same id, the
	// tenant whose record it is, as every unreadable list names it.
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Error is always "cannot be read".
	Error string `json:"error"`
}

// Settings are a tenant's Customer Lockbox settings (schema Settings).
type Settings struct {
	LockboxEnabled        bool     `json:"lockbox_enabled"`
	NotificationAddresses []string `json:"notification_addresses"`
}

// SettingsInput is the body of PUT /v1/tenants/{tenant}/settings. The
// switch is a pointer so that a body that forgets it is refused instead of
// turning Customer Lockbox off.
type SettingsInput struct {
	LockboxEnabled        *bool    `json:"lockbox_enabled"`
	NotificationAddresses []string `json:"notification_addresses"`
}

// ApproverList is the body of GET /v1/tenants/{tenant}/approvers.
type ApproverList struct {
	// Approvers are the assigned approvers whose approval counts.
	Approvers []string `json:"approvers"`
	// NotCounting are assignments that approve nothing now (a user whose
	// domain was removed from the tenant's registry entry), with why; left
	// out when there are none, so a list where every one counts reads as
	// it always did.
	NotCounting []NotCountingApprover `json:"not_counting,omitempty"`
}

// NotCountingApprover is an approver assignment that approves nothing.
type NotCountingApprover struct {
	User   string `json:"user"`
	Reason string `json:"reason"`
}

// RecordPage is the body of GET /v1/audit: one page of records, newest
// first.
type RecordPage struct {
	Records []record.Record `json:"records"`
	// NextCursor continues the search; empty when it is done.
	NextCursor string `json:"next_cursor,omitempty"`
	// PrevCursor goes back to the page before, the records newer than
	// this page; empty on the first page and when nothing newer is left.
	PrevCursor string `json:"prev_cursor,omitempty"`
	// Unreadable names the records of this page whose stored record does
	// not decode, by stream id; each takes a place of the page's limit.
	// Absent when there is none.
	Unreadable []UnreadableRecord `json:"unreadable,omitempty"`
}

// UnreadableRecord stands in a search's page for an audit record Lockbox
// stored but can't read: the others are shown, and this one is named.
type UnreadableRecord struct {
	StreamID string `json:"stream_id"`
	Tenant   string `json:"tenant"`
	// Error is always "cannot be read".
	Error string `json:"error"`
}

// RecordList is the body of GET /v1/requests/{id}/activity, oldest first.
type RecordList struct {
	Records []record.Record `json:"records"`
	// Unreadable names the records of the tenant's log that do not decode
	// and that Redis appended within the span read for the request's
	// records (from its filing until it ended, widened by the clock skew),
	// oldest first: each may be one of the request's, so it is named
	// rather than left out. Absent when there is none.
	Unreadable []UnreadableRecord `json:"unreadable,omitempty"`
}

// AuditVerification is the body of GET /v1/audit/verify.
type AuditVerification struct {
	Tenant  string `json:"tenant"`
	Records int    `json:"records"`
	OK      bool   `json:"ok"`
	// BrokenAt is the stream id of the first entry that does not verify.
	BrokenAt string `json:"broken_at,omitempty"`
	// RecordId is the audit record id at BrokenAt, when readable.
	RecordId string `json:"record_id,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// TrimmedThrough is the stream id of the newest record retention
	// removed: the chain is verified from the record after it. Empty
	// when retention never removed one.
	TrimmedThrough string `json:"trimmed_through,omitempty"`
	// TrimmedUnbound says the chain's anchor came without the record
	// retention removed last, and was dated by its stream id alone.
	TrimmedUnbound bool `json:"trimmed_unbound,omitempty"`
	// Seal is the state of the chain's seal: verified, none,
	// unverifiable, trimmed or forged.
	Seal string `json:"seal,omitempty"`
	// SealedThrough is the stream id of the record the verified seal
	// names, SealedAt when it was made (RFC 3339, UTC).
	SealedThrough string `json:"sealed_through,omitempty"`
	SealedAt      string `json:"sealed_at,omitempty"`
	// SealKeyID is the kid of the seal's key.
	SealKeyID string `json:"seal_key_id,omitempty"`
	// UnsealedRecords is how many records verified come after the sealed
	// one (all of them without a verified seal); absent when none.
	UnsealedRecords int `json:"unsealed_records,omitempty"`
	// SealToken is the stored seal itself, a compact JWS, for the caller
	// to keep outside Lockbox and send back as since_seal; absent without
	// a seal, and for a forged one.
	SealToken string `json:"seal_token,omitempty"`
	// SinceSeal is how the chain compared with the kept seal sent as
	// since_seal: verified, trimmed, broken or unchecked; absent when none
	// was sent. SinceSealedThrough and SinceSealedAt are the stream id of
	// the entry that seal names and when it was made (RFC 3339, UTC).
	SinceSeal          string `json:"since_seal,omitempty"`
	SinceSealedThrough string `json:"since_sealed_through,omitempty"`
	SinceSealedAt      string `json:"since_sealed_at,omitempty"`
}
