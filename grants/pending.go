package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Pending returns every pending request p may see, soonest decision
// deadline first.
//
// There is no limit: a request waiting for a decision that a cap left out
// would expire unseen by the approver who looked. Reading them all is
// what a capped list read anyway (the order is by deadline across
// tenants, known only once every one is read); a caller that shows them
// pages them.
//
// It reads the per-tenant pending index that every transition maintains, so
// its cost follows the number of pending requests, not the whole history
// List would page through with a state filter: the admin center polls it
// every few seconds for each open tab. Tenant users read their tenant's
// index only; the provider's staff read every tenant's.
func (s *Store) Pending(ctx context.Context, p identity.Principal) ([]Request, error) {
	tenants := []string{p.TenantID}
	if p.IsProvider() {
		var err error
		if tenants, err = s.cfg.Redis.SMembers(ctx, keys.Tenants()).Result(); err != nil {
			return nil, fault.Unavailable("grants: pending", err)
		}
		slices.Sort(tenants)
	}
	now, v := s.cfg.Now(), s.viewer(p)
	out := []Request{}
	for _, t := range tenants {
		if keys.ValidTenant(t) != nil {
			continue
		}
		ids, err := s.cfg.Redis.ZRange(ctx, keys.TenantPending(t), 0, -1).Result()
		if err != nil {
			return nil, fault.Unavailable("grants: pending", err)
		}
		if len(ids) == 0 {
			continue
		}
		cmds := make([]*redis.StringCmd, len(ids))
		if _, err := s.cfg.Redis.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = pl.Get(ctx, keys.Request(t, id))
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fault.Unavailable("grants: pending", err)
		}
		for _, c := range cmds {
			b, err := c.Bytes()
			if errors.Is(err, redis.Nil) {
				continue
			}
			var r Request
			if err != nil || json.Unmarshal(b, &r) != nil {
				return nil, fault.Unavailable("grants: pending", fmt.Errorf("read %s: %v", c.Args()[1], err))
			}
			// Past its deadline but not yet swept: no longer pending.
			if r, _ = Settle(r, now); !r.State.Pending() {
				continue
			}
			if ok, err := v.sees(ctx, r); err != nil {
				return nil, err
			} else if !ok {
				continue
			}
			out = append(out, s.view(p, r))
		}
	}
	slices.SortStableFunc(out, func(a, b Request) int {
		if a.DecideBy == nil || b.DecideBy == nil {
			return 0
		}
		return a.DecideBy.Compare(*b.DecideBy)
	})
	return out, nil
}
