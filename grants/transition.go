package grants

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/text"
)

// Actor is who takes an action, as the lifecycle sees them.
type Actor struct {
	Principal identity.Principal
	// ClientIP is the address the action came from (internal/peer: the
	// socket peer, or the client behind a trusted proxy), for the history
	// and the audit record.
	ClientIP string
}

func (a Actor) kind() ActorKind {
	if a.Principal.IsProvider() {
		return KindProvider
	}
	return KindTenant
}

var system = Actor{Principal: identity.Principal{Subject: SystemActor}}

// Env holds what Apply needs beyond the request: the time, and facts about
// the tenant that the store looks up before calling it.
type Env struct {
	Now time.Time
	// LockboxEnabled is the tenant's on/off switch. Off, the manager's
	// approval is final.
	LockboxEnabled bool
	// AssignedApprover reports whether the actor is one of the users the
	// tenant's global admins assigned as lockbox approvers.
	AssignedApprover bool
	// TenantUser reports whether the actor's subject is a user of the
	// request's tenant: user@ one of the domains the tenant registered,
	// the rule an approver's assignment is held to. A global admin's role
	// comes from the token alone, so this is what ties it to the tenant.
	TenantUser bool
}

// CreateInput is what an engineer files.
type CreateInput struct {
	Tenant         string   `json:"tenant"`
	Service        string   `json:"service"`
	ServiceRequest string   `json:"service_request"`
	Reason         string   `json:"reason"`
	Duration       Duration `json:"duration"`
	Activities     []string `json:"activities,omitempty"`
}

// Catalog tells which activities a service has. The activity catalog lives
// beside the policies, not in Go code. A Catalog that is also a
// ServiceLister (policy.Engine) has its services named to whoever files a
// request for another one.
type Catalog interface {
	// Activities returns the activity names of service, and false when the
	// service is unknown.
	Activities(service string) ([]string, bool)
}

// ServiceLister names the services of a catalog.
type ServiceLister interface {
	Services() []string
}

// Limits on free-text fields, so a request stays a reasonable size. They
// count characters, as openapi.yaml's maxLength does: counted in bytes, a
// reason in Japanese was refused at a third of the length the API
// documents (and the console's form allows).
const (
	maxReason         = 2000
	maxServiceRequest = 64
	maxComment        = 1000
)

// CanFile returns nil when p may file lockbox requests (the provider's
// operators), and otherwise the error New returns first, before it looks
// at the input. A front end asks it before it reads the input, so a
// caller who may not file learns nothing of what a valid request is.
func CanFile(p identity.Principal) error {
	if !p.IsProvider() || !p.Has(identity.RoleOperator) {
		return newErr(ErrForbidden, "forbidden", "only the provider's operators can file lockbox requests")
	}
	return nil
}

