// Package grants owns the lockbox request lifecycle: the request and grant
// types, the pure transition function that encodes every rule of the
// workflow (two-person rule, tenant approvers, 4 h grants, 12 h decision
// window), and the Redis store that applies transitions atomically.
//
// It knows nothing of HTTP. Time always comes from the caller.
package grants

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is where a request is in its lifecycle.
type State string

// The request states of the product contract.
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

// Final reports whether no further transition is possible.
func (s State) Final() bool { return !s.Pending() && s != StateApproved }

// Action is something that moves a request between states.
type Action string

// The actions. Expire and Complete are taken by Lockbox itself, never by a user.
const (
	ActionCreate   Action = "create"
	ActionApprove  Action = "approve"
	ActionDeny     Action = "deny"
	ActionCancel   Action = "cancel"
	ActionRevoke   Action = "revoke"
	ActionExpire   Action = "expire"
	ActionComplete Action = "complete"
)

// Limits of the workflow.
const (
	// MaxDuration is the longest access window a request may ask for.
	MaxDuration = 4 * time.Hour
	// MinDuration is the shortest. A window of "1ns" or "1µs" was filed,
	// and once approved gave a grant that ended before the engineer's
	// first call reached the proxy: an approval of nothing, which still
	// asked two people for a decision. A minute is far below the hours
	// Customer Lockbox offers, and a window someone can use.
	MinDuration = time.Minute
	// DecisionWindow is how long each approval stage waits for a decision
	// before the request expires.
	DecisionWindow = 12 * time.Hour
)

// SystemActor is the actor recorded for transitions Lockbox takes itself.
const SystemActor = "lockbox"

