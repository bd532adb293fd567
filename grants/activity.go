package grants

import (
	"context"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
)

// AuditLog is what the lifecycle needs of the audit log: writing the
// records of a transition in the transition's own transaction, and reading
// back the records tied to one request. *audit.Log implements it.
type AuditLog interface {
	// AppendTx queues r on tx, so the record commits if and only if the
	// transition does. r must belong to a tenant in tx's hash slot.
	AppendTx(ctx context.Context, tx redis.Pipeliner, r record.Record) error
	// RequestRecords calls w with every record of tenant's log tied to
	// request id created from from to to (zero: no bound), newest first,
	// provider-only fields included, and bad (unless nil) with each
	// record appended in that range that does not decode. It checks no
	// caller: Trail does.
	RequestRecords(ctx context.Context, tenant, id string, from, to time.Time, w func(record.Record) error, bad func(audit.UnreadableRecord)) error
	// RecordedOrganizationID returns the organization GUID tenant's
	// newest records carry: a record of a request ending is written with
	// it when the tenant's registry entry can't be read (see queue).
	RecordedOrganizationID(ctx context.Context, tenant string) (string, error)
}

// Trail is a request's audit trail: the request as its reader may see it,
// every record tied to it, oldest first, and the records of its tenant's
// log in the same span that do not decode, oldest first: each may be one
// of the request's, so a view names it rather than drop it in silence.
type Trail struct {
	Request    Request
	Records    []record.Record
	Unreadable []audit.UnreadableRecord
}

// Activity returns request id as p may see it and every audit record tied
// to it, oldest first: Trail without the records that do not decode.
func (s *Store) Activity(ctx context.Context, p identity.Principal, id string) (Request, []record.Record, error) {
	t, err := s.Trail(ctx, p, id)
	if err != nil {
		return Request{}, nil, err
	}
	return t.Request, t.Records, nil
}

// Trail returns request id as p may see it and every audit record tied to
// it, oldest first: the decisions on it and each operator action done
// under it; and the records of the span that do not decode.
//
// Seeing the request is what grants its activity: an assigned approver may
// not search the tenant's whole log but does see what was done under a
// request they decided. So the only check is Get's, and each record is
// shown as p may see it (the tenant view for tenant users).
func (s *Store) Trail(ctx context.Context, p identity.Principal, id string) (Trail, error) {
	req, err := s.Get(ctx, p, id)
	if err != nil {
		return Trail{}, err
	}
	// Nothing is tied to a request before it was filed: the scan ends
	// there rather than at the start of the tenant's log.
	var from time.Time
	if !req.CreatedAt.IsZero() {
		from = req.CreatedAt.Add(-audit.ClockSkew)
	}
	// Nor after it ended: the scan starts there rather than at the
	// newest record of the log, which for an old request of a busy
	// tenant is all that was written since.
	var to time.Time
	if end, ok := activityEnd(req); ok {
		to = end.Add(audit.ClockSkew)
	}
	recs := []record.Record{}
	var bad []audit.UnreadableRecord
	op, late := lateOperation(req)
	collect := func(rec record.Record) error {
		if late && rec.Operation == op {
			late = false
		}
		recs = append(recs, audit.ViewFor(rec, p))
		return nil
	}
	var seenBad []audit.UnreadableRecord
	collectBad := func(u audit.UnreadableRecord) {
		// The windows read after the end each reach ClockSkew into the
		// one before: a record met twice is named once.
		if !slices.Contains(seenBad, u) {
			seenBad = append(seenBad, u)
			bad = append(bad, u)
		}
	}
	if err := s.cfg.Audit.RequestRecords(ctx, req.Tenant, req.ID, from, to, collect, collectBad); err != nil {
		return Trail{}, err
	}
	if late && len(recs) > 0 && !to.IsZero() {
		// The request's records are there, but not the one of its end:
		// a sweep (or a read that settled it) recorded it after the
		// deadline, and it is created when written (recordFor). It is
		// looked for in windows after the end, each twice as long as the
		// one before, so the read costs about what was written before the
		// sweep ran, not what was written since.
		lo, span, until := to.Truncate(time.Second).Add(time.Second), lateWindow, s.cfg.Now().Add(audit.ClockSkew)
		for late && !lo.After(until) {
			hi := lo.Add(span)
			older, olderBad := recs, bad
			recs, bad = []record.Record{}, nil
			if err := s.cfg.Audit.RequestRecords(ctx, req.Tenant, req.ID, lo, hi, collect, collectBad); err != nil {
				return Trail{}, err
			}
			recs, bad = append(recs, older...), append(bad, olderBad...) // newest first
			lo, span = hi.Add(time.Second), 2*span
		}
	}
	slices.Reverse(recs) // newest first in the log
	slices.Reverse(bad)
	return Trail{Request: req, Records: recs, Unreadable: bad}, nil
}

// lateWindow is the first window after a request's end in which Activity
// looks for the record of an end Lockbox recorded late.
const lateWindow = 10 * time.Minute

// lateOperation returns the operation of the record of req's end when
// Lockbox itself ended it (an expiry, the end of the access window): that
// record may have been written, and created, long after the deadline the
// history keeps.
func lateOperation(req Request) (string, bool) {
	if !req.State.Final() || len(req.History) == 0 {
		return "", false
	}
	switch last := req.History[len(req.History)-1]; {
	case last.ActorKind != KindSystem:
	case last.Action == ActionExpire:
		return record.OpExpireRequest, true
	case last.Action == ActionComplete:
		return record.OpCompleteAccess, true
	}
	return "", false
}

// activityEnd is when the last record tied to req may be created, if that
// is known yet: a final request's last transition (its access revoked or
// completed, or no access at all); an approved one's end of access, or
// its last transition if later. A record stamped after it (a call a
// replica let through on a grant it had cached, up to a second stale; a
// replica's clock ahead) stays within audit.ClockSkew of it.
func activityEnd(req Request) (time.Time, bool) {
	var last time.Time
	if n := len(req.History); n > 0 {
		last = req.History[n-1].At
	}
	switch {
	case last.IsZero():
		return time.Time{}, false
	case req.State.Final():
		return last, true
	case req.State == StateApproved && req.ExpiresAt != nil:
		return later(*req.ExpiresAt, last), true
	}
	return time.Time{}, false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