// New validates in and returns a new request filed by actor.
func New(in CreateInput, actor Actor, id string, now time.Time, cat Catalog) (Request, error) {
	p := actor.Principal
	if err := CanFile(p); err != nil {
		return Request{}, err
	}
	if err := keys.ValidTenant(in.Tenant); err != nil {
		return Request{}, newErr(ErrInvalid, "invalid_tenant", "%v", err)
	}
	// The catalog, which security teams edit, is the list of services.
	known, ok := cat.Activities(in.Service)
	if !ok {
		// Named, the services to choose from spare a guess (the proxy's
		// unknown_service names them too).
		var services string
		if sl, ok := cat.(ServiceLister); ok {
			if names := sl.Services(); len(names) > 0 {
				services = ": its services are " + strings.Join(names, ", ")
			}
		}
		return Request{}, newErr(ErrInvalid, "invalid_service", "service %q is not in the activity catalog%s", in.Service, services)
	}
	in.ServiceRequest = strings.TrimSpace(in.ServiceRequest)
	if in.ServiceRequest == "" {
		return Request{}, newErr(ErrInvalid, "invalid_service_request", "service_request (the support case number) is required")
	}
	// The case number names the request in page titles, mail subjects and
	// lists: one line that reads as written (internal/text).
	if utf8.RuneCountInString(in.ServiceRequest) > maxServiceRequest || !text.Line(in.ServiceRequest) {
		return Request{}, newErr(ErrInvalid, "invalid_service_request", "service_request must be at most %d printable characters on one line, with no control or bidirectional characters", maxServiceRequest)
	}
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Reason == "" {
		return Request{}, newErr(ErrInvalid, "invalid_reason", "reason is required")
	}
	if utf8.RuneCountInString(in.Reason) > maxReason {
		return Request{}, newErr(ErrInvalid, "invalid_reason", "reason must be at most %d characters", maxReason)
	}
	if !text.Lines(in.Reason) {
		return Request{}, newErr(ErrInvalid, "invalid_reason", "reason must have no control characters (escapes, lone carriage returns, bidirectional controls); line breaks and tabs are allowed")
	}
	if d := in.Duration.Std(); d < MinDuration || d > MaxDuration {
		// The duration read, not as sent: its short ASCII form (Duration's
		// String) can hold nothing but digits, a sign, a point and units.
		return Request{}, newErr(ErrInvalid, "invalid_duration", "duration must be at least %s and at most %s, got %s", Duration(MinDuration), Duration(MaxDuration), in.Duration)
	}
	var acts []string
	for _, a := range in.Activities {
		if !slices.Contains(known, a) {
			valid := "it has none"
			if len(known) > 0 {
				valid = "its activities are " + strings.Join(known, ", ")
			}
			return Request{}, newErr(ErrInvalid, "invalid_activity", "activity %q is not an activity of %s: %s", a, in.Service, valid)
		}
		if !slices.Contains(acts, a) {
			acts = append(acts, a)
		}
	}
	if acts == nil {
		acts = []string{}
	}
	now = now.UTC()
	deadline := now.Add(DecisionWindow)
	return Request{
		ID:             id,
		Tenant:         in.Tenant,
		Service:        in.Service,
		ServiceRequest: in.ServiceRequest,
		Reason:         in.Reason,
		Duration:       in.Duration,
		Activities:     acts,
		Requester:      p.Subject,
		RequesterEmail: p.Email,
		State:          StatePendingManager,
		CreatedAt:      now,
		DecideBy:       &deadline,
		History: []Event{{
			Action: ActionCreate, Actor: p.Subject, ActorKind: KindProvider,
			To: StatePendingManager, At: now, ClientIP: actor.ClientIP,
		}},
	}, nil
}

// Settle applies the transitions time alone causes: a pending stage whose
// decision window has passed expires, and an approved request whose grant
// has run out completes. It reports whether r changed. It is the first step
// of every action, so a request can never be approved after it expired.
func Settle(r Request, now time.Time) (Request, bool) {
	now = now.UTC()
	switch {
	case r.State.Pending() && r.DecideBy != nil && !now.Before(*r.DecideBy):
		return move(r, ActionExpire, system, "decision window of 12h elapsed", StateExpired, *r.DecideBy), true
	case r.State == StateApproved && r.ExpiresAt != nil && !now.Before(*r.ExpiresAt):
		return move(r, ActionComplete, system, "access window ended", StateCompleted, *r.ExpiresAt), true
	}
	return r, false
}

