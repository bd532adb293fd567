package grants_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// wantCode fails t unless err is a fault.Error of kind with code.
func wantCode(t *testing.T, what string, err, kind error, code string) {
	t.Helper()
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok || !errors.Is(err, kind) || fe.Code != code {
		t.Fatalf("%s: err = %v, want %v %s", what, err, kind, code)
	}
}

// TestOffboardEndsTheTenant: offboarding a tenant, in one transaction,
// marks it offboarded, revokes its live grants and cancels its pending
// requests, each with the lifecycle's own audit record; a second
// offboarding writes nothing. Afterwards nothing new happens for the
// tenant (requests, decisions, settings, approvers, registry changes, a
// second onboarding of its id), while its history and audit log stay
// readable to its users.
func TestOffboardEndsTheTenant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.log.SetTenantDirectory(e.tenants)
	admin := tenanttest.Admin
	bob := who("bob", "", identity.RoleOperator)
	carl := who("carl", "", identity.RoleOperator)

	live := e.file(t, operator, "exchange")
	e.act(t, live.ID, grants.ActionApprove, manager)
	e.act(t, live.ID, grants.ActionApprove, globalAdmin)
	atManager := e.file(t, bob, "sharepoint")
	atTenant := e.file(t, bob, "onedrive")
	e.act(t, atTenant.ID, grants.ActionApprove, manager)
	done := e.file(t, carl, "exchange")
	e.act(t, done.ID, grants.ActionCancel, carl)
	other, err := e.store.Create(ctx, operator, grants.CreateInput{
		Tenant: "fabrikam", Service: "exchange", ServiceRequest: "SR-2", Reason: "r", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)

	// Only the provider's Lockbox administrators, refused before the
	// reason is looked at.
	for _, p := range []identity.Principal{manager.Principal, operator.Principal, globalAdmin.Principal} {
		_, err := e.tenants.Offboard(ctx, p, "", "contoso", "")
		wantCode(t, "offboard by "+p.Subject, err, fault.ErrForbidden, "forbidden")
	}
	for _, reason := range []string{"", "  ", strings.Repeat("x", tenants.MaxOffboardReason+1), "a\x00b"} {
		_, err := e.tenants.Offboard(ctx, admin, "", "contoso", reason)
		wantCode(t, "offboard with reason "+reason, err, fault.ErrInvalid, "invalid_reason")
	}

	before, err := e.log.List(ctx, "contoso", 1000)
	if err != nil {
		t.Fatal(err)
	}
	off, err := e.tenants.Offboard(ctx, admin, "192.0.2.9", "contoso", "contract ended")
	if err != nil {
		t.Fatal(err)
	}
	if off.Offboarded == nil || off.Offboarded.By != admin.Subject || off.Offboarded.Reason != "contract ended" || !off.Offboarded.At.Equal(e.clock.Now().Truncate(time.Second)) {
		t.Fatalf("offboarded entry = %+v", off.Offboarded)
	}

	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("grant survived offboarding: %v", err)
	}
	for _, c := range []struct {
		id     string
		state  grants.State
		action grants.Action
	}{
		{live.ID, grants.StateRevoked, grants.ActionRevoke},
		{atManager.ID, grants.StateCanceled, grants.ActionCancel},
		{atTenant.ID, grants.StateCanceled, grants.ActionCancel},
	} {
		r, err := e.store.Get(ctx, manager.Principal, c.id)
		if err != nil {
			t.Fatal(err)
		}
		last := r.History[len(r.History)-1]
		if r.State != c.state || last.Action != c.action || last.Actor != admin.Subject || last.ActorKind != grants.KindProvider ||
			last.Comment != grants.OffboardComment || last.ClientIP != "192.0.2.9" {
			t.Errorf("request %s after offboarding: state %s, last event %+v", c.id, r.State, last)
		}
	}
	if r, err := e.store.Get(ctx, manager.Principal, done.ID); err != nil || len(r.History) != 2 || r.State != grants.StateCanceled {
		t.Errorf("request canceled before offboarding changed: %+v, %v", r, err)
	}
	if r, err := e.store.Get(ctx, manager.Principal, other.ID); err != nil || r.State != grants.StatePendingManager {
		t.Errorf("other tenant's request = %+v, %v", r, err)
	}
	if n, err := e.rdb.ZCard(ctx, keys.TenantPending("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("pending index after offboarding: %d, %v", n, err)
	}

	// The records: the offboarding, then one per ended request, as the
	// revoke and cancel paths write them.
	after, err := e.log.List(ctx, "contoso", 1000)
	if err != nil {
		t.Fatal(err)
	}
	added := after[:len(after)-len(before)]
	var ops []string
	for _, r := range slices.Backward(added) {
		ops = append(ops, r.Operation+" "+r.ObjectId)
	}
	slices.Sort(ops[1:])
	want := []string{record.OpOffboardTenant + " contoso"}
	ends := []string{record.OpRevokeAccess + " " + live.ID, record.OpCancelRequest + " " + atManager.ID, record.OpCancelRequest + " " + atTenant.ID}
	slices.Sort(ends)
	want = append(want, ends...)
	if !slices.Equal(ops, want) {
		t.Fatalf("records of the offboarding =\n %q\nwant\n %q", ops, want)
	}
	rec := added[len(added)-1]
	if rec.UserId != record.ProviderUserID || rec.ProviderUserId != admin.Subject || rec.Comment != "contract ended" || rec.OrganizationId != e.orgID(t, "contoso") {
		t.Errorf("offboarding record = %+v", rec)
	}

	// Again: the same answer, nothing written.
	e.clock.Advance(time.Hour)
	again, err := e.tenants.Offboard(ctx, admin, "", "contoso", "another reason")
	if err != nil || again.Offboarded == nil || *again.Offboarded != *off.Offboarded {
		t.Fatalf("second offboarding = %+v, %v; want %+v", again.Offboarded, err, off.Offboarded)
	}
	if now, _ := e.log.List(ctx, "contoso", 1); now[0].Id != after[0].Id {
		t.Fatalf("second offboarding recorded %+v", now[0])
	}

	// Nothing new happens for the tenant.
	_, err = e.store.Create(ctx, carl, grants.CreateInput{
		Tenant: "contoso", Service: "sharepoint", ServiceRequest: "SR-3", Reason: "r", Duration: grants.Duration(time.Hour),
	})
	wantCode(t, "filing", err, grants.ErrConflict, "tenant_offboarded")
	_, err = e.store.Act(ctx, atTenant.ID, grants.ActionApprove, globalAdmin, "")
	wantCode(t, "approving", err, grants.ErrConflict, "tenant_offboarded")
	_, err = e.tenants.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false})
	wantCode(t, "settings", err, fault.ErrConflict, "tenant_offboarded")
	err = e.tenants.AddApprover(ctx, globalAdmin.Principal, "", "contoso", "adam@contoso.example")
	wantCode(t, "approvers", err, fault.ErrConflict, "tenant_offboarded")
	name := "New name"
	_, err = e.tenants.UpdateTenant(ctx, admin, "", "contoso", tenants.TenantUpdate{DisplayName: &name})
	wantCode(t, "registry change", err, fault.ErrConflict, "tenant_offboarded")
	_, _, err = e.tenants.Onboard(ctx, admin, "", tenants.Onboarding{ID: "contoso", DisplayName: "Contoso 2", Domains: []string{"contoso2.example"}})
	wantCode(t, "onboarding again", err, fault.ErrConflict, "tenant_offboarded")
	// Refusals before the state: who has no right is told so.
	_, err = e.tenants.PutSettings(ctx, otherAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false})
	wantCode(t, "settings by another tenant's admin", err, fault.ErrForbidden, "forbidden")
	// Other tenants go on.
	if _, err := e.tenants.PutSettings(ctx, otherAdmin.Principal, "", "fabrikam", tenants.Settings{LockboxEnabled: true, NotificationAddresses: []string{"sec@fabrikam.example"}}); err != nil {
		t.Fatalf("other tenant's settings: %v", err)
	}

	// Its users still read its history and its audit log; they see the
	// provider's label, not who offboarded it.
	if r, err := e.store.Get(ctx, globalAdmin.Principal, live.ID); err != nil || r.State != grants.StateRevoked || r.History[len(r.History)-1].Actor != record.ProviderUserID {
		t.Fatalf("tenant admin reads the revoked request: %+v, %v", r, err)
	}
	page, err := e.log.Search(ctx, globalAdmin.Principal, audit.Query{Tenant: "contoso", Operation: record.OpOffboardTenant})
	if err != nil || len(page.Records) != 1 || page.Records[0].ProviderUserId != "" || page.Records[0].UserId != record.ProviderUserID {
		t.Fatalf("tenant admin searches the offboarding: %+v, %v", page.Records, err)
	}
	seen, err := e.tenants.Tenant(ctx, globalAdmin.Principal, "contoso")
	if err != nil || seen.Offboarded == nil || seen.Offboarded.By != record.ProviderUserID || seen.Offboarded.Reason != "contract ended" {
		t.Fatalf("tenant admin reads the entry: %+v, %v", seen.Offboarded, err)
	}
	if err := e.tenants.Onboarded(ctx, "contoso"); err != nil {
		t.Fatalf("offboarded tenant is not onboarded any more: %v", err)
	}
}

