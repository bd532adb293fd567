package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster on loopback ports: redis-servers with cluster
// mode on, joined by "redis-cli --cluster create". The shared one has
// three masters, each with one replica.
//
// Starting one takes a few seconds, so a test package shares one
// (SharedCluster) and each test flushes it; tests using it must not run in
// parallel with each other. A cluster has only database 0: isolation is by
// flushing, not by database. A test that breaks nodes starts its own
// (StartOwnCluster).
type Cluster struct {
	// Nodes are its servers; which are masters changes as slots and
	// roles move, so ask the cluster (Masters) rather than the index.
	Nodes []*Server

	// replicas is how many replicas each master was given.
	replicas int
}

var (
	clusterOnce sync.Once
	shared      *Cluster
	sharedErr   error
)

// SharedCluster returns the test binary's cluster, started on first use and
// stopped by Main, with every master flushed for t. It fails t (never skips
// it) when the cluster can't be started.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		shared, sharedErr = StartCluster()
		if sharedErr == nil {
			atExit(shared.Stop)
		}
	})
	if sharedErr != nil {
		t.Fatalf("redistest: cluster: %v (install redis-server and redis-cli)", sharedErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shared.Flush(ctx); err != nil {
		t.Fatalf("redistest: flush the cluster: %v", err)
	}
	return shared
}

// StartCluster starts a cluster outside a test; the caller stops it.
func StartCluster() (*Cluster, error) { return startCluster(3, 1) }

// StartOwnCluster starts a cluster of masters masters (three or more),
// each with replicas replicas, for t alone, removed when t ends: for a
// test that kills, freezes or reconfigures its nodes, which the tests
// sharing SharedCluster must not see.
func StartOwnCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	c, err := startCluster(masters, replicas)
	if err != nil {
		t.Fatalf("redistest: cluster: %v (install redis-server and redis-cli)", err)
	}
	t.Cleanup(c.Stop)
	return c
}

func startCluster(masters, replicas int) (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.New("redis-cli not found on PATH")
	}
	c := &Cluster{replicas: replicas}
	for range masters * (1 + replicas) {
		s, err := startClusterNode()
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitHealthy(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// startClusterNode starts one redis-server with cluster mode on.
func startClusterNode() (*Server, error) {
	var err error
	// Two ports are picked free and only then bound, the cluster bus's
	// first: the server's own may turn out to be the same one, or another
	// process may take either meanwhile. The server then fails to listen
	// and exits; another pair will do.
	for range 5 {
		// The cluster bus gets a port of its own: the default (port +
		// 10000) may be taken, or past 65535.
		var bus int
		if bus, err = freePort(); err != nil {
			return nil, err
		}
		var s *Server
		s, err = Start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "3000",
			// Every key of the test's data stays reachable while a slot
			// moves or a node is slow: no slot is refused for coverage.
			"--cluster-require-full-coverage", "no")
		if err == nil {
			return s, nil
		}
	}
	return nil, err
}

// Addrs lists every node's host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Seeds is Addrs comma-separated, as LOCKBOX_REDIS_CLUSTER_ADDRS takes it.
func (c *Cluster) Seeds() string { return strings.Join(c.Addrs(), ",") }

// Stop kills every node and removes their directories.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Remove()
	}
}

// Client returns a cluster client, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// node returns a plain client of one node; the caller closes it.
func node(addr string) *redis.Client { return redis.NewClient(&redis.Options{Addr: addr}) }

// Flush empties every master (and so its replica), and waits until every
// replica has applied it.
func (c *Cluster) Flush(ctx context.Context) error {
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	for _, m := range masters {
		rdb := node(m)
		err := rdb.FlushAll(ctx).Err()
		if err == nil {
			// The next test may read from any node's view of the data
			// only through masters, but WAIT-based tests count replicas:
			// let them catch up first.
			err = rdb.Do(ctx, "WAIT", 1, 5000).Err()
		}
		rdb.Close()
		if err != nil {
			return fmt.Errorf("flush %s: %w", m, err)
		}
	}
	return nil
}

