package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestMain(m *testing.M) {
	code := redistest.Run(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// lockboxBinary builds cmd/lockbox once for the test binary.
func lockboxBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "lockbox-e2e-bin-"); buildErr != nil {
			return
		}
		out, err := goBuild(t, filepath.Join(binDir, "lockbox"), "../cmd/lockbox").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, out}
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return filepath.Join(binDir, "lockbox")
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// onCluster makes the worlds t starts use the shared Redis Cluster (three
// masters with a replica each), flushed for each world, through
// LOCKBOX_REDIS_CLUSTER_ADDRS.
func onCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	c := redistest.SharedCluster(t)
	prev := testRedis
	testRedis = func(t *testing.T) map[string]string {
		return map[string]string{"LOCKBOX_REDIS_CLUSTER_ADDRS": redistest.SharedCluster(t).Seeds()}
	}
	t.Cleanup(func() { testRedis = prev })
	return c
}

// TestOnRedisCluster runs the end-to-end tests again with Lockbox
// configured for a Redis Cluster of three masters with a replica each: the
// whole lifecycle with lockboxctl, the proxy and its caches across
// replicas, audit search, export, verification and retention,
// notifications, the admin center's sessions, onboarding and the switch.
// contoso's keys, fabrikam's and the provider-wide keys are on different
// masters.
func TestOnRedisCluster(t *testing.T) {
	onCluster(t)
	for name, test := range map[string]func(*testing.T){
		"LifecycleWithLockboxctl":               TestLifecycleWithLockboxctl,
		"ServeComponents":                       TestServeComponents,
		"ProxyGrantWindow":                      TestProxyGrantWindow,
		"AuditRetention":                        TestAuditRetention,
		"NotificationsReachEveryone":            TestNotificationsReachEveryone,
		"PowerShellVerbs":                       TestPowerShellVerbs,
		"AuditRecordsFollowTheCommonSchema":     TestAuditRecordsFollowTheCommonSchema,
		"CachesActWithinOneSecond":              TestCachesActWithinOneSecond,
		"TenantViewsNeverShowAProviderIdentity": TestTenantViewsNeverShowAProviderIdentity,
		"OnboardingWithLockboxctl":              TestOnboardingWithLockboxctl,
		"LockboxOnEndsManagerOnlyAccess":        TestLockboxOnEndsManagerOnlyAccess,
	} {
		t.Run(name, test)
	}
}

// TestProxyWhileATenantsSlotMoves moves contoso's hash slot to another
// master, one key at a time (as "redis-cli --cluster reshard" does), while
// an engineer's calls stream through the proxy, with each audit record
// acknowledged by a replica (LOCKBOX_AUDIT_REPLICAS=1). The calls meet
// every state of the move — ASK while contoso's keys are on both masters,
// TRYAGAIN for an instant when the audit chain's stream and head are
// apart, MOVED after — and every one of them is answered 200: nothing is
// refused, each forwarded call has its audit record, and the chain
// verifies on the new master.
func TestProxyWhileATenantsSlotMoves(t *testing.T) {
	c := onCluster(t)
	w := start(t, "LOCKBOX_AUDIT_REPLICAS", "1")
	w.assignApprover()
	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.ok("approver", nil, "request", "approve", r.ID)
	const path = "/exchange/tenants/contoso/mailboxes"
	ctx := context.Background()
	slot, err := redistest.Slot(ctx, w.srv.Redis, keys.Audit("contoso"))
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
	var ok, other atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", w.proxy+path, nil)
				req.Header.Set("Authorization", "Bearer "+w.tokens["operator"])
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("call: %v", err)
					other.Add(1)
					return
				}
				var body struct{ Error struct{ Code string } }
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("a call while the slot moved: %d %s", resp.StatusCode, body.Error.Code)
					other.Add(1)
					return
				}
				ok.Add(1)
			}
		})
	}
	for ok.Load() < 50 && other.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	before := ok.Load()
	if err := c.MigrateSlot(ctx, slot, to, func() { time.Sleep(20 * time.Millisecond) }); err != nil {
		t.Fatal(err)
	}
	during := ok.Load() - before
	for ok.Load() < before+during+50 && other.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if now, _ := c.MasterOf(ctx, slot); now != to {
		t.Fatalf("contoso's slot is on %s, want %s", now, to)
	}
	if during == 0 {
		t.Fatal("no call completed while the slot moved")
	}
	// Every forwarded call has exactly one record, and the chain is whole.
	msgs, err := w.srv.Redis.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for _, m := range msgs {
		var rec record.Record
		if s, _ := m.Values["r"].(string); json.Unmarshal([]byte(s), &rec) == nil && rec.Operation == "Get-Mailbox" {
			recorded++
		}
	}
	if recorded != int(ok.Load()) {
		t.Fatalf("%d calls forwarded, %d Get-Mailbox records", ok.Load(), recorded)
	}
	var v audit.Verification
	w.ok("admin", &v, "audit", "verify", "--tenant", "contoso")
	if !v.OK {
		t.Fatalf("chain after the move: %+v", v)
	}
	t.Logf("%d calls forwarded and recorded, %d of them while contoso's slot %d moved from %s to %s", ok.Load(), during, slot, from, to)
}
