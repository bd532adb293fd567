package grants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/storedjson"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// Request retention's bounds (Config.RetentionBatch, RetentionLimit). A
// batch is one pipeline of provider-wide removals of a few hundred
// requests; a run, some seconds of one Redis round trip after another,
// so it holds neither Redis nor the jobs' sweep (which runs it in turn
// with the expiries) for long. A backlog of years, the first time
// retention is turned on, goes over many runs.
const (
	DefaultRetentionBatch = 200
	DefaultRetentionLimit = 2000
)

// DeleteEnded applies request retention (LOCKBOX_REQUEST_RETENTION): it
// deletes the requests of every tenant, offboarded or not, that ended
// (a final state) before now - retention, with their entries in every
// index. It returns how many it deleted, and whether it stopped at
// Config.RetentionLimit with more perhaps due: the next run goes on from
// there. A request still pending or approved is never deleted, however
// old.
//
// Each request goes in one transaction in its tenant's slot, under WATCH
// of the request, so a request that changes meanwhile is left for the
// next run: the request, its entries in the tenant's indexes, a note of
// it in keys.RequestsDeleting, and the audit record of the deletion
// (deletionRecord), so a request is never deleted without one. The
// provider-wide index entries, in other slots, go in a second step after
// each batch of
// Config.RetentionBatch deletions, which then removes the notes; a
// replica that stops between the two leaves the notes, and the next run
// finishes the job. Until then readers skip those entries, as they skip
// any whose request is not there. Reindex rebuilds the provider-wide
// indexes from the tenant's own, from which the request is gone, so it
// does not bring them back; a pass that read the tenant's index just
// before the deletion finds the request gone when it reads it, and takes
// back what it restored of it.
//
// Tenants take turns, a batch each, so a tenant with a long backlog does
// not hold back the others' deletions for many runs. Once a tenant has
// nothing more due, Config.DeadLetters removes its dead letters whose
// request is gone, when it deleted any since they were last gone through.
//
// Any number of replicas may run it at once: deleting is idempotent.
func (s *Store) DeleteEnded(ctx context.Context, retention time.Duration) (int, bool, error) {
	if retention <= 0 {
		return 0, false, nil
	}
	cutoff := s.cfg.Now().Add(-retention)
	// The tenant set keeps offboarded tenants too: offboarding ends their
	// requests but does not remove them from it.
	tenants, err := s.cfg.Redis.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return 0, false, fault.Unavailable("grants: request retention", err)
	}
	var runs []*tenantRetention
	for _, t := range tenants {
		if keys.ValidTenant(t) == nil {
			runs = append(runs, &tenantRetention{tenant: t})
		}
	}
	// What each tenant lost is logged however the run ends.
	defer func() {
		for _, r := range runs {
			if r.deleted > 0 {
				s.cfg.Logger.InfoContext(ctx, "request retention deleted ended requests",
					"tenant", r.tenant, "count", r.deleted, "ended_before", cutoff)
			}
		}
	}()
	total, budget := 0, s.cfg.RetentionLimit
	var errs []error
	for turn := runs; len(turn) > 0; {
		var next []*tenantRetention
		for _, r := range turn {
			if budget == 0 {
				// Stopped with tenants still to visit: more may be due.
				return total, true, s.retentionErr(errs)
			}
			// Checked between batches too: a client without context
			// deadlines (go-redis's ContextTimeoutEnabled) would go on.
			if err := ctx.Err(); err != nil {
				return total, true, fault.Unavailable("grants: request retention", err)
			}
			n, done, err := s.deleteBatch(ctx, r, cutoff, retention, min(s.cfg.RetentionBatch, budget))
			total, budget, r.deleted = total+n, budget-n, r.deleted+n
			if n > 0 {
				s.metrics.deleted.Add(float64(n))
			}
			if err == nil && done {
				err = s.forgetDeleted(ctx, r.tenant)
			}
			switch {
			case err != nil && ctx.Err() != nil:
				return total, true, fault.Unavailable("grants: request retention", err)
			case err != nil:
				// One tenant's failure does not hold back the others';
				// it is tried again at the next run.
				errs = append(errs, fmt.Errorf("tenant %s: %w", r.tenant, err))
			case !done:
				next = append(next, r)
			}
		}
		turn = next
	}
	return total, false, s.retentionErr(errs)
}

