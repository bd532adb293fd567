package due_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var testRedis = func(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

// TestOnRedisCluster runs the schedules' tests again on a Redis Cluster of
// three masters with a replica each. The schedules, the rescan lease and the
// tenant set are on different masters, and the rescan's probes read keys
// on every master: a script that touched two keys, or a pipeline that
// assumed one node, fails here.
func TestOnRedisCluster(t *testing.T) {
	prev := testRedis
	testRedis = func(t testing.TB) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }
	t.Cleanup(func() { testRedis = prev })
	ctx := context.Background()
	rdb := testRedis(t).(*redis.ClusterClient)
	masters := map[string]bool{}
	for _, k := range []string{keys.Due("sweep"), keys.Due("notify"), keys.Due("siem"), keys.Due("retention"), keys.DueRescan(), keys.Tenants()} {
		c, err := rdb.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[c.Options().Addr] = true
	}
	if len(masters) < 2 {
		t.Fatalf("the schedules' keys are all on one master")
	}
	for name, test := range map[string]func(*testing.T){
		"MarksOnlyMoveEarlier":                 TestMarksOnlyMoveEarlier,
		"MarkAfterTheLeaseEndedStands":         TestMarkAfterTheLeaseEndedStands,
		"LaterMarkDuringALiveLeaseStands":      TestLaterMarkDuringALiveLeaseStands,
		"ClaimsAreExclusive":                   TestClaimsAreExclusive,
		"DoneReschedulesUnlessMarkedMeanwhile": TestDoneReschedulesUnlessMarkedMeanwhile,
		"DeadReplicasClaimFallsDue":            TestDeadReplicasClaimFallsDue,
		"Drain":                                TestDrain,
		"DrainReleasesClaimsWhenStopped":       TestDrainReleasesClaimsWhenStopped,
		"RescanRepairsLostMarks":               TestRescanRepairsLostMarks,
		"BatchMarksEachTenantOncePerFlush":     TestBatchMarksEachTenantOncePerFlush,
	} {
		t.Run(name, test)
	}
}
