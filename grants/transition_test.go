package grants

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

type testCatalog map[string][]string

func (c testCatalog) Activities(s string) ([]string, bool) { a, ok := c[s]; return a, ok }

// Services names the catalog's services, sorted, as policy.Engine does.
func (c testCatalog) Services() []string { return slices.Sorted(maps.Keys(c)) }

var catalog = testCatalog{
	"exchange":   {"Get-Mailbox", "Get-MailboxMessage", "New-MailboxRepairRequest"},
	"sharepoint": {"Get-SPOSite"},
	"onedrive":   {"Get-OneDriveFile"},
}

func who(sub, tid string, roles ...identity.Role) Actor {
	return Actor{Principal: identity.Principal{Subject: sub, TenantID: tid, Roles: roles}, ClientIP: "192.0.2.7"}
}

var (
	operator  = who("alice", "", identity.RoleOperator)
	manager   = who("mary", "", identity.RoleSupportManager)
	mike      = who("mike", "", identity.RoleSupportManager)
	managerOp = who("sam", "", identity.RoleOperator, identity.RoleSupportManager)
	// managerOpMail filed as sam@; managerOpMailUpper is the same person,
	// spelled as another token of theirs may spell them.
	managerOpMail      = who("sam@provider.example", "", identity.RoleOperator, identity.RoleSupportManager)
	managerOpMailUpper = who("Sam@Provider.example", "", identity.RoleOperator, identity.RoleSupportManager)
	globalAdmin        = who("gina", "contoso", identity.RoleGlobalAdmin)
	approver           = who("adam", "contoso", identity.RoleApprover)
	otherAdmin         = who("fabian", "fabrikam", identity.RoleGlobalAdmin)
	tenantManager      = who("troy", "contoso", identity.RoleSupportManager)
	// mgrAsAdmin and foreignAdmin carry contoso's tid and global-admin, as
	// the shared issuer can sign them, but are no users of contoso.
	mgrAsAdmin   = who("mgr2@provider.example", "contoso", identity.RoleSupportManager, identity.RoleGlobalAdmin)
	foreignAdmin = who("gus@provider.example", "contoso", identity.RoleGlobalAdmin)
)

func input() CreateInput {
	return CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1001", Reason: "mailbox corrupt", Duration: Duration(2 * time.Hour)}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name  string
		actor Actor
		edit  func(*CreateInput)
		code  string
		kind  error
	}{
		{"ok", operator, func(*CreateInput) {}, "", nil},
		{"manager is not an operator", manager, func(*CreateInput) {}, "forbidden", ErrForbidden},
		{"tenant user with operator role", who("eve", "contoso", identity.RoleOperator), func(*CreateInput) {}, "forbidden", ErrForbidden},
		{"bad tenant", operator, func(in *CreateInput) { in.Tenant = "Contoso}:x" }, "invalid_tenant", ErrInvalid},
		{"unknown service", operator, func(in *CreateInput) { in.Service = "teams" }, "invalid_service", ErrInvalid},
		{"missing service request", operator, func(in *CreateInput) { in.ServiceRequest = "  " }, "invalid_service_request", ErrInvalid},
		{"control bytes in service request", operator, func(in *CreateInput) { in.ServiceRequest = "SR\n1" }, "invalid_service_request", ErrInvalid},
		{"missing reason", operator, func(in *CreateInput) { in.Reason = "" }, "invalid_reason", ErrInvalid},
		{"zero duration", operator, func(in *CreateInput) { in.Duration = 0 }, "invalid_duration", ErrInvalid},
		{"negative duration", operator, func(in *CreateInput) { in.Duration = Duration(-time.Hour) }, "invalid_duration", ErrInvalid},
		{"exactly 4h", operator, func(in *CreateInput) { in.Duration = Duration(4 * time.Hour) }, "", nil},
		{"4h and a nanosecond", operator, func(in *CreateInput) { in.Duration = Duration(4*time.Hour + 1) }, "invalid_duration", ErrInvalid},
		// A window no one could use: a grant of a nanosecond or a second
		// ends before the engineer's first call reaches the proxy.
		{"a nanosecond", operator, func(in *CreateInput) { in.Duration = Duration(time.Nanosecond) }, "invalid_duration", ErrInvalid},
		{"a microsecond", operator, func(in *CreateInput) { in.Duration = Duration(time.Microsecond) }, "invalid_duration", ErrInvalid},
		{"a minute less a nanosecond", operator, func(in *CreateInput) { in.Duration = Duration(time.Minute - 1) }, "invalid_duration", ErrInvalid},
		{"exactly 1m", operator, func(in *CreateInput) { in.Duration = Duration(time.Minute) }, "", nil},
		{"known activity", operator, func(in *CreateInput) { in.Activities = []string{"Get-Mailbox"} }, "", nil},
		{"activity of another service", operator, func(in *CreateInput) { in.Activities = []string{"Get-SPOSite"} }, "invalid_activity", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			tc.edit(&in)
			r, err := New(in, tc.actor, "id-1", t0, catalog)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if r.State != StatePendingManager || r.Requester != tc.actor.Principal.Subject || !r.DecideBy.Equal(t0.Add(12*time.Hour)) {
					t.Fatalf("unexpected request %+v", r)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if codeOf(err) != tc.code {
				t.Fatalf("code = %q, want %q (%v)", codeOf(err), tc.code, err)
			}
		})
	}
}

