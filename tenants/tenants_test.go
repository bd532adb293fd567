package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

func p(sub, tid string, roles ...identity.Role) identity.Principal {
	return identity.Principal{Subject: sub, TenantID: tid, Roles: roles}
}

var (
	admin      = p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin)
	approver   = p("adam@contoso.example", "contoso", identity.RoleApprover)
	outsider   = p("olga@contoso.example", "contoso")
	otherAdmin = p("fabian@fabrikam.example", "fabrikam", identity.RoleGlobalAdmin)
	manager    = p("mary", "", identity.RoleSupportManager)
	operator   = p("alice", "", identity.RoleOperator)
)

// testRedis returns the Redis of a test: a database of the package's
// redis-server, or the shared cluster within TestOnRedisCluster.
var testRedis = func(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

func newStore(t *testing.T) (*tenants.Store, *audit.Log) {
	return newStoreOn(t, testRedis(t))
}

func newStoreOn(t *testing.T, rdb redis.UniversalClient) (*tenants.Store, *audit.Log) {
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	log := audit.NewLog(rdb, c.Now)
	s := tenants.NewStore(rdb, log, c.Now)
	tenanttest.Onboard(t, s, "contoso", "fabrikam")
	return s, log
}

func TestSettings(t *testing.T) {
	s, log := newStore(t)
	ctx := context.Background()
	st, err := s.Settings(ctx, admin, "contoso")
	if err != nil || !st.LockboxEnabled || len(st.NotificationAddresses) != 0 {
		t.Fatalf("defaults = %+v, %v", st, err)
	}
	// Unassigned, approver is only a user of contoso holding a role claim.
	for _, who := range []identity.Principal{approver, otherAdmin, manager, operator} {
		if _, err := s.PutSettings(ctx, who, "", "contoso", tenants.Settings{}); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("%s changed settings: %v", who.Subject, err)
		}
	}
	if _, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{NotificationAddresses: []string{"Bob <bob@contoso.com>"}}); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("display-name address accepted: %v", err)
	}
	got, err := s.PutSettings(ctx, admin, "203.0.113.9", "contoso", tenants.Settings{LockboxEnabled: false, NotificationAddresses: []string{"sec@contoso.com", "sec@contoso.com"}})
	if err != nil || got.LockboxEnabled || fmt.Sprint(got.NotificationAddresses) != "[sec@contoso.com]" {
		t.Fatalf("put = %+v, %v", got, err)
	}
	if on, _ := s.LockboxEnabled(ctx, "contoso"); on {
		t.Fatal("switch still on")
	}
	// Readers: the tenant's admins and approvers, the provider's managers.
	if err := s.AddApprover(ctx, admin, "", "contoso", approver.Subject); err != nil {
		t.Fatal(err)
	}
	for _, who := range []identity.Principal{admin, approver, manager} {
		if _, err := s.Settings(ctx, who, "contoso"); err != nil {
			t.Fatalf("%s can't read: %v", who.Subject, err)
		}
	}
	for _, who := range []identity.Principal{outsider, otherAdmin, operator} {
		if _, err := s.Settings(ctx, who, "contoso"); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("%s read settings: %v", who.Subject, err)
		}
	}
	// An assigned approver configures Customer Lockbox too, as in
	// Microsoft 365; turning it on needs the lifecycle's guard.
	if _, err := s.PutSettings(ctx, approver, "203.0.113.10", "contoso", tenants.Settings{LockboxEnabled: false, NotificationAddresses: []string{"soc@contoso.com"}}); err != nil {
		t.Fatalf("assigned approver can't configure: %v", err)
	}
	if _, err := s.PutSettings(ctx, approver, "", "contoso", tenants.Settings{LockboxEnabled: true}); err == nil {
		t.Fatal("lockbox turned on without a guard to end manager-only grants")
	}
	recs, _ := log.List(ctx, "contoso", 10)
	var sets []record.Record
	for _, r := range recs {
		if r.Operation == record.OpSetSettings {
			sets = append(sets, r)
		}
	}
	if len(sets) != 2 {
		t.Fatalf("settings records = %+v", sets)
	}
	first, second := sets[1], sets[0]
	if first.UserId != admin.Subject || first.ClientIP != "203.0.113.9" ||
		fmt.Sprint(first.ModifiedProperties) != "[{LockboxEnabled true false} {NotificationAddresses  sec@contoso.com}]" {
		t.Fatalf("first change = %+v", first)
	}
	if second.UserId != approver.Subject ||
		fmt.Sprint(second.ModifiedProperties) != "[{NotificationAddresses sec@contoso.com soc@contoso.com}]" {
		t.Fatalf("second change = %+v", second)
	}
}

