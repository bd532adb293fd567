package tenants_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// settingsRecords counts tenant's Set-CustomerLockboxSettings records.
func settingsRecords(t *testing.T, s interface {
	List(context.Context, string, int64) ([]record.Record, error)
}, tenant string) int {
	t.Helper()
	recs, err := s.List(context.Background(), tenant, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Operation == record.OpSetSettings {
			n++
		}
	}
	return n
}

// wantSettingsChanged fails t unless err is PutSettingsIf's refusal of a
// stale revision.
func wantSettingsChanged(t *testing.T, err error) {
	t.Helper()
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok || !errors.Is(err, fault.ErrPrecondition) || fe.Code != "settings_changed" {
		t.Fatalf("err = %v, want settings_changed (fault.ErrPrecondition)", err)
	}
}

// TestSettingsRevision: each write of the settings gets the next revision;
// a change based on a revision that is no longer current writes nothing,
// and AnyRevision writes whatever the revision, as PutSettings always did.
func TestSettingsRevision(t *testing.T) {
	s, log := newStore(t)
	s.SetGuard(noGrants{})
	ctx := context.Background()
	read, err := s.Settings(ctx, admin, "contoso")
	if err != nil || read.Revision != 1 {
		t.Fatalf("onboarded settings = %+v, %v; want revision 1", read, err)
	}

	// Two admins read revision 1. The first adds an address...
	first := read
	first.LockboxEnabled, first.NotificationAddresses = false, []string{"sec@contoso.example"}
	got, err := s.PutSettingsIf(ctx, admin, "", "contoso", first, read.Revision)
	if err != nil || got.Revision != 2 || got.LockboxEnabled || !slices.Equal(got.NotificationAddresses, first.NotificationAddresses) {
		t.Fatalf("put at the current revision = %+v, %v; want revision 2", got, err)
	}
	if st, _ := s.Lookup(ctx, "contoso"); st.Revision != 2 {
		t.Fatalf("stored revision = %d, want 2", st.Revision)
	}
	// ...the second, still at revision 1, would undo it: refused.
	records := settingsRecords(t, log, "contoso")
	second := read
	second.NotificationAddresses = []string{"soc@contoso.example"}
	_, err = s.PutSettingsIf(ctx, admin, "", "contoso", second, read.Revision)
	wantSettingsChanged(t, err)
	if st, _ := s.Lookup(ctx, "contoso"); st.Revision != 2 || st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, first.NotificationAddresses) {
		t.Fatalf("a refused change wrote: %+v", st)
	}
	if n := settingsRecords(t, log, "contoso"); n != records {
		t.Fatalf("a refused change was audited: %d records, want %d", n, records)
	}

	// A change that changes nothing keeps the revision.
	if got, err := s.PutSettingsIf(ctx, admin, "", "contoso", first, 2); err != nil || got.Revision != 2 {
		t.Fatalf("no-op put = %+v, %v; want revision 2", got, err)
	}
	// AnyRevision, and PutSettings, write over whatever is there.
	if got, err := s.PutSettingsIf(ctx, admin, "", "contoso", second, tenants.AnyRevision); err != nil || got.Revision != 3 {
		t.Fatalf("put at any revision = %+v, %v; want revision 3", got, err)
	}
	if got, err := s.PutSettings(ctx, admin, "", "contoso", first); err != nil || got.Revision != 4 {
		t.Fatalf("PutSettings = %+v, %v; want revision 4", got, err)
	}
	// st.Revision is not the precondition: only ifRevision is.
	stale := first
	stale.Revision = 4
	_, err = s.PutSettingsIf(ctx, admin, "", "contoso", stale, 3)
	wantSettingsChanged(t, err)
	// A refusal never tells what the settings are to who may not read them.
	if _, err := s.PutSettingsIf(ctx, otherAdmin, "", "contoso", first, 1); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("other tenant's admin: %v, want forbidden before any revision check", err)
	}
}