// fileWhileOffboarding files a request for contoso on another replica,
// the tenant offboarded right after the filing checked it, and checks the
// filing was refused for it.
func fileWhileOffboarding(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	rdbB := redistest.Clone(t, e.rdb)
	hook := &afterReply{when: redistest.Command("get", keys.Tenant("contoso")), then: func() {
		if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "", "contoso", "contract ended"); err != nil {
			t.Error(err)
		}
	}}
	rdbB.AddHook(hook)
	replica := newEnvOn(t, rdbB, e.clock)
	hook.armed.Store(true)
	_, err := replica.store.Create(ctx, operator, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour),
	})
	if hook.armed.Load() {
		t.Fatal("the offboarding never ran")
	}
	wantCode(t, "filing during offboarding", err, grants.ErrConflict, "tenant_offboarded")
}

// TestOffboardWhileFiling: a request filed while the tenant is being
// offboarded either commits before the offboarding, which ends it, or is
// refused: here the offboarding commits right after the filing checked the
// tenant, and the filing must not leave a pending request behind.
func TestOffboardWhileFiling(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fileWhileOffboarding(t, e)
	if n, err := e.rdb.ZCard(ctx, keys.TenantPending("contoso")).Result(); err != nil || n != 0 {
		t.Fatalf("pending requests of the offboarded tenant: %d, %v", n, err)
	}
}

