package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/config"
)

// protectedModeRefusal asks the Redis servers Lockbox dials — the one
// server; the sentinels and the master they name; or the cluster's seeds
// and every node it names — whether one refuses this host in protected
// mode, and returns the start-up error naming it, or nil when none does.
//
// Redis in protected mode (protected-mode yes, and no password for its
// default user) answers a client outside its loopback interface with
// -DENIED and closes the connection. go-redis reads that line as the
// answer to its HELLO, which it takes for a server too old to know HELLO,
// and what reaches Lockbox is the next command's broken pipe: a Redis
// that "does not answer", exit 1, restarted every RestartSec though the
// refusal stays until Redis gets a password or Lockbox another address.
// So one connection of its own to each reads what the server says first.
//
// The master and the cluster's nodes are at the addresses the sentinels
// and the cluster announce, not Lockbox's settings: a deployment whose
// seeds Lockbox reaches through 127.0.0.1 may name them outside it.
func protectedModeRefusal(ctx context.Context, cfg config.Config, rdb redis.UniversalClient) error {
	opts, err := cfg.RedisOptions()
	if err != nil {
		return nil
	}
	var addrs, named []string
	var tlsConfig *tls.Config
	switch {
	case opts.Single != nil:
		addrs, tlsConfig = []string{opts.Single.Addr}, opts.Single.TLSConfig
	case opts.Failover != nil:
		addrs, tlsConfig = opts.Failover.SentinelAddrs, opts.Failover.TLSConfig
		named = sentinelMasters(ctx, cfg, opts.Failover)
	case opts.Cluster != nil:
		addrs, tlsConfig = opts.Cluster.Addrs, opts.Cluster.TLSConfig
		if cluster, ok := rdb.(*redis.ClusterClient); ok {
			named = clusterNodes(ctx, cluster)
		}
	}
	dialled := len(addrs)
	addrs = slices.Clone(addrs)
	for _, a := range named {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	// At once: a node that does not answer holds up only itself, until
	// ctx's deadline.
	replies := make([]string, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { replies[i] = firstReply(ctx, addr, tlsConfig) })
	}
	wg.Wait()
	for i, reply := range replies {
		if !strings.HasPrefix(reply, "-DENIED ") {
			continue
		}
		addr := addrs[i]
		// The reply goes on for a paragraph on how to lift protected
		// mode; its first sentence says what happened.
		said, _, _ := strings.Cut(strings.TrimPrefix(reply, "-"), ". ")
		if i >= dialled {
			// Lockbox connects where the deployment announces it:
			// only the deployment can move that address to 127.0.0.1.
			what := "the master the sentinels name"
			if opts.Cluster != nil {
				what = "a node the Redis Cluster names"
			}
			return fmt.Errorf("%s: %s, at %s, refuses connections from outside its loopback interface (protected mode, with no password for its default user): give it a password (requirepass, or ACL SETUSER default) and Lockbox LOCKBOX_REDIS_PASSWORD_FILE: %s", cfg.RedisVar(), what, addr, said)
		}
		return fmt.Errorf("%s: the Redis at %s refuses connections from outside its loopback interface (protected mode, with no password for its default user): give it a password (requirepass, or ACL SETUSER default) and Lockbox LOCKBOX_REDIS_PASSWORD_FILE, or run Lockbox on Redis's host and connect through 127.0.0.1: %s", cfg.RedisVar(), addr, said)
	}
	return nil
}

// firstReply is the first line the Redis at addr sends on a new
// connection once sent a PING ("" when none comes by ctx's deadline, or
// the connection fails): +PONG, -NOAUTH … from one that answers, the
// -DENIED … of protected mode, sent before the PING is read.
func firstReply(ctx context.Context, addr string, tlsConfig *tls.Config) string {
	var conn net.Conn
	var err error
	if tlsConfig != nil {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return ""
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// A server in protected mode may have closed the connection already:
	// its line is read all the same.
	_, _ = conn.Write([]byte("PING\r\n"))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimRight(line, "\r\n")
}

// sentinelMasters lists the addresses the sentinels name for the master
// (each its own, should they disagree mid-failover), with the sentinels'
// credentials; none when no sentinel answers.
func sentinelMasters(ctx context.Context, cfg config.Config, o *redis.FailoverOptions) []string {
	var out []string
	for _, addr := range o.SentinelAddrs {
		c := redis.NewSentinelClient(&redis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: cfg.RedisTimeout, ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout,
			ContextTimeoutEnabled: true, MaxRetries: -1,
		})
		hostPort, err := c.GetMasterAddrByName(ctx, o.MasterName).Result()
		c.Close()
		if err != nil || len(hostPort) != 2 {
			continue
		}
		if a := net.JoinHostPort(hostPort[0], hostPort[1]); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// clusterNodes lists the addresses of every node, master or replica, the
// cluster names to go-redis (CLUSTER SLOTS, from the first seed or node
// that answers); none when none does. It sends the nodes nothing itself.
func clusterNodes(ctx context.Context, cluster *redis.ClusterClient) []string {
	var mu sync.Mutex
	var out []string
	_ = cluster.ForEachShard(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, c.Options().Addr)
		return nil
	})
	slices.Sort(out)
	return out
}

