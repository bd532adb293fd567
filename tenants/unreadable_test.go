package tenants_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestRecordsThatDoNotDecodeAreUnreadable: a registry entry or settings
// that do not decode (a partial write, a hand edit) failed some reads with
// a bare error (500 "internal error") and others, and every change, as
// the store being unavailable (503, which sends clients to retry what no
// retry reads). Every read of either now fails alike: fault.ErrUnreadable,
// code record_unreadable, naming the record (as for a request that does
// not decode), never the store's failure; and nothing is written over it.
//
// Each such read is also counted once, in
// lockbox_unreadable_records_total{kind="tenant"} or {kind="settings"},
// and logged at error with the key: they were counted nowhere (only the
// provider's tenant list counted an entry), so LockboxRecordsUnreadable
// stayed silent while every call for the tenant failed on it, or, for
// settings, while the proxy denied all of the tenant's calls.
func TestRecordsThatDoNotDecodeAreUnreadable(t *testing.T) {
	ctx := context.Background()
	name := "Contoso Ltd"
	cases := []struct {
		record string // "registry entry" or "settings"
		call   string
		do     func(s *tenants.Store) error
	}{
		{"registry entry", "Get", func(s *tenants.Store) error { _, err := s.Get(ctx, "contoso"); return err }},
		{"registry entry", "Tenant", func(s *tenants.Store) error { _, err := s.Tenant(ctx, manager, "contoso"); return err }},
		{"registry entry", "Tenant for its user", func(s *tenants.Store) error { _, err := s.Tenant(ctx, admin, "contoso"); return err }},
		{"registry entry", "List for its user", func(s *tenants.Store) error { _, err := s.List(ctx, admin); return err }},
		{"registry entry", "Active", func(s *tenants.Store) error { return s.Active(ctx, "contoso") }},
		{"registry entry", "IsUser", func(s *tenants.Store) error { _, err := s.IsUser(ctx, "contoso", admin.Subject); return err }},
		{"registry entry", "IsApprover", func(s *tenants.Store) error { _, err := s.IsApprover(ctx, "contoso", approver.Subject); return err }},
		{"registry entry", "AssignedApprovers", func(s *tenants.Store) error { _, err := s.AssignedApprovers(ctx, "contoso"); return err }},
		{"registry entry", "Approvers", func(s *tenants.Store) error { _, err := s.Approvers(ctx, admin, "contoso"); return err }},
		{"registry entry", "Approvers for a manager", func(s *tenants.Store) error { _, err := s.Approvers(ctx, manager, "contoso"); return err }},
		{"registry entry", "Settings", func(s *tenants.Store) error { _, err := s.Settings(ctx, admin, "contoso"); return err }},
		{"registry entry", "UpdateTenant", func(s *tenants.Store) error {
			_, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{DisplayName: &name})
			return err
		}},
		{"registry entry", "PutSettings", func(s *tenants.Store) error {
			_, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true})
			return err
		}},
		{"registry entry", "AddApprover", func(s *tenants.Store) error { return s.AddApprover(ctx, admin, "", "contoso", "zoe@contoso.example") }},
		{"settings", "Lookup", func(s *tenants.Store) error { _, err := s.Lookup(ctx, "contoso"); return err }},
		{"settings", "LockboxEnabled", func(s *tenants.Store) error { _, err := s.LockboxEnabled(ctx, "contoso"); return err }},
		{"settings", "SettingsCache.Lookup", func(s *tenants.Store) error {
			c := tenants.NewSettingsCache(s, time.Second, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
			_, err := c.Lookup(ctx, "contoso")
			return err
		}},
		{"settings", "Settings", func(s *tenants.Store) error { _, err := s.Settings(ctx, admin, "contoso"); return err }},
		{"settings", "PutSettings", func(s *tenants.Store) error {
			_, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.record+"/"+c.call, func(t *testing.T) {
			rdb := testRedis(t)
			s, _ := newStoreOn(t, rdb)
			// An assignment, so that the approver reads get as far as the
			// entry (a set without the user is answered without it).
			if err := s.AddApprover(ctx, admin, "", "contoso", approver.Subject); err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			logs := &syncBuffer{}
			if err := s.ReportUnreadable(reg, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
				t.Fatal(err)
			}
			key, what, kind, other := keys.Tenant("contoso"), "registry entry of tenant contoso", unreadable.KindTenant, unreadable.KindSettings
			if c.record == "settings" {
				key, what, kind, other = keys.Settings("contoso"), "Customer Lockbox settings of tenant contoso", unreadable.KindSettings, unreadable.KindTenant
			}
			const cut = `{"id":"`
			if err := rdb.Set(ctx, key, cut, 0).Err(); err != nil {
				t.Fatal(err)
			}
			err := c.do(s)
			fe, ok := errors.AsType[*fault.Error](err)
			if !ok || !errors.Is(err, fault.ErrUnreadable) || errors.Is(err, fault.ErrUnavailable) || fe.Code != "record_unreadable" {
				t.Fatalf("error %v (%T), want record_unreadable and not the store's failure", err, err)
			}
			if !strings.Contains(fe.Message, what+" cannot be read") {
				t.Errorf("message %q does not name the %s", fe.Message, what)
			}
			if got, err := rdb.Get(ctx, key).Result(); err != nil || got != cut {
				t.Errorf("%s stored as %q (%v) after the call, want it left as it was", key, got, err)
			}
			if n := unreadableCount(t, reg, kind); n != 1 {
				t.Errorf("%s{kind=%q} = %v after the call, want 1", unreadable.MetricName, kind, n)
			}
			if n := unreadableCount(t, reg, other); n != 0 {
				t.Errorf("%s{kind=%q} = %v, want 0", unreadable.MetricName, other, n)
			}
			if line := logs.String(); strings.Count(line, "level=ERROR") != 1 || !strings.Contains(line, "key="+key) || !strings.Contains(line, "kind="+kind) {
				t.Errorf("log %q: want one error line naming the kind and the key", line)
			}
		})
	}
}