func TestUnknownTenant(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ghostAdmin := p("gus@ghost.example", "ghost", identity.RoleGlobalAdmin)
	for name, err := range map[string]error{
		"settings":     func() error { _, err := s.Settings(ctx, ghostAdmin, "ghost"); return err }(),
		"put settings": func() error { _, err := s.PutSettings(ctx, ghostAdmin, "", "ghost", tenants.Defaults()); return err }(),
		"approvers":    func() error { _, err := s.Approvers(ctx, ghostAdmin, "ghost"); return err }(),
		"add approver": s.AddApprover(ctx, ghostAdmin, "", "ghost", "ann@ghost.example"),
		"manager read": func() error { _, err := s.Settings(ctx, manager, "ghost"); return err }(),
	} {
		if fe, ok := errors.AsType[*fault.Error](err); !ok || !errors.Is(err, fault.ErrNotFound) || fe.Code != "tenant_not_found" || !strings.Contains(err.Error(), "ghost") {
			t.Errorf("%s: err = %v, want tenant_not_found naming ghost", name, err)
		}
	}
}

func TestApprovers(t *testing.T) {
	s, log := newStore(t)
	ctx := context.Background()
	const adam, olga = "adam@contoso.example", "olga@contoso.example"
	if err := s.AddApprover(ctx, approver, "", "contoso", olga); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("approver assigned an approver: %v", err)
	}
	if err := s.AddApprover(ctx, otherAdmin, "", "contoso", olga); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("other tenant's admin assigned an approver: %v", err)
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "bad user"); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("bad user id: %v", err)
	}
	// Approvers are users of the tenant: never the provider's staff, a
	// user of another tenant, or an id outside the tenant's domains.
	for _, u := range []string{"mary@provider.example", "fay@fabrikam.example", "adam", "adam@contoso.example.evil.com", "x@sub.contoso.example"} {
		err := s.AddApprover(ctx, admin, "", "contoso", u)
		if fe, ok := errors.AsType[*fault.Error](err); !ok || !errors.Is(err, fault.ErrInvalid) || fe.Code != "not_tenant_user" {
			t.Errorf("AddApprover(%s) = %v, want not_tenant_user", u, err)
		}
	}
	for range 2 { // adding twice is a no-op
		if err := s.AddApprover(ctx, admin, "", "contoso", adam); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "Olga@Contoso.Example"); err != nil {
		t.Fatalf("domain match must not depend on case: %v", err)
	}
	// One person whatever the case: adding her again is a no-op.
	if err := s.AddApprover(ctx, admin, "", "contoso", olga); err != nil {
		t.Fatal(err)
	}
	list, err := s.Approvers(ctx, approver, "contoso")
	if err != nil || fmt.Sprint(list.Approvers) != "[adam@contoso.example olga@contoso.example]" || len(list.NotCounting) != 0 {
		t.Fatalf("approvers = %+v, %v", list, err)
	}
	if ok, _ := s.IsApprover(ctx, "fabrikam", adam); ok {
		t.Fatal("approver of contoso counted for fabrikam")
	}
	if err := s.RemoveApprover(ctx, admin, "", "contoso", olga); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.IsApprover(ctx, "contoso", olga); ok {
		t.Fatal("removed approver still approves")
	}
	recs, _ := log.List(ctx, "contoso", 3)
	var ops []string
	for _, r := range recs {
		ops = append(ops, r.Operation+":"+r.ObjectId)
	}
	want := "[Remove-CustomerLockboxApprover:olga@contoso.example Add-CustomerLockboxApprover:olga@contoso.example Add-CustomerLockboxApprover:adam@contoso.example]"
	if fmt.Sprint(ops) != want {
		t.Fatalf("audit = %v", ops)
	}
}

