package grants

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Reindex restores the provider-wide request indexes (request id → tenant,
// and the provider-wide listing) from each tenant's own index of its
// requests, for the requests created at or after since (all when zero),
// and returns how many index entries it had to restore: 0 unless a write
// of Create's was lost (a failover of the node holding an index dropped its
// last writes, or a node was restored from an older copy).
//
// It only adds what is missing and never changes an entry, so any number
// of replicas may run it at once, and a Create running meanwhile is
// unaffected. Its cost is one read per tenant plus one write per request
// in the window; the server runs it over every request at start-up and
// over the last few hours' since then.
func (s *Store) Reindex(ctx context.Context, since time.Time) (int, error) {
	tenants, err := s.cfg.Redis.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return 0, fault.Unavailable("grants: reindex", err)
	}
	min := "-inf"
	if !since.IsZero() {
		min = fmt.Sprint(since.UnixMilli())
	}
	restored := 0
	const page = 500
	for _, t := range tenants {
		if keys.ValidTenant(t) != nil {
			continue
		}
		for offset := int64(0); ; offset += page {
			zs, err := s.cfg.Redis.ZRangeByScoreWithScores(ctx, keys.TenantRequests(t),
				&redis.ZRangeBy{Min: min, Max: "+inf", Offset: offset, Count: page}).Result()
			if err != nil {
				return restored, fault.Unavailable("grants: reindex", err)
			}
			n, err := s.restore(ctx, t, zs)
			restored += n
			if err != nil {
				return restored, fault.Unavailable("grants: reindex", err)
			}
			if len(zs) < page {
				break
			}
		}
	}
	return restored, nil
}

// restore adds the provider-wide index entries of tenant's requests zs
// (id by creation time) that are missing, and returns how many.
func (s *Store) restore(ctx context.Context, tenant string, zs []redis.Z) (int, error) {
	if len(zs) == 0 {
		return 0, nil
	}
	idx := make([]*redis.BoolCmd, len(zs))
	all := make([]*redis.IntCmd, len(zs))
	// A plain pipeline: on Cluster go-redis sends each command to its own
	// slot's node; no transaction spans them.
	if _, err := s.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range zs {
			id, _ := z.Member.(string)
			if !keys.IsUUID(id) {
				// Nothing Create wrote: leave it alone.
				idx[i], all[i] = redis.NewBoolResult(false, nil), redis.NewIntResult(0, nil)
				continue
			}
			idx[i] = p.SetNX(ctx, keys.RequestIndex(id), tenant, 0)
			all[i] = p.ZAddNX(ctx, keys.AllRequests(), redis.Z{Score: z.Score, Member: tenant + "/" + id})
		}
		return nil
	}); err != nil {
		return 0, err
	}
	n := 0
	for i := range zs {
		if idx[i].Val() {
			n++
		}
		n += int(all[i].Val())
	}
	return n, nil
}
