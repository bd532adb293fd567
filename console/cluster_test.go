package console_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestOnRedisCluster runs the admin center's tests again on a Redis Cluster
// of three masters with a replica each, one at a time (they share the
// cluster's one database): sessions and sign-ins in progress are
// provider-wide keys, each in a slot of its own, written alone; what a
// page changes goes through the stores' tenant-slotted transactions.
func TestOnRedisCluster(t *testing.T) {
	prev := testRedis
	testRedis = func(t testing.TB) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }
	onCluster = true
	t.Cleanup(func() { testRedis, onCluster = prev, false })
	for name, test := range map[string]func(*testing.T){
		"SessionCookie":          TestSessionCookie,
		"SessionStoredByHash":    TestSessionStoredByHash,
		"IdleTimeout":            TestIdleTimeout,
		"AbsoluteTimeout":        TestAbsoluteTimeout,
		"Signout":                TestSignout,
		"SignoutDuringAPageLoad": TestSignoutDuringAPageLoad,
		"SigninReplacesSession":  TestSigninReplacesSession,
		"CSRF":                   TestCSRF,
		"TenantIsolation":        TestTenantIsolation,
		"Approvers":              TestApprovers,
		"SettingsSwitch":         TestSettingsSwitch,
		"TenantApproval":         TestTenantApproval,
		"AuditPage":              TestAuditPage,
		"OIDCSignin":             TestOIDCSignin,
		"OIDCSigninProblems":     TestOIDCSigninProblems,
		"TenantRegistry":         TestTenantRegistry,
	} {
		t.Run(name, test)
	}
}