// Masters lists the addresses of the nodes that are masters now.
func (c *Cluster) Masters(ctx context.Context) ([]string, error) {
	var out []string
	for _, n := range c.Nodes {
		rdb := node(n.Addr)
		role, err := rdb.Do(ctx, "ROLE").Slice()
		rdb.Close()
		if err != nil {
			continue // a stopped node
		}
		if len(role) > 0 && role[0] == "master" {
			out = append(out, n.Addr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no master answers")
	}
	return out, nil
}

// Slot returns the hash slot of key.
func Slot(ctx context.Context, rdb redis.UniversalClient, key string) (int, error) {
	n, err := rdb.ClusterKeySlot(ctx, key).Result()
	return int(n), err
}

// MasterOf returns the address of the master that owns slot.
func (c *Cluster) MasterOf(ctx context.Context, slot int) (string, error) {
	masters, err := c.Masters(ctx)
	if err != nil {
		return "", err
	}
	rdb := node(masters[0])
	defer rdb.Close()
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, s := range slots {
		if s.Start <= slot && slot <= s.End && len(s.Nodes) > 0 {
			return s.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("slot %d has no owner", slot)
}

// MigrateSlot moves slot to the master at to the way "redis-cli --cluster
// reshard" does: the target imports it, the source migrates it, its keys
// move one MIGRATE at a time (between runs after each, so a test can widen
// the window in which clients get ASK and TRYAGAIN), and every master is
// told the new owner. Clients still routing to the source meanwhile get
// ASK for moved keys, and MOVED once it is done.
func (c *Cluster) MigrateSlot(ctx context.Context, slot int, to string, between func()) error {
	from, err := c.MasterOf(ctx, slot)
	if err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("slot %d is already on %s", slot, to)
	}
	src, dst := node(from), node(to)
	defer src.Close()
	defer dst.Close()
	srcID, err := src.ClusterMyID(ctx).Result()
	if err != nil {
		return err
	}
	dstID, err := dst.ClusterMyID(ctx).Result()
	if err != nil {
		return err
	}
	if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
		return fmt.Errorf("importing: %w", err)
	}
	if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	host, port, _ := strings.Cut(to, ":")
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, 1).Result()
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		if err := src.Do(ctx, "MIGRATE", host, port, "", 0, 5000, "KEYS", keys[0]).Err(); err != nil {
			return fmt.Errorf("migrate %s: %w", keys[0], err)
		}
		if between != nil {
			between()
		}
	}
	// The target first, so that it serves the slot before the source
	// starts sending MOVED there.
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	order := []string{to, from}
	for _, m := range masters {
		if m != to && m != from {
			order = append(order, m)
		}
	}
	for _, m := range order {
		rdb := node(m)
		err := rdb.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err()
		rdb.Close()
		if err != nil {
			return fmt.Errorf("setslot node on %s: %w", m, err)
		}
	}
	return nil
}

// Announce makes the node at addr tell clients that it is at port on its
// host (in CLUSTER SLOTS, and in MOVED and ASK answers), for a test that
// puts a relay in front of it, until t ends. It returns once every node
// says so. (The node's replica follows the announced port too.) When t
// ends, the node announces its own port again, and the cluster is waited
// for until every node says so and it is healthy again.
func (c *Cluster) Announce(t testing.TB, addr string, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := node(addr)
	defer n.Close()
	id, err := n.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatalf("redistest: announce: %v", err)
	}
	host, own, _ := strings.Cut(addr, ":")
	set := func(ctx context.Context, port string) error {
		n := node(addr)
		defer n.Close()
		if err := n.ConfigSet(ctx, "cluster-announce-port", port).Err(); err != nil {
			return err
		}
		return c.waitAnnounced(ctx, id, host+":"+own, host+":"+port)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err := set(ctx, "0")
		if err == nil {
			err = c.waitHealthy(ctx)
		}
		if err != nil {
			t.Errorf("redistest: announce %s's own port again: %v", addr, err)
		}
	})
	if err := set(ctx, strconv.Itoa(port)); err != nil {
		t.Fatalf("redistest: announce %s at port %d: %v", addr, port, err)
	}
}

