package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestOnRedisCluster runs the store's tests again on a Redis Cluster of
// three masters with a replica each. contoso's keys, fabrikam's, the tenant
// set and the provider-wide request indexes are on different masters, so a
// transaction or script that strayed outside one tenant's hash slot would
// fail here (CROSSSLOT), and a provider-wide read that assumed one node
// would miss data.
func TestOnRedisCluster(t *testing.T) {
	prev := testRedis
	testRedis = func(t testing.TB) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }
	t.Cleanup(func() { testRedis = prev })
	ctx := context.Background()
	rdb := testRedis(t)
	masterOf := map[string]string{}
	for _, k := range []string{keys.Tenant("contoso"), keys.Tenant("fabrikam"), keys.Tenants(), keys.AllRequests()} {
		c, err := rdb.(*redis.ClusterClient).MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masterOf[c.Options().Addr] = k
	}
	if len(masterOf) < 2 {
		t.Fatalf("the test's keys are all on one master: %v", masterOf)
	}
	for name, test := range map[string]func(*testing.T){
		"LifecycleAuditAndGrant":               TestLifecycleAuditAndGrant,
		"ExpiryAt12Hours":                      TestExpiryAt12Hours,
		"GrantCompletesAfterItsWindow":         TestGrantCompletesAfterItsWindow,
		"LateSweepRecordsWhenItRuns":           TestLateSweepRecordsWhenItRuns,
		"LateSweepKeepsSearchWhole":            TestLateSweepKeepsSearchWhole,
		"OneOpenRequestPerOperatorAndService":  TestOneOpenRequestPerOperatorAndService,
		"NextRequestBeforeTheSweep":            TestNextRequestBeforeTheSweep,
		"Visibility":                           TestVisibility,
		"List":                                 TestList,
		"Pending":                              TestPending,
		"ConcurrentDecisions":                  TestConcurrentDecisions,
		"LockboxOnEndsManagerOnlyGrants":       TestLockboxOnEndsManagerOnlyGrants,
		"LockboxOnRacesManagerApproval":        TestLockboxOnRacesManagerApproval,
		"LockboxOnCountedOnceWhenRetried":      TestLockboxOnCountedOnceWhenRetried,
		"OnboardingOverLegacySwitchOff":        TestOnboardingOverLegacySwitchOffEndsManagerOnlyGrants,
		"OutboxJoinsTheTransition":             TestOutboxJoinsTheTransition,
		"IdempotencyKeyReused":                 TestIdempotencyKeyReusedForAnotherRequest,
		"ConcurrentFilingsWithOneKey":          TestConcurrentFilingsWithOneKeyFileOnce,
		"Metrics":                              TestMetrics,
		"DeadlineAndGrantAgeGauges":            TestDeadlineAndGrantAgeGauges,
		"ReindexRestoresLostIndexEntries":      TestReindexRestoresLostIndexEntries,
		"SweepOnceAcrossReplicas":              TestSweepOnceAcrossReplicas,
		"RequestFiledDuringASweepVisitIsSwept": TestRequestFiledDuringASweepVisitIsSwept,
		"SweepProbeThatCantReadLooks":          TestSweepProbeThatCantReadLooks,
		"OperatorListingReadsOnlyOwnRequests":  TestOperatorListingReadsOnlyOwnRequests,
		"OperatorListingMatchesProviderWide":   TestOperatorListingMatchesProviderWideScan,
		"OperatorListingBeforeTheBackFill":     TestOperatorListingBeforeTheBackFill,
		"OperatorCursorAcrossIndexes":          TestOperatorCursorAcrossIndexes,
		"ListPagingProperty":                   TestListPagingProperty,
		"OffboardEndsTheTenant":                TestOffboardEndsTheTenant,
		"OffboardWhileFiling":                  TestOffboardWhileFiling,
		"RequestRetentionDeletesEndedRequests": TestRequestRetentionDeletesEndedRequests,
		"RequestRetentionWorksInBatches":       TestRequestRetentionWorksInBatches,
		"RequestRetentionStoppedPartWay":       TestRequestRetentionStoppedPartWayLosesNothing,
	} {
		t.Run(name, test)
	}
}