func codeOf(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

// step is one action in a scenario, with what must follow from it.
type step struct {
	at       time.Duration // since creation
	actor    Actor
	act      Action
	lockbox  *bool // tenant switch; on when nil
	assigned bool  // actor is an assigned approver
	foreign  bool  // actor is not a user of the tenant (none of its domains)
	want     State // state after the step
	err      error // category of the expected error
	code     string
}

var off = new(bool)

// TestScenarios walks the lifecycle as sequences of actions, checking the
// state after each one.
// A service or an activity the catalog lacks is refused with what it has:
// "service \"teams\" is not in the activity catalog" left the engineer to
// guess, where the proxy's unknown_service names the services. A catalog
// that can't list its services is refused as before.
func TestNewNamesWhatTheCatalogHas(t *testing.T) {
	for _, tc := range []struct {
		name string
		cat  Catalog
		edit func(*CreateInput)
		code string
		want string
	}{
		{"unknown service", catalog, func(in *CreateInput) { in.Service = "teams" }, "invalid_service",
			`service "teams" is not in the activity catalog: its services are exchange, onedrive, sharepoint`},
		{"unknown service, catalog without a list", plainCatalog{catalog}, func(in *CreateInput) { in.Service = "teams" }, "invalid_service",
			`service "teams" is not in the activity catalog`},
		{"activity of another service", catalog, func(in *CreateInput) { in.Activities = []string{"Get-SPOSite"} }, "invalid_activity",
			`activity "Get-SPOSite" is not an activity of exchange: its activities are Get-Mailbox, Get-MailboxMessage, New-MailboxRepairRequest`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			tc.edit(&in)
			_, err := New(in, operator, "id-1", t0, tc.cat)
			if codeOf(err) != tc.code || err == nil || err.Error() != tc.want {
				t.Errorf("err = %v (%s), want %s: %q", err, codeOf(err), tc.code, tc.want)
			}
		})
	}
}

// plainCatalog is a Catalog and no ServiceLister.
type plainCatalog struct{ c testCatalog }

func (p plainCatalog) Activities(s string) ([]string, bool) { return p.c.Activities(s) }