// TestOffboardingIsTheProvidersInTheTenantsView: the requests offboarding
// ended read, in the tenant's view of their history, as the provider's
// doing ("Microsoft Support") with the cause tenant_offboarded, not as
// withdrawn by their engineer ("Microsoft Operator"); the provider's own
// view names the administrator. A cancellation by the engineer keeps its
// label and carries no cause.
func TestOffboardingIsTheProvidersInTheTenantsView(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	withdrawn := e.file(t, operator, "sharepoint")
	e.act(t, withdrawn.ID, grants.ActionCancel, operator)
	atManager := e.file(t, operator, "exchange")
	atTenant := e.file(t, operator, "onedrive")
	e.act(t, atTenant.ID, grants.ActionApprove, manager)
	e.clock.Advance(time.Minute)
	if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
		t.Fatal(err)
	}

	last := func(p identity.Principal, id string) grants.Event {
		t.Helper()
		r, err := e.store.Get(ctx, p, id)
		if err != nil {
			t.Fatal(err)
		}
		return r.History[len(r.History)-1]
	}
	for _, c := range []struct {
		id, tenantSees string
		cause          grants.Cause
	}{
		{withdrawn.ID, record.OperatorUserID, ""},
		{atManager.ID, record.ProviderUserID, grants.CauseTenantOffboarded},
		{atTenant.ID, record.ProviderUserID, grants.CauseTenantOffboarded},
	} {
		ev := last(globalAdmin.Principal, c.id)
		if ev.Action != grants.ActionCancel || ev.Actor != c.tenantSees || ev.Cause != c.cause || ev.ClientIP != "" {
			t.Errorf("tenant admin reads the end of %s as %s by %q (cause %q) from %q; want by %q, cause %q",
				c.id, ev.Action, ev.Actor, ev.Cause, ev.ClientIP, c.tenantSees, c.cause)
		}
		if c.cause == "" {
			continue
		}
		ev = last(manager.Principal, c.id)
		if ev.Actor != tenanttest.Admin.Subject || ev.Cause != c.cause || ev.ClientIP != "192.0.2.9" {
			t.Errorf("manager reads the end of %s as by %q (cause %q) from %q", c.id, ev.Actor, ev.Cause, ev.ClientIP)
		}
	}
}