func (s *Store) retentionErr(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fault.Unavailable("grants: request retention", err)
	}
	return nil
}

// forgetDeleted removes tenant's dead letters whose request is gone, once
// the run is done with the tenant, if a deletion since they were last
// gone through says so (keys.RequestsDeleted): a tenant's letters, up to
// 10,000, are not read at every run, and a run a minute during a backlog.
// The flag outlives a run stopped before this point, and the next run,
// though it deletes nothing, does it. Under WATCH of the flag: a deletion
// meanwhile, whose letters the pass may have missed, keeps it.
func (s *Store) forgetDeleted(ctx context.Context, tenant string) error {
	if s.cfg.DeadLetters == nil {
		return nil
	}
	flag := keys.RequestsDeleted(tenant)
	// Looked at first without WATCH: most runs find no flag, and that
	// costs one round trip.
	if n, err := s.cfg.Redis.Exists(ctx, flag).Result(); err != nil || n == 0 {
		return err
	}
	err := s.cfg.Redis.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, flag).Result()
		if err != nil || n == 0 {
			return err
		}
		if _, err := s.cfg.DeadLetters.ForgetDeleted(ctx, tenant); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, flag)
			return nil
		})
		return err
	}, flag)
	if errors.Is(err, redis.TxFailedErr) {
		return nil // set again meanwhile: the next run goes through them
	}
	return err
}

// tenantRetention is where one run of DeleteEnded stands in a tenant.
type tenantRetention struct {
	tenant string
	// started: the deletions a previous run left half done are finished.
	started bool
	// kept is how many ids at the start of the tenant's index, up to
	// the cutoff, this run read and kept: the next batch reads after
	// them. Those deleted left the index, and the ones after them moved
	// up. A request another replica deletes meanwhile moves them up once
	// more, and one is passed over: the next run judges it.
	kept    int64
	deleted int
}

// deleteBatch deletes up to limit of r's tenant's requests that ended
// before cutoff (now - retention), then removes their provider-wide index
// entries, and reports whether the tenant has none left to judge in this
// run.
func (s *Store) deleteBatch(ctx context.Context, r *tenantRetention, cutoff time.Time, retention time.Duration, limit int) (int, bool, error) {
	if !r.started {
		if err := s.finishDeleting(ctx, r.tenant); err != nil {
			return 0, false, err
		}
		r.started = true
	}
	// A request ends after it is created, so one that ended before cutoff
	// was created before it: the index, by creation time, is read up to
	// cutoff only, a batch's worth at a time. What it holds there besides
	// is bounded: the requests still live, or ended less than retention
	// ago, and what retention never deletes (below).
	n, done := 0, false
	for n < limit && !done {
		want := int64(limit - n)
		ids, err := s.cfg.Redis.ZRangeByScore(ctx, keys.TenantRequests(r.tenant), &redis.ZRangeBy{
			Min: "-inf", Max: fmt.Sprint(cutoff.UnixMilli()), Offset: r.kept, Count: want,
		}).Result()
		if err != nil {
			return n, false, s.finishBatch(ctx, r.tenant, n, err)
		}
		done = int64(len(ids)) < want
		for _, id := range ids {
			ok := false
			if keys.IsUUID(id) { // else nothing Create wrote: left alone
				if ok, err = s.deleteIfEnded(ctx, r.tenant, id, cutoff, retention); err != nil {
					return n, false, s.finishBatch(ctx, r.tenant, n, err)
				}
			}
			if ok {
				n++
			} else {
				r.kept++
			}
		}
	}
	return n, done, s.finishBatch(ctx, r.tenant, n, nil)
}

// finishBatch removes the provider-wide entries of the n requests a batch
// deleted, unless the batch failed (err): a replica that fails at that
// point may have lost Redis or its context, and the notes wait for the
// next run.
func (s *Store) finishBatch(ctx context.Context, tenant string, n int, err error) error {
	if err != nil || n == 0 {
		return err
	}
	return s.finishDeleting(ctx, tenant)
}