// TestSettingsRevisionOfUnrevisionedSettings: settings nobody wrote, and
// settings stored before revisions existed, are revision 0; the first
// write makes them 1, and onboarding over stored settings moves their
// revision on rather than back to 1.
func TestSettingsRevisionOfUnrevisionedSettings(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	// Onboarding northwind over its settings below turns its switch on.
	s.SetGuard(noGrants{})
	ctx := context.Background()
	rdb.Set(ctx, keys.Settings("contoso"), `{"lockbox_enabled":false,"notification_addresses":[]}`, 0)
	st, err := s.Settings(ctx, admin, "contoso")
	if err != nil || st.Revision != 0 || st.LockboxEnabled {
		t.Fatalf("settings stored without a revision = %+v, %v; want revision 0, off", st, err)
	}
	st.NotificationAddresses = []string{"sec@contoso.example"}
	if got, err := s.PutSettingsIf(ctx, admin, "", "contoso", st, 0); err != nil || got.Revision != 1 {
		t.Fatalf("put at revision 0 = %+v, %v; want revision 1", got, err)
	}

	// An unknown tenant's settings have never been written.
	if st, err := s.Lookup(ctx, "northwind"); err != nil || st.Revision != 0 {
		t.Fatalf("unwritten settings = %+v, %v; want revision 0", st, err)
	}
	rdb.Set(ctx, keys.Settings("northwind"), `{"lockbox_enabled":false,"notification_addresses":[],"revision":7}`, 0)
	tenanttest.Onboard(t, s, "northwind")
	if st, err := s.Lookup(ctx, "northwind"); err != nil || st.Revision != 8 || !st.LockboxEnabled {
		t.Fatalf("settings onboarded over revision 7 = %+v, %v; want revision 8, on", st, err)
	}
}

// TestSettingsChangedBetweenReadAndWrite: another admin's change that
// commits after PutSettingsIf read the revision and before it wrote fails
// the write (the check and the write are one transaction): the change is
// refused, and the other admin's change stays.
func TestSettingsChangedBetweenReadAndWrite(t *testing.T) {
	rdb := testRedis(t)
	s, log := newStoreOn(t, rdb)
	s.SetGuard(noGrants{})
	ctx := context.Background()
	base, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: false})
	if err != nil {
		t.Fatal(err)
	}

	// Admin A's replica, on a client of its own: right after Redis answers
	// its read of the settings, admin B's change commits elsewhere.
	rdbA := redistest.Clone(t, rdb)
	between := &afterReply{when: redistest.Command("get", keys.Settings("contoso"))}
	// A transaction runs on the node client of the key's master, which
	// has its own hooks in a cluster.
	if c, ok := rdbA.(*redis.ClusterClient); ok {
		c.OnNewNode(func(n *redis.Client) { n.AddHook(between) })
	} else {
		rdbA.AddHook(between)
	}
	storeA := tenants.NewStore(rdbA, log, nil)
	storeA.SetGuard(noGrants{})
	between.then = func() {
		b := base
		b.NotificationAddresses = []string{"sec@contoso.example"}
		if _, err := s.PutSettings(ctx, admin, "", "contoso", b); err != nil {
			t.Error(err)
		}
	}
	between.armed.Store(true)

	a := base
	a.LockboxEnabled = true
	_, err = storeA.PutSettingsIf(ctx, admin, "", "contoso", a, base.Revision)
	if between.armed.Load() {
		t.Fatal("the hook never ran: the test no longer reads the settings' key")
	}
	wantSettingsChanged(t, err)
	st, err := s.Lookup(ctx, "contoso")
	if err != nil || st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, []string{"sec@contoso.example"}) || st.Revision != base.Revision+1 {
		t.Fatalf("settings = %+v, %v; want B's change alone, at revision %d", st, err, base.Revision+1)
	}
}

// tenantRecords counts tenant's Set-CustomerLockboxTenant records.
func tenantRecords(t *testing.T, s interface {
	List(context.Context, string, int64) ([]record.Record, error)
}, tenant string) int {
	t.Helper()
	recs, err := s.List(context.Background(), tenant, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Operation == record.OpUpdateTenant {
			n++
		}
	}
	return n
}