func TestScenarios(t *testing.T) {
	scenarios := []struct {
		name      string
		requester *Actor // operator when nil
		steps     []step
	}{
		{"happy path", nil, []step{
			{at: time.Hour, actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{at: 2 * time.Hour, actor: approver, assigned: true, act: ActionApprove, want: StateApproved},
		}},
		{"global admin approves without assignment", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: globalAdmin, act: ActionApprove, want: StateApproved},
		}},
		{"tenant denies", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: approver, assigned: true, act: ActionDeny, want: StateDenied},
			{actor: approver, assigned: true, act: ActionApprove, want: StateDenied, err: ErrConflict},
		}},
		{"manager denies", nil, []step{
			{actor: manager, act: ActionDeny, want: StateDenied},
			{actor: globalAdmin, act: ActionApprove, want: StateDenied, err: ErrConflict},
		}},
		{"self approval refused", &managerOp, []step{
			{actor: managerOp, act: ActionApprove, want: StatePendingManager, err: ErrForbidden, code: "self_approval"},
			{actor: managerOp, act: ActionDeny, want: StatePendingManager, err: ErrForbidden, code: "self_approval"},
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
		}},
		// Sam@provider.example and sam@provider.example are one person to
		// an identity provider that keeps user principal names: the
		// two-person rule must not depend on how a token spells the name.
		{"self approval refused whatever the case", &managerOpMail, []step{
			{actor: managerOpMailUpper, act: ActionApprove, want: StatePendingManager, err: ErrForbidden, code: "self_approval"},
			{actor: managerOpMailUpper, act: ActionDeny, want: StatePendingManager, err: ErrForbidden, code: "self_approval"},
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
		}},
		{"operator cannot approve", nil, []step{
			{actor: operator, act: ActionApprove, want: StatePendingManager, err: ErrForbidden},
		}},
		{"tenant user cannot act as manager", nil, []step{
			{actor: tenantManager, act: ActionApprove, want: StatePendingManager, err: ErrForbidden},
			{actor: tenantManager, act: ActionDeny, want: StatePendingManager, err: ErrForbidden},
		}},
		// Whoever may decide the request, but not in its state now, is
		// told the state (a TransitionError), not that they lack a right.
		{"tenant approver before the manager is told it awaits the manager", nil, []step{
			{actor: globalAdmin, act: ActionApprove, want: StatePendingManager, err: ErrConflict},
			{actor: approver, assigned: true, act: ActionDeny, want: StatePendingManager, err: ErrConflict},
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
		}},
		{"second manager after the first approved", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: mike, act: ActionApprove, want: StatePendingCustomer, err: ErrConflict},
			{actor: mike, act: ActionDeny, want: StatePendingCustomer, err: ErrConflict},
			{actor: globalAdmin, act: ActionApprove, want: StateApproved},
			{actor: mike, act: ActionApprove, want: StateApproved, err: ErrConflict},
			{actor: mike, act: ActionDeny, want: StateApproved, err: ErrConflict},
		}},
		{"second manager after the first denied", nil, []step{
			{actor: manager, act: ActionDeny, want: StateDenied},
			{actor: mike, act: ActionApprove, want: StateDenied, err: ErrConflict},
			{actor: mike, act: ActionDeny, want: StateDenied, err: ErrConflict},
		}},
		{"second manager after lockbox-off approval", nil, []step{
			{actor: manager, act: ActionApprove, lockbox: off, want: StateApproved},
			{actor: mike, act: ActionApprove, lockbox: off, want: StateApproved, err: ErrConflict},
		}},
		{"second approver after the first approved", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: approver, assigned: true, act: ActionApprove, want: StateApproved},
			{actor: globalAdmin, act: ActionApprove, want: StateApproved, err: ErrConflict},
			{actor: globalAdmin, act: ActionDeny, want: StateApproved, err: ErrConflict},
		}},
		{"second approver after the first denied", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: globalAdmin, act: ActionDeny, want: StateDenied},
			{actor: approver, assigned: true, act: ActionApprove, want: StateDenied, err: ErrConflict},
			{actor: approver, assigned: true, act: ActionDeny, want: StateDenied, err: ErrConflict},
		}},
		{"manager and approver after the tenant's window", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{at: 12 * time.Hour, actor: approver, assigned: true, act: ActionApprove, want: StateExpired, err: ErrConflict},
			{at: 12 * time.Hour, actor: mike, act: ActionDeny, want: StateExpired, err: ErrConflict},
		}},
		// Whoever may never decide it is refused in every state, expired
		// included, with the reason.
		{"who may never decide is refused in every state", &managerOp, []step{
			{actor: operator, act: ActionApprove, want: StatePendingManager, err: ErrForbidden},
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: managerOp, act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden, code: "self_approval"},
			{actor: tenantManager, act: ActionDeny, want: StatePendingCustomer, err: ErrForbidden},
			{actor: approver, assigned: false, act: ActionDeny, want: StatePendingCustomer, err: ErrForbidden},
			{actor: globalAdmin, act: ActionApprove, want: StateApproved},
			{actor: managerOp, act: ActionDeny, want: StateApproved, err: ErrForbidden, code: "self_approval"},
			{actor: operator, act: ActionApprove, want: StateApproved, err: ErrForbidden},
			{actor: foreignAdmin, foreign: true, act: ActionApprove, want: StateApproved, err: ErrForbidden},
			{actor: approver, assigned: false, act: ActionApprove, want: StateApproved, err: ErrForbidden},
		}},
		{"who may never decide is refused after expiry", &managerOp, []step{
			{at: 12 * time.Hour, actor: managerOp, act: ActionApprove, want: StateExpired, err: ErrForbidden, code: "self_approval"},
			{at: 12 * time.Hour, actor: globalAdmin, act: ActionApprove, want: StateExpired, err: ErrConflict},
			{at: 12 * time.Hour, actor: operator, act: ActionDeny, want: StateExpired, err: ErrForbidden},
		}},
		{"who may never cancel or revoke is refused in every state", nil, []step{
			{actor: who("bob", "", identity.RoleOperator), act: ActionCancel, want: StatePendingManager, err: ErrForbidden},
			{actor: operator, act: ActionRevoke, want: StatePendingManager, err: ErrForbidden},
			{actor: manager, act: ActionApprove, lockbox: off, want: StateApproved},
			{actor: who("bob", "", identity.RoleOperator), act: ActionCancel, want: StateApproved, err: ErrForbidden},
			{actor: operator, act: ActionCancel, want: StateApproved, err: ErrConflict},
			{actor: mike, act: ActionRevoke, want: StateRevoked},
			{actor: operator, act: ActionRevoke, want: StateRevoked, err: ErrForbidden},
			{actor: globalAdmin, act: ActionRevoke, want: StateRevoked, err: ErrConflict},
		}},
		{"unassigned tenant user cannot approve", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: approver, assigned: false, act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
		}},
		{"other tenant's admin cannot approve", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: otherAdmin, act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
		}},
		// The reviewer's token: the shared issuer's provider manager with
		// contoso's tid and global-admin. Neither its domain nor its
		// provider role lets it decide for the tenant.
		{"provider identity with the tenant's tid and global-admin cannot decide", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: mgrAsAdmin, foreign: true, act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
			{actor: mgrAsAdmin, foreign: true, act: ActionDeny, want: StatePendingCustomer, err: ErrForbidden},
			{actor: mgrAsAdmin, act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
			{actor: globalAdmin, act: ActionApprove, want: StateApproved},
			{actor: mgrAsAdmin, foreign: true, act: ActionRevoke, want: StateApproved, err: ErrForbidden},
		}},
		{"global admin outside the tenant's domains cannot decide", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: foreignAdmin, foreign: true, act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
			{actor: foreignAdmin, foreign: true, act: ActionDeny, want: StatePendingCustomer, err: ErrForbidden},
			{actor: globalAdmin, act: ActionApprove, want: StateApproved},
			{actor: foreignAdmin, foreign: true, act: ActionRevoke, want: StateApproved, err: ErrForbidden},
			{actor: globalAdmin, act: ActionRevoke, want: StateRevoked},
		}},
		{"a provider role takes tenant rights, whichever", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: who("gina", "contoso", identity.RoleGlobalAdmin, identity.RoleOperator), act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
			{actor: who("gina", "contoso", identity.RoleGlobalAdmin, identity.RoleLockboxAdmin), act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
			{actor: who("adam", "contoso", identity.RoleApprover, identity.RoleSupportManager), assigned: true, act: ActionDeny, want: StatePendingCustomer, err: ErrForbidden},
			// audit-reader is a tenant role as well as a provider one.
			{actor: who("gina", "contoso", identity.RoleGlobalAdmin, identity.RoleAuditReader), act: ActionApprove, want: StateApproved},
			{actor: who("adam", "contoso", identity.RoleApprover, identity.RoleOperator), assigned: true, act: ActionRevoke, want: StateApproved, err: ErrForbidden},
		}},
		{"lockbox off: manager approval is final", nil, []step{
			{actor: manager, act: ActionApprove, lockbox: off, want: StateApproved},
		}},
		{"retried approval is idempotent", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
		}},
		{"a decision retried after the request moved on changes nothing", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: globalAdmin, act: ActionDeny, want: StateDenied},
			{actor: manager, act: ActionApprove, want: StateDenied},
			{actor: globalAdmin, act: ActionDeny, want: StateDenied},
			{actor: mike, act: ActionApprove, want: StateDenied, err: ErrConflict},
			{actor: manager, act: ActionDeny, want: StateDenied, err: ErrConflict},
			{actor: globalAdmin, act: ActionApprove, want: StateDenied, err: ErrConflict},
		}},
		{"a tenant user sharing a manager's subject is no retry", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: who("mary", "contoso"), act: ActionApprove, want: StatePendingCustomer, err: ErrForbidden},
		}},
		{"requester cancels while pending", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: who("bob", "", identity.RoleOperator), act: ActionCancel, want: StatePendingCustomer, err: ErrForbidden},
			{actor: operator, act: ActionCancel, want: StateCanceled},
		}},
		{"cannot cancel once approved", nil, []step{
			{actor: manager, act: ActionApprove, lockbox: off, want: StateApproved},
			{actor: operator, act: ActionCancel, want: StateApproved, err: ErrConflict},
		}},
		{"tenant approver revokes", nil, []step{
			{actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{actor: globalAdmin, act: ActionApprove, want: StateApproved},
			{actor: otherAdmin, act: ActionRevoke, want: StateApproved, err: ErrForbidden},
			{actor: operator, act: ActionRevoke, want: StateApproved, err: ErrForbidden},
			{actor: approver, assigned: true, act: ActionRevoke, want: StateRevoked},
		}},
		{"manager revokes", nil, []step{
			{actor: manager, act: ActionApprove, lockbox: off, want: StateApproved},
			{actor: manager, act: ActionRevoke, want: StateRevoked},
		}},
		{"cannot revoke a pending request", nil, []step{
			{actor: globalAdmin, act: ActionRevoke, want: StatePendingManager, err: ErrConflict},
		}},
		{"manager stage expires at exactly 12h", nil, []step{
			{at: 12*time.Hour - 1, actor: manager, act: ActionApprove, want: StatePendingCustomer},
		}},
		{"manager stage expired at 12h", nil, []step{
			{at: 12 * time.Hour, actor: manager, act: ActionApprove, want: StateExpired, err: ErrConflict},
		}},
		{"tenant stage window counts from the manager's approval", nil, []step{
			{at: 11 * time.Hour, actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{at: 23*time.Hour - 1, actor: globalAdmin, act: ActionApprove, want: StateApproved},
		}},
		{"tenant stage expires at exactly 12h", nil, []step{
			{at: time.Hour, actor: manager, act: ActionApprove, want: StatePendingCustomer},
			{at: 13 * time.Hour, actor: globalAdmin, act: ActionApprove, want: StateExpired, err: ErrConflict},
		}},
		{"unknown action", nil, []step{
			{actor: manager, act: "escalate", want: StatePendingManager, err: ErrInvalid},
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			requester := operator
			if sc.requester != nil {
				requester = *sc.requester
			}
			r, err := New(input(), requester, "id-1", t0, catalog)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range sc.steps {
				env := Env{Now: t0.Add(st.at), LockboxEnabled: st.lockbox == nil || *st.lockbox, AssignedApprover: st.assigned,
					TenantUser: !st.foreign}
				next, err := Apply(r, st.act, st.actor, "c", env)
				if st.err == nil && err != nil {
					t.Fatalf("step %d (%s by %s): %v", i, st.act, st.actor.Principal.Subject, err)
				}
				if st.err != nil && !errors.Is(err, st.err) {
					t.Fatalf("step %d (%s by %s): err = %v, want %v", i, st.act, st.actor.Principal.Subject, err, st.err)
				}
				if st.code != "" && codeOf(err) != st.code {
					t.Fatalf("step %d: code = %q, want %q", i, codeOf(err), st.code)
				}
				if next.State != st.want {
					t.Fatalf("step %d (%s by %s): state = %s, want %s", i, st.act, st.actor.Principal.Subject, next.State, st.want)
				}
				if err == nil || next.State == StateExpired {
					r = next
				}
			}
		})
	}
}

