// Package devstore runs the embedded Redis-protocol server of "lockbox dev"
// (miniredis), so that the rest of the program talks to one store
// implementation, go-redis, in dev and in production: grants, audit and the
// lifecycle store are the same code CI tests against a real redis-server.
//
// It is for "lockbox dev" only. Nothing is persisted, and the server trusts
// every local connection. Production and tests use a real Redis.
//
// The package imports no other Lockbox package.
package devstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// Store is a running embedded Redis on a loopback port.
type Store struct {
	m         *miniredis.Miniredis
	url       string // kept: miniredis can't tell its address once closed
	closeOnce sync.Once
}

// Start runs an embedded Redis on 127.0.0.1 on a free port.
//
// ctx bounds start-up only: the store runs until Close, so that it outlives
// the graceful shutdown of the servers using it (which begins when their ctx
// is canceled); in-flight calls then still reach their store.
func Start(ctx context.Context) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := miniredis.NewMiniRedis()
	// By default miniredis only moves TTLs on FastForward. ClockTTL makes
	// them follow the clock, checked on every command, so a key is gone the
	// moment its TTL ends, as in Redis (which also expires by wall-clock
	// time), with no ticking goroutine and no up-to-a-tick staleness.
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("devstore: start: %w", err)
	}
	helloWithoutVersion(m.Server())
	return &Store{m: m, url: "redis://" + m.Addr() + "/0"}, nil
}

// URL is the store's address for go-redis: redis://127.0.0.1:PORT/0.
func (s *Store) URL() string {
	return s.url
}

// Close stops the server and drops its data. It is safe to call more than
// once.
func (s *Store) Close() {
	s.closeOnce.Do(s.m.Close)
}

// helloWithoutVersion answers HELLO without a protocol version as Redis
// does: the server's details (its role above all, which /readyz asks for),
// with the connection left on the protocol it speaks. miniredis wants a
// version and answered "wrong number of arguments", so every "lockbox dev"
// reported itself not ready; it gets the connection's own.
func helloWithoutVersion(srv *server.Server) {
	srv.SetPreHook(func(c *server.Peer, cmd string, args ...string) bool {
		if cmd != "HELLO" || len(args) != 0 {
			return false
		}
		version := "2"
		if c.Resp3 {
			version = "3"
		}
		srv.Dispatch(c, []string{cmd, version})
		return true
	})
}