// refusesCluster tells a Redis that is no node of a Redis Cluster
// answering the cluster client's CLUSTER SLOTS: one with cluster support
// disabled, which only a restart of that Redis can change, or one that
// does not know the command (a sentinel). LOCKBOX_REDIS_CLUSTER_ADDRS
// names one server, or a sentinel deployment's.
func refusesCluster(err error) bool {
	return redis.HasErrorPrefix(err, "This instance has cluster support disabled") || unknownCommand(err, "cluster")
}

// unknownCommand tells Redis's answer to a command name it does not
// know, in the wording of Redis 6.2 and later ('name') or before (`name`),
// whatever the case the command was sent in.
func unknownCommand(err error, name string) bool {
	rerr, ok := errors.AsType[redis.Error](err)
	if !ok {
		return false
	}
	msg := strings.ToLower(strings.TrimPrefix(rerr.Error(), "ERR "))
	return strings.HasPrefix(msg, "unknown command '"+name+"'") || strings.HasPrefix(msg, "unknown command `"+name+"`")
}

// singleServerRefusal returns the start-up error of a LOCKBOX_REDIS_URL
// naming a server that can't hold Lockbox's data alone, or nil for any
// other Redis: a node of a Redis Cluster that does not serve every slot,
// which answers PING, and MOVED for the keys of the slots it does not
// serve, so that Lockbox failed on the first of those it touched, or
// later, a tenant at a time; or a sentinel, which answers PING and knows
// none of the data commands. A node that serves every slot works as one
// server. A Redis that refuses CLUSTER or INFO (an ACL, a proxy in front)
// is not judged: the calls will tell.
func singleServerRefusal(ctx context.Context, cfg config.Config, c *redis.Client, where string) error {
	id, err := c.ClusterMyID(ctx).Result()
	if unknownCommand(err, "cluster") {
		info, err := c.Info(ctx, "server").Result()
		if err != nil || !strings.Contains(info, "redis_mode:sentinel") {
			return nil
		}
		return fmt.Errorf("%s: %s is a sentinel: name the sentinels in LOCKBOX_REDIS_SENTINEL_ADDRS, with LOCKBOX_REDIS_SENTINEL_MASTER, instead", cfg.RedisVar(), where)
	}
	if err != nil {
		return nil
	}
	ranges, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil
	}
	served := 0
	for _, r := range ranges {
		if len(r.Nodes) > 0 && r.Nodes[0].ID == id {
			served += r.End - r.Start + 1
		}
	}
	const slots = 16384
	if served == slots {
		return nil
	}
	return fmt.Errorf("%s: %s is a node of a Redis Cluster serving %d of its %d slots as master: list the cluster's nodes in LOCKBOX_REDIS_CLUSTER_ADDRS instead", cfg.RedisVar(), where, served, slots)
}

// sentinelNameRefusal asks each sentinel, with the sentinels' own
// credentials, for the master of LOCKBOX_REDIS_SENTINEL_MASTER's name,
// and returns the start-up error of a deployment where every one answered
// and none can name it: servers that are no sentinels (unknown command
// SENTINEL: LOCKBOX_REDIS_SENTINEL_ADDRS), or sentinels that monitor no
// master of that name (LOCKBOX_REDIS_SENTINEL_MASTER). go-redis folds
// either into "all sentinels specified in configuration are
// unreachable". It returns nil when one names the master, or does not
// answer, or answers anything else: a sentinel down, or still being
// given its masters, may yet name it.
func sentinelNameRefusal(ctx context.Context, cfg config.Config) error {
	opts, err := cfg.RedisOptions()
	if err != nil || opts.Failover == nil {
		return nil
	}
	o := opts.Failover
	var notSentinels []string
	var unknown error
	for _, addr := range o.SentinelAddrs {
		c := redis.NewSentinelClient(&redis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: cfg.RedisTimeout, ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout,
			ContextTimeoutEnabled: true, MaxRetries: -1,
		})
		err := c.GetMasterAddrByName(ctx, o.MasterName).Err()
		c.Close()
		switch {
		case errors.Is(err, redis.Nil):
		case redis.HasErrorPrefix(err, "unknown command "):
			notSentinels, unknown = append(notSentinels, addr), err
		default:
			return nil
		}
	}
	if len(notSentinels) > 0 {
		return fmt.Errorf("LOCKBOX_REDIS_SENTINEL_ADDRS: the Redis at %s is no sentinel (it does not know the command SENTINEL): name the sentinels there, or a single Redis in LOCKBOX_REDIS_URL instead: %w", strings.Join(notSentinels, ","), unknown)
	}
	return fmt.Errorf("LOCKBOX_REDIS_SENTINEL_MASTER: no sentinel at %s monitors a master named %q: name one they monitor (SENTINEL MASTERS lists them)", strings.Join(o.SentinelAddrs, ","), o.MasterName)
}
