package server

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/health"
)

// masterOnly refuses a new connection to a server that is not a master.
// go-redis asks a sentinel for the master's address on each dial, and a
// sentinel that has not yet seen a failover names the old master: once
// that server is back (restarted as the new master's replica, its data
// set empty or old until it has synced), a connection to it read what it
// held: no grant, a 403 no_grant where a 503 belongs, or a grant revoked
// since. Refused, the call is a 503 (store_unavailable) until the
// sentinels agree, as during the rest of the failover.
//
// go-redis runs the same hook on its connections to the sentinels, which
// have no role: those pass.
func masterOnly(ctx context.Context, cn *redis.Conn) error {
	h, err := health.Hello(ctx, cn)
	switch {
	case err != nil:
		return fmt.Errorf("redis: HELLO on connecting: %w", err)
	case h["mode"] == "sentinel", h["role"] == "master":
		return nil
	}
	return fmt.Errorf("redis: the server the sentinels name is a %s, not the master: it is failing over", h["role"])
}