// wantTenantChanged fails t unless err is UpdateTenantIf's refusal of a
// stale revision.
func wantTenantChanged(t *testing.T, err error) {
	t.Helper()
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok || !errors.Is(err, fault.ErrPrecondition) || fe.Code != "tenant_changed" {
		t.Fatalf("err = %v, want tenant_changed (fault.ErrPrecondition)", err)
	}
}

// TestTenantRevision: each write of a registry entry gets the next
// revision; a change based on a revision that is no longer current writes
// nothing (one administrator adds a domain, another, from the entry as it
// was, adds a global administrator: the second would drop the domain),
// and AnyRevision writes whatever the revision, as UpdateTenant always did.
func TestTenantRevision(t *testing.T) {
	s, log := newStore(t)
	ctx := context.Background()
	read, err := s.Tenant(ctx, lara, "contoso")
	if err != nil || read.Revision != 1 {
		t.Fatalf("onboarded entry = %+v, %v; want revision 1", read, err)
	}
	if list, err := s.List(ctx, lara); err != nil || len(list.Tenants) != 2 || list.Tenants[0].Revision != 1 {
		t.Fatalf("list = %+v, %v; want revision 1", list, err)
	}

	// Two administrators read revision 1. The first adds a domain...
	domains := append(slices.Clone(read.Domains), "contoso.com")
	got, err := s.UpdateTenantIf(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &domains}, read.Revision)
	if err != nil || got.Revision != 2 || !slices.Equal(got.Domains, []string{"contoso.com", "contoso.example"}) {
		t.Fatalf("update at the current revision = %+v, %v; want revision 2", got, err)
	}
	if e, _ := s.Get(ctx, "contoso"); e.Revision != 2 {
		t.Fatalf("stored revision = %d, want 2", e.Revision)
	}
	// ...the second, still at revision 1, sends the whole entry as read
	// with a global administrator added: it would drop the domain.
	records := tenantRecords(t, log, "contoso")
	admins := append(slices.Clone(read.GlobalAdmins), "gina@contoso.example")
	second := tenants.TenantUpdate{DisplayName: &read.DisplayName, Domains: &read.Domains, GlobalAdmins: &admins}
	_, err = s.UpdateTenantIf(ctx, lara, "", "contoso", second, read.Revision)
	wantTenantChanged(t, err)
	if e, _ := s.Get(ctx, "contoso"); e.Revision != 2 || !slices.Equal(e.Domains, []string{"contoso.com", "contoso.example"}) ||
		!slices.Equal(e.GlobalAdmins, read.GlobalAdmins) {
		t.Fatalf("a refused change wrote: %+v", e)
	}
	if n := tenantRecords(t, log, "contoso"); n != records {
		t.Fatalf("a refused change was audited: %d records, want %d", n, records)
	}

	// A change that changes nothing keeps the revision.
	if got, err := s.UpdateTenantIf(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &domains}, 2); err != nil || got.Revision != 2 {
		t.Fatalf("no-op update = %+v, %v; want revision 2", got, err)
	}
	// AnyRevision, and UpdateTenant, write over whatever is there.
	if got, err := s.UpdateTenantIf(ctx, lara, "", "contoso", second, tenants.AnyRevision); err != nil || got.Revision != 3 {
		t.Fatalf("update at any revision = %+v, %v; want revision 3", got, err)
	}
	name := "Contoso Pharmaceuticals"
	if got, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{DisplayName: &name}); err != nil || got.Revision != 4 {
		t.Fatalf("UpdateTenant = %+v, %v; want revision 4", got, err)
	}
	// An invalid change is refused as such, whatever the revision, as a
	// settings change is.
	bad := []string{"not a domain"}
	if _, err := s.UpdateTenantIf(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &bad}, 1); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("invalid change at a stale revision: %v, want invalid", err)
	}
	// A refusal never tells anything to who may not change the entry, and
	// an unknown tenant is not found whatever the revision.
	if _, err := s.UpdateTenantIf(ctx, admin, "", "contoso", tenants.TenantUpdate{DisplayName: &name}, 1); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("tenant admin: %v, want forbidden before any revision check", err)
	}
	if _, err := s.UpdateTenantIf(ctx, lara, "", "ghost", tenants.TenantUpdate{DisplayName: &name}, 1); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("unknown tenant: %v, want not found", err)
	}
}