func TestTransitionErrorNamesState(t *testing.T) {
	r, _ := New(input(), operator, "id-1", t0, catalog)
	r, _ = Apply(r, ActionDeny, manager, "", Env{Now: t0})
	_, err := Apply(r, ActionApprove, globalAdmin, "", Env{Now: t0, LockboxEnabled: true, TenantUser: true})
	if err == nil || err.Error() != "cannot approve a request that is denied" {
		t.Fatalf("err = %v", err)
	}
}

// TestTransitionErrorTenantBeforeManager: a tenant approver deciding a
// request the provider's manager has not approved is told the order, not
// only the state's name; it is still a conflict naming the state.
func TestTransitionErrorTenantBeforeManager(t *testing.T) {
	r, _ := New(input(), operator, "id-1", t0, catalog)
	env := Env{Now: t0, LockboxEnabled: true, AssignedApprover: true, TenantUser: true}
	for _, tc := range []struct {
		actor Actor
		act   Action
		want  string
	}{
		{globalAdmin, ActionApprove, "cannot approve it yet: the provider's support manager must approve the request first (it is pending_manager)"},
		{approver, ActionDeny, "cannot deny it yet: the provider's support manager must approve the request first (it is pending_manager)"},
	} {
		_, err := Apply(r, tc.act, tc.actor, "", env)
		var te *TransitionError
		if !errors.As(err, &te) || !errors.Is(err, ErrConflict) || te.State != StatePendingManager {
			t.Fatalf("%s %s: err = %#v, want a TransitionError in pending_manager", tc.actor.Principal.Subject, tc.act, err)
		}
		if err.Error() != tc.want {
			t.Errorf("%s %s: err = %q, want %q", tc.actor.Principal.Subject, tc.act, err, tc.want)
		}
	}
	// A manager after another manager decided is told the state as before.
	r, _ = Apply(r, ActionApprove, manager, "", env)
	if _, err := Apply(r, ActionApprove, mike, "", Env{Now: t0, LockboxEnabled: true}); err == nil || err.Error() != "cannot approve a request that is pending_customer" {
		t.Errorf("second manager: err = %v", err)
	}
}