// TestReindexRestoresLostIndexEntries: when writes to the provider-wide
// indexes are lost (as a failover of the node holding them can lose them
// while the tenant's own transaction survives elsewhere), the request is
// hidden from lookups by id and from provider-wide listings, and never
// acted on; Reindex brings every entry back from the tenants' own keys, and
// restores nothing twice.
func TestReindexRestoresLostIndexEntries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.create(t, time.Hour)
	e.clock.Advance(time.Minute)
	b, err := e.store.Create(ctx, who("bob", "", identity.RoleOperator), grants.CreateInput{
		Tenant: "fabrikam", Service: "sharepoint", ServiceRequest: "SR-9", Reason: "site", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// The lost writes: a's id → tenant entry, b's entries in the
	// provider-wide listing and in bob's, and fabrikam in the tenant set.
	e.rdb.Del(ctx, keys.RequestIndex(a.ID))
	e.rdb.ZRem(ctx, keys.AllRequests(), "fabrikam/"+b.ID)
	e.rdb.ZRem(ctx, keys.OperatorRequests("bob"), "fabrikam/"+b.ID)
	e.rdb.SRem(ctx, keys.Tenants(), "fabrikam")
	bob := who("bob", "", identity.RoleOperator).Principal

	if _, err := e.store.Get(ctx, manager.Principal, a.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("without its index entry: %v", err)
	}
	if _, err := e.store.Act(ctx, a.ID, grants.ActionApprove, manager, ""); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("acting without its index entry: %v", err)
	}
	if rs, _ := e.store.List(ctx, manager.Principal, grants.Filter{}); len(rs) != 1 || rs[0].ID != a.ID {
		t.Fatalf("listing without b's entry: %v", rs)
	}
	if rs, _ := e.store.List(ctx, bob, grants.Filter{}); len(rs) != 0 {
		t.Fatalf("bob's listing without b's entry: %v", rs)
	}

	// Recent requests only: both were created before since.
	if n, err := e.store.Reindex(ctx, e.clock.Now().Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("Reindex of newer requests restored %d: %v", n, err)
	}
	// Without fabrikam in the tenant set, its request is out of reach
	// until the tenant set is rebuilt from the registry.
	if n, err := e.store.Reindex(ctx, time.Time{}); err != nil || n != 1 {
		t.Fatalf("Reindex restored %d entries (%v), want a's index entry", n, err)
	}
	if n, err := e.tenants.Reindex(ctx); err != nil || n != 1 {
		t.Fatalf("tenants.Reindex added %d tenants (%v), want fabrikam", n, err)
	}
	if n, err := e.store.Reindex(ctx, time.Time{}); err != nil || n != 2 {
		t.Fatalf("Reindex restored %d entries (%v), want b's two listing entries", n, err)
	}
	if n, err := e.store.Reindex(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("a second Reindex restored %d entries (%v), want none", n, err)
	}
	if got, err := e.store.Get(ctx, manager.Principal, a.ID); err != nil || got.ID != a.ID {
		t.Fatalf("after Reindex: %v", err)
	}
	if rs, _ := e.store.List(ctx, manager.Principal, grants.Filter{}); len(rs) != 2 {
		t.Fatalf("listing after Reindex: %d requests, want 2", len(rs))
	}
	if rs, _ := e.store.List(ctx, bob, grants.Filter{}); len(rs) != 1 || rs[0].ID != b.ID {
		t.Fatalf("bob's listing after Reindex: %v", rs)
	}
	e.act(t, a.ID, grants.ActionApprove, manager)
}

// TestRequestOnlyFromItsTenant: an index entry naming the wrong tenant
// (stale, or planted) leads to nothing, even where that tenant's keys
// hold a copy of the request: a request is only ever read as its own
// tenant's.
func TestRequestOnlyFromItsTenant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.create(t, time.Hour)
	b, err := e.rdb.Get(ctx, keys.Request("contoso", r.ID)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	e.rdb.Set(ctx, keys.Request("fabrikam", r.ID), b, 0)
	e.rdb.Set(ctx, keys.RequestIndex(r.ID), "fabrikam", 0)
	for _, p := range []identity.Principal{manager.Principal, otherAdmin.Principal} {
		if _, err := e.store.Get(ctx, p, r.ID); !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("%s reading through the wrong tenant: %v", p.Subject, err)
		}
	}
	if _, err := e.store.Act(ctx, r.ID, grants.ActionApprove, manager, ""); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("approving through the wrong tenant: %v", err)
	}
}