// Apply returns r after actor takes act, or an error saying why not. It is
// pure: the store supplies env and persists the result atomically.
//
// Who may take act at all is judged before the state: someone who may
// never take it on r (an operator approving, a second engineer canceling,
// the requester deciding as manager) is refused with ErrForbidden, whatever
// state r is in. Someone who may take it, but not in r's state now, gets a
// TransitionError naming that state: a second manager after the first one
// decided, an approver after another approver did or after the tenant's
// window closed, a tenant approver before the manager decided. The state is
// no secret from them, and it tells them why; a 403 would tell them they
// lack a right they have.
//
// Retrying an action that already took effect (the same actor took the
// same action at the same stage: see retried) returns r as it is now and no
// error, whatever happened to r since, so clients can retry safely: a
// manager whose reply was lost retries into a request the tenant decided
// meanwhile, and learns its state rather than that it conflicts.
func Apply(r Request, act Action, actor Actor, comment string, env Env) (Request, error) {
	p := actor.Principal
	// Time settles r first, so that a request is never decided after it
	// expired; the settled request is returned even when the action is
	// refused, for the store to persist.
	r, settled := Settle(r, env.Now)
	stage, err := authorize(r, act, p, env)
	if err != nil {
		return r, err
	}
	if retried(r, act, actor, stage) {
		// Nothing to write but what time settled: the retry's comment is
		// not recorded, so it is not judged either.
		return r, nil
	}
	if settled {
		return r, &TransitionError{Action: act, State: r.State}
	}
	if utf8.RuneCountInString(comment) > maxComment {
		return r, newErr(ErrInvalid, "invalid_comment", "comment must be at most %d characters", maxComment)
	}
	if !text.Lines(comment) {
		return r, newErr(ErrInvalid, "invalid_comment", "comment must have no control characters (escapes, lone carriage returns, bidirectional controls); line breaks and tabs are allowed")
	}
	now := env.Now.UTC()
	switch act {
	case ActionApprove, ActionDeny:
		switch {
		case r.State != stage:
			// Not the actor's turn: the request moved on, or has not
			// reached them yet.
		case r.State == StatePendingManager:
			if act == ActionDeny {
				return move(r, act, actor, comment, StateDenied, now), nil
			}
			r.ManagerApprover = p.Subject
			if !env.LockboxEnabled {
				return approve(r, actor, comment, now), nil
			}
			r = move(r, act, actor, comment, StatePendingCustomer, now)
			deadline := now.Add(DecisionWindow)
			r.DecideBy = &deadline
			return r, nil
		case r.State == StatePendingCustomer:
			if act == ActionDeny {
				return move(r, act, actor, comment, StateDenied, now), nil
			}
			return approve(r, actor, comment, now), nil
		}
	case ActionCancel:
		if r.State.Pending() {
			return move(r, act, actor, comment, StateCanceled, now), nil
		}
	case ActionRevoke:
		if r.State == StateApproved {
			return move(r, act, actor, comment, StateRevoked, now), nil
		}
	}
	return r, &TransitionError{Action: act, State: r.State,
		AwaitsManager: stage == StatePendingCustomer && r.State == StatePendingManager}
}

// authorize is the rule on who may ever take act on r, whatever r's state:
// an error wrapping ErrForbidden says why p may not. For a decision
// (approve, deny) it returns the pending state in which p decides:
// StatePendingManager for a support manager other than the requester,
// StatePendingCustomer for an approver of the tenant. A principal is one
// or the other, never both: a manager has no tenant, an approver has one.
func authorize(r Request, act Action, p identity.Principal, env Env) (State, error) {
	switch act {
	case ActionApprove, ActionDeny:
		if p.IsProvider() {
			return StatePendingManager, checkManager(r, p, act)
		}
		if err := checkTenantApprover(r, p, env, act); err != nil {
			return StatePendingCustomer, err
		}
		return StatePendingCustomer, checkNotProviderStaff(r, p, act)
	case ActionCancel:
		if !Filed(r, p) {
			return "", newErr(ErrForbidden, "forbidden", "only the engineer who filed the request can cancel it")
		}
		return "", nil
	case ActionRevoke:
		manager := p.IsProvider() && p.Has(identity.RoleSupportManager)
		if !manager && checkTenantApprover(r, p, env, act) != nil {
			return "", newErr(ErrForbidden, "forbidden", "only an approver of tenant %s or a support manager can revoke access", r.Tenant)
		}
		return "", nil
	}
	return "", newErr(ErrInvalid, "invalid_action", "unknown action %q", act)
}

// LockboxOnComment is the comment on the revocations that turning Customer
// Lockbox on causes.
const LockboxOnComment = "Customer Lockbox was turned on: access that no approver of the tenant approved ends now"

