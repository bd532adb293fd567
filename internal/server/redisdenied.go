package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/lockbox-oss/lockbox/config"
)

// protectedModeRefusal asks the Redis servers Lockbox dials first (the
// one server, the sentinels, or the cluster's seeds) whether one refuses
// this host in protected mode, and returns the start-up error naming it,
// or nil when none does.
//
// Redis in protected mode (protected-mode yes, and no password for its
// default user) answers a client outside its loopback interface with
// -DENIED and closes the connection. go-redis reads that line as the
// answer to its HELLO, which it takes for a server too old to know HELLO,
// and what reaches Lockbox is the next command's broken pipe: a Redis
// that "does not answer", exit 1, restarted every RestartSec though the
// refusal stays until Redis gets a password or Lockbox another address.
// So, once the probe failed without a Redis error, one connection of its
// own reads what the server says first.
func protectedModeRefusal(ctx context.Context, cfg config.Config) error {
	opts, err := cfg.RedisOptions()
	if err != nil {
		return nil
	}
	var addrs []string
	var tlsConfig *tls.Config
	switch {
	case opts.Single != nil:
		addrs, tlsConfig = []string{opts.Single.Addr}, opts.Single.TLSConfig
	case opts.Failover != nil:
		addrs, tlsConfig = opts.Failover.SentinelAddrs, opts.Failover.TLSConfig
	case opts.Cluster != nil:
		addrs, tlsConfig = opts.Cluster.Addrs, opts.Cluster.TLSConfig
	}
	for _, addr := range addrs {
		reply := firstReply(ctx, addr, tlsConfig)
		if !strings.HasPrefix(reply, "-DENIED ") {
			continue
		}
		// The reply goes on for a paragraph on how to lift protected
		// mode; its first sentence says what happened.
		said, _, _ := strings.Cut(strings.TrimPrefix(reply, "-"), ". ")
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
