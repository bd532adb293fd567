package devstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func start(t *testing.T) (*Store, *redis.Client) {
	t.Helper()
	s, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL() = %q, want a loopback redis:// URL", s.URL())
	}
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return s, c
}

// This test waits in real time on purpose: it checks that the embedded
// store expires keys by the clock, which "lockbox dev" relies on for grant
// and request TTLs. It takes about 200 ms. What it measures is measured
// from before the SET, so a slow machine can only make it wait longer,
// never see the key gone early.
func TestKeysExpireInRealTime(t *testing.T) {
	const ttl = 200 * time.Millisecond
	_, c := start(t)
	ctx := t.Context()
	set := time.Now()
	if err := c.Set(ctx, "lockbox:{t}:k", "v", ttl).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "lockbox:{t}:keep", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := c.Exists(ctx, "lockbox:{t}:k").Result()
	if err != nil || (n != 1 && time.Since(set) < ttl) {
		t.Fatalf("key gone at once: n=%d err=%v", n, err)
	}
	deadline := set.Add(10 * time.Second)
	for {
		n, err := c.Exists(ctx, "lockbox:{t}:k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with a %s TTL still there after 10s", ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The store keeps expiry times to the millisecond.
	if gone := time.Since(set); gone < ttl-time.Millisecond {
		t.Errorf("key with a %s TTL gone after %v", ttl, gone)
	}
	if ttl, err := c.PTTL(ctx, "lockbox:{t}:keep").Result(); err != nil || ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL of the 1h key = %v, %v", ttl, err)
	}
}

func TestAbsoluteExpiry(t *testing.T) {
	_, c := start(t)
	ctx := t.Context()
	c.Set(ctx, "k", "v", 0)
	if err := c.PExpireAt(ctx, "k", time.Now().Add(10*time.Minute)).Err(); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, "k").Result()
	if err != nil || ttl < 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("PTTL after PEXPIREAT +10m = %v, %v", ttl, err)
	}
	c.PExpireAt(ctx, "k", time.Now().Add(-time.Second))
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Error("key with an expiry in the past still exists")
	}
}

// The lifecycle store updates requests with WATCH/MULTI/EXEC; a write by
// another connection between WATCH and EXEC must abort the transaction.
func TestWatchMulti(t *testing.T) {
	_, c := start(t)
	ctx := t.Context()
	const key = "lockbox:{contoso}:request:1"
	c.Set(ctx, key, "pending", 0)

	err := c.Watch(ctx, func(tx *redis.Tx) error {
		if v, err := tx.Get(ctx, key).Result(); err != nil || v != "pending" {
			t.Fatalf("GET in WATCH = %q, %v", v, err)
		}
		// Another client changes the key under the watch.
		if err := c.Set(ctx, key, "expired", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "approved", 0)
			return nil
		})
		return err
	}, key)
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("conflicting transaction: got %v, want redis.TxFailedErr", err)
	}
	if v, _ := c.Get(ctx, key).Result(); v != "expired" {
		t.Errorf("after the aborted transaction the value is %q", v)
	}

	err = c.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "approved", 0)
			p.Incr(ctx, key+":version")
			return nil
		})
		return err
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get(ctx, key).Result(); v != "approved" {
		t.Errorf("after the transaction the value is %q", v)
	}
}