// EndUntenantApproved returns r revoked by actor when its grant is live and
// no approver of the tenant approved it (the manager's approval was final
// while the tenant's lockbox was off). It is what turning the switch on does
// to each of the tenant's requests; actor is who turned it on. It reports
// whether r changed: a request that time already settled (expired,
// completed) is returned settled.
func EndUntenantApproved(r Request, actor Actor, now time.Time) (Request, bool) {
	if r, changed := Settle(r, now); changed {
		return r, true
	}
	if r.State != StateApproved || TenantApproved(r) {
		return r, false
	}
	return move(r, ActionRevoke, actor, LockboxOnComment, StateRevoked, now.UTC()), true
}

// OffboardComment is the comment on the revocations and cancellations that
// offboarding a tenant causes.
const OffboardComment = "the tenant was offboarded: its access and open requests end"

// EndForOffboarding returns r ended because its tenant was offboarded by
// actor: a live grant revoked, a pending request canceled, each with
// OffboardComment and CauseTenantOffboarded, as a revocation or
// cancellation by a person is recorded. It reports whether r changed: a
// request that time already settled (expired, completed) is returned
// settled, one already final unchanged.
func EndForOffboarding(r Request, actor Actor, now time.Time) (Request, bool) {
	if r, changed := Settle(r, now); changed {
		return r, true
	}
	switch {
	case r.State == StateApproved:
		r = move(r, ActionRevoke, actor, OffboardComment, StateRevoked, now.UTC())
	case r.State.Pending():
		r = move(r, ActionCancel, actor, OffboardComment, StateCanceled, now.UTC())
	default:
		return r, false
	}
	r.History[len(r.History)-1].Cause = CauseTenantOffboarded
	return r, true
}

// checkManager is the rule for deciding as the provider: a support
// manager who is not the requester (two-person rule).
func checkManager(r Request, p identity.Principal, act Action) error {
	if !p.IsProvider() || !p.Has(identity.RoleSupportManager) {
		return newErr(ErrForbidden, "forbidden", "only a support manager can %s request %s for the provider, and only the approvers of tenant %s for the tenant", act, r.ID, r.Tenant)
	}
	if SelfFiled(r, p) {
		// One person whatever the case of the id (Sam@ and sam@): a
		// token that spells the requester otherwise is still them.
		// The message names nobody: only the requester can get it, and an
		// error text must never be where a provider identity travels.
		return newErr(ErrForbidden, "self_approval", "two-person rule: you filed request %s and cannot %s it as manager", r.ID, act)
	}
	return nil
}

// checkNotProviderStaff is the two-person rule on the tenant's side: the
// engineer who filed r, or the manager who approved it, does not decide it
// for the tenant as well. One person can be known to the provider's issuer
// and to the tenant's by the same user id (a shared issuer signs both, or
// the provider's staff sign in as user@ the tenant's domain), and their
// approval as the tenant would be the only approval anyone else gave.
// SameSubject fails closed on the case of the id. Revoking is not refused:
// it only ends access.
func checkNotProviderStaff(r Request, p identity.Principal, act Action) error {
	if TookPart(r, p) {
		// One message for both, naming no role: a tenant identity is not
		// told which part the provider's staff member with its id took.
		return newErr(ErrForbidden, "self_approval", "two-person rule: you took part in request %s for the provider and cannot %s it for tenant %s", r.ID, act, r.Tenant)
	}
	return nil
}

// TookPart reports whether p's user id is that of r's engineer or of the
// manager who approved it, without ASCII case: the provider's staff who
// took part in r, whom the two-person rule keeps from deciding it for the
// tenant (checkNotProviderStaff). r is the request as stored: its
// TenantView names neither.
func TookPart(r Request, p identity.Principal) bool {
	return SelfFiled(r, p) ||
		r.ManagerApprover != "" && identity.SameSubject(p.Subject, r.ManagerApprover)
}