// waitAnnounced waits until every node's CLUSTER SLOTS names the node id
// at want (own, when want's port is 0).
func (c *Cluster) waitAnnounced(ctx context.Context, id, own, want string) error {
	if strings.HasSuffix(want, ":0") {
		want = own
	}
	for {
		last := ""
		for _, n := range c.Nodes {
			rdb := node(n.Addr)
			slots, err := rdb.ClusterSlots(ctx).Result()
			rdb.Close()
			if err != nil {
				last = n.Addr + ": " + err.Error()
				break
			}
			for _, s := range slots {
				for _, sn := range s.Nodes {
					if sn.ID == id && sn.Addr != want {
						last = n.Addr + " names " + sn.Addr
					}
				}
			}
			if last != "" {
				break
			}
		}
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not yet at %s everywhere: %s", id, want, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitHealthy waits until every node reports the cluster ok, knows every
// node and sees every slot assigned, and every replica is in sync.
func (c *Cluster) waitHealthy(ctx context.Context) error {
	var last string
	for {
		last = c.unhealthy(ctx)
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unhealthy says what is not yet right with the cluster, or "".
func (c *Cluster) unhealthy(ctx context.Context) string {
	for _, n := range c.Nodes {
		rdb := node(n.Addr)
		info, err := rdb.ClusterInfo(ctx).Result()
		if err != nil {
			rdb.Close()
			return n.Addr + ": " + err.Error()
		}
		known := fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))
		for _, want := range []string{"cluster_state:ok", known, "cluster_slots_ok:16384"} {
			if !strings.Contains(info, want) {
				rdb.Close()
				return n.Addr + " lacks " + want
			}
		}
		repl, err := rdb.Info(ctx, "replication").Result()
		rdb.Close()
		if err != nil {
			return n.Addr + ": " + err.Error()
		}
		switch {
		case strings.Contains(repl, "role:master") && !strings.Contains(repl, fmt.Sprintf("connected_slaves:%d", c.replicas)):
			return n.Addr + " (master) has no replica yet"
		case strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up"):
			return n.Addr + " (replica) is not in sync yet"
		}
	}
	return ""
}

var (
	exitMu    sync.Mutex
	exitHooks []func()
)

// atExit registers f to run when Main returns from the package's tests.
func atExit(f func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitHooks = append(exitHooks, f)
}

// Main runs the package's tests and then stops the servers they shared
// (the one URL and Client start, SharedCluster) and removes their files.
// Every package whose tests use them calls it from TestMain, or its
// server's directory stays behind under the temporary directory:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// (Were the test binary killed instead, its servers die with it: each is
// started with a parent-death signal.)
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain that has more to do: it returns the exit code
// instead of exiting.
func Run(m *testing.M) int {
	code := m.Run()
	exitMu.Lock()
	defer exitMu.Unlock()
	for _, f := range exitHooks {
		f()
	}
	exitHooks = nil
	return code
}

// Clone returns another client of rdb's Redis, as another replica of
// Lockbox would have one, closed when t ends.
func Clone(t testing.TB, rdb redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	switch r := rdb.(type) {
	case *redis.Client:
		c = redis.NewClient(r.Options())
	case *redis.ClusterClient:
		c = redis.NewClusterClient(r.Options())
	default:
		t.Fatalf("redistest: can't clone a %T", rdb)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Flush empties rdb's database; on a cluster, every master.
func Flush(ctx context.Context, rdb redis.UniversalClient) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushDB(ctx).Err() })
	}
	return rdb.FlushDB(ctx).Err()
}