// TestApproverIDsIgnoreCase: a tenant's users are user@domain names, and
// Microsoft 365 user principal names are case-insensitive, so an approver
// is one person whatever the case of their id in the assignment or in a
// token: stored folded to lower case, matched and removed in any case,
// entries stored before ids were folded included. The folding is ASCII
// only: a Kelvin sign (U+212A, which Unicode folds to k) is not a k.
func TestApproverIDsIgnoreCase(t *testing.T) {
	rdb := testRedis(t)
	s, log := newStoreOn(t, rdb)
	ctx := context.Background()
	approvers := func() string {
		t.Helper()
		list, err := s.Approvers(ctx, admin, "contoso")
		if err != nil || len(list.NotCounting) != 0 {
			t.Fatalf("approvers = %+v, %v", list, err)
		}
		return fmt.Sprint(list.Approvers)
	}
	isApprover := func(user string, want bool) {
		t.Helper()
		if ok, err := s.IsApprover(ctx, "contoso", user); err != nil || ok != want {
			t.Fatalf("IsApprover(%s) = %v, %v; want %v", user, ok, err, want)
		}
	}

	if err := s.AddApprover(ctx, admin, "", "contoso", "Alice@Contoso.Example"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "alice@contoso.example"); err != nil {
		t.Fatal(err)
	}
	if got := approvers(); got != "[alice@contoso.example]" {
		t.Fatalf("approvers = %s, want alice once, in lower case", got)
	}
	for _, u := range []string{"alice@contoso.example", "Alice@Contoso.Example", "ALICE@CONTOSO.EXAMPLE"} {
		isApprover(u, true)
	}
	isApprover("alice@contoso.example.evil", false)
	isApprover("alic@contoso.example", false)
	// Not a user id at all (Lockbox never accepts one from a token):
	// no case folding makes it one, and it matches nobody.
	isApprover("\u212aim@contoso.example", false)
	if err := s.AddApprover(ctx, admin, "", "contoso", "kim@contoso.example"); err != nil {
		t.Fatal(err)
	}
	isApprover("\u212aim@contoso.example", false)
	isApprover("KIM@contoso.example", true)
	if err := s.AddApprover(ctx, admin, "", "contoso", "\u212aim@contoso.example"); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("AddApprover with a Kelvin sign: %v, want invalid", err)
	}

	// Entries stored as they were typed, before ids were folded: one in
	// mixed case, and one person stored twice.
	if err := rdb.SAdd(ctx, keys.Approvers("contoso"), "Bob@Contoso.Example", "Carol@Contoso.Example", "carol@contoso.example").Err(); err != nil {
		t.Fatal(err)
	}
	isApprover("bob@contoso.example", true)
	isApprover("BOB@CONTOSO.EXAMPLE", true)
	isApprover("Carol@contoso.example", true)
	if got := approvers(); got != "[alice@contoso.example bob@contoso.example carol@contoso.example kim@contoso.example]" {
		t.Fatalf("approvers = %s", got)
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "bob@contoso.example"); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.SCard(ctx, keys.Approvers("contoso")).Result(); err != nil || n != 5 {
		t.Fatalf("adding a stored approver in another case changed the set: %d entries, %v", n, err)
	}
	// Removal by any case removes every spelling.
	for _, u := range []string{"BOB@contoso.example", "CAROL@CONTOSO.EXAMPLE", "alice@contoso.example"} {
		if err := s.RemoveApprover(ctx, admin, "", "contoso", u); err != nil {
			t.Fatal(err)
		}
		isApprover(u, false)
	}
	if members, err := rdb.SMembers(ctx, keys.Approvers("contoso")).Result(); err != nil || fmt.Sprint(members) != "[kim@contoso.example]" {
		t.Fatalf("left in Redis: %v, %v", members, err)
	}
	// Removing one who is no approver, in whatever case, changes nothing,
	// and says so: answered as a removal, a typo looked like success.
	err := s.RemoveApprover(ctx, admin, "", "contoso", "Bob@Contoso.Example")
	if fe, ok := errors.AsType[*fault.Error](err); !ok || fe.Code != "approver_not_found" || !errors.Is(err, fault.ErrNotFound) ||
		fe.Message != "bob@contoso.example is not an approver of tenant contoso: nothing was changed" {
		t.Fatalf("removing no approver: %v, want approver_not_found", err)
	}

	recs, err := log.List(ctx, "contoso", 10)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range recs {
		if r.Operation != record.OpOnboardTenant {
			ops = append(ops, r.Operation+":"+r.ObjectId)
		}
	}
	want := "[Remove-CustomerLockboxApprover:alice@contoso.example Remove-CustomerLockboxApprover:carol@contoso.example " +
		"Remove-CustomerLockboxApprover:bob@contoso.example Add-CustomerLockboxApprover:kim@contoso.example Add-CustomerLockboxApprover:alice@contoso.example]"
	if fmt.Sprint(ops) != want {
		t.Fatalf("audit = %v\nwant    %s", ops, want)
	}
}

// TestHasUserFoldsASCIIOnly: the domain of a tenant user compares without
// ASCII case, and nothing else: a domain spelt with a Kelvin sign (which
// Unicode lower-cases to k) is not the tenant's.
func TestHasUserFoldsASCIIOnly(t *testing.T) {
	tn := tenants.Tenant{ID: "kontoso", Domains: []string{"kontoso.example"}}
	for user, want := range map[string]bool{
		"ann@kontoso.example":         true,
		"Ann@KONTOSO.Example":         true,
		"ann@\u212aontoso.example":    false,
		"\u212aim@kontoso.example":    false,
		"ann@kontoso.example.":        false,
		" ann@kontoso.example":        false,
		"ann@sub.kontoso.example":     false,
		"ann@kontoso.example\x00":     false,
		"ann@":                        false,
		"@kontoso.example":            false,
		"ann@kontoso.example@evil.io": false,
	} {
		if got := tn.HasUser(user); got != want {
			t.Errorf("HasUser(%q) = %v, want %v", user, got, want)
		}
	}
}

var lara = p("lara@provider.example", "", identity.RoleLockboxAdmin)

