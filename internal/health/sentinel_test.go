package health

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestRedisCheckSentinel: behind sentinels, /readyz fails once the master
// is gone, passes again once the client has followed the sentinels to the
// promoted replica, and stays ready when the old master comes back as a
// replica (it takes no write, so it is never taken for the master).
func TestRedisCheckSentinel(t *testing.T) {
	// Like the cluster tests, it mostly waits for its own servers.
	t.Parallel()
	s := redistest.StartSentinel(t)
	// As lockbox serve configures it for LOCKBOX_REDIS_SENTINEL_ADDRS.
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: redistest.SentinelMaster, SentinelAddrs: s.Addrs(),
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		ContextTimeoutEnabled: true, MaxRetries: -1,
	})
	defer c.Close()
	h := Handler(prometheus.NewRegistry(), RedisCheck(c))
	readyWithin(t, h)

	// The sentinels wait DownAfter before they even start a failover:
	// the probe right after the kill finds no master to write to.
	s.Master.Stop()
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "redis: ") {
		t.Fatalf("/readyz with the master killed = %d %q, want 503 redis: ...", code, body)
	}
	// Ready again: the one server alive took the write and says it is a
	// master, so the client follows the promoted replica.
	readyWithin(t, h)

	host, port, _ := strings.Cut(s.Replica.Addr, ":")
	if err := s.Master.Restart("--replicaof", host, port); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if code, body := get(t, h, "/readyz"); code != http.StatusOK {
			t.Fatalf("probe %d with the old master back as a replica = %d %q, want 200", i, code, body)
		}
	}
}
