package tenants_test

import (
	"context"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestOnRedisCluster runs the store's tests again on a Redis Cluster of
// three masters with a replica each: each change and its audit record must
// stay in the tenant's hash slot (CROSSSLOT otherwise), and the tenant set
// lives on another master than contoso's keys.
func TestOnRedisCluster(t *testing.T) {
	prev := testRedis
	testRedis = func(t testing.TB) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }
	t.Cleanup(func() { testRedis = prev })
	for name, test := range map[string]func(*testing.T){
		"Settings":                                 TestSettings,
		"UnknownTenant":                            TestUnknownTenant,
		"Approvers":                                TestApprovers,
		"Onboard":                                  TestOnboard,
		"UpdateTenant":                             TestUpdateTenant,
		"AdoptLegacy":                              TestAdoptLegacy,
		"ReindexFindsEveryTenant":                  TestReindexFindsEveryTenant,
		"SettingsRevision":                         TestSettingsRevision,
		"SettingsRevisionOfUnrevisionedSettings":   TestSettingsRevisionOfUnrevisionedSettings,
		"SettingsChangedBetweenReadAndWrite":       TestSettingsChangedBetweenReadAndWrite,
		"TenantRevision":                           TestTenantRevision,
		"TenantRevisionOfUnrevisionedEntries":      TestTenantRevisionOfUnrevisionedEntries,
		"TenantChangedBetweenReadAndWrite":         TestTenantChangedBetweenReadAndWrite,
		"AddressesOnceWhateverTheCase":             TestAddressesOnceWhateverTheCase,
		"ConfigurationLosesToRightsRemovedMidway":  TestConfigurationLosesToRightsRemovedMidway,
		"ConditionNoneMatch":                       TestConditionNoneMatch,
		"ConditionNoneMatchJudgedInTheTransaction": TestConditionNoneMatchJudgedInTheTransaction,
	} {
		t.Run(name, test)
	}
}

// TestReindexFindsEveryTenant: a tenant set that lost entries (a failover
// dropped the write that follows onboarding) is rebuilt from the registry
// entries, wherever their slots are; entries of tenants that predate
// onboarding stay, and running it again adds nothing.
func TestReindexFindsEveryTenant(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb) // onboards contoso and fabrikam
	ctx := context.Background()
	tenanttest.Onboard(t, s, "northwind", "tailspin", "adatum", "woodgrove")
	all := []string{"adatum", "contoso", "fabrikam", "northwind", "tailspin", "woodgrove"}
	rdb.SRem(ctx, keys.Tenants(), "contoso", "northwind", "tailspin", "adatum")
	rdb.SAdd(ctx, keys.Tenants(), "oldco") // from before onboarding existed
	if n, err := s.Reindex(ctx); err != nil || n != 4 {
		t.Fatalf("Reindex added %d, %v; want 4", n, err)
	}
	got, _ := rdb.SMembers(ctx, keys.Tenants()).Result()
	slices.Sort(got)
	want := append(slices.Clone(all), "oldco")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("tenant set = %v, want %v", got, want)
	}
	if n, err := s.Reindex(ctx); err != nil || n != 0 {
		t.Fatalf("second Reindex added %d, %v", n, err)
	}
}