// TestDomainsFoldASCIIOnly: a registered domain is what a user id's domain
// is compared with, and user ids are ASCII, folded in ASCII only
// (HasUser). A domain is kept in lower case the same way: a Kelvin sign
// (U+212A), which Unicode lower-cases to k, is refused rather than made
// the k of another domain, and so is any other non-ASCII name, with the
// message naming the form Lockbox takes (the xn-- A-label).
func TestDomainsFoldASCIIOnly(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, d := range []string{"\u212aontoso.example", "b\u00fccher.example", "CONTOSO.\u212aXAMPLE"} {
		_, _, err := s.Onboard(ctx, lara, "", tenants.Onboarding{ID: "kontoso", DisplayName: "K", Domains: []string{d}})
		if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "xn--") {
			t.Errorf("onboard with domain %q: %v, want invalid, naming the xn-- form", d, err)
		}
		domains := []string{"contoso.example", d}
		if got, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &domains}); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("update with domain %q: %+v, %v; want invalid", d, got.Domains, err)
		}
	}
	got, _, err := s.Onboard(ctx, lara, "", tenants.Onboarding{ID: "buecher", DisplayName: "B", Domains: []string{"XN--Bcher-Kva.Example."}})
	if err != nil || fmt.Sprint(got.Domains) != "[xn--bcher-kva.example]" {
		t.Fatalf("onboard with an A-label: %+v, %v", got.Domains, err)
	}
}

func TestOnboard(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	log := audit.NewLog(rdb, c.Now)
	s := tenants.NewStore(rdb, log, c.Now)
	ctx := context.Background()
	in := tenants.Onboarding{ID: "contoso", DisplayName: " Contoso Ltd ", Domains: []string{"Contoso.Example", "contoso.example."},
		GlobalAdmins: []string{"gina@contoso.example"}}
	for _, who := range []identity.Principal{manager, operator, admin, p("lara@contoso.example", "contoso", identity.RoleLockboxAdmin)} {
		if _, _, err := s.Onboard(ctx, who, "", in); !errors.Is(err, fault.ErrForbidden) {
			t.Errorf("%s onboarded a tenant: %v", who.Subject, err)
		}
	}
	for name, bad := range map[string]tenants.Onboarding{
		"no domains":      {ID: "contoso", DisplayName: "C"},
		"bad domain":      {ID: "contoso", DisplayName: "C", Domains: []string{"not a domain"}},
		"bad id":          {ID: "Contoso!", DisplayName: "C", Domains: []string{"c.example"}},
		"no display name": {ID: "contoso", Domains: []string{"c.example"}},
		"bad admin":       {ID: "contoso", DisplayName: "C", Domains: []string{"c.example"}, GlobalAdmins: []string{"Gina <g@c.example>"}},
		"bad org id":      {ID: "contoso", DisplayName: "C", Domains: []string{"c.example"}, OrganizationID: "1234"},
	} {
		if _, _, err := s.Onboard(ctx, lara, "", bad); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
	got, st, err := s.Onboard(ctx, lara, "192.0.2.7", in)
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "Contoso Ltd" || fmt.Sprint(got.Domains) != "[contoso.example]" || len(got.OrganizationID) != 36 || !st.LockboxEnabled {
		t.Fatalf("onboarded %+v with %+v", got, st)
	}
	if _, _, err := s.Onboard(ctx, lara, "", in); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("second onboarding: %v", err)
	}
	off := false
	_, st, err = s.Onboard(ctx, lara, "", tenants.Onboarding{ID: "fabrikam", DisplayName: "Fabrikam", Domains: []string{"fabrikam.example"},
		OrganizationID: "6F9619FF-8B86-D011-B42D-00C04FC964FF", LockboxEnabled: &off})
	if err != nil || st.LockboxEnabled {
		t.Fatalf("onboarding with lockbox off: %+v, %v", st, err)
	}
	if on, _ := s.LockboxEnabled(ctx, "fabrikam"); on {
		t.Fatal("fabrikam's switch is on")
	}
	fab, _ := s.Get(ctx, "fabrikam")
	if fab.OrganizationID != "6f9619ff-8b86-d011-b42d-00c04fc964ff" {
		t.Fatalf("organization id = %q", fab.OrganizationID)
	}

	// Who sees what: the provider's staff every tenant; a tenant's users
	// only their own, and another tenant is "not found" to them.
	listed, err := s.List(ctx, operator)
	all := listed.Tenants
	if err != nil || len(all) != 2 || all[0].ID != "contoso" || all[1].ID != "fabrikam" {
		t.Fatalf("operator's list = %+v, %v", all, err)
	}
	listed, err = s.List(ctx, admin)
	own := listed.Tenants
	if err != nil || len(own) != 1 || own[0].ID != "contoso" {
		t.Fatalf("tenant admin's list = %+v, %v", own, err)
	}
	if _, err := s.Tenant(ctx, admin, "fabrikam"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("contoso's admin read fabrikam: %v", err)
	}
	// The entry names the tenant's domains and its administrators'
	// addresses: a token that names contoso in its tid but is no user of
	// it (the shared issuer's provider identity), or carries a provider
	// role, is told contoso is not onboarded, as a stranger is.
	for _, who := range []identity.Principal{
		p("mgr2@provider.example", "contoso", identity.RoleGlobalAdmin),
		p("mgr2@provider.example", "contoso", identity.RoleAuditReader),
		p("gina", "contoso", identity.RoleGlobalAdmin),
		p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleOperator),
	} {
		if got, err := s.Tenant(ctx, who, "contoso"); !errors.Is(err, fault.ErrNotFound) || got.ID != "" {
			t.Errorf("%s %v read contoso's entry: %+v, %v", who.Subject, who.Roles, got, err)
		}
		if got, err := s.List(ctx, who); err != nil || len(got.Tenants) != 0 || got.Unreadable != nil {
			t.Errorf("%s %v listed %+v, %v; want none", who.Subject, who.Roles, got, err)
		}
	}
	for _, who := range []identity.Principal{admin, approver, p("tom@contoso.example", "contoso", identity.RoleAuditReader)} {
		if got, err := s.Tenant(ctx, who, "contoso"); err != nil || got.ID != "contoso" {
			t.Errorf("%s read contoso's entry: %+v, %v", who.Subject, got, err)
		}
	}

	// The record of onboarding shows tenants "Microsoft Support", the
	// provider the person.
	recs, _ := log.List(ctx, "contoso", 10)
	if len(recs) != 1 || recs[0].Operation != record.OpOnboardTenant || recs[0].UserId != record.ProviderUserID ||
		recs[0].ProviderUserId != lara.Subject || recs[0].ClientIP != "192.0.2.7" {
		t.Fatalf("onboarding record = %+v", recs)
	}
}