// TestTenantRevisionOfUnrevisionedEntries: registry entries stored before
// revisions existed are revision 0, and the first write makes them 1;
// tenants adopted on upgrade start at revision 1, as onboarded ones do.
func TestTenantRevisionOfUnrevisionedEntries(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	ctx := context.Background()
	rdb.Set(ctx, keys.Tenant("northwind"), `{"id":"northwind","organization_id":"6f9619ff-8b86-d011-b42d-00c04fc964ff",`+
		`"display_name":"Northwind","domains":["northwind.example"],"global_admins":[],"onboarded_at":"2026-01-02T03:04:05Z"}`, 0)
	e, err := s.Tenant(ctx, lara, "northwind")
	if err != nil || e.Revision != 0 || e.DisplayName != "Northwind" {
		t.Fatalf("entry stored without a revision = %+v, %v; want revision 0", e, err)
	}
	name := "Northwind Traders"
	if _, err := s.UpdateTenantIf(ctx, lara, "", "northwind", tenants.TenantUpdate{DisplayName: &name}, 1); err == nil {
		t.Fatal("an update at revision 1 wrote over revision 0")
	}
	if got, err := s.UpdateTenantIf(ctx, lara, "", "northwind", tenants.TenantUpdate{DisplayName: &name}, 0); err != nil || got.Revision != 1 {
		t.Fatalf("update at revision 0 = %+v, %v; want revision 1", got, err)
	}

	rdb.SAdd(ctx, keys.Tenants(), "oldco")
	if n, err := s.AdoptLegacy(ctx); err != nil || n != 1 {
		t.Fatalf("adopted %d, %v; want 1", n, err)
	}
	if e, err := s.Get(ctx, "oldco"); err != nil || e.Revision != 1 {
		t.Fatalf("adopted entry = %+v, %v; want revision 1", e, err)
	}
}

// TestTenantChangedBetweenReadAndWrite: another administrator's change
// that commits after UpdateTenantIf read the entry and before it wrote
// fails the write (the check and the write are one transaction): the
// change is refused, and the other administrator's change stays.
func TestTenantChangedBetweenReadAndWrite(t *testing.T) {
	rdb := testRedis(t)
	s, log := newStoreOn(t, rdb)
	ctx := context.Background()
	base, err := s.Get(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}

	// Administrator A's replica, on a client of its own: right after Redis
	// answers its read of the entry, administrator B's change commits
	// elsewhere.
	rdbA := redistest.Clone(t, rdb)
	between := &afterReply{when: redistest.Command("get", keys.Tenant("contoso"))}
	// A transaction runs on the node client of the key's master, which
	// has its own hooks in a cluster.
	if c, ok := rdbA.(*redis.ClusterClient); ok {
		c.OnNewNode(func(n *redis.Client) { n.AddHook(between) })
	} else {
		rdbA.AddHook(between)
	}
	storeA := tenants.NewStore(rdbA, log, nil)
	domains := append(slices.Clone(base.Domains), "contoso.com")
	between.then = func() {
		if _, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &domains}); err != nil {
			t.Error(err)
		}
	}
	between.armed.Store(true)

	// A adds a global administrator to the entry as it read it.
	admins := append(slices.Clone(base.GlobalAdmins), "gina@contoso.example")
	_, err = storeA.UpdateTenantIf(ctx, lara, "", "contoso",
		tenants.TenantUpdate{Domains: &base.Domains, GlobalAdmins: &admins}, base.Revision)
	if between.armed.Load() {
		t.Fatal("the hook never ran: the test no longer reads the registry entry's key")
	}
	wantTenantChanged(t, err)
	e, err := s.Get(ctx, "contoso")
	if err != nil || !slices.Equal(e.Domains, []string{"contoso.com", "contoso.example"}) ||
		!slices.Equal(e.GlobalAdmins, base.GlobalAdmins) || e.Revision != base.Revision+1 {
		t.Fatalf("entry = %+v, %v; want B's change alone, at revision %d", e, err, base.Revision+1)
	}
}
