package grants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
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
//
// A request that does not decode is reported (logged and counted, see
// internal/unreadable) and passed over, and the error returned names it;
// it is tried again on the schedule of unreadableBackoff, not at every
// visit of its tenant.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	n := 0
	var unread []error
	d := due.Drainer{Index: s.sweepIndex(), Lease: sweepLease, RetryAfter: 5 * time.Second, Logger: s.cfg.Logger}
	_, err := d.Drain(ctx, func(ctx context.Context, t string) (time.Time, error) {
		k, next, bad, err := s.sweepTenant(ctx, t)
		n += k
		// Not the visit's error: the Drainer would have the tenant due
		// again after its RetryAfter, whatever next says, and the
		// unreadable request would be read again then.
		unread = append(unread, bad...)
		return next, err
	})
	if err = errors.Join(append([]error{err}, unread...)...); err != nil {
		return n, fault.Unavailable("grants: sweep", err)
	}
	return n, nil
}

func (s *Store) sweepIndex() *due.Index { return due.New(s.cfg.Redis, due.Sweep, s.cfg.Now) }

// sweepTenant settles tenant's due requests and returns how many changed,
// when the tenant is next due (zero when never), and why the requests it
// tried and could not read were passed over.
func (s *Store) sweepTenant(ctx context.Context, t string) (int, time.Time, []error, error) {
	if keys.ValidTenant(t) != nil {
		return 0, time.Time{}, nil, nil
	}
	now := s.cfg.Now()
	ids, err := s.cfg.Redis.ZRangeByScore(ctx, keys.TenantDeadlines(t), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10)}).Result()
	if err != nil {
		return 0, time.Time{}, nil, err
	}
	s.unreadableTries.keepOnly(t, ids)
	n := 0
	// A request that can't be read (it does not decode) is reported and
	// passed over: it comes first in deadline order at every retry, and
	// would keep the tenant's later requests from ever being settled.
	// Redis failing ends the visit; it is retried as a whole.
	var bad []error
	// waiting holds the unreadable requests this visit passed over, and
	// retry the earliest time one of them is to be tried again.
	waiting := map[string]bool{}
	var retry time.Time
	wait := func(id string, at time.Time) {
		waiting[id] = true
		if retry.IsZero() || at.Before(retry) {
			retry = at
		}
	}
	newer := false
	for _, id := range ids {
		if at, ok := s.unreadableTries.until(t, id, now); ok {
			wait(id, at)
			continue
		}
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
				s.unreadableTries.forget(t, id)
				s.cfg.Redis.ZRem(ctx, keys.TenantDeadlines(t), id)
				continue
			}
			if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return n, time.Time{}, bad, err
			}
			at := s.unreadableTries.failed(t, id, now)
			wait(id, at)
			bad = append(bad, fmt.Errorf("tenant %s: %w; the sweep tries it again in %s", t, err, Duration(at.Sub(now))))
			continue
		}
		s.unreadableTries.forget(t, id)
		// Counted only when this sweep's transaction made the change: the
		// request may have been settled elsewhere since it was read above
		// (another replica, or a read through the API, which settles on
		// the way), and that one is not this sweep's to count.
		_, changed, err := s.commit(ctx, t, id, "", nil)
		if err != nil {
			return n, time.Time{}, bad, err
		}
		if changed {
			n++
		}
	}
	// The earliest deadline of a request not waiting: the waiting ones
	// keep their deadlines, past, and come first.
	next, err := s.cfg.Redis.ZRangeWithScores(ctx, keys.TenantDeadlines(t), 0, int64(len(waiting))).Result()
	if err != nil {
		return n, time.Time{}, bad, err
	}
	var at time.Time
	for _, z := range next {
		if id, _ := z.Member.(string); !waiting[id] {
			at = time.UnixMilli(int64(z.Score))
			break
		}
	}
	if newer && !at.IsZero() {
		// The earliest deadline may be a request left above, already
		// past: look again later, not at once.
		at = later(at, now.Add(newerRetry))
	}
	if !retry.IsZero() && (at.IsZero() || retry.Before(at)) {
		at = retry
	}
	return n, at, bad, nil
}

// The schedule on which the sweep tries again a request that does not
// decode: unreadableRetryFirst after it first met it, then twice as long
// after each try, up to unreadableRetryMax between tries.
//
// Tried at every visit of its tenant, it was read, logged at error and
// counted every 5 s (the Drainer's retry of a failed visit) for as long
// as it stayed, drowning the log. It is still tried: put back from a
// backup, it is settled at the next try; and while it stays, a try at
// least every 30 minutes keeps LockboxRecordsUnreadable, which looks at
// an hour of lockbox_unreadable_records_total, firing. Access does not
// wait on it: the proxy checks a grant's own expiry.
const (
	unreadableRetryFirst = 5 * time.Second
	unreadableRetryMax   = 30 * time.Minute
)

// unreadableBackoff holds, per tenant and request, when the sweep tries
// an unreadable request again. It lives in the process: a replica that
// starts, or one that has not met the request yet, tries it once, then
// follows the schedule, so the tries stay bounded by the replicas, and
// nothing is written to Redis for a record that is itself the problem.
type unreadableBackoff struct {
	mu    sync.Mutex
	tries map[string]map[string]unreadableTry // tenant → request id →
}

type unreadableTry struct {
	// wait is how long the last try put off the next one, at.
	wait time.Duration
	at   time.Time
}

// until reports when request id of tenant is to be tried again, if that
// is after now.
func (b *unreadableBackoff) until(tenant, id string, now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tr, ok := b.tries[tenant][id]
	return tr.at, ok && now.Before(tr.at)
}

// failed records that a try at now could not read request id of tenant,
// and returns when to try again.
func (b *unreadableBackoff) failed(tenant, id string, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tries == nil {
		b.tries = map[string]map[string]unreadableTry{}
	}
	if b.tries[tenant] == nil {
		b.tries[tenant] = map[string]unreadableTry{}
	}
	tr := b.tries[tenant][id]
	tr.wait = min(max(2*tr.wait, unreadableRetryFirst), unreadableRetryMax)
	tr.at = now.Add(tr.wait)
	b.tries[tenant][id] = tr
	return tr.at
}

// forget drops request id of tenant: it was read, or is gone.
func (b *unreadableBackoff) forget(tenant, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.tries[tenant], id)
	if len(b.tries[tenant]) == 0 {
		delete(b.tries, tenant)
	}
}

// keepOnly drops the requests of tenant that are no longer due (ids): an
// unreadable request keeps its past deadline in the index, so one that
// is not among them left it (removed by hand, or settled after a repair
// by another replica or a read).
func (b *unreadableBackoff) keepOnly(tenant string, ids []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.tries[tenant] {
		if !slices.Contains(ids, id) {
			delete(b.tries[tenant], id)
		}
	}
	if len(b.tries[tenant]) == 0 {
		delete(b.tries, tenant)
	}
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