// TestGrantWindow checks the grant lives exactly the approved duration from
// the final approval, and no longer.
func TestGrantWindow(t *testing.T) {
	for _, d := range []time.Duration{time.Minute, 4 * time.Hour} {
		in := input()
		in.Duration = Duration(d)
		r, _ := New(in, operator, "id-1", t0, catalog)
		r, _ = Apply(r, ActionApprove, manager, "", Env{Now: t0.Add(time.Hour), LockboxEnabled: true})
		approvedAt := t0.Add(3 * time.Hour)
		r, err := Apply(r, ActionApprove, globalAdmin, "ok", Env{Now: approvedAt, LockboxEnabled: true, TenantUser: true})
		if err != nil {
			t.Fatal(err)
		}
		g, ok := GrantOf(r)
		if !ok || !g.ApprovedAt.Equal(approvedAt) || !g.ExpiresAt.Equal(approvedAt.Add(d)) || g.Approver != "gina" || g.Operator != "alice" {
			t.Fatalf("grant = %+v", g)
		}
		if !g.Valid(approvedAt.Add(d-1)) || g.Valid(approvedAt.Add(d)) {
			t.Fatalf("%s grant: valid one tick before expiry and invalid at it", d)
		}
		if s, changed := Settle(r, approvedAt.Add(d-1)); changed || s.State != StateApproved {
			t.Fatalf("settled early: %s", s.State)
		}
		s, changed := Settle(r, approvedAt.Add(d))
		if !changed || s.State != StateCompleted {
			t.Fatalf("not completed at expiry: %s", s.State)
		}
		if _, ok := GrantOf(s); ok {
			t.Fatal("completed request still carries a grant")
		}
		last := s.History[len(s.History)-1]
		if last.Action != ActionComplete || last.ActorKind != KindSystem || !last.At.Equal(approvedAt.Add(d)) {
			t.Fatalf("history = %+v", last)
		}
	}
}