// TestUpdateTenant: only Lockbox administrators change a registry entry;
// removing a domain takes approver rights from its users at once.
func TestUpdateTenant(t *testing.T) {
	s, log := newStore(t)
	ctx := context.Background()
	if err := s.AddApprover(ctx, admin, "", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	domains := []string{"contoso.com"}
	if _, err := s.UpdateTenant(ctx, admin, "", "contoso", tenants.TenantUpdate{Domains: &domains}); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("tenant admin changed the registry: %v", err)
	}
	name := "Contoso Pharmaceuticals"
	got, err := s.UpdateTenant(ctx, lara, "192.0.2.8", "contoso", tenants.TenantUpdate{DisplayName: &name, Domains: &domains})
	if err != nil || got.DisplayName != name || fmt.Sprint(got.Domains) != "[contoso.com]" {
		t.Fatalf("update = %+v, %v", got, err)
	}
	if ok, _ := s.IsApprover(ctx, "contoso", "adam@contoso.example"); ok {
		t.Fatal("an approver outside the tenant's domains still approves")
	}
	if _, err := s.UpdateTenant(ctx, lara, "", "ghost", tenants.TenantUpdate{DisplayName: &name}); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("update of an unknown tenant: %v", err)
	}
	recs, _ := log.List(ctx, "contoso", 1)
	if recs[0].Operation != record.OpUpdateTenant ||
		fmt.Sprint(recs[0].ModifiedProperties) != "[{DisplayName contoso Ltd Contoso Pharmaceuticals} {Domains contoso.example contoso.com}]" {
		t.Fatalf("update record = %+v", recs[0])
	}
}

// TestAdoptLegacy: tenants Lockbox knew before onboarding existed are
// registered once, keeping their switch.
func TestAdoptLegacy(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	log := audit.NewLog(rdb, nil)
	s := tenants.NewStore(rdb, log, nil)
	rdb.SAdd(ctx, "lockbox:tenants", "oldco", "newco")
	rdb.Set(ctx, "lockbox:{oldco}:settings", `{"lockbox_enabled":false,"notification_addresses":[]}`, 0)
	tenanttest.Onboard(t, s, "newco")
	if n, err := s.AdoptLegacy(ctx); err != nil || n != 1 {
		t.Fatalf("first run adopted %d, %v; want 1 (oldco)", n, err)
	}
	if n, err := s.AdoptLegacy(ctx); err != nil || n != 0 {
		t.Fatalf("second run adopted %d, %v; want 0", n, err)
	}
	old, err := s.Get(ctx, "oldco")
	if err != nil || old.DisplayName != "oldco" || len(old.Domains) != 0 {
		t.Fatalf("adopted = %+v, %v", old, err)
	}
	if on, _ := s.LockboxEnabled(ctx, "oldco"); on {
		t.Fatal("adoption changed the switch")
	}
}

