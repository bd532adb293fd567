package tenants_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestSettingsWithUnknownFieldNotUsedNorOverwritten: during a rolling
// upgrade a newer replica may store a tenant's settings with a setting
// this version does not know, one that restricts access, say. This
// version must neither decide with the settings as if it were not there
// (the proxy would let through what the tenant forbade) nor replace them
// without it (the tenant's restriction would be gone for the newer
// replicas too): the lookup and the write fail as the store failing does,
// to be retried on an upgraded replica, and the stored settings are left
// as they are.
func TestSettingsWithUnknownFieldNotUsedNorOverwritten(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	ctx := context.Background()
	if _, err := s.PutSettings(ctx, admin, "203.0.113.9", "contoso", tenants.Settings{LockboxEnabled: true, NotificationAddresses: []string{"sec@contoso.com"}}); err != nil {
		t.Fatal(err)
	}
	k := keys.Settings("contoso")
	stored, err := rdb.Get(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.TrimSuffix(stored, "}") + `,"allowed_services":["sharepoint"]}`
	if err := rdb.Set(ctx, k, newer, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Lookup(ctx, "contoso"); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("lookup of the newer settings: %+v, %v; want the store's failure", st, err)
	}
	c := tenants.NewSettingsCache(s, time.Second, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
	if st, err := c.Lookup(ctx, "contoso"); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("cached lookup of the newer settings: %+v, %v; want the store's failure", st, err)
	}
	if _, err := s.PutSettings(ctx, admin, "203.0.113.9", "contoso", tenants.Settings{LockboxEnabled: true}); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("replacing the newer settings: %v; want the store's failure", err)
	}
	if got, err := rdb.Get(ctx, k).Result(); err != nil || got != newer {
		t.Errorf("settings stored as %s (%v), want the newer ones untouched", got, err)
	}
}

// TestRegistryEntryWithUnknownFieldNotUsedNorOverwritten: the same for a
// tenant's registry entry, which says who the tenant's users are: a
// field this version does not know (one that suspends the tenant, say)
// fails the tenant's lookup and its update, and the entry is left as it
// is; the provider's listing of tenants still shows it.
func TestRegistryEntryWithUnknownFieldNotUsedNorOverwritten(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	ctx := context.Background()
	k := keys.Tenant("contoso")
	stored, err := rdb.Get(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.TrimSuffix(stored, "}") + `,"suspended":true}`
	if err := rdb.Set(ctx, k, newer, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if tn, err := s.Get(ctx, "contoso"); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("lookup of the newer entry: %+v, %v; want the store's failure", tn, err)
	}
	if ok, err := s.IsUser(ctx, "contoso", "gina@contoso.example"); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("is gina a user of the newer entry: %v, %v; want the store's failure", ok, err)
	}
	name := "Contoso Ltd"
	if _, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{DisplayName: &name}); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("updating the newer entry: %v; want the store's failure", err)
	}
	if got, err := rdb.Get(ctx, k).Result(); err != nil || got != newer {
		t.Errorf("entry stored as %s (%v), want the newer one untouched", got, err)
	}
	list, err := s.List(ctx, lara)
	if err != nil || len(list.Tenants) != 2 || list.Unreadable != nil {
		t.Errorf("listing with the newer entry: %+v, %v; want both", list, err)
	}
}