// TestListNamesUnreadableEntry: one registry entry that does not decode
// failed the provider's whole listing with record_unreadable, hiding every
// tenant Lockbox serves. The listing now lists the others and names that
// one under Unreadable, as a listing of requests names a request it can't
// read; reading it alone still fails, and nothing is written over it.
func TestListNamesUnreadableEntry(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	tenanttest.Onboard(t, s, "northwind")
	const cut = `{"id":"`
	if err := rdb.Set(ctx, keys.Tenant("fabrikam"), cut, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, who := range []identity.Principal{lara, manager, operator} {
		list, err := s.List(ctx, who)
		if err != nil {
			t.Fatalf("%s lists: %v", who.Subject, err)
		}
		if len(list.Tenants) != 2 || list.Tenants[0].ID != "contoso" || list.Tenants[1].ID != "northwind" {
			t.Errorf("%s lists %+v, want contoso and northwind", who.Subject, list.Tenants)
		}
		if want := []tenants.Unreadable{{ID: "fabrikam"}}; !slices.Equal(list.Unreadable, want) {
			t.Errorf("%s: unreadable %+v, want %+v", who.Subject, list.Unreadable, want)
		}
	}
	// The tenant's own users are not named another tenant's entry.
	if list, err := s.List(ctx, admin); err != nil || len(list.Tenants) != 1 || list.Unreadable != nil {
		t.Errorf("contoso's admin lists %+v, %v; want contoso alone", list, err)
	}
	if _, err := s.Get(ctx, "fabrikam"); !errors.Is(err, fault.ErrUnreadable) {
		t.Errorf("reading fabrikam alone: %v, want record_unreadable", err)
	}
	if got, err := rdb.Get(ctx, keys.Tenant("fabrikam")).Result(); err != nil || got != cut {
		t.Errorf("fabrikam's entry stored as %q (%v), want it left as it was", got, err)
	}
}

// TestListReportsUnreadableEntry: a registry entry the tenant list met
// that does not decode was counted nowhere and logged by no line of its
// own, unlike a request or audit record a listing can't read. Each
// listing that meets it now counts it in
// lockbox_unreadable_records_total{kind="tenant"} and logs it at error
// with its key and the decode error, never its content; a listing that
// meets none counts nothing.
func TestListReportsUnreadableEntry(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	var logs bytes.Buffer // List logs from the calling goroutine only
	reg := prometheus.NewRegistry()
	if err := s.ReportUnreadable(reg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	counted := func() float64 { return tenantUnreadable(t, reg) }
	if _, err := s.List(ctx, lara); err != nil || counted() != 0 || logs.Len() != 0 {
		t.Fatalf("a whole list: %v, counted %v, logged %q", err, counted(), logs.String())
	}
	// What a partial write left: it holds an address no log line may repeat.
	const damaged = `{"id":"fabrikam","global_admins":["jane.doe@fabrikam.example`
	if err := rdb.Set(ctx, keys.Tenant("fabrikam"), damaged, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if list, err := s.List(ctx, manager); err != nil || len(list.Unreadable) != 1 {
			t.Fatalf("list = %+v, %v", list, err)
		}
	}
	if got := counted(); got != 2 {
		t.Errorf("lockbox_unreadable_records_total{kind=\"tenant\"} = %v after two listings, want 2", got)
	}
	line := logs.String()
	if strings.Count(line, "level=ERROR") != 2 || !strings.Contains(line, "kind=tenant") ||
		!strings.Contains(line, "key="+keys.Tenant("fabrikam")) || !strings.Contains(line, "tenant=fabrikam") || !strings.Contains(line, "error=") {
		t.Errorf("log %q: want two error lines naming the kind, the key, the tenant and the decode error", line)
	}
	if strings.Contains(line, "jane.doe") {
		t.Errorf("the log repeats the entry's content: %q", line)
	}
}

// tenantUnreadable is lockbox_unreadable_records_total{kind="tenant"} in
// reg: exported from the start, so an alert on its rate has a zero.
func tenantUnreadable(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	return unreadableCount(t, reg, unreadable.KindTenant)
}

// unreadableCount is lockbox_unreadable_records_total{kind=kind} in reg.
func unreadableCount(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != unreadable.MetricName {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("%s{kind=%q} is not exported", unreadable.MetricName, kind)
	return 0
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