// TestGlobalAdminMustBeTenantUser: a global admin's role comes from the
// token alone. A token that is no user of the tenant by its registered
// domains (the rule assigned approvers are held to), or that carries a
// provider role, neither configures Customer Lockbox nor assigns
// approvers; the reviewer's token is both, as the shared issuer signs it.
func TestGlobalAdminMustBeTenantUser(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.AddApprover(ctx, admin, "", "contoso", approver.Subject); err != nil {
		t.Fatal(err)
	}
	for _, who := range []identity.Principal{
		p("mgr2@provider.example", "contoso", identity.RoleSupportManager, identity.RoleGlobalAdmin),
		p("gus@provider.example", "contoso", identity.RoleGlobalAdmin),
		p("gina", "contoso", identity.RoleGlobalAdmin),
		p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleOperator),
		p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleLockboxAdmin),
		p("adam@contoso.example", "contoso", identity.RoleApprover, identity.RoleSupportManager),
	} {
		if _, err := s.PutSettings(ctx, who, "", "contoso", tenants.Settings{}); !errors.Is(err, fault.ErrForbidden) {
			t.Errorf("%s %v changed settings: %v", who.Subject, who.Roles, err)
		}
		if err := s.AddApprover(ctx, who, "", "contoso", "eve@contoso.example"); !errors.Is(err, fault.ErrForbidden) {
			t.Errorf("%s %v assigned an approver: %v", who.Subject, who.Roles, err)
		}
		if err := s.RemoveApprover(ctx, who, "", "contoso", approver.Subject); !errors.Is(err, fault.ErrForbidden) {
			t.Errorf("%s %v removed an approver: %v", who.Subject, who.Roles, err)
		}
	}
	if ok, err := s.IsApprover(ctx, "contoso", approver.Subject); err != nil || !ok {
		t.Fatalf("approver removed: %v, %v", ok, err)
	}
	// A tenant's global admin who is also one of its auditors keeps the
	// right: audit-reader is a tenant role too.
	auditingAdmin := p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleAuditReader)
	if _, err := s.PutSettings(ctx, auditingAdmin, "", "contoso", tenants.Settings{LockboxEnabled: true, NotificationAddresses: []string{"sec@contoso.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddApprover(ctx, auditingAdmin, "", "contoso", "eve@contoso.example"); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]bool{"gina@contoso.example": true, "GINA@CONTOSO.EXAMPLE": true, "mgr2@provider.example": false, "gina": false} {
		if ok, err := s.IsUser(ctx, "contoso", user); err != nil || ok != want {
			t.Errorf("IsUser(contoso, %s) = %v, %v; want %v", user, ok, err, want)
		}
	}
	if ok, err := s.IsUser(ctx, "ghost", "gus@ghost.example"); err != nil || ok {
		t.Errorf("IsUser of a tenant never onboarded = %v, %v", ok, err)
	}
}

// TestReadNeedsTenantUser: reading a tenant's settings and approvers takes
// what changing them takes. The shared issuer's token for
// mgr2@provider.example with contoso's tid and global-admin read contoso's
// settings and approvers; a token that is no user of the tenant by its
// registered domains, or that carries a provider-only role, now reads
// neither (forbidden, as anyone without the right is told).
func TestReadNeedsTenantUser(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.AddApprover(ctx, admin, "", "contoso", approver.Subject); err != nil {
		t.Fatal(err)
	}
	read := map[string]func(identity.Principal) error{
		"settings": func(who identity.Principal) error { _, err := s.Settings(ctx, who, "contoso"); return err },
		"approvers": func(who identity.Principal) error {
			_, err := s.Approvers(ctx, who, "contoso")
			return err
		},
		"CanRead": func(who identity.Principal) error { return s.CanRead(ctx, who, "contoso") },
	}
	for _, who := range []identity.Principal{
		p("mgr2@provider.example", "contoso", identity.RoleGlobalAdmin),
		p("mgr2@provider.example", "contoso", identity.RoleSupportManager, identity.RoleGlobalAdmin),
		p("mgr2@provider.example", "contoso", identity.RoleAuditReader),
		p("gina", "contoso", identity.RoleGlobalAdmin),
		p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleOperator),
		p("adam@contoso.example", "contoso", identity.RoleApprover, identity.RoleSupportManager),
		// Audit readers never read the configuration; unchanged.
		p("tom@contoso.example", "contoso", identity.RoleAuditReader),
	} {
		for name, r := range read {
			if err := r(who); !errors.Is(err, fault.ErrForbidden) {
				t.Errorf("%s %v: %s: %v, want forbidden", who.Subject, who.Roles, name, err)
			}
		}
		// The refusal names what was refused: the approver list's said
		// "settings".
		for name, want := range map[string]string{
			"settings":  "you may not read the settings of tenant contoso",
			"approvers": "you may not read the approvers of tenant contoso",
		} {
			if err := read[name](who); err == nil || err.Error() != want {
				t.Errorf("%s %v: %s: %v, want %q", who.Subject, who.Roles, name, err, want)
			}
		}
	}
	for _, who := range []identity.Principal{
		admin, approver, manager,
		p("GINA@CONTOSO.EXAMPLE", "contoso", identity.RoleGlobalAdmin, identity.RoleAuditReader),
	} {
		for name, r := range read {
			if err := r(who); err != nil {
				t.Errorf("%s %v: %s: %v", who.Subject, who.Roles, name, err)
			}
		}
	}

	// A registry that can't be read refuses with its error, whoever asks.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { down.Close() })
	broken := tenants.NewStore(down, audit.NewLog(down, nil), nil)
	for _, who := range []identity.Principal{admin, p("mgr2@provider.example", "contoso", identity.RoleGlobalAdmin), approver} {
		if err := broken.CanRead(ctx, who, "contoso"); !errors.Is(err, fault.ErrUnavailable) {
			t.Errorf("%s with the registry down: %v, want unavailable", who.Subject, err)
		}
	}
}

