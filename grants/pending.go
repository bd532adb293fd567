package grants

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// PendingList is every pending request a principal may see, and the
// pending requests it would see that can't be read.
type PendingList struct {
	Requests []Request
	// Unreadable names the requests of the pending indexes whose stored
	// record does not decode, by tenant and id: whether each is still
	// pending is unknown, and it is shown rather than left out, since an
	// approver must never miss a pending request.
	Unreadable []Unreadable
	// TookPart holds the ids of Requests in which the principal took part
	// for the provider (TookPart): the two-person rule refuses them its
	// decision for the tenant. Only the stored request names the
	// provider's staff, and a tenant user's Requests are the tenant's view.
	TookPart map[string]bool
}

// Pending returns every pending request p may see, soonest decision
// deadline first: PendingList's requests.
func (s *Store) Pending(ctx context.Context, p identity.Principal) ([]Request, error) {
	l, err := s.PendingList(ctx, p)
	return l.Requests, err
}

// PendingList returns every pending request p may see, soonest decision
// deadline first, and those it would see that can't be read.
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
// index only; the provider's staff read every tenant's. Every tenant's
// index is read in one pipeline, and every request found in a second: a
// round trip per tenant made a manager's page as slow as the number of
// tenants. On Redis Cluster go-redis splits each pipeline by node, one
// round trip to each node at once.
func (s *Store) PendingList(ctx context.Context, p identity.Principal) (PendingList, error) {
	out := PendingList{Requests: []Request{}}
	// Who sees none reads none: a Lockbox administrator alone, or a
	// tenant's user who is none of its readers, made every poll of the
	// admin center read every pending request to list none.
	v := s.viewer(p)
	if v.seesNone() {
		return out, nil
	}
	if !p.IsProvider() {
		if ok, err := v.readsTenant(ctx, p.TenantID); err != nil || !ok {
			return out, err
		}
	}
	all, own, err := s.pendingIDs(ctx, p, v)
	if err != nil {
		return PendingList{}, err
	}
	if len(all) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(all))
	if _, err := s.cfg.Redis.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, f := range all {
			cmds[i] = pl.Get(ctx, keys.Request(f.tenant, f.id))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return PendingList{}, fault.Unavailable("grants: pending", err)
	}
	now := s.cfg.Now()
	for i, c := range cmds {
		t, id := all[i].tenant, all[i].id
		r, err := s.decodeRead(ctx, c, t, id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case errors.Is(err, fault.ErrUnreadable):
			if ok, err := v.seesUnreadable(ctx, t, own); err != nil {
				return PendingList{}, err
			} else if ok {
				out.Unreadable = append(out.Unreadable, Unreadable{Tenant: t, ID: id})
			}
			continue
		case err != nil:
			return PendingList{}, err
		}
		// Past its deadline but not yet swept: no longer pending.
		if r, _ = Settle(r, now); !r.State.Pending() {
			continue
		}
		if ok, err := v.sees(ctx, r); err != nil {
			return PendingList{}, err
		} else if !ok {
			continue
		}
		if TookPart(r, p) {
			if out.TookPart == nil {
				out.TookPart = map[string]bool{}
			}
			out.TookPart[r.ID] = true
		}
		out.Requests = append(out.Requests, s.view(p, r))
	}
	slices.SortStableFunc(out.Requests, func(a, b Request) int {
		if a.DecideBy == nil || b.DecideBy == nil {
			return 0
		}
		return a.DecideBy.Compare(*b.DecideBy)
	})
	return out, nil
}

// found is a request a pending list reads.
type found struct{ tenant, id string }

// pendingIDs returns the requests p's pending list reads: the pending
// indexes of p's tenant, or of every tenant for the provider's staff. For
// an operator who sees only their own requests, once their own index is
// built (see ListPage), the requests they filed within the longest a
// request can stay pending (a decision window for the manager, one for
// the tenant) instead, own set: each operator's poll of the admin center
// read every operator's pending requests, in every tenant, to keep theirs.
func (s *Store) pendingIDs(ctx context.Context, p identity.Principal, v *viewer) (all []found, own bool, err error) {
	if v.ownOnly() && keys.IsUser(p.Subject) {
		built, err := s.cfg.Redis.Exists(ctx, keys.OperatorRequestsBuilt()).Result()
		if err != nil {
			return nil, false, fault.Unavailable("grants: pending", err)
		}
		if built == 1 {
			since := s.cfg.Now().Add(-2*DecisionWindow - time.Hour).UnixMilli()
			ms, err := s.cfg.Redis.ZRangeByScore(ctx, keys.OperatorRequests(p.Subject), &redis.ZRangeBy{Min: strconv.FormatInt(since, 10), Max: "+inf"}).Result()
			if err != nil {
				return nil, false, fault.Unavailable("grants: pending", err)
			}
			for _, m := range ms {
				if t, id, ok := strings.Cut(m, "/"); ok && keys.ValidTenant(t) == nil {
					all = append(all, found{t, id})
				}
			}
			return all, true, nil
		}
	}
	tenants := []string{p.TenantID}
	if p.IsProvider() {
		if tenants, err = s.cfg.Redis.SMembers(ctx, keys.Tenants()).Result(); err != nil {
			return nil, false, fault.Unavailable("grants: pending", err)
		}
		slices.Sort(tenants)
	}
	tenants = slices.DeleteFunc(tenants, func(t string) bool { return keys.ValidTenant(t) != nil })
	if len(tenants) == 0 {
		return nil, false, nil
	}
	idCmds := make([]*redis.StringSliceCmd, len(tenants))
	if _, err := s.cfg.Redis.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, t := range tenants {
			idCmds[i] = pl.ZRange(ctx, keys.TenantPending(t), 0, -1)
		}
		return nil
	}); err != nil {
		return nil, false, fault.Unavailable("grants: pending", err)
	}
	for i, c := range idCmds {
		for _, id := range c.Val() {
			all = append(all, found{tenants[i], id})
		}
	}
	return all, false, nil
}