// SelfFiled reports whether p's user id is that of r's engineer, without
// ASCII case: the two-person rule keeps p from deciding r as the
// provider's manager (checkManager). It is a refusal, so it takes two
// spellings of an id for one person (identity.SameSubject). r is the
// request as stored: its TenantView names no engineer.
func SelfFiled(r Request, p identity.Principal) bool {
	return identity.SameSubject(p.Subject, r.Requester)
}

// Filed reports whether p is the engineer who filed r, by the id exactly
// as their token spells it: who may cancel r. Unlike the two-person
// rule's refusals (SelfFiled, TookPart), this grants a right, and rights
// follow the id byte for byte, as reading one's own requests does
// (viewer.ownOnly): "Sam" does not withdraw the request of "sam", which
// "Sam" can't even read.
func Filed(r Request, p identity.Principal) bool {
	return p.IsProvider() && p.Subject == r.Requester
}

// checkTenantApprover is the rule for deciding as the tenant: a user of
// the tenant (env.TenantUser) who is its global admin or an approver it
// assigned, and who carries no provider role. A token from the shared
// issuer can carry both a tenant's tid and provider roles, or name a
// provider identity with the tenant's global-admin role: neither decides
// for the tenant.
func checkTenantApprover(r Request, p identity.Principal, env Env, act Action) error {
	if p.IsProvider() || p.HasProviderOnlyRole() {
		return newErr(ErrForbidden, "forbidden", "provider identities cannot %s request %s as an approver of tenant %s", act, r.ID, r.Tenant)
	}
	if !p.InTenant(r.Tenant) || !env.TenantUser {
		return newErr(ErrForbidden, "forbidden", "you are not an approver of tenant %s", r.Tenant)
	}
	if !p.Has(identity.RoleGlobalAdmin) && !env.AssignedApprover {
		return newErr(ErrForbidden, "forbidden", "only global administrators of %s and the approvers they assigned can %s requests", r.Tenant, act)
	}
	return nil
}

func approve(r Request, actor Actor, comment string, now time.Time) Request {
	r = move(r, ActionApprove, actor, comment, StateApproved, now)
	exp := now.Add(r.Duration.Std())
	r.Approver, r.ApprovedAt, r.ExpiresAt = actor.Principal.Subject, &now, &exp
	return r
}

// move records the transition and clears the pending deadline.
func move(r Request, act Action, actor Actor, comment string, to State, at time.Time) Request {
	kind := actor.kind()
	if actor.Principal.Subject == SystemActor && actor.Principal.TenantID == "" && len(actor.Principal.Roles) == 0 {
		kind = KindSystem
	}
	r.History = append(slices.Clip(r.History), Event{
		Action: act, Actor: actor.Principal.Subject, ActorKind: kind, From: r.State, To: to,
		ActorGlobalAdmin: kind == KindTenant && actor.Principal.IsGlobalAdminOf(r.Tenant),
		At:               at.UTC(), ClientIP: actor.ClientIP, Comment: comment,
	})
	r.State = to
	if !to.Pending() {
		r.DecideBy = nil
	}
	return r
}

// retried reports whether actor already took act on r: at stage for a
// decision (the manager's at pending_manager, the tenant's at
// pending_customer; each stage is passed once), and at all for a
// cancellation or a revocation, which end r. What happened since (the
// tenant deciding after the manager, time ending the window) does not make
// the actor's retry a new action: it took effect once, and is recorded
// once.
func retried(r Request, act Action, actor Actor, stage State) bool {
	for _, ev := range slices.Backward(r.History) {
		// Provider and tenant subjects are separate namespaces: the kind
		// must match as well as the subject.
		if ev.Action != act || ev.Actor != actor.Principal.Subject || ev.ActorKind != actor.kind() {
			continue
		}
		switch act {
		case ActionApprove, ActionDeny:
			if ev.From == stage {
				return true
			}
		case ActionCancel, ActionRevoke:
			return true
		}
	}
	return false
}