// TestApproversSayWhichCount: the list of approvers names as approvers
// only the assignments that count (IsApprover, AssignedApprovers), and
// lists apart, with the missing domain, those whose domain the registry
// no longer holds, and ids that are no user of any domain; registering
// the domain again makes its assignments count, and be listed, again.
func TestApproversSayWhichCount(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	ctx := context.Background()
	lara := p("lara@provider.example", "", identity.RoleLockboxAdmin)
	setDomains := func(d ...string) {
		t.Helper()
		if _, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &d}); err != nil {
			t.Fatal(err)
		}
	}
	setDomains("contoso.example", "old.example")
	for _, u := range []string{"adam@contoso.example", "olly@old.example"} {
		if err := s.AddApprover(ctx, admin, "", "contoso", u); err != nil {
			t.Fatal(err)
		}
	}
	// As stored before ids were folded, and an entry that is no user@.
	if err := rdb.SAdd(ctx, keys.Approvers("contoso"), "Oona@Old.Example", "legacy").Err(); err != nil {
		t.Fatal(err)
	}
	setDomains("contoso.example")

	list, err := s.Approvers(ctx, admin, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	assigned, err := s.AssignedApprovers(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(list.Approvers) != "[adam@contoso.example]" || fmt.Sprint(list.Approvers) != fmt.Sprint(assigned) {
		t.Fatalf("approvers = %v, want those that count: %v", list.Approvers, assigned)
	}
	var users []string
	for _, n := range list.NotCounting {
		users = append(users, n.User)
		if ok, err := s.IsApprover(ctx, "contoso", n.User); err != nil || ok {
			t.Errorf("IsApprover(%s) = %v, %v: listed as not counting", n.User, ok, err)
		}
		want := "old.example"
		if n.User == "legacy" {
			want = "not user@"
		}
		if !strings.Contains(n.Reason, want) {
			t.Errorf("reason for %s = %q, want it to say %q", n.User, n.Reason, want)
		}
	}
	if fmt.Sprint(users) != "[legacy olly@old.example oona@old.example]" {
		t.Fatalf("not counting = %+v", list.NotCounting)
	}

	setDomains("contoso.example", "old.example")
	list, err = s.Approvers(ctx, admin, "contoso")
	if err != nil || fmt.Sprint(list.Approvers) != "[adam@contoso.example olly@old.example oona@old.example]" ||
		len(list.NotCounting) != 1 || list.NotCounting[0].User != "legacy" {
		t.Fatalf("after the domain is back: %+v, %v", list, err)
	}
}

// TestAssignedApprovers: the approvers that count, as IsApprover judges
// each one, in one read: folded and listed once whatever the case they
// were stored in, and none outside the tenant's domains or of a tenant
// that is not onboarded.
func TestAssignedApprovers(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	ctx := context.Background()
	for _, u := range []string{"adam@contoso.example", "olga@contoso.example"} {
		if err := s.AddApprover(ctx, admin, "", "contoso", u); err != nil {
			t.Fatal(err)
		}
	}
	// As stored before ids were folded, and outside the tenant's domains.
	if err := rdb.SAdd(ctx, keys.Approvers("contoso"), "Olga@Contoso.Example", "Bea@Contoso.Example", "eve@fabrikam.example").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, keys.Approvers("ghost"), "gus@ghost.example").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.AssignedApprovers(ctx, "contoso")
	if err != nil || fmt.Sprint(got) != "[adam@contoso.example bea@contoso.example olga@contoso.example]" {
		t.Fatalf("AssignedApprovers = %v, %v", got, err)
	}
	for _, u := range got {
		if ok, err := s.IsApprover(ctx, "contoso", u); err != nil || !ok {
			t.Fatalf("IsApprover(%s) = %v, %v", u, ok, err)
		}
	}
	for _, tenant := range []string{"fabrikam", "ghost"} {
		if got, err := s.AssignedApprovers(ctx, tenant); err != nil || len(got) != 0 {
			t.Fatalf("AssignedApprovers(%s) = %v, %v", tenant, got, err)
		}
	}
}

// failCommands fails the commands of the client it is added to that match,
// without sending them, as a Redis Cluster node that timed out would.
type failCommands struct{ match func(redis.Cmder) bool }