func TestEval(t *testing.T) {
	_, c := start(t)
	ctx := t.Context()
	// Compare-and-set, the shape of a lifecycle transition in Lua.
	script := redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return redis.error_reply("CONFLICT state changed")
end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
return redis.call("PTTL", KEYS[1])`)
	c.Set(ctx, "lockbox:{t}:state", "pending", 0)
	ttl, err := script.Run(ctx, c, []string{"lockbox:{t}:state"}, "pending", "approved", 60000).Int64()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 60000 {
		t.Errorf("PTTL from the script = %d", ttl)
	}
	_, err = script.Run(ctx, c, []string{"lockbox:{t}:state"}, "pending", "denied", 60000).Result()
	if err == nil || !strings.HasPrefix(err.Error(), "CONFLICT") {
		t.Errorf("stale compare-and-set: got %v, want a CONFLICT error", err)
	}
}

// Audit records and request history are streams read newest first.
func TestStreams(t *testing.T) {
	_, c := start(t)
	ctx := t.Context()
	const stream = "lockbox:{contoso}:audit"
	var ids []string
	for _, op := range []string{"Set-AccessToCustomerDataRequest", "Get-Mailbox", "Search-Mailbox"} {
		id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"Operation": op}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	msgs, err := c.XRevRangeN(ctx, stream, "+", "-", 2).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].ID != ids[2] || msgs[1].ID != ids[1] ||
		msgs[0].Values["Operation"] != "Search-Mailbox" {
		t.Errorf("XREVRANGE COUNT 2 = %+v, ids %v", msgs, ids)
	}
}

func TestClose(t *testing.T) {
	s, c := start(t)
	ctx := t.Context()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent
	opts, _ := redis.ParseURL(s.URL())
	opts.MaxRetries = -1
	fresh := redis.NewClient(opts)
	defer fresh.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := fresh.Ping(ctx).Err(); err == nil {
		t.Error("PING succeeded after Close")
	}
}

func TestStartCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Start(ctx); err == nil {
		s.Close()
		t.Error("Start with a canceled context succeeded")
	}
}

// TestSetNX: the admin center creates each day's sign-in key once with
// SET NX and a TTL, and reads it back with GET; the first writer's value
// stays, with its TTL.
func TestSetNX(t *testing.T) {
	_, c := start(t)
	ctx := t.Context()
	const key, ttl = "lockbox:console:login-key:20000", 48*time.Hour + 10*time.Minute
	for i, v := range []string{"first", "second"} {
		ok, err := c.SetNX(ctx, key, v, ttl).Result()
		if err != nil || ok != (i == 0) {
			t.Fatalf("SET NX %s = %t, %v", v, ok, err)
		}
	}
	if v, err := c.Get(ctx, key).Result(); err != nil || v != "first" {
		t.Errorf("GET = %q, %v; want the first value", v, err)
	}
	if got, err := c.TTL(ctx, key).Result(); err != nil || got <= 48*time.Hour || got > ttl {
		t.Errorf("TTL = %v, %v; want the first writer's %s", got, err, ttl)
	}
}

// /readyz asks HELLO, without a protocol version, for the server's role
// (health.RedisCheck): Redis answers it on either protocol and changes
// nothing on the connection. The embedded store answered "wrong number of
// arguments", and every "lockbox dev" reported itself not ready.
func TestHelloWithoutVersion(t *testing.T) {
	for _, protocol := range []int{2, 3} {
		s, _ := start(t)
		opts, err := redis.ParseURL(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		opts.Protocol = protocol
		c := redis.NewClient(opts)
		defer c.Close()
		ctx := t.Context()
		v, err := c.Do(ctx, "HELLO").Result()
		if err != nil {
			t.Fatalf("RESP%d: HELLO: %v", protocol, err)
		}
		fields := map[string]any{}
		switch r := v.(type) {
		case map[any]any: // RESP3
			for k, v := range r {
				fields[k.(string)] = v
			}
		case []any: // RESP2
			for i := 0; i+1 < len(r); i += 2 {
				fields[r[i].(string)] = r[i+1]
			}
		default:
			t.Fatalf("RESP%d: HELLO answered %T %v", protocol, v, v)
		}
		if fields["role"] != "master" || fields["proto"] != int64(protocol) {
			t.Errorf("RESP%d: HELLO answered role %v, proto %v; want master, %d", protocol, fields["role"], fields["proto"], protocol)
		}
		// The connection still speaks the protocol it opened with: a
		// RESP3 map stays a map, RESP2 answers a flat list.
		if err := c.HSet(ctx, "h", "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		h, err := c.Do(ctx, "HGETALL", "h").Result()
		if err != nil {
			t.Fatal(err)
		}
		if _, isMap := h.(map[any]any); isMap != (protocol == 3) {
			t.Errorf("RESP%d: after HELLO, HGETALL answered %T", protocol, h)
		}
	}
}
