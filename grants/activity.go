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
	// RequestPage returns one page of the records of tenant's log tied
	// to request id created from from to to (zero: no bound), newest
	// first, each as p may see it, with a search's cursors and scan
	// budget. It checks no caller: Trail does.
	RequestPage(ctx context.Context, p identity.Principal, tenant, id string, from, to time.Time, cursor string, limit int) (audit.Page, error)
	// RequestRecords calls w with every record of tenant's log tied to
	// request id created from from to to (zero: no bound), newest first,
	// provider-only fields included, and bad (unless nil) with each
	// record appended in that range that does not decode. It checks no
	// caller: Trail does, and reads with it only the short windows after
	// a request's end.
	RequestRecords(ctx context.Context, tenant, id string, from, to time.Time, w func(record.Record) error, bad func(audit.UnreadableRecord)) error
	// RecordedOrganizationID returns the organization GUID tenant's
	// newest records carry: a record of a request ending is written with
	// it when the tenant's registry entry can't be read (see queue).
	RecordedOrganizationID(ctx context.Context, tenant string) (string, error)
}

// TrailPage asks for one page of a request's trail.
type TrailPage struct {
	// Cursor continues where a page ended (Trail.Next), or goes back to
	// the page before it (Trail.Prev); empty for the first page.
	Cursor string
	// Limit caps the page: 0 means audit.DefaultLimit, at most
	// audit.MaxLimit.
	Limit int
}

// Trail is one page of a request's audit trail: the request as its reader
// may see it, the records tied to it, newest first, and the records of its
// tenant's log in the page's stretch that do not decode, in the same
// order: each may be one of the request's, so a view names it rather than
// drop it in silence.
type Trail struct {
	Request    Request
	Records    []record.Record
	Unreadable []audit.UnreadableRecord
	// Next is the cursor of the older records; empty when there are none.
	// A page may hold fewer than its limit while Next is set: one read
	// scans a bounded stretch of the tenant's log.
	Next string
	// Prev is the cursor of the newer records; empty on the first page.
	Prev string
}

// Trail returns request id as p may see it and one page of the audit
// records tied to it, newest first: the decisions on it and each operator
// action done under it; and the records of the page's stretch that do not
// decode.
//
// A trail is read a page at a time: an engineer's window of up to 4 hours
// may hold any number of calls, each a record, and a request with none
// still spans whatever its tenant's other grants wrote meanwhile. All of
// it read for one view grew the answer, and the read, without bound.
//
// Seeing the request is what grants its activity: an assigned approver may
// not search the tenant's whole log but does see what was done under a
// request they decided. So the only check is Get's, and each record is
// shown as p may see it (the tenant view for tenant users).
func (s *Store) Trail(ctx context.Context, p identity.Principal, id string, pg TrailPage) (Trail, error) {
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
	page, err := s.cfg.Audit.RequestPage(ctx, p, req.Tenant, req.ID, from, to, pg.Cursor, pg.Limit)
	if err != nil {
		return Trail{}, err
	}
	t := Trail{Request: req, Records: page.Records, Unreadable: page.Unreadable, Next: page.Next, Prev: page.Prev}
	if t.Records == nil {
		t.Records = []record.Record{}
	}
	if pg.Cursor == "" && !to.IsZero() && len(t.Records) > 0 {
		if err := s.lateRecords(ctx, p, req, to, &t); err != nil {
			return Trail{}, err
		}
	}
	return t, nil
}

// lateRecords puts on t, the first page of req's trail, the record of req's
// end when Lockbox recorded it after the deadline its history keeps and t
// does not hold it: a sweep (or a read that settled it) ran late, and the
// record is created when written (recordFor). A request recorded so since
// events carry RecordedAt has its end there (activityEnd); one recorded
// before is looked for in windows after the end, each twice as long as
// the one before, so the read costs about what was written before the
// sweep ran, not what was written since.
func (s *Store) lateRecords(ctx context.Context, p identity.Principal, req Request, to time.Time, t *Trail) error {
	op, late := lateOperation(req)
	for _, rec := range t.Records {
		if late && rec.Operation == op {
			late = false
		}
	}
	if !late {
		return nil
	}
	var recs []record.Record
	var bad, seenBad []audit.UnreadableRecord
	collect := func(rec record.Record) error {
		if rec.Operation == op {
			late = false
		}
		recs = append(recs, audit.ViewFor(rec, p))
		return nil
	}
	collectBad := func(u audit.UnreadableRecord) {
		// The windows read after the end each reach ClockSkew into the
		// one before: a record met twice is named once.
		if !slices.Contains(seenBad, u) {
			seenBad = append(seenBad, u)
			bad = append(bad, u)
		}
	}
	lo, span, until := to.Truncate(time.Second).Add(time.Second), lateWindow, s.cfg.Now().Add(audit.ClockSkew)
	for late && !lo.After(until) {
		hi := lo.Add(span)
		older, olderBad := recs, bad
		recs, bad = nil, nil
		if err := s.cfg.Audit.RequestRecords(ctx, req.Tenant, req.ID, lo, hi, collect, collectBad); err != nil {
			return err
		}
		recs, bad = append(recs, older...), append(bad, olderBad...) // newest first
		lo, span = hi.Add(time.Second), 2*span
	}
	t.Records = append(recs, t.Records...)
	t.Unreadable = append(bad, t.Unreadable...)
	return nil
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
		// An event recorded late (a sweep that ran late) has its record
		// created when it was written.
		last = later(req.History[n-1].At, req.History[n-1].RecordedAt)
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
