package server

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestMasterOnly: a connection to a replica is refused, so no read is
// served from its data set; one to the master is made, and so is one to a
// sentinel, which go-redis makes with the same hook. A failover client
// through the sentinels works with it.
func TestMasterOnly(t *testing.T) {
	ctx := context.Background()
	s := redistest.StartSentinel(t)
	for _, c := range []struct {
		name, addr string
		proto      int
		refused    bool
	}{
		{"master", s.Master.Addr, 3, false},
		{"sentinel", s.Sentinels[0].Addr, 3, false},
		{"replica", s.Replica.Addr, 3, true},
		{"replica over RESP2", s.Replica.Addr, 2, true},
	} {
		rdb := redis.NewClient(&redis.Options{Addr: c.addr, Protocol: c.proto, OnConnect: masterOnly, MaxRetries: -1})
		err := rdb.Ping(ctx).Err()
		switch {
		case c.refused && (err == nil || !strings.Contains(err.Error(), "is a replica, not the master")):
			t.Errorf("%s: %v, want the connection refused as not the master", c.name, err)
		case !c.refused && err != nil:
			t.Errorf("%s: %v", c.name, err)
		}
		rdb.Close()
	}
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: redistest.SentinelMaster, SentinelAddrs: s.Addrs(), OnConnect: masterOnly, MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("through the sentinels: %v", err)
	}
}
