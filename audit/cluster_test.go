package audit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// onCluster makes testRedis hand out the shared cluster for the rest of t.
func onCluster(t *testing.T) {
	prev := testRedis
	testRedis = func(t testing.TB) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }
	t.Cleanup(func() { testRedis = prev })
}

// TestOnRedisCluster runs the log's tests again on a Redis Cluster of
// three masters with a replica each. contoso, fabrikam and northwind are on
// three different masters: each chain's script must stay in its tenant's
// slot, the group commit's round trips span nodes, and searches across
// tenants and the SIEM forwarder read every node.
func TestOnRedisCluster(t *testing.T) {
	onCluster(t)
	ctx := context.Background()
	rdb := testRedis(t).(*redis.ClusterClient)
	masters := map[string]bool{}
	for _, tenant := range []string{"contoso", "fabrikam", "northwind"} {
		c, err := rdb.MasterForKey(ctx, keys.Audit(tenant))
		if err != nil {
			t.Fatal(err)
		}
		masters[c.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Fatalf("the tenants' chains are on %d masters, want 3", len(masters))
	}
	for name, test := range map[string]func(*testing.T){
		"ChainCatchesTampering":                TestChainCatchesTampering,
		"ChainConcurrentWriters":               TestChainConcurrentWriters,
		"VerifyScope":                          TestVerifyScope,
		"VerifyCatchesAnotherTenantsRecords":   TestVerifyCatchesAnotherTenantsRecords,
		"VerifyDuringAppends":                  TestVerifyDuringAppends,
		"VerifyTruncatedLongChain":             TestVerifyTruncatedLongChain,
		"VerifyDuringTrim":                     TestVerifyDuringTrim,
		"GroupCommitChainsStayWhole":           TestGroupCommitChainsStayWhole,
		"GroupCommitFailures":                  TestGroupCommitFailures,
		"GroupCommitWaitsForReplicas":          testGroupCommitWaitsOnCluster,
		"OrganizationIdFromTheRegistry":        TestOrganizationIdFromTheRegistry,
		"LegacyRecordsInTheStream":             TestLegacyRecordsInTheStream,
		"QuerySemantics":                       TestQuerySemantics,
		"DateRangeSeeksToItsEnd":               TestDateRangeSeeksToItsEnd,
		"SearchAcrossTenants":                  TestSearchAcrossTenants,
		"SearchScopesAndViews":                 TestSearchScopesAndViews,
		"EmptyTenantIsTheTokensTenant":         TestEmptyTenantIsTheTokensTenant,
		"RetentionKeepsTheChainVerifiable":     TestRetentionKeepsTheChainVerifiable,
		"TrimAll":                              TestTrimAll,
		"SIEMForwardsEveryRecordOnce":          TestSIEMForwardsEveryRecordOnceInOrder,
		"SIEMReplicasWriteEachRecordOnce":      TestSIEMReplicasWriteEachRecordOnce,
		"SIEMFailingSinkLosesNothing":          TestSIEMFailingSinkLosesNothing,
		"SIEMForwarderAcrossAFullDisk":         TestSIEMForwarderAcrossAFullDisk,
		"SIEMTakesOverADeadReplica":            TestSIEMTakesOverADeadReplicasRecords,
		"SIEMTakesOverAFailingReplica":         TestSIEMFailingReplicasRecordsAreTakenOver,
		"SIEMPendingRecordsTrimmed":            TestSIEMPendingRecordsTrimmedByRetention,
		"SIEMRecordsTrimmedAtADeadReplica":     TestSIEMRecordsTrimmedAtADeadReplicaAreSkipped,
		"SIEMReplicaKilledMidPass":             TestSIEMReplicaKilledMidPass,
		"SIEMForwardsEverySeal":                TestSIEMForwardsEverySeal,
		"SIEMSealCatchesARewriteResealed":      TestSIEMSealCatchesARewriteResealed,
		"SIEMSealsTrimmedFromAFullStream":      TestSIEMSealsTrimmedFromAFullStream,
		"SIEMVisitsSealsOnlyWhenSomeWait":      TestSIEMVisitsSealsOnlyWhenSomeWait,
		"RetentionAcrossReplicasWithOneKilled": TestRetentionAcrossReplicasWithOneKilled,
	} {
		t.Run(name, test)
	}
}

// testGroupCommitWaitsOnCluster: with a replica required, every tenant's
// records are acknowledged only after the replica of their own master has
// them (WAIT follows the writes on their node's connection), across
// tenants on all three masters in shared batches.
func testGroupCommitWaitsOnCluster(t *testing.T) {
	rdb := testRedis(t)
	tenants := []string{"contoso", "fabrikam", "northwind"}
	onboard(t, rdb, tenants...)
	log := audit.NewLog(rdb, nil)
	g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, Durability: audit.Durability{Replicas: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			if _, err := g.Append(context.Background(), operatorRecord(tenants[i%3], i)); err != nil {
				t.Errorf("append %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for _, tenant := range tenants {
		if v, err := log.Verify(context.Background(), auditor, tenant); err != nil || !v.OK || v.Records != 100 {
			t.Errorf("%s: %+v, %v", tenant, v, err)
		}
	}
	// Demanding more replicas than a master has fails the call instead of
	// pretending.
	g2, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, Timeout: 200 * time.Millisecond,
		Durability: audit.Durability{Replicas: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if _, err := g2.Append(context.Background(), operatorRecord("fabrikam", 1000)); err == nil {
		t.Fatal("a record was acknowledged by two replicas of a master that has one")
	}
}

// TestGroupCommitFollowsAMovingSlot moves contoso's hash slot to another
// master, one key at a time, while writers keep appending to its chain
// (with and without waiting for a replica): clients meet ASK while the
// chain's keys are on both sides, TRYAGAIN for the instant its stream and
// head are split, and MOVED afterwards. Every append succeeds, every
// acknowledged record is in the chain exactly once, and the chain
// verifies on its new master.
func TestGroupCommitFollowsAMovingSlot(t *testing.T) {
	for _, replicas := range []int{0, 1} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) {
			c := redistest.SharedCluster(t)
			rdb := c.Client(t)
			ctx := context.Background()
			onboard(t, rdb, "contoso")
			log := audit.NewLog(rdb, nil)
			g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log, Durability: audit.Durability{Replicas: replicas}})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			// Some records before the move, so the chain has a head.
			for i := range 10 {
				if _, err := g.Append(ctx, operatorRecord("contoso", i)); err != nil {
					t.Fatal(err)
				}
			}
			slot, err := redistest.Slot(ctx, rdb, keys.Audit("contoso"))
			if err != nil {
				t.Fatal(err)
			}
			from, err := c.MasterOf(ctx, slot)
			if err != nil {
				t.Fatal(err)
			}
			masters, _ := c.Masters(ctx)
			to := masters[0]
			if to == from {
				to = masters[1]
			}

			stop := make(chan struct{})
			var acked, failed atomic.Int64
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := g.Append(ctx, operatorRecord("contoso", 1000*(w+1)+i)); err != nil {
							failed.Add(1)
							t.Errorf("append during the move: %v", err)
							return
						}
						acked.Add(1)
					}
				})
			}
			// Let the writers run, then move the slot with a pause after
			// each key, so they meet every state of the move.
			for acked.Load() < 50 {
				time.Sleep(time.Millisecond)
			}
			before := acked.Load()
			if err := c.MigrateSlot(ctx, slot, to, func() { time.Sleep(30 * time.Millisecond) }); err != nil {
				t.Fatal(err)
			}
			during := acked.Load() - before
			for acked.Load() < before+during+50 && failed.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			close(stop)
			wg.Wait()
			if now, _ := c.MasterOf(ctx, slot); now != to {
				t.Fatalf("slot %d is on %s, want %s", slot, now, to)
			}
			if during == 0 {
				t.Fatal("no record was written while the slot moved")
			}
			v, err := log.Verify(ctx, auditor, "contoso")
			if want := 10 + int(acked.Load()); err != nil || !v.OK || v.Records != want {
				t.Fatalf("after the move: %+v, %v; want %d records, intact", v, err, want)
			}
			t.Logf("%d records acknowledged, %d of them while the slot moved from %s to %s", acked.Load(), during, from, to)
		})
	}
}
