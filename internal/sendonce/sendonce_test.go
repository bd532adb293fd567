package sendonce_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/sendonce"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// appendOne is a script that appends one entry to KEYS[1], as the audit
// writer's script appends records.
var appendOne = redis.NewScript(`return redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])`)

// behindRelay returns a client as Lockbox builds it (sendonce, MaxRedirects
// 8) of cluster c that reaches the master holding key through a relay that
// can lose a reply, and the relay.
func behindRelay(t *testing.T, c *redistest.Cluster, key string) (*redis.ClusterClient, *redistest.Relay) {
	t.Helper()
	ctx := context.Background()
	plain := c.Client(t)
	slot, err := redistest.Slot(ctx, plain, key)
	if err != nil {
		t.Fatal(err)
	}
	master, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	relay := redistest.StartRelay(t, "redis://"+master+"/0")
	via := strings.TrimSuffix(strings.TrimPrefix(relay.URL, "redis://"), "/0")
	rdb := sendonce.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.Addrs(), MaxRedirects: 8,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == master {
				addr = via
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb, relay
}

// TestClusterWriteWhoseReplyIsLostIsAppliedOnce: the connection to a
// master breaks after it ran a write and before its answer came back. The
// write is not sent again (go-redis's cluster client would, and report
// success): the caller gets the connection's error, and the write is in
// Redis once.
func TestClusterWriteWhoseReplyIsLostIsAppliedOnce(t *testing.T) {
	const key, elsewhere = "{lost}stream", "{other}stream"
	for _, tc := range []struct {
		name, sends string
		write       func(context.Context, *redis.ClusterClient) error
	}{
		{"XADD", "xadd", func(ctx context.Context, rdb *redis.ClusterClient) error {
			return rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"n", "1"}}).Err()
		}},
		{"pipelined XADD", "xadd", func(ctx context.Context, rdb *redis.ClusterClient) error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"n", "1"}})
				p.XAdd(ctx, &redis.XAddArgs{Stream: elsewhere, Values: []any{"n", "1"}})
				return nil
			})
			return err
		}},
		{"EVALSHA", "evalsha", func(ctx context.Context, rdb *redis.ClusterClient) error {
			return appendOne.EvalSha(ctx, rdb, []string{key}, "1").Err()
		}},
		{"pipelined EVALSHA", "evalsha", func(ctx context.Context, rdb *redis.ClusterClient) error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.EvalSha(ctx, appendOne.Hash(), []string{key}, "1")
				p.EvalSha(ctx, appendOne.Hash(), []string{elsewhere}, "1")
				return nil
			})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.SharedCluster(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			plain := c.Client(t)
			if err := plain.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				return appendOne.Load(ctx, m).Err()
			}); err != nil {
				t.Fatal(err)
			}
			rdb, relay := behindRelay(t, c, key)
			relay.LoseReplyTo(func(sent []byte) bool { return bytes.Contains(sent, []byte(tc.sends)) })
			err := tc.write(ctx, rdb)
			if !relay.Lost() {
				t.Fatal("the relay lost no reply: the test no longer exercises a lost answer")
			}
			var netErr net.Error
			if !errors.Is(err, io.EOF) && !errors.As(err, &netErr) {
				t.Errorf("write whose answer was lost: %v, want the connection's error", err)
			}
			if n, err := plain.XLen(ctx, key).Result(); err != nil || n != 1 {
				t.Errorf("%s holds %d entries (%v), want the one write once", key, n, err)
			}
			if strings.HasPrefix(tc.name, "pipelined") {
				// The pipeline's command on another master was answered.
				if n, err := plain.XLen(ctx, elsewhere).Result(); err != nil || n != 1 {
					t.Errorf("%s holds %d entries (%v), want 1", elsewhere, n, err)
				}
			}
		})
	}
}

// redirections counts the commands a node answered MOVED or ASK.
type redirections struct{ moved, ask atomic.Int64 }

func (h *redirections) count(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if _, ok := redis.IsMovedError(c.Err()); ok {
			h.moved.Add(1)
		}
		if _, ok := redis.IsAskError(c.Err()); ok {
			h.ask.Add(1)
		}
	}
}

func (h *redirections) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *redirections) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if _, ok := redis.IsMovedError(err); ok {
			h.moved.Add(1)
		}
		if _, ok := redis.IsAskError(err); ok {
			h.ask.Add(1)
		}
		return err
	}
}
func (h *redirections) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(cmds...)
		return err
	}
}

// TestClusterFollowsRedirections: MOVED and ASK answers (Redis ran
// nothing) are still followed, for one command and in a pipeline, while
// a stream's slot moves to another master and after it moved.
func TestClusterFollowsRedirections(t *testing.T) {
	c := redistest.SharedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = "{moving}stream"
	var seen redirections
	guarded := func() *redis.ClusterClient {
		rdb := sendonce.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRedirects: 8})
		rdb.OnNewNode(func(n *redis.Client) { n.AddHook(&seen) })
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
	during, after := guarded(), guarded()
	write := func(rdb *redis.ClusterClient, how string) {
		t.Helper()
		err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"n", how}}).Err()
		if err == nil {
			_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"n", how + " pipelined"}})
				return nil
			})
		}
		if err != nil {
			t.Errorf("%s: %v", how, err)
		}
	}
	// Both learn the slot's owner now; after keeps it when the slot moved.
	if err := during.XLen(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	write(after, "before the move")
	slot, err := redistest.Slot(ctx, after, key)
	if err != nil {
		t.Fatal(err)
	}
	from, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	to := masters[0]
	if to == from {
		to = masters[1]
	}
	moved := false
	if err := c.MigrateSlot(ctx, slot, to, func() {
		if !moved {
			// The stream is on the new master, the slot still on the
			// old one: ASK.
			moved = true
			write(during, "while the slot moves")
		}
	}); err != nil {
		t.Fatal(err)
	}
	write(after, "after the move")
	if seen.ask.Load() == 0 || seen.moved.Load() == 0 {
		t.Fatalf("ASK answers %d, MOVED answers %d: the test no longer exercises both", seen.ask.Load(), seen.moved.Load())
	}
	if n, err := c.Client(t).XLen(ctx, key).Result(); err != nil || n != 6 {
		t.Errorf("%s holds %d entries (%v), want 6: each write once", key, n, err)
	}
}