func TestTenantViewHidesProviderStaff(t *testing.T) {
	r, _ := New(input(), operator, "id-1", t0, catalog)
	r, _ = Apply(r, ActionApprove, manager, "", Env{Now: t0, LockboxEnabled: true})
	r, _ = Apply(r, ActionApprove, approver, "fine", Env{Now: t0, LockboxEnabled: true, AssignedApprover: true, TenantUser: true})
	v := TenantView(r)
	if v.Requester != "Microsoft Operator" || v.ManagerApprover != "Microsoft Support" || v.Approver != "adam" {
		t.Fatalf("view = %+v", v)
	}
	wantActors := []string{"Microsoft Operator", "Microsoft Support", "adam"}
	for i, ev := range v.History {
		if ev.Actor != wantActors[i] || (ev.ActorKind == KindProvider && ev.ClientIP != "") {
			t.Fatalf("history %d = %+v, want actor %q and no provider IP", i, ev, wantActors[i])
		}
	}
	if r.Requester != "alice" || r.History[1].Actor != "mary" {
		t.Fatal("TenantView modified its argument")
	}
}

// The requester's e-mail address, kept for their notifications, is a
// provider identity too: the tenant's view leaves it out.
func TestTenantViewHidesRequesterEmail(t *testing.T) {
	op := operator
	op.Principal.Email = "alice@provider.example"
	r, err := New(input(), op, "id-1", t0, catalog)
	if err != nil {
		t.Fatal(err)
	}
	if r.RequesterEmail != "alice@provider.example" {
		t.Fatalf("requester e-mail = %q, want the token's address", r.RequesterEmail)
	}
	if v := TenantView(r); v.RequesterEmail != "" {
		t.Errorf("tenant view shows the requester's e-mail %q", v.RequesterEmail)
	}
	if b, _ := json.Marshal(TenantView(r)); strings.Contains(string(b), "provider.example") {
		t.Errorf("tenant view JSON names the requester: %s", b)
	}
}

// With the tenant's lockbox off, the manager's approval is final: the
// tenant sees "Microsoft Support" as the approver, never the manager.
func TestTenantViewOfManagerOnlyApproval(t *testing.T) {
	r, _ := New(input(), operator, "id-1", t0, catalog)
	r, _ = Apply(r, ActionApprove, manager, "", Env{Now: t0})
	if r.State != StateApproved || r.Approver != "mary" {
		t.Fatalf("manager's approval not final: %+v", r)
	}
	v := TenantView(r)
	if v.Approver != "Microsoft Support" || v.ManagerApprover != "Microsoft Support" || v.History[1].Actor != "Microsoft Support" {
		t.Fatalf("view = %+v", v)
	}
	// A history entry of unknown kind counts as the provider's.
	r.History[1].ActorKind = ""
	if v := TenantView(r); v.History[1].Actor != "Microsoft Support" || v.Approver != "Microsoft Support" {
		t.Fatalf("unknown actor kind shown: %+v", v)
	}
}