func (f failCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f failCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.match(cmd) {
			err := errors.New("i/o timeout")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (f failCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestOnboardingCommittedIsAnsweredSo: onboarding commits the tenant's
// registry entry, settings and audit record in its own transaction, then
// adds the tenant to the provider-wide tenant set, in another hash slot.
// When that one write failed (on Redis Cluster, the set's node timing out
// while the tenant's answered) onboarding answered 503 "retry later" for a
// tenant it had onboarded, and the retry was 409 tenant_exists. It answers
// with the tenant; the set entry is restored by Reindex, as for a write
// of it a failover lost.
func TestOnboardingCommittedIsAnsweredSo(t *testing.T) {
	rdb := redistest.Client(t)
	s, log := newStoreOn(t, rdb)
	ctx := context.Background()
	rdb.AddHook(failCommands{match: redistest.Command("sadd", keys.Tenants())})

	in := tenants.Onboarding{ID: "northwind", DisplayName: "Northwind Traders", Domains: []string{"northwind.example"}}
	tn, st, err := s.Onboard(ctx, tenanttest.Admin, "192.0.2.1", in)
	if err != nil {
		t.Fatalf("onboarding whose transaction committed answered %v", err)
	}
	if tn.ID != "northwind" || tn.Revision != 1 || !st.LockboxEnabled {
		t.Errorf("onboarded %+v with %+v, want northwind at revision 1, Customer Lockbox on", tn, st)
	}
	got, err := s.Get(ctx, "northwind")
	if err != nil || got.OrganizationID != tn.OrganizationID {
		t.Fatalf("registry entry after onboarding: %+v, %v", got, err)
	}
	recs, err := log.List(ctx, "northwind", 10)
	if err != nil || len(recs) != 1 || recs[0].Operation != record.OpOnboardTenant {
		t.Fatalf("audit records after onboarding: %+v, %v; want its one %s", recs, err, record.OpOnboardTenant)
	}
	if _, _, err := s.Onboard(ctx, tenanttest.Admin, "192.0.2.1", in); !isCode(err, "tenant_exists") {
		t.Fatalf("onboarding it again: %v, want tenant_exists", err)
	}

	// The set's node answers again: the repair job adds what is missing.
	healthy := redis.NewClient(rdb.Options())
	t.Cleanup(func() { healthy.Close() })
	if ok, _ := healthy.SIsMember(ctx, keys.Tenants(), "northwind").Result(); ok {
		t.Fatal("the failed write reached the tenant set: the test no longer exercises a lost one")
	}
	if n, err := tenants.NewStore(healthy, log, nil).Reindex(ctx); err != nil || n != 1 {
		t.Fatalf("reindex: added %d, %v; want northwind", n, err)
	}
	if ok, err := healthy.SIsMember(ctx, keys.Tenants(), "northwind").Result(); err != nil || !ok {
		t.Fatalf("northwind in the tenant set after reindex: %v, %v", ok, err)
	}
}

// isCode reports whether err is a *fault.Error with code.
func isCode(err error, code string) bool {
	fe, ok := errors.AsType[*fault.Error](err)
	return ok && fe.Code == code
}

// TestOnboardedAs: an onboarding finds its tenant onboarded as it asks,
// however its fields are spelled, only when the entry and the switch are
// what Onboard wrote from it; and only the provider's Lockbox
// administrators ask.
func TestOnboardedAs(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	off := false
	in := tenants.Onboarding{ID: "northwind", OrganizationID: "0F8FAD5B-D9CB-469F-A165-70867728950E", DisplayName: " Northwind ",
		Domains: []string{"Northwind.Example.", "northwind.test"}, GlobalAdmins: []string{"nancy@northwind.example"}, LockboxEnabled: &off}
	if ok, err := s.OnboardedAs(ctx, lara, in); ok || err != nil {
		t.Fatalf("before onboarding: %v, %v", ok, err)
	}
	if _, _, err := s.Onboard(ctx, lara, "", in); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.OnboardedAs(ctx, lara, in); !ok || err != nil {
		t.Fatalf("the same onboarding: %v, %v", ok, err)
	}
	noOrg := in
	noOrg.OrganizationID = ""
	if ok, err := s.OnboardedAs(ctx, lara, noOrg); !ok || err != nil {
		t.Errorf("the same onboarding without an organization id: %v, %v", ok, err)
	}
	on := true
	for name, other := range map[string]func(*tenants.Onboarding){
		"name":         func(o *tenants.Onboarding) { o.DisplayName = "Northwind Traders" },
		"domains":      func(o *tenants.Onboarding) { o.Domains = []string{"northwind.example"} },
		"admins":       func(o *tenants.Onboarding) { o.GlobalAdmins = nil },
		"organization": func(o *tenants.Onboarding) { o.OrganizationID = "7c9e6679-7425-40de-944b-e07fc1f90ae7" },
		"switch":       func(o *tenants.Onboarding) { o.LockboxEnabled = &on },
		"default":      func(o *tenants.Onboarding) { o.LockboxEnabled = nil },
		"invalid":      func(o *tenants.Onboarding) { o.Domains = []string{"not a domain"} },
	} {
		o := in
		other(&o)
		if ok, err := s.OnboardedAs(ctx, lara, o); ok || err != nil {
			t.Errorf("another %s: %v, %v", name, ok, err)
		}
	}
	for _, who := range []identity.Principal{manager, operator, admin} {
		if _, err := s.OnboardedAs(ctx, who, in); !errors.Is(err, fault.ErrForbidden) {
			t.Errorf("%s asked: %v", who.Subject, err)
		}
	}
}
