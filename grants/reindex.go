package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Reindex restores the provider-wide request indexes (request id → tenant,
// the provider-wide listing and each operator's own listing) from each
// tenant's own index of its requests, for the requests created at or after
// since (all when zero), and returns how many index entries it had to
// restore: 0 unless a write of Create's was lost (a failover of the node
// holding an index dropped its last writes, or a node was restored from an
// older copy).
//
// The operators' listings are newer than the requests filed before them.
// Until a pass over every request (since zero) has back-filled them and
// written keys.OperatorRequestsBuilt, the entries it adds to them are that
// back-fill, not losses: they are logged, not counted, and an operator's
// listing reads the provider-wide index meanwhile.
//
// It only adds what is missing and never changes an entry, so any number
// of replicas may run it at once, and a Create running meanwhile is
// unaffected. Its cost is one read per tenant and two writes per request
// in the window, and a read of the request itself (its requester, for the
// operator's listing) and one more write where that is needed: for every
// request in the window of a pass over the last few hours, and of the
// back-fill; in a pass over every request once the listings are built, only
// for the requests whose provider-wide entries it restored. The server runs
// it over every request at start-up, where reading each request would cost
// a restart of the jobs replica gigabytes at a million requests, and over
// the last few hours' since then. An operator entry lost on its own and
// older than those hours (a node restored from an older copy) comes back
// when OperatorRequestsBuilt is deleted: the next start-up's pass then
// back-fills every listing again.
func (s *Store) Reindex(ctx context.Context, since time.Time) (int, error) {
	began := s.cfg.Now()
	built, err := s.cfg.Redis.Exists(ctx, keys.OperatorRequestsBuilt()).Result()
	if err != nil {
		return 0, fault.Unavailable("grants: reindex", err)
	}
	tenants, err := s.cfg.Redis.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return 0, fault.Unavailable("grants: reindex", err)
	}
	min := "-inf"
	if !since.IsZero() {
		min = fmt.Sprint(since.UnixMilli())
	}
	var n restored
	const page = 500
	for _, t := range tenants {
		if keys.ValidTenant(t) != nil {
			continue
		}
		for offset := int64(0); ; offset += page {
			zs, err := s.cfg.Redis.ZRangeByScoreWithScores(ctx, keys.TenantRequests(t),
				&redis.ZRangeBy{Min: min, Max: "+inf", Offset: offset, Count: page}).Result()
			if err != nil {
				return n.count(built == 1), fault.Unavailable("grants: reindex", err)
			}
			if err := s.restore(ctx, t, zs, built == 0 || !since.IsZero(), &n); err != nil {
				return n.count(built == 1), fault.Unavailable("grants: reindex", err)
			}
			if len(zs) < page {
				break
			}
		}
	}
	if built == 0 {
		if n.operator > 0 {
			s.cfg.Logger.InfoContext(ctx, "back-filled the operators' request listings", "entries", n.operator)
		}
		if since.IsZero() {
			// Every request filed before this pass began is in its
			// operator's index now; those filed since, Create put there.
			if err := s.cfg.Redis.SetNX(ctx, keys.OperatorRequestsBuilt(), began.UTC().Format(time.RFC3339Nano), 0).Err(); err != nil {
				return n.count(false), fault.Unavailable("grants: reindex", err)
			}
			s.cfg.Logger.InfoContext(ctx, "operators' request listings built: operators list their requests from their own index")
		}
	}
	return n.count(built == 1), nil
}

// restored counts the entries a Reindex pass added.
type restored struct{ provider, operator int }

// count returns the entries restored: the operators' entries only once
// their listings were built, before which adding them is the back-fill.
func (n restored) count(built bool) int {
	if built {
		return n.provider + n.operator
	}
	return n.provider
}

// restore adds the provider-wide index entries of tenant's requests zs
// (id by creation time) that are missing, and counts them in n. It reads
// the requests, for their operators' listings, all of them with readAll and
// otherwise those whose provider-wide entries it restored.
func (s *Store) restore(ctx context.Context, tenant string, zs []redis.Z, readAll bool, n *restored) error {
	if len(zs) == 0 {
		return nil
	}
	idx := make([]*redis.BoolCmd, len(zs))
	all := make([]*redis.IntCmd, len(zs))
	reqs := make([]*redis.StringCmd, len(zs))
	// A plain pipeline: on Cluster go-redis sends each command to its own
	// slot's node; no transaction spans them.
	if _, err := s.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range zs {
			id, _ := z.Member.(string)
			if !keys.IsUUID(id) {
				// Nothing Create wrote: leave it alone.
				continue
			}
			idx[i] = p.SetNX(ctx, keys.RequestIndex(id), tenant, 0)
			all[i] = p.ZAddNX(ctx, keys.AllRequests(), redis.Z{Score: z.Score, Member: tenant + "/" + id})
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	lost := false
	for i := range zs {
		if idx[i] == nil {
			continue
		}
		if err := errors.Join(idx[i].Err(), all[i].Err()); err != nil {
			return err
		}
		if idx[i].Val() {
			n.provider++
		}
		n.provider += int(all[i].Val())
		lost = lost || idx[i].Val() || all[i].Val() > 0
	}
	if readAll || lost {
		// Create writes a request's operator entry beside its
		// provider-wide ones: where those were lost, it may be too. The
		// requests are read once the entries are written, not in the
		// same pipeline: on Cluster the nodes run a pipeline's commands
		// in no order between them, and a request read before its
		// deletion could have its entries restored after it.
		if _, err := s.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range zs {
				if idx[i] != nil && (readAll || idx[i].Val() || all[i].Val() > 0) {
					reqs[i] = p.Get(ctx, keys.Request(tenant, z.Member.(string)))
				}
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	ops := make([]*redis.IntCmd, len(zs))
	if _, err := s.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range zs {
			if reqs[i] == nil {
				continue
			}
			b, err := reqs[i].Bytes()
			if errors.Is(err, redis.Nil) {
				// The tenant's index named it, so it was committed:
				// request retention deleted it since, and may have
				// removed its provider-wide entries before this pass
				// restored them, finishing a deletion nothing would
				// take up again. What this pass restored of it goes.
				id := z.Member.(string)
				if idx[i].Val() {
					p.Del(ctx, keys.RequestIndex(id))
					n.provider--
				}
				if all[i].Val() > 0 {
					p.ZRem(ctx, keys.AllRequests(), tenant+"/"+id)
					n.provider--
				}
				continue
			}
			if err != nil {
				return err
			}
			// Only the fields that place it; the listing checks the rest.
			var r struct {
				ID        string `json:"id"`
				Tenant    string `json:"tenant"`
				Requester string `json:"requester"`
			}
			if json.Unmarshal(b, &r) != nil || r.ID != z.Member.(string) || r.Tenant != tenant || !keys.IsUser(r.Requester) {
				// Not a request of this tenant's that an operator listing
				// can show (a corrupt one is reported where it is read).
				continue
			}
			ops[i] = p.ZAddNX(ctx, keys.OperatorRequests(r.Requester), redis.Z{Score: z.Score, Member: tenant + "/" + r.ID})
		}
		return nil
	}); err != nil {
		return err
	}
	for _, c := range ops {
		if c != nil {
			n.operator += int(c.Val())
		}
	}
	return nil
}
