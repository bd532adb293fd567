package notify_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestOnRedisCluster runs the delivery tests again on a Redis Cluster of
// three masters with a replica each: each transition queues its
// notifications in the tenant's slot, in the transition's own MULTI, and
// the workers find the tenant through the tenant set on another master.
func TestOnRedisCluster(t *testing.T) {
	prev := testRedis
	testRedis = func(t testing.TB) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }
	t.Cleanup(func() { testRedis = prev })
	for name, test := range map[string]func(*testing.T){
		"DeliversEveryMessageWithoutLinks":         TestDeliversEveryMessageWithoutLinks,
		"SMTPDownThenBackDeliversEverything":       TestSMTPDownThenBackDeliversEverything,
		"TwoReplicasSendEachMessageOnce":           TestTwoReplicasSendEachMessageOnce,
		"DeadLetterAfterMaxAttempts":               TestDeadLetterAfterMaxAttempts,
		"PendingCustomerRecipients":                TestPendingCustomerRecipients,
		"EngineerHearsOfEveryDecision":             TestEngineerHearsOfEveryDecision,
		"ExpiryWarning":                            TestExpiryWarning,
		"OutboxDepthGauge":                         TestOutboxDepthGauge,
		"ReplicaKilledMidDelivery":                 TestReplicaKilledMidDelivery,
		"WebhookGoneDoesNotBuryOthers":             TestWebhookGoneDoesNotBuryOthers,
		"ProbeThatCantReadTheGrantsLooks":          TestProbeThatCantReadTheGrantsLooks,
		"RedriveSendsOnlyTheFailedRecipients":      TestRedriveSendsOnlyTheFailedRecipients,
		"RedriveOfOneLetterAtOnceEnqueuesItOnce":   TestRedriveOfOneLetterAtOnceEnqueuesItOnce,
		"RetryAfterHoldsEveryMessageToTheReceiver": TestRetryAfterHoldsEveryMessageToTheReceiver,
	} {
		t.Run(name, test)
	}
}
