package grants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/storedjson"
)

// retentionPage is how many of a tenant's request ids one read of its
// index returns.
const retentionPage = 500

// DeleteEnded applies request retention (LOCKBOX_REQUEST_RETENTION): it
// deletes every request of every tenant, offboarded or not, that ended
// (a final state) before now - retention, with its entries in every
// index, and returns how many it deleted. A request still pending or
// approved is never deleted, however old.
//
// Each request goes in one transaction in its tenant's slot, under WATCH
// of the request, so a request that changes meanwhile is left for the
// next run: the request, its entries in the tenant's indexes, and a note
// of it in keys.RequestsDeleting. The provider-wide index entries, in
// other slots, go in a second step, which then removes the note; a
// replica that stops between the two leaves the note, and the next run
// finishes the job. Until then readers skip those entries, as they skip
// any whose request is not there. Reindex rebuilds the provider-wide
// indexes from the tenant's own, from which the request is gone, so it
// does not bring them back; a pass that read the tenant's index just
// before the deletion finds the request gone when it reads it, and takes
// back what it restored of it.
//
// Any number of replicas may run it at once: deleting is idempotent.
func (s *Store) DeleteEnded(ctx context.Context, retention time.Duration) (int, error) {
	if retention <= 0 {
		return 0, nil
	}
	cutoff := s.cfg.Now().Add(-retention)
	// The tenant set keeps offboarded tenants too: offboarding ends their
	// requests but does not remove them from it.
	tenants, err := s.cfg.Redis.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return 0, fault.Unavailable("grants: request retention", err)
	}
	total := 0
	var errs []error
	for _, t := range tenants {
		if keys.ValidTenant(t) != nil {
			continue
		}
		n, err := s.deleteEnded(ctx, t, cutoff)
		total += n
		if n > 0 {
			s.metrics.deleted.Add(float64(n))
			s.cfg.Logger.InfoContext(ctx, "request retention deleted ended requests",
				"tenant", t, "count", n, "ended_before", cutoff)
		}
		if err != nil {
			if ctx.Err() != nil {
				return total, fault.Unavailable("grants: request retention", err)
			}
			// One tenant's failure does not hold back the others'.
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return total, fault.Unavailable("grants: request retention", err)
	}
	return total, nil
}

// deleteEnded deletes tenant's requests that ended before cutoff, after
// finishing any deletion a previous run left half done.
func (s *Store) deleteEnded(ctx context.Context, tenant string, cutoff time.Time) (int, error) {
	if err := s.finishDeleting(ctx, tenant); err != nil {
		return 0, err
	}
	// A request ends after it is created, so one that ended before cutoff
	// was created before it: the index, by creation time, is read up to
	// cutoff only. What it holds there is bounded: the requests that are
	// still live, or ended less than retention ago.
	n := 0
	var offset int64
	for {
		ids, err := s.cfg.Redis.ZRangeByScore(ctx, keys.TenantRequests(tenant), &redis.ZRangeBy{
			Min: "-inf", Max: fmt.Sprint(cutoff.UnixMilli()), Offset: offset, Count: retentionPage,
		}).Result()
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			if !keys.IsUUID(id) {
				continue // nothing Create wrote: left alone
			}
			ok, err := s.deleteIfEnded(ctx, tenant, id, cutoff)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			} else {
				// Kept: the next page starts after it. Those deleted
				// left the index, and the ones after them moved up.
				offset++
			}
		}
		if len(ids) < retentionPage {
			break
		}
	}
	if n > 0 {
		if err := s.finishDeleting(ctx, tenant); err != nil {
			return n, err
		}
	}
	return n, nil
}

// deleteIfEnded deletes request id of tenant, in one transaction under
// WATCH of it, if it ended before cutoff. A request changed between the
// read and the commit is not deleted (false, nil): it is judged again at
// the next run.
func (s *Store) deleteIfEnded(ctx context.Context, tenant, id string, cutoff time.Time) (bool, error) {
	deleted := false
	err := s.cfg.Redis.Watch(ctx, func(tx *redis.Tx) error {
		b, err := tx.Get(ctx, keys.Request(tenant, id)).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil // indexed, never committed, or deleted meanwhile
		}
		if err != nil {
			return err
		}
		var r Request
		newer, err := storedjson.Decode(b, &r)
		if err != nil || newer || r.Tenant != tenant || r.ID != id {
			// Kept: a request that can't be read, or that a newer version
			// wrote, can't be shown to have ended; one under another
			// tenant's key is not this tenant's to delete.
			return nil
		}
		end, ok := endedAt(r)
		if !ok || !end.Before(cutoff) {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, keys.Request(tenant, id))
			p.ZRem(ctx, keys.TenantRequests(tenant), id)
			// A final request is in none of these; removed all the same,
			// so nothing is left that names it.
			p.ZRem(ctx, keys.TenantDeadlines(tenant), id)
			p.ZRem(ctx, keys.TenantPending(tenant), id)
			p.ZRem(ctx, keys.TenantActive(tenant), id)
			p.Del(ctx, keys.OutboxAsked(tenant, id), keys.OutboxWarned(tenant, id))
			p.HSet(ctx, keys.RequestsDeleting(tenant), id, r.Requester)
			return nil
		})
		if err == nil {
			deleted = true
		}
		return err
	}, keys.Request(tenant, id))
	if errors.Is(err, redis.TxFailedErr) {
		return false, nil
	}
	return deleted, err
}

// endedAt returns when r ended: the time of the event that put it in its
// final state. False for a request not ended.
func endedAt(r Request) (time.Time, bool) {
	if !r.State.Final() || len(r.History) == 0 {
		return time.Time{}, false
	}
	last := r.History[len(r.History)-1]
	if last.To != r.State || last.At.IsZero() {
		// A history that does not end in the state: not to be trusted
		// with a deletion.
		return time.Time{}, false
	}
	return last.At, true
}

// finishDeleting removes the provider-wide index entries of tenant's
// deleted requests (keys.RequestsDeleting), then their notes.
func (s *Store) finishDeleting(ctx context.Context, tenant string) error {
	pending, err := s.cfg.Redis.HGetAll(ctx, keys.RequestsDeleting(tenant)).Result()
	if err != nil || len(pending) == 0 {
		return err
	}
	// A plain pipeline: on Cluster each command goes to its own slot's
	// node. Every command is idempotent, so a run that fails part way is
	// simply run again.
	cmds, err := s.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, requester := range pending {
			p.Del(ctx, keys.RequestIndex(id))
			p.ZRem(ctx, keys.AllRequests(), tenant+"/"+id)
			if keys.IsUser(requester) {
				p.ZRem(ctx, keys.OperatorRequests(requester), tenant+"/"+id)
			}
		}
		return nil
	})
	// Each command's own error: the notes go only once every entry has.
	for _, c := range cmds {
		err = errors.Join(err, c.Err())
	}
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	return s.cfg.Redis.HDel(ctx, keys.RequestsDeleting(tenant), ids...).Err()
}
