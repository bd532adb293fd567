package grants

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// sweepLease is how long one replica's claim on a tenant's sweep lasts:
// far longer than settling a tenant's due requests takes.
const sweepLease = time.Minute

// Sweep settles every request whose decision window or grant has ended by
// now, in the tenants the sweep schedule (internal/due) lists as due: only
// tenants with a request deadline behind them are read, so an idle
// deployment's sweep costs one command however many tenants it serves. It
// returns how many requests it changed.
//
// Several replicas may sweep at once. Each claims its tenants, so in
// normal operation one replica settles a tenant; and each transition is a
// WATCH transaction over the request that commits the new state, its audit
// record and its notifications together, so a request settled twice (two
// replicas after a lease ran out, or the API settling it on read) changes,
// and is audited and notified, once. A replica that stops mid-sweep leaves
// its claim, and another settles the tenant when the claim's lease ends.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	n := 0
	d := due.Drainer{Index: s.sweepIndex(), Lease: sweepLease, RetryAfter: 5 * time.Second, Logger: s.cfg.Logger}
	_, err := d.Drain(ctx, func(ctx context.Context, t string) (time.Time, error) {
		k, next, err := s.sweepTenant(ctx, t)
		n += k
		return next, err
	})
	if err != nil {
		return n, fault.Unavailable("grants: sweep", err)
	}
	return n, nil
}

func (s *Store) sweepIndex() *due.Index { return due.New(s.cfg.Redis, due.Sweep, s.cfg.Now) }

// sweepTenant settles tenant's due requests and returns how many changed
// and the tenant's next deadline (zero when none).
func (s *Store) sweepTenant(ctx context.Context, t string) (int, time.Time, error) {
	if keys.ValidTenant(t) != nil {
		return 0, time.Time{}, nil
	}
	now := s.cfg.Now()
	ids, err := s.cfg.Redis.ZRangeByScore(ctx, keys.TenantDeadlines(t), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10)}).Result()
	if err != nil {
		return 0, time.Time{}, err
	}
	n := 0
	// A request that can't be read (it does not decode) is reported and
	// passed over: it comes first in deadline order at every retry, and
	// would keep the tenant's later requests from ever being settled.
	// Redis failing ends the visit; it is retried as a whole.
	var bad []error
	newer := false
	for _, id := range ids {
		_, isNewer, err := s.loadChecked(ctx, s.cfg.Redis, t, id)
		if err == nil && isNewer {
			// A newer replica's request (a rolling upgrade): left for a
			// replica that knows all of it, which settles it without
			// losing what this version would drop. Access still ends on
			// time: the proxy checks each grant's absolute expiry.
			newer = true
			s.tellNewer(ctx, t, id)
			continue
		}
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				s.cfg.Redis.ZRem(ctx, keys.TenantDeadlines(t), id)
				continue
			}
			if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return n, time.Time{}, err
			}
			bad = append(bad, err)
			continue
		}
		// Counted only when this sweep's transaction made the change: the
		// request may have been settled elsewhere since it was read above
		// (another replica, or a read through the API, which settles on
		// the way), and that one is not this sweep's to count.
		_, changed, err := s.commit(ctx, t, id, "", nil)
		if err != nil {
			return n, time.Time{}, err
		}
		if changed {
			n++
		}
	}
	if len(bad) > 0 {
		return n, time.Time{}, errors.Join(bad...)
	}
	next, err := s.cfg.Redis.ZRangeWithScores(ctx, keys.TenantDeadlines(t), 0, 0).Result()
	if err != nil {
		return n, time.Time{}, err
	}
	if len(next) == 0 {
		return n, time.Time{}, nil
	}
	at := time.UnixMilli(int64(next[0].Score))
	if newer {
		// The earliest deadline may be a request left above, already
		// past: look again later, not at once.
		at = later(at, now.Add(newerRetry))
	}
	return n, at, nil
}

// newerRetry is how long the sweep waits before looking again at a
// tenant whose due requests include a newer replica's.
const newerRetry = 30 * time.Second

// tellNewer logs, once per request and process, that the sweep left a
// newer replica's request for that replica.
func (s *Store) tellNewer(ctx context.Context, tenant, id string) {
	if _, told := s.newerTold.LoadOrStore(tenant+"/"+id, true); told {
		return
	}
	s.cfg.Logger.WarnContext(ctx, "request written by a newer version left for a replica that knows all its fields",
		"tenant", tenant, "request_id", id)
}

// SweepProbe reads when a tenant's earliest request deadline is, for
// due.Rescan. A read that fails answers now: the visit reads the deadlines
// again, while "nothing due" would leave a lost mark lost until the next
// rescan.
func SweepProbe(ctx context.Context, p redis.Pipeliner, tenant string, now time.Time) func() (time.Time, bool) {
	c := p.ZRangeWithScores(ctx, keys.TenantDeadlines(tenant), 0, 0)
	return func() (time.Time, bool) {
		z, err := c.Result()
		if err != nil {
			return now, true
		}
		if len(z) == 0 {
			return time.Time{}, false
		}
		return time.UnixMilli(int64(z[0].Score)), true
	}
}

// scheduled tells the background jobs' schedules about a committed
// transition of r: the sweep of its new deadline, and the delivery of the
// notifications and audit records it queued. It runs after the
// transaction, because the schedules live outside the tenant's hash slot;
// if it fails (or the process dies first) the transition stands, and the
// jobs reach the tenant at the next rescan. Nothing waits on it for
// safety: an expired request can't be approved whether or not it was
// swept, and the proxy checks a grant's expiry itself.
func (s *Store) scheduled(ctx context.Context, r Request) {
	now := s.cfg.Now()
	marks := due.Committed(now)
	switch {
	case r.State.Pending() && r.DecideBy != nil:
		marks = append(marks, due.Mark{Job: due.Sweep, At: *r.DecideBy, Now: now})
	case r.State == StateApproved && r.ExpiresAt != nil:
		marks = append(marks, due.Mark{Job: due.Sweep, At: *r.ExpiresAt, Now: now})
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := due.Set(mctx, s.cfg.Redis, r.Tenant, marks...); err != nil {
		s.cfg.Logger.WarnContext(ctx, "background jobs not told of a transition; the next rescan finds it", "tenant", r.Tenant, "request_id", r.ID, "err", err)
	}
}