// Request is a lockbox request and, once approved, the grant it carries.
type Request struct {
	ID             string   `json:"id"`
	Tenant         string   `json:"tenant"`
	Service        string   `json:"service"`
	ServiceRequest string   `json:"service_request"`
	Reason         string   `json:"reason"`
	Duration       Duration `json:"duration"`
	// Activities the engineer asked for; empty means the service's
	// pre-approved read activities (policy decides).
	Activities []string `json:"activities"`
	Requester  string   `json:"requester"`
	// RequesterEmail is the e-mail address the requester's token carried
	// when they filed the request (identity.Principal.Email), where their
	// notifications go: a subject need not be an address. Provider-only:
	// TenantView removes it.
	RequesterEmail string    `json:"requester_email,omitempty"`
	State          State     `json:"state"`
	CreatedAt      time.Time `json:"created_at"`
	// DecideBy is when the current pending stage expires.
	DecideBy *time.Time `json:"decide_by,omitempty"`
	// ManagerApprover is the support manager who approved.
	ManagerApprover string `json:"manager_approver,omitempty"`
	// Approver is who gave the final approval: a tenant approver, or the
	// manager when the tenant's lockbox is off.
	Approver   string     `json:"approver,omitempty"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	History    []Event    `json:"history"`
}

// ActorKind says on whose side an actor stands.
type ActorKind string

// Actor kinds. Tenant users see provider actors by a label (ProviderLabel).
const (
	KindProvider ActorKind = "provider"
	KindTenant   ActorKind = "tenant"
	KindSystem   ActorKind = "system"
)

// Event is one entry of a request's history.
type Event struct {
	Action    Action    `json:"action"`
	Actor     string    `json:"actor"`
	ActorKind ActorKind `json:"actor_kind"`
	From      State     `json:"from,omitempty"`
	To        State     `json:"to"`
	// ActorGlobalAdmin marks a tenant actor who is a global administrator
	// of the tenant (the audit record's UserType Admin, not Regular).
	ActorGlobalAdmin bool      `json:"actor_global_admin,omitempty"`
	At               time.Time `json:"at"`
	ClientIP         string    `json:"client_ip,omitempty"`
	Comment          string    `json:"comment,omitempty"`
	// Cause says why the event ended the request when its actor did not
	// choose to end that request: CauseTenantOffboarded. Empty for an
	// action taken on the request itself.
	Cause Cause `json:"cause,omitempty"`
	// RecordedAt is when the event was written, for one written well after
	// its At: an expiry or completion a late sweep recorded, whose audit
	// record is created then (recordFor). Request retention dates the
	// request by it, so that the request outlives that record.
	RecordedAt time.Time `json:"recorded_at,omitzero"`
}

// Cause is why an event ended a request as a consequence of something
// else its actor did.
type Cause string

// CauseTenantOffboarded marks the revocations and cancellations that
// offboarding the tenant caused: the provider ended the relationship, and
// neither the engineer nor the tenant withdrew the request.
const CauseTenantOffboarded Cause = "tenant_offboarded"

// Grant is what the proxy reads for (tenant, operator, service): the
// approved access, valid only while now < ExpiresAt.
type Grant struct {
	RequestID  string   `json:"request_id"`
	Tenant     string   `json:"tenant"`
	Operator   string   `json:"operator"`
	Service    string   `json:"service"`
	Activities []string `json:"activities"`
	Approver   string   `json:"approver"`
	// ApprovedBy says on whose side the final approval was given: tenant
	// (an approver of the tenant) or provider (the support manager, while
	// the tenant's lockbox was off). With the tenant's lockbox on, only a
	// tenant-approved grant lets a call through. Grants written before this
	// field existed have it empty; Store.Grant fills it from the request.
	ApprovedBy ActorKind `json:"approved_by,omitempty"`
	ApprovedAt time.Time `json:"approved_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// TenantApproved reports whether an approver of the tenant gave the
// grant's final approval.
func (g Grant) TenantApproved() bool { return g.ApprovedBy == KindTenant }

// Valid reports whether the grant is in force at now. The check is on the
// absolute expiry: a Redis TTL only cleans up.
func (g Grant) Valid(now time.Time) bool { return now.Before(g.ExpiresAt) }

// GrantOf returns the grant an approved request carries.
func GrantOf(r Request) (Grant, bool) {
	if r.State != StateApproved || r.ApprovedAt == nil || r.ExpiresAt == nil {
		return Grant{}, false
	}
	return Grant{
		RequestID:  r.ID,
		Tenant:     r.Tenant,
		Operator:   r.Requester,
		Service:    r.Service,
		Activities: slices.Clone(r.Activities),
		Approver:   r.Approver,
		ApprovedBy: approvedBy(r),
		ApprovedAt: *r.ApprovedAt,
		ExpiresAt:  *r.ExpiresAt,
	}, true
}

// TenantApproved reports whether an approver of the tenant approved r
// (rather than only the provider's manager, while the tenant's lockbox was
// off).
func TenantApproved(r Request) bool { return approvedBy(r) == KindTenant }

// EndedAt is when r ended: the time of the last event of its history that
// led to the state it is in, once that state is final. That is the
// revocation, denial or cancellation; for a pending stage that got no
// decision, its expiry at decide_by; for a window that ran out, its
// completion at expires_at. It reports false while r is pending or
// approved, and when its history does not show that event. A revoked
// request keeps the expires_at of the window it was approved for, which
// read as access lasting until then: the API gives this as ended_at, the
// admin center as when the request ended, and lockboxctl, against a server
// that does not give it, derives it the same way.
func EndedAt(r Request) (time.Time, bool) {
	if !r.State.Valid() || !r.State.Final() {
		return time.Time{}, false
	}
	for _, ev := range slices.Backward(r.History) {
		if ev.To == r.State {
			return ev.At, true
		}
	}
	return time.Time{}, false
}

// approvedBy is the side of the event that approved r, or "" when nothing
// did.
func approvedBy(r Request) ActorKind {
	for _, ev := range slices.Backward(r.History) {
		if ev.Action == ActionApprove && ev.To == StateApproved {
			return ev.ActorKind
		}
	}
	return ""
}

// Duration is a time.Duration that reads and writes Go duration strings
// ("4h", "90m") in JSON.
type Duration time.Duration

// String returns the duration in its short form: "5h", "1h30m", "45m"
// rather than time.Duration's "5h0m0s", and in ASCII: "1us", not
// time.Duration's "1µs", so that an error message echoing it, a mail
// subject or a log line holds nothing a terminal, a mail header or a
// script reading it may mangle. time.ParseDuration reads it back.
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

// MarshalJSON writes the duration as a Go duration string, in the short
// form of String; clients read it with time.ParseDuration either way.
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

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