// TestOffboardedTenantAfterRetention lists what Redis still holds of an
// offboarded tenant once audit retention has removed every one of its
// records, as the documentation describes it (README, "Offboarding a
// tenant"; docs/operations.md, "Memory"): retention removes audit
// records only. The registry entry, the settings, and each request with
// its history (who decided, from which address, their comments) and its
// indexes stay for good, as they do for a tenant still onboarded; the
// grants and the open-request indexes are gone with the offboarding. With
// request retention set, the requests and their indexes go too.
func TestOffboardedTenantAfterRetention(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	live := e.file(t, operator, "exchange")
	e.act(t, live.ID, grants.ActionApprove, manager)
	e.act(t, live.ID, grants.ActionApprove, globalAdmin)
	done := e.file(t, operator, "sharepoint")
	e.act(t, done.ID, grants.ActionCancel, operator)
	e.clock.Advance(time.Minute)
	if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
		t.Fatal(err)
	}

	// Three years on, with a year's retention: every record is past it,
	// and the retention job, through its schedule, reaches the tenant
	// though nothing was written for it since the offboarding.
	e.clock.Advance(3 * 365 * 24 * time.Hour)
	if _, err := e.log.TrimAll(ctx, 365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if recs, err := e.log.List(ctx, "contoso", 100); err != nil || len(recs) != 0 {
		t.Fatalf("audit records left after retention: %d (%v), want none", len(recs), err)
	}

	// Each key that names the tenant or one of its requests, its ids
	// replaced by their role, with its TTL: -1 is none, kept for good.
	ids := strings.NewReplacer(live.ID, "ID1", done.ID, "ID2")
	kept := func() []string {
		t.Helper()
		var left []string
		for _, pattern := range []string{"lockbox:{contoso}:*", "lockbox:reqidx:*", "lockbox:requests", "lockbox:operator:*"} {
			found, err := e.rdb.Keys(ctx, pattern).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range found {
				ttl, err := e.rdb.TTL(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				if ttl > 0 {
					continue // gone by itself
				}
				left = append(left, ids.Replace(k))
			}
		}
		slices.Sort(left)
		return left
	}
	left := kept()
	want := []string{
		"lockbox:operator:" + operator.Principal.Subject + ":requests", // the operator's listing
		"lockbox:reqidx:ID1", "lockbox:reqidx:ID2", // request id → tenant
		"lockbox:requests",                      // the provider-wide listing
		"lockbox:{contoso}:audit",               // the stream, empty
		"lockbox:{contoso}:audit:anchor",        // the hash the chain goes on from
		"lockbox:{contoso}:audit:anchor:record", // the record it is the hash of, which dates it
		"lockbox:{contoso}:audit:head",
		"lockbox:{contoso}:req:ID1", "lockbox:{contoso}:req:ID2", // the requests, with their history
		"lockbox:{contoso}:requests", // the tenant's history listing
		"lockbox:{contoso}:settings",
		"lockbox:{contoso}:tenant", // the registry entry, offboarded
	}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("keys kept for good after offboarding and retention:\n got %q\nwant %q", left, want)
	}
	// The requests still read whole, history and all.
	for _, id := range []string{live.ID, done.ID} {
		r, err := e.store.Get(ctx, globalAdmin.Principal, id)
		if err != nil || len(r.History) == 0 {
			t.Errorf("request %s after retention: %d history entries, %v", id, len(r.History), err)
		}
	}

	// With request retention (LOCKBOX_REQUEST_RETENTION) of two years,
	// the job reaches the offboarded tenant too: both requests ended
	// three years ago (one revoked by the offboarding), and go with their
	// history and every index; the registry entry, the settings and the
	// audit chain's keys stay.
	if n, _, err := e.store.DeleteEnded(ctx, 2*365*24*time.Hour); err != nil || n != 2 {
		t.Fatalf("request retention deleted %d requests (%v), want 2", n, err)
	}
	want = []string{
		"lockbox:{contoso}:audit", "lockbox:{contoso}:audit:anchor", "lockbox:{contoso}:audit:anchor:record", "lockbox:{contoso}:audit:head",
		"lockbox:{contoso}:settings", "lockbox:{contoso}:tenant",
	}
	if left := kept(); !slices.Equal(left, want) {
		t.Errorf("keys kept after offboarding, audit and request retention:\n got %q\nwant %q", left, want)
	}
	for _, id := range []string{live.ID, done.ID} {
		if _, err := e.store.Get(ctx, globalAdmin.Principal, id); !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("request %s after request retention: %v, want not found", id, err)
		}
	}
}
