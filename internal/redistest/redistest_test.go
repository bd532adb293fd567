package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { Main(m) }

// TestCluster: the shared cluster serves keys on all three masters, a
// multi-key transaction within one hash tag, and moves a slot.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := SharedCluster(t)
	t.Logf("cluster up in %s", time.Since(start))
	rdb := c.Client(t)
	ctx := context.Background()
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters %v %v", masters, err)
	}
	if err := rdb.Set(ctx, "{t}:a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	slot, err := Slot(ctx, rdb, "{t}:a")
	if err != nil {
		t.Fatal(err)
	}
	from, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	to := masters[0]
	if to == from {
		to = masters[1]
	}
	if err := c.MigrateSlot(ctx, slot, to, nil); err != nil {
		t.Fatal(err)
	}
	if now, _ := c.MasterOf(ctx, slot); now != to {
		t.Fatalf("slot %d on %s, want %s", slot, now, to)
	}
	if v, err := rdb.Get(ctx, "{t}:a").Result(); err != nil || v != "1" {
		t.Fatalf("after the move: %q %v", v, err)
	}
}

// TestSentinel: the sentinels name the master, and fail over to the
// replica when it is killed.
func TestSentinel(t *testing.T) {
	start := time.Now()
	s := StartSentinel(t)
	t.Logf("sentinel up in %s", time.Since(start))
	ctx := context.Background()
	if m, err := s.MasterAddr(ctx); err != nil || m != s.Master.Addr {
		t.Fatalf("master %s %v, want %s", m, err, s.Master.Addr)
	}
	s.Master.Stop()
	killed := time.Now()
	for {
		if m, _ := s.MasterAddr(ctx); m == s.Replica.Addr {
			break
		}
		// Sentinels agree in a few seconds; a machine loaded far beyond
		// its cores (as running every package's tests at once under -race
		// on two) took over 30.
		if time.Since(killed) > 90*time.Second {
			t.Fatal("no failover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("failover after %s", time.Since(killed))
}

// TestRestartIsANewServer: each Restart answers with a new server on the
// same port, never the old one still dying (nor a new one that could not
// listen because the old one held the port).
func TestRestartIsANewServer(t *testing.T) {
	s := StartServer(t)
	ctx := context.Background()
	for i := range 20 {
		c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		if err := c.Set(ctx, "before-restart", i, 0).Err(); err != nil {
			t.Fatalf("restart %d: set: %v", i, err)
		}
		c.Close()
		if err := s.Restart(); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		c = redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		n, err := c.Exists(ctx, "before-restart").Result()
		c.Close()
		if err != nil || n != 0 {
			t.Fatalf("restart %d: the key written before it is %d, %v: not a new server", i, n, err)
		}
	}
}

// TestStartNotFooledByAnotherServer: a server that can't bind its port,
// because another process's server holds it, is not taken for that one.
func TestStartNotFooledByAnotherServer(t *testing.T) {
	other := StartServer(t)
	dir := t.TempDir()
	url, proc, err := spawnOn(other.Port, dir)
	if err == nil {
		_ = proc.cmd.Process.Kill()
		t.Fatalf("a second server on %s's port started (%s): it was taken for the server already there", other.Addr, url)
	}
	if !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("err = %v, want the second server's own exit", err)
	}
}