// deleteIfEnded deletes request id of tenant, in one transaction under
// WATCH of it, if it ended before cutoff, and writes the deletion's audit
// record in it: a record that can't be written (the tenant's registry
// entry gone, Redis refusing) keeps the request. A request changed between
// the read and the commit is not deleted (false, nil): it is judged again
// at the next run.
func (s *Store) deleteIfEnded(ctx context.Context, tenant, id string, cutoff time.Time, retention time.Duration) (bool, error) {
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
		if err != nil {
			// Kept, but told of, as every read that meets it does: past
			// retention no listing may page back to it, and it would be
			// kept for good, with what it holds, without a word.
			s.unreadable.Report(ctx, unreadable.KindRequest, keys.Request(tenant, id), err, "tenant", tenant, "request_id", id)
		}
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
			if s.cfg.DeadLetters != nil {
				p.Set(ctx, keys.RequestsDeleted(tenant), "1", 0)
			}
			return s.cfg.Audit.AppendTx(ctx, p, deletionRecord(r, end, retention, s.cfg.Now()))
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

// deletionRecord is the audit record of request retention deleting r,
// which ended at end, at now: Remove-AccessToCustomerDataRequest, an
// Exchange admin cmdlet record like the request's others, done by Lockbox
// itself. A security team reading the log tells a request retention
// deleted from one never filed, and by which setting. It names no one of
// the provider's: the request's requester and deciders went with it.
//
// It is the request's deletion, not the removal of its audit records:
// audit retention (LOCKBOX_AUDIT_RETENTION, never longer than request
// retention) trims those by their own age, and records nothing.
func deletionRecord(r Request, end time.Time, retention time.Duration, now time.Time) record.Record {
	return record.Record{
		CreationTime:     record.Time{Time: now},
		Operation:        record.OpRemoveRequest,
		LockboxTenant:    r.Tenant,
		RecordType:       record.RecordTypeExchangeAdmin,
		Workload:         r.Service,
		UserId:           record.SystemUserID,
		UserType:         record.UserTypeSystem,
		ObjectId:         r.ID,
		LockboxRequestId: r.ID,
		Parameters: []record.Parameter{
			{Name: "Identity", Value: r.ID},
			{Name: "State", Value: string(r.State)},
			{Name: "EndedAt", Value: end.UTC().Format(record.TimeLayout)},
			{Name: "Retention", Value: retention.String()},
		},
	}
}

// endedAt returns when r ended: the time of the event that put it in its
// final state, or when that event was written, if later (RecordedAt: a
// late sweep's expiry, whose audit record is created then, and must not
// outlive the request). False for a request not ended.
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
	if last.RecordedAt.After(last.At) {
		return last.RecordedAt, true
	}
	return last.At, true
}

// finishDeleting removes the provider-wide index entries of tenant's
// deleted requests (keys.RequestsDeleting), then their notes. The notes
// are read a batch at a time: a batch leaves no more than that, but
// replicas that stopped part way, or ran at once, may have left more.
func (s *Store) finishDeleting(ctx context.Context, tenant string) error {
	var cursor uint64
	for {
		page, next, err := s.cfg.Redis.HScan(ctx, keys.RequestsDeleting(tenant), cursor, "", int64(s.cfg.RetentionBatch)).Result()
		if err != nil {
			return err
		}
		if err := s.finishDeletingPage(ctx, tenant, page); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// finishDeletingPage does finishDeleting's work for page, an HSCAN reply
// of id, requester pairs.
func (s *Store) finishDeletingPage(ctx context.Context, tenant string, page []string) error {
	if len(page) == 0 {
		return nil
	}
	ids := make([]string, 0, len(page)/2)
	// A plain pipeline: on Cluster each command goes to its own slot's
	// node. Every command is idempotent, so a run that fails part way is
	// simply run again.
	cmds, err := s.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i+1 < len(page); i += 2 {
			id, requester := page[i], page[i+1]
			ids = append(ids, id)
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
	return s.cfg.Redis.HDel(ctx, keys.RequestsDeleting(tenant), ids...).Err()
}
