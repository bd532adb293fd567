package audit

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// Page sizes of Search.
const (
	// DefaultLimit is the page size when Query.Limit is 0.
	DefaultLimit = 100
	// MaxLimit caps one page of search results.
	MaxLimit = 1000
)

// Scanning parameters.
const (
	// batchSize is how many stream entries one round trip reads.
	batchSize = 500
	// mergeBatchSize is the batch of each tenant's stream when all
	// tenants are read together, at most.
	mergeBatchSize = 100
	// mergeBudget bounds the entries a search of every tenant reads ahead
	// of the merge: each tenant's batch is held until the merge takes its
	// entries, and the merge starts with one batch of every tenant, so
	// with 10 000 tenants a fixed batch of 100 held a million entries
	// before the first result. Past 100 tenants the batch shrinks
	// instead, to one entry a round trip from 10 000 tenants on.
	mergeBudget = 10_000
	// maxScan bounds the entries one Search call reads, so a very
	// selective filter over a long log answers within the call's deadline
	// with a partial page and a cursor instead of timing out.
	maxScan = 100_000
	// ClockSkew is how far out of CreationTime order records may be
	// appended (writers' clocks differ, and a record is stamped a moment
	// before it is committed). Scanning newest first stops only once it is
	// this far past Query.From.
	ClockSkew = 5 * time.Minute
)

// Query selects audit records. The zero value of a filter field matches
// every record.
type Query struct {
	// Tenant whose log to read. Empty means, for a tenant user, its own
	// tenant and, for the provider's audit readers, every tenant; other
	// provider callers must name one.
	Tenant string
	// From and To bound CreationTime, both inclusive. A zero one is no
	// bound unless HasFrom (HasTo) says it was given: a caller who wrote
	// 0001-01-01T00:00:00Z, Go's zero time, as the end of a range asked
	// for the records created before year 1, which are none, not for
	// every record.
	From, To time.Time
	// HasFrom and HasTo make From and To bounds even when zero.
	HasFrom, HasTo bool
	// User matches UserId, case-insensitively (e.g. "Microsoft Operator").
	// For the provider's audit readers it also matches the provider-only
	// ProviderUserId.
	User string
	// Operation matches Operation case-insensitively (e.g. "Get-Mailbox").
	Operation string
	// RequestID matches LockboxRequestId exactly.
	RequestID string
	// Cursor continues a search where the page that returned it ended
	// (Page.Next), or goes back to the page before it (Page.Prev). It is
	// opaque to clients and only valid with the same Tenant.
	Cursor string
	// Limit caps the page: 0 means DefaultLimit, at most MaxLimit.
	Limit int
	// trail: q reads a request's trail (RequestPage), whose cursors are
	// bound to its tenant and request alone: its bounds move as the
	// request ends, and a cursor taken before must still read on.
	trail bool
}

// fromBound and toBound report whether q bounds CreationTime from below
// and from above.
func (q Query) fromBound() bool { return q.HasFrom || !q.From.IsZero() }
func (q Query) toBound() bool   { return q.HasTo || !q.To.IsZero() }

// Page is one page of search results, newest first.
type Page struct {
	Records []record.Record
	// Next is the cursor of the following page; empty when the search is
	// done. A page may hold fewer than Limit records (even none) while
	// Next is set, when the scan budget of one call ran out.
	Next string
	// Prev is the cursor of the page before, the records newer than this
	// page, passed as Query.Cursor like Next; empty on the first page
	// and when nothing newer is left to read. Like Next, it may lead to
	// a page with fewer than Limit records while the page has a Prev of
	// its own.
	Prev string
	// Unreadable names the records of the page's stretch of the log that
	// do not decode, in the page's order. Each takes a place of the
	// page's Limit, as the record would have, so the cursors continue
	// past it. Its fields are unknown, so no filter but the range's
	// place in the log applies to it: a search whose scan passes it
	// names it.
	Unreadable []UnreadableRecord
}

// full reports whether the page holds limit entries, readable or not.
func (pg *Page) full(limit int) bool { return len(pg.Records)+len(pg.Unreadable) == limit }

// add puts e on the page, as p may see it.
func (pg *Page) add(e entry, p identity.Principal) {
	if e.bad {
		pg.Unreadable = append(pg.Unreadable, UnreadableRecord{Tenant: e.pos.tenant, StreamID: e.pos.id.String()})
		return
	}
	pg.Records = append(pg.Records, ViewFor(e.rec, p))
}

// Search returns one page of the records that match q and that p may read,
// newest first (in the order they were committed). Tenant users (the
// tenant's global admins and audit readers, each a user of the tenant:
// see check) get the tenant view; the provider's audit readers may read
// any tenant, or all of them at once, provider-only fields included.
func (l *Log) Search(ctx context.Context, p identity.Principal, q Query) (Page, error) {
	if err := l.check(ctx, p, &q); err != nil {
		return Page{}, err
	}
	return l.page(ctx, p, q, false)
}

// RequestPage returns one page of the records of tenant's log tied to
// request id, created from from to to (zero: no bound), newest first, as
// p may see each (ViewFor), with the cursors and the scan budget of a
// Search: a request under which an engineer made a million calls is read
// a page at a time, and a page of one with none reads at most maxScan
// entries of the others' records before it answers with a cursor. cursor
// and limit are Query's.
//
// It authorizes no one. It serves the request lifecycle (grants), whose
// rule is that whoever may see a request may see what was done under it:
// grants checks that the caller may see the request, then calls this.
// Any other read of the log goes through Search or Export, which apply
// the audit log's own rules.
func (l *Log) RequestPage(ctx context.Context, p identity.Principal, tenant, id string, from, to time.Time, cursor string, limit int) (Page, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return Page{}, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	if id == "" {
		// An empty id would match every record of the tenant.
		return Page{}, fault.New(fault.ErrInvalid, "invalid_query", "the request id is required")
	}
	return l.page(ctx, p, Query{Tenant: tenant, RequestID: id, From: from, To: to, Cursor: cursor, Limit: limit, trail: true}, true)
}

// page is Search once p may read what q names. ofRequest: q is a
// request's (RequestPage), whose tenant, if it was offboarded since, is
// no reason to refuse a page with nothing on it.
func (l *Log) page(ctx context.Context, p identity.Principal, q Query, ofRequest bool) (Page, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxLimit:
		return Page{}, fault.New(fault.ErrInvalid, "invalid_limit", "limit must be from 1 to %d", MaxLimit)
	case q.Limit == 0:
		q.Limit = DefaultLimit
	}
	if q.Cursor != "" {
		pos, newer, err := decodeCursor(q.Cursor, q)
		if err != nil {
			return Page{}, err
		}
		if newer {
			return l.searchNewer(ctx, p, q, pos, ofRequest)
		}
	}
	it, err := l.open(ctx, q)
	if err != nil {
		return Page{}, err
	}
	provider := p.IsProvider()
	page := Page{Records: []record.Record{}}
	var last position
	scanned, ahead := 0, 0
	for {
		e, ok, err := it.next(ctx)
		if err != nil {
			return Page{}, err
		}
		if !ok {
			if scanned == 0 && !ofRequest {
				if err := l.nothingRead(ctx, p, q.Tenant); err != nil {
					return Page{}, err
				}
			}
			return page, nil
		}
		scanned++
		if scanned == 1 && q.Cursor != "" {
			// A page after the first links back to what is newer than
			// its first entry: the records of the page before, and any
			// between that don't match.
			page.Prev = encodeNewerCursor(e.pos, q)
		}
		if listed(q, e, provider, ofRequest) {
			if page.full(q.Limit) {
				// One more match: the next page starts after this one's
				// last record.
				page.Next = encodeCursor(last, q)
				return page, nil
			}
			page.add(e, p)
			last = e.pos
		}
		if page.full(q.Limit) {
			// A full page looks at most a batch further for a next match.
			if ahead++; ahead > batchSize {
				page.Next = encodeCursor(last, q)
				return page, nil
			}
		} else if scanned >= maxScan {
			// The scan budget ran out before the range did.
			page.Next = encodeCursor(e.pos, q)
			return page, nil
		}
	}
}

// searchNewer is Search with a Prev cursor: the page of the records
// matching q just newer than the cursor's place, read oldest first from
// it and returned newest first. Its bounds are those of the pages it lies
// between, so that going back Older shows again the page the cursor came
// from, however many records were appended since; from the first page's
// place it leads to the records appended since. When nothing newer is
// left, the first page is the page before.
func (l *Log) searchNewer(ctx context.Context, p identity.Principal, q Query, from position, ofRequest bool) (Page, error) {
	it, err := l.openNewer(ctx, q, from)
	if err != nil {
		return Page{}, err
	}
	provider := p.IsProvider()
	page := Page{Records: []record.Record{}}
	var last position
	scanned, ahead := 0, 0
	done := func() Page {
		slices.Reverse(page.Records)
		slices.Reverse(page.Unreadable)
		return page
	}
	for {
		e, ok, err := it.next(ctx)
		if err != nil {
			return Page{}, err
		}
		if !ok {
			if len(page.Records) == 0 && len(page.Unreadable) == 0 {
				q.Cursor = ""
				return l.page(ctx, p, q, ofRequest)
			}
			return done(), nil
		}
		scanned++
		if scanned == 1 {
			// Older than the page's first entry read: the page the
			// cursor came from, and any entries between that don't match.
			page.Next = encodeCursor(e.pos, q)
		}
		if listed(q, e, provider, ofRequest) {
			if page.full(q.Limit) {
				page.Prev = encodeNewerCursor(last, q)
				return done(), nil
			}
			page.add(e, p)
			last = e.pos
		}
		if page.full(q.Limit) {
			if ahead++; ahead > batchSize {
				page.Prev = encodeNewerCursor(last, q)
				return done(), nil
			}
		} else if scanned >= maxScan {
			page.Prev = encodeNewerCursor(e.pos, q)
			return done(), nil
		}
	}
}

// errBadCursor refuses a cursor this server did not return for a search.
var errBadCursor = fault.New(fault.ErrInvalid, "invalid_cursor", "the cursor is not one this server returned for this search")

// errCursorFilters refuses a cursor returned for a search with other
// filters. Its place in the log is a real one, and a page read from it
// with these filters was some other listing's continuation, handed out
// as this one's; so it says which values must stay the same. The code is
// invalid_cursor's, which clients already handle.
var errCursorFilters = fault.New(fault.ErrInvalid, "invalid_cursor",
	"the cursor was returned for a search with other filters: pass it with the same tenant, from, to, user, operation and request_id as that search (only limit may change), or start again without it")

// Export calls w with every record that matches q and that p may read,
// newest first, reading the streams in batches so memory stays the same
// however many records there are. q.Limit is ignored; q.Cursor, when set,
// starts the export where that page ended. An error of w stops the export
// and is returned.
func (l *Log) Export(ctx context.Context, p identity.Principal, q Query, w func(record.Record) error) error {
	if err := l.check(ctx, p, &q); err != nil {
		return err
	}
	it, err := l.open(ctx, q)
	if err != nil {
		return err
	}
	provider := p.IsProvider()
	for read := false; ; read = true {
		e, ok, err := it.next(ctx)
		if err != nil {
			return err
		}
		if !ok {
			if !read {
				return l.nothingRead(ctx, p, q.Tenant)
			}
			return nil
		}
		if e.bad {
			if appendedWithin(q, e.pos.id) {
				return errUnreadableRecord(e.pos.tenant, e.pos.id)
			}
			// Appended, by the log's own clock, well outside the range:
			// not one of this export's records, whatever it held.
			continue
		}
		if !matches(q, e.rec, provider) {
			continue
		}
		if err := w(ViewFor(e.rec, p)); err != nil {
			return err
		}
	}
}

// nothingRead answers a read of tenant's log that found no entry at all.
// A tenant that was never onboarded has no log: that is 404
// tenant_not_found, as verifying it answers (verifyEmpty), rather than an
// empty log that reads as "nothing happened". Only the provider's audit
// readers are told, who may read any tenant's log (and list the tenants):
// a tenant user is refused every tenant not its own, onboarded or not
// (readsAsTenant), and has passed that check for this one. The directory
// is asked only when nothing was read, so that the provider's readers'
// searches of a log with records still need none; without one, an unknown
// tenant reads as an empty log.
func (l *Log) nothingRead(ctx context.Context, p identity.Principal, tenant string) error {
	if tenant == "" || !p.IsProvider() || l.dir == nil {
		return nil
	}
	return l.dir.Onboarded(ctx, tenant)
}

// CanRead returns nil when p may read tenant's log (for a tenant's user,
// "" is their own; for the provider's audit readers, every tenant's), and
// otherwise the error Search, Export and CheckRead return for any query
// of that tenant, without looking at the rest of the query. A front end
// asks it before it parses the other filters, so a caller who may not
// read the log is refused as such, not told what is wrong with a date.
func (l *Log) CanRead(ctx context.Context, p identity.Principal, tenant string) error {
	return l.check(ctx, p, &Query{Tenant: tenant})
}

// CheckRead returns the error Search or Export would return for q before
// reading any record (p may not read what q names, q is invalid), and nil
// when they would go on to read. It reads no record, so a caller that only
// needs the answer's status (an HTTP HEAD of an export) does not pay for
// a scan of the log.
//
// A Prev cursor is where the two differ: Search pages back with it, and
// Export refuses it. CheckRead answers as Search does, since a HEAD of a
// search page reached by its "newer" link must answer 200 as its GET
// does; no export takes a cursor from its caller (the API's export has no
// cursor parameter, the admin center's drops it), so a HEAD of an export
// can't be told 200 for a read its GET refuses.
func (l *Log) CheckRead(ctx context.Context, p identity.Principal, q Query) error {
	if err := l.check(ctx, p, &q); err != nil {
		return err
	}
	if q.Cursor != "" {
		if _, _, err := decodeCursor(q.Cursor, q); err != nil {
			return err
		}
	}
	if q.Tenant == "" {
		// The provider's readers' read of every tenant starts from the
		// tenant set (open): one that can't be read is 503 here too.
		if err := l.rdb.SCard(ctx, keys.Tenants()).Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil
	}
	if !p.IsProvider() {
		return nil
	}
	// A read of a tenant without a stream reads nothing (nothingRead).
	n, err := l.rdb.Exists(ctx, keys.Audit(q.Tenant)).Result()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if n == 0 {
		return l.nothingRead(ctx, p, q.Tenant)
	}
	return nil
}

// RequestRecords calls w with every record of tenant's log tied to request
// id created from from to to (either zero: no bound), newest first,
// provider-only fields included; the scan starts near to and reads back
// no further than near from. An error of w stops the read and is
// returned.
//
// bad, unless nil, is called with each record appended within that range
// (widened by ClockSkew) that does not decode: whether it is the
// request's is unknown, so a view of the request's records names it
// rather than leave out what may be one of them. Like Search, the read
// goes on past it.
//
// It authorizes no one. It serves the request lifecycle (grants), whose
// rule is that whoever may see a request may see what was done under it:
// grants checks that the caller may see the request, then shows each
// record through ViewFor. Any other read of the log goes through
// Search or Export, which apply the audit log's own rules.
func (l *Log) RequestRecords(ctx context.Context, tenant, id string, from, to time.Time, w func(record.Record) error, bad func(UnreadableRecord)) error {
	if err := keys.ValidTenant(tenant); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	if id == "" {
		// An empty id would match every record of the tenant.
		return fault.New(fault.ErrInvalid, "invalid_query", "the request id is required")
	}
	q := Query{Tenant: tenant, RequestID: id, From: from, To: to}
	it, err := l.open(ctx, q)
	if err != nil {
		return err
	}
	for {
		e, ok, err := it.next(ctx)
		if err != nil || !ok {
			return err
		}
		// An unreadable record may or may not be the request's: it was
		// reported (logged, counted) where it was read, and the request's
		// own reads go on. Only one appended within the range may be
		// the request's; the scan reads ClockSkew past both ends, and a
		// caller reading adjacent ranges would otherwise be told twice.
		if e.bad {
			if bad != nil && appendedWithin(q, e.pos.id) {
				bad(UnreadableRecord{Tenant: e.pos.tenant, StreamID: e.pos.id.String()})
			}
			continue
		}
		if !matches(q, e.rec, true) {
			continue
		}
		if err := w(e.rec); err != nil {
			return err
		}
	}
}

// check validates q and decides whether p may read what it names: the
// provider's audit readers any tenant's log, or all of them; a tenant's
// log its users who are its global admins or audit readers (readsAsTenant).
// For a tenant user an empty q.Tenant means the user's own tenant, the
// only one it may read (the token names it); check sets it, so that the
// cursors of such a search are those of a one-tenant search.
func (l *Log) check(ctx context.Context, p identity.Principal, q *Query) error {
	providerAuditor := p.IsProvider() && p.Has(identity.RoleAuditReader)
	tenantReader := !p.IsProvider() && (p.Has(identity.RoleGlobalAdmin) || p.Has(identity.RoleAuditReader))
	if !providerAuditor && !tenantReader {
		// No tenant's log is theirs to read, so say so before anything
		// about the query: asked for a tenant (400), they named one only
		// to be refused then. The query is not echoed: it is unvalidated.
		return fault.New(fault.ErrForbidden, "forbidden", "you may not read the audit log")
	}
	if q.Tenant == "" && !p.IsProvider() {
		q.Tenant = p.TenantID
	}
	if q.Tenant == "" {
		if !providerAuditor {
			return fault.New(fault.ErrInvalid, "invalid_query", "the tenant is required")
		}
	} else if err := keys.ValidTenant(q.Tenant); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	if q.fromBound() && q.toBound() && q.To.Before(q.From) {
		return fault.New(fault.ErrInvalid, "invalid_range", "to must not be before from")
	}
	// The filter matches LockboxRequestId exactly, and every request id is
	// a lower-case UUID: one written otherwise (in capitals, as GUIDs often
	// are, cut short, mistyped) matched nothing, and an empty answer read
	// as "nothing was done under this request".
	if q.RequestID != "" && keys.ValidRequestID(q.RequestID) != nil {
		return fault.New(fault.ErrInvalid, "invalid_request_id", "the request id must be a request's id, a UUID in lower case such as 0198c2e4-5b7a-7d3e-9f10-2a4b6c8d0e1f")
	}
	if providerAuditor {
		return nil
	}
	ok, err := l.readsAsTenant(ctx, p, q.Tenant)
	if err != nil {
		return err
	}
	if !ok {
		return fault.New(fault.ErrForbidden, "forbidden", "you may not read the audit log of tenant %s", q.Tenant)
	}
	return nil
}

// readsAsTenant reports whether p reads tenant's log as one of the
// tenant's users: a global admin or audit reader of the tenant whose token
// carries no provider-only role and whose subject is a user of the tenant
// (user@ one of its registered domains, TenantDirectory). The roles come from
// the token alone, and a shared issuer can sign a provider identity with
// the tenant's tid and global-admin or audit-reader: the domain rule, the
// one deciding and configuring hold a global admin to, is what ties the
// token to the tenant.
func (l *Log) readsAsTenant(ctx context.Context, p identity.Principal, tenant string) (bool, error) {
	if !p.ActsInTenant(tenant) || !(p.Has(identity.RoleGlobalAdmin) || p.Has(identity.RoleAuditReader)) {
		return false, nil
	}
	if l.dir == nil {
		// Fail closed: without the registry, nobody reads as a tenant.
		return false, errors.New("audit: no tenant directory (Log.SetTenantDirectory): a tenant user's read can't be authorized")
	}
	return l.dir.IsUser(ctx, tenant, p.Subject)
}

// streamID is a stream entry id.
type streamID struct{ ms, seq uint64 }

func (s streamID) String() string {
	return strconv.FormatUint(s.ms, 10) + "-" + strconv.FormatUint(s.seq, 10)
}

func compareIDs(a, b streamID) int {
	return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.seq, b.seq))
}

// below returns the id just below s; false below 0-0. (XREVRANGE's max is
// inclusive, and the "(" exclusive form is not known to every server
// Lockbox runs on.)
func (s streamID) below() (streamID, bool) {
	switch {
	case s.seq > 0:
		return streamID{s.ms, s.seq - 1}, true
	case s.ms > 0:
		return streamID{s.ms - 1, ^uint64(0)}, true
	}
	return streamID{}, false
}

// above returns the id just above s; false above the highest.
func (s streamID) above() (streamID, bool) {
	switch {
	case s.seq < ^uint64(0):
		return streamID{s.ms, s.seq + 1}, true
	case s.ms < ^uint64(0):
		return streamID{s.ms + 1, 0}, true
	}
	return streamID{}, false
}

func parseID(s string) (streamID, error) {
	a, z, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, fmt.Errorf("stream id %q has no sequence", s)
	}
	ms, err := parseUint(a)
	if err != nil {
		return streamID{}, err
	}
	seq, err := parseUint(z)
	if err != nil {
		return streamID{}, err
	}
	return streamID{ms, seq}, nil
}

// position is a place in the newest-first order of a search: an entry of
// a tenant's stream. Across tenants the order is by entry id, then tenant.
type position struct {
	id     streamID
	tenant string
}

// less reports whether a comes after b newest first.
func (a position) less(b position) bool {
	return cmp.Or(compareIDs(a.id, b.id), strings.Compare(a.tenant, b.tenant)) < 0
}

// entry is one stream entry: its record, or bad when the record does not
// decode (rec is then empty).
type entry struct {
	pos position
	rec record.Record
	bad bool
}

// UnreadableRecord stands in a search's page for a stored audit record
// that does not decode: the others are shown, and this one is named by
// its tenant and stream id, never dropped in silence.
type UnreadableRecord struct {
	Tenant   string
	StreamID string
}

// errUnreadableRecord is the error of a read that can't go past tenant's
// unreadable record id: an export, which must not leave a record out.
func errUnreadableRecord(tenant string, id streamID) error {
	return fault.New(fault.ErrUnreadable, "record_unreadable",
		"audit record %s of tenant %s %s: its stored record does not decode; the export stops rather than leave it out (export the ranges before and after it, or have it repaired)",
		id, tenant, unreadable.Message)
}

// iterator yields entries newest first.
type iterator interface {
	next(ctx context.Context) (entry, bool, error)
}

// open returns the iterator of q: one tenant's stream, or every tenant's
// merged.
func (l *Log) open(ctx context.Context, q Query) (iterator, error) {
	var after *position
	if q.Cursor != "" {
		pos, newer, err := decodeCursor(q.Cursor, q)
		if err != nil {
			return nil, err
		}
		if newer {
			// Only Search pages back; an export or a request's records
			// read on from a Next cursor, or from the newest record.
			return nil, fault.New(fault.ErrInvalid, "invalid_cursor", "a cursor of the page before (prev_cursor) only pages a search")
		}
		after = &pos
	}
	var stopBefore time.Time
	if q.fromBound() {
		stopBefore = q.From.Add(-ClockSkew)
	}
	// The scan of a date range seeks to its end (streamReader.seek)
	// instead of reading down to it from the newest record.
	var seekTo time.Time
	if q.toBound() {
		seekTo = q.To.Add(ClockSkew)
	}
	if q.Tenant != "" {
		r := &streamReader{log: l, tenant: q.Tenant, max: "+", batch: batchSize, stopBefore: stopBefore, seekTo: seekTo}
		if after != nil {
			r.start(*after)
		}
		return r, nil
	}
	tenants, err := l.rdb.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	tenants = slices.DeleteFunc(tenants, func(t string) bool { return keys.ValidTenant(t) != nil })
	slices.Sort(tenants)
	batch := int64(max(1, min(mergeBatchSize, mergeBudget/max(1, len(tenants)))))
	m := &merger{}
	for _, t := range tenants {
		r := &streamReader{log: l, tenant: t, max: "+", batch: batch, stopBefore: stopBefore, seekTo: seekTo}
		if after != nil {
			r.start(*after)
		}
		m.pending = append(m.pending, r)
	}
	return m, nil
}

// openNewer returns the iterator of the entries after pos oldest first:
// one tenant's stream, or every tenant's merged.
func (l *Log) openNewer(ctx context.Context, q Query, pos position) (iterator, error) {
	var stopAfter time.Time
	if q.toBound() {
		stopAfter = q.To.Add(ClockSkew)
	}
	if q.Tenant != "" {
		return newRisingReader(l, q.Tenant, pos, batchSize, stopAfter), nil
	}
	tenants, err := l.rdb.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	tenants = slices.DeleteFunc(tenants, func(t string) bool { return keys.ValidTenant(t) != nil })
	slices.Sort(tenants)
	batch := int64(max(1, min(mergeBatchSize, mergeBudget/max(1, len(tenants)))))
	m := &merger{heads: headHeap{rising: true}}
	for _, t := range tenants {
		m.pending = append(m.pending, newRisingReader(l, t, pos, batch, stopAfter))
	}
	return m, nil
}

// risingReader reads one tenant's stream oldest first, in batches, from
// just after a position in the newest-first order: the way back to newer
// records.
type risingReader struct {
	log    *Log
	tenant string
	min    string // the lowest id of the next batch; "" when done
	batch  int64
	buf    []redis.XMessage
	// stopAfter ends the read at a record created after it (To plus
	// ClockSkew), as streamReader's stopBefore does going the other way.
	stopAfter time.Time
}

func newRisingReader(l *Log, tenant string, pos position, batch int64, stopAfter time.Time) *risingReader {
	r := &risingReader{log: l, tenant: tenant, min: pos.id.String(), batch: batch, stopAfter: stopAfter}
	if pos.tenant == "" || tenant <= pos.tenant {
		// pos itself (a one-tenant search's cursor names no tenant) and,
		// for a tenant ordered before it, an entry with the same id come
		// after it newest first: start strictly above.
		if above, ok := pos.id.above(); ok {
			r.min = above.String()
		} else {
			r.min = ""
		}
	}
	return r
}

func (r *risingReader) next(ctx context.Context) (entry, bool, error) {
	if len(r.buf) == 0 {
		if r.min == "" {
			return entry{}, false, nil
		}
		buf, from, err := r.log.readBatch(ctx, r.tenant, r.min, r.batch, true)
		if err != nil {
			return entry{}, false, err
		}
		if r.buf, r.min = buf, from; len(buf) == 0 {
			return entry{}, false, nil
		}
	}
	e, err := r.log.takeEntry(ctx, r.tenant, &r.buf)
	if err != nil {
		return entry{}, false, err
	}
	// An unreadable record has no CreationTime to stop at: it is passed
	// to the caller, and the next readable one decides.
	if !r.stopAfter.IsZero() && !e.bad && datedAfter(e.rec.CreationTime.Time, e.pos.id, r.stopAfter) {
		r.buf, r.min = nil, ""
		return entry{}, false, nil
	}
	return e, true, nil
}

// readBatch reads up to n entries of tenant's stream from the id from on,
// oldest first when rising, else newest first, and returns them with the
// id the next batch starts at ("" when the stream has no more).
func (l *Log) readBatch(ctx context.Context, tenant, from string, n int64, rising bool) ([]redis.XMessage, string, error) {
	var msgs []redis.XMessage
	var err error
	if rising {
		msgs, err = l.rdb.XRangeN(ctx, keys.Audit(tenant), from, "+", n).Result()
	} else {
		msgs, err = l.rdb.XRevRangeN(ctx, keys.Audit(tenant), from, "-", n).Result()
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return batchOf(tenant, msgs, n, rising)
}

// batchOf returns msgs, a batch of at most n entries of tenant's stream
// read from one end, and the id the next batch is read from ("" when the
// stream has no more).
func batchOf(tenant string, msgs []redis.XMessage, n int64, rising bool) ([]redis.XMessage, string, error) {
	if int64(len(msgs)) < n {
		return msgs, "", nil
	}
	last, err := parseID(msgs[len(msgs)-1].ID)
	if err != nil {
		return nil, "", fmt.Errorf("audit: stream of %s: %w", tenant, err)
	}
	step, ok := last.below()
	if rising {
		step, ok = last.above()
	}
	if !ok {
		return msgs, "", nil
	}
	return msgs, step.String(), nil
}

// fillAll reads the first batch of every reader that has none, in one
// round trip.
func fillAll(ctx context.Context, readers []*streamReader) error {
	var rs []*streamReader
	for _, r := range readers {
		if len(r.buf) == 0 && r.max != "" && r.seekTo.IsZero() {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	cmds := make([]*redis.XMessageSliceCmd, len(rs))
	if _, err := rs[0].log.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range rs {
			cmds[i] = p.XRevRangeN(ctx, keys.Audit(r.tenant), r.max, "-", r.batch)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for i, r := range rs {
		buf, from, err := batchOf(r.tenant, cmds[i].Val(), r.batch, false)
		if err != nil {
			return err
		}
		if r.buf, r.max = buf, from; len(buf) == 0 {
			r.max = ""
		}
	}
	return nil
}

// takeEntry removes the first of tenant's buffered entries from buf and
// reads it.
func (l *Log) takeEntry(ctx context.Context, tenant string, buf *[]redis.XMessage) (entry, error) {
	m := (*buf)[0]
	(*buf)[0] = redis.XMessage{}
	*buf = (*buf)[1:]
	id, err := parseID(m.ID)
	if err != nil {
		return entry{}, fmt.Errorf("audit: stream of %s: %w", tenant, err)
	}
	pos := position{id: id, tenant: tenant}
	rec, err := l.decode(ctx, tenant, m)
	if errors.Is(err, fault.ErrUnreadable) {
		// Its place in the log is known, its content not: the reader
		// hands it on for the caller to name (a search) or stop at (an
		// export).
		return entry{pos: pos, bad: true}, nil
	}
	if err != nil {
		return entry{}, err
	}
	return entry{pos: pos, rec: rec}, nil
}

// streamReader reads one tenant's stream newest first, in batches.
type streamReader struct {
	log        *Log
	tenant     string
	max        string // the highest id of the next batch; "" when done
	batch      int64
	buf        []redis.XMessage
	stopBefore time.Time
	seekTo     time.Time // before the first read, seek to the range's end
}

// start places the reader just after pos in the newest-first order.
func (r *streamReader) start(pos position) {
	id := pos.id
	if r.tenant >= pos.tenant {
		// pos itself and, for a tenant ordered after it, an entry with
		// the same id come before: start strictly below.
		var ok bool
		if id, ok = id.below(); !ok {
			r.max = ""
			return
		}
	}
	r.max = id.String()
}

// seek lowers where the reader starts to the end of the date range:
// below it, every entry was created after seekTo.
//
// It bisects the stream's ids by the date of the entry at or below each
// probe. Records are appended in CreationTime order within ClockSkew (the
// assumption stopBefore makes too), and seekTo is To plus ClockSkew, so
// when the entry F at or below a probe is dated after seekTo, by its
// CreationTime and by its stream id (datedAfter: a record a replica
// stamped a year ahead is no such F), every entry appended after F was
// created after To: the scan can start at F. It needs about log2(the
// log's span in ms) round trips of one entry each (35 for a year), against
// reading every record newer than the range, and is correct wherever the
// bisection stops. seekAll runs the seeks of many readers side by side.
func (r *streamReader) seek(ctx context.Context) error {
	return seekAll(ctx, []*streamReader{r})
}

// seekAll seeks readers (streamReader.seek) side by side: each round trip
// is one pipeline holding the probe of every reader still bisecting, so
// a search of every tenant costs about the round trips of one tenant's
// seek. One after another, the first page of a date range over every
// tenant took some 34 round trips a tenant (a month's span): 340 000 at
// the 10 000 tenants mergeBudget is sized for, far past any call's
// deadline. seekTo is cleared, as done.
func seekAll(ctx context.Context, readers []*streamReader) error {
	var ss []*seeking
	for _, r := range readers {
		if !r.seekTo.IsZero() && r.max != "" {
			// (A cursor at the first possible id has nothing below it,
			// and "" is no id Redis takes.)
			ss = append(ss, &seeking{r: r, to: r.seekTo})
		}
		r.seekTo = time.Time{}
	}
	if len(ss) == 0 {
		return nil
	}
	rdb := ss[0].r.log.rdb // the readers of one search share their log
	// The newest entry below where each reader starts, and the oldest.
	first := make([][2]*redis.XMessageSliceCmd, len(ss))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range ss {
			key := keys.Audit(s.r.tenant)
			first[i] = [2]*redis.XMessageSliceCmd{p.XRevRangeN(ctx, key, s.r.max, "-", 1), p.XRangeN(ctx, key, "-", "+", 1)}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	active := ss[:0]
	for i, s := range ss {
		more, err := s.bounds(ctx, first[i][0].Val(), first[i][1].Val())
		if err != nil {
			return err
		}
		if more {
			active = append(active, s)
		}
	}
	for len(active) > 0 {
		probes := make([]*redis.XMessageSliceCmd, len(active))
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, s := range active {
				s.mid = s.loMs + (s.hi.ms-s.loMs)/2
				probes[i] = p.XRevRangeN(ctx, keys.Audit(s.r.tenant), streamID{s.mid, ^uint64(0)}.String(), "-", 1)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		next := active[:0]
		for i, s := range active {
			more, err := s.step(ctx, probes[i].Val())
			if err != nil {
				return err
			}
			if more {
				next = append(next, s)
			}
		}
		active = next
	}
	return nil
}

// seeking is one reader's seek under way: the entry hi is dated after
// seekTo, and every probe at or below loMs met one that is not.
type seeking struct {
	r    *streamReader
	to   time.Time // the reader's seekTo
	hi   streamID
	loMs uint64
	mid  uint64 // the probe under way
}

// created is the CreationTime and id of m, an entry of the reader's
// stream.
func (s *seeking) created(ctx context.Context, m redis.XMessage) (time.Time, streamID, error) {
	id, err := parseID(m.ID)
	if err != nil {
		return time.Time{}, id, fmt.Errorf("audit: stream of %s: %w", s.r.tenant, err)
	}
	rec, err := s.r.log.decode(ctx, s.r.tenant, m)
	return rec.CreationTime.Time, id, err
}

// A probe that lands on an unreadable record has no time to bisect by;
// the seek stops where it stands, which is correct wherever it stops (the
// scan only reads more).
func stopsSeek(err error) bool { return errors.Is(err, fault.ErrUnreadable) }

// bounds starts the bisection from the newest entry where the reader
// starts and the stream's oldest, and reports whether it goes on.
func (s *seeking) bounds(ctx context.Context, newest, oldest []redis.XMessage) (bool, error) {
	if len(newest) == 0 {
		return false, nil
	}
	at, hi, err := s.created(ctx, newest[0])
	if stopsSeek(err) {
		return false, nil
	}
	if err != nil || !datedAfter(at, hi, s.to) {
		return false, err
	}
	if len(oldest) == 0 {
		return false, nil
	}
	at, lo, err := s.created(ctx, oldest[0])
	if stopsSeek(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if datedAfter(at, lo, s.to) {
		s.r.max = "" // the oldest entry is past the range: so is every other
		return false, nil
	}
	s.hi, s.loMs = hi, lo.ms
	return s.settle(), nil
}

// step takes the answer of the probe at s.mid and reports whether the
// bisection goes on.
func (s *seeking) step(ctx context.Context, got []redis.XMessage) (bool, error) {
	if len(got) == 0 {
		return s.done(), nil // trimmed meanwhile: start where we are
	}
	at, id, err := s.created(ctx, got[0])
	if stopsSeek(err) {
		return s.done(), nil
	}
	if err != nil {
		return false, err
	}
	if datedAfter(at, id, s.to) {
		s.hi = id
	} else {
		s.loMs = s.mid
	}
	return s.settle(), nil
}

// settle ends the bisection once nothing is left between its bounds.
func (s *seeking) settle() bool {
	if s.hi.ms-s.loMs > 1 {
		return true
	}
	return s.done()
}

// done starts the reader at the bisection's hi.
func (s *seeking) done() bool {
	s.r.max = s.hi.String()
	return false
}

func (r *streamReader) next(ctx context.Context) (entry, bool, error) {
	if !r.seekTo.IsZero() {
		err := r.seek(ctx)
		r.seekTo = time.Time{} // once
		if err != nil {
			return entry{}, false, err
		}
	}
	if len(r.buf) == 0 {
		if r.max == "" {
			return entry{}, false, nil
		}
		buf, from, err := r.log.readBatch(ctx, r.tenant, r.max, r.batch, false)
		if err != nil {
			return entry{}, false, err
		}
		if r.buf, r.max = buf, from; len(buf) == 0 {
			return entry{}, false, nil
		}
	}
	e, err := r.log.takeEntry(ctx, r.tenant, &r.buf)
	if err != nil {
		return entry{}, false, err
	}
	if !r.stopBefore.IsZero() && !e.bad && datedBefore(e.rec.CreationTime.Time, e.pos.id, r.stopBefore) {
		r.buf, r.max = nil, ""
		return entry{}, false, nil
	}
	return e, true, nil
}

// merger merges tenants' streams newest first (a k-way merge by entry id,
// ties by tenant), or oldest first for heads.rising.
type merger struct {
	pending []iterator // not read yet
	heads   headHeap
	started bool // the readers' seeks and first batches are done (next)
}

type head struct {
	e entry
	r iterator
}

type headHeap struct {
	hs     []head
	rising bool // oldest on top
}

func (h *headHeap) Len() int { return len(h.hs) }
func (h *headHeap) Less(i, j int) bool {
	if h.rising {
		return h.hs[i].e.pos.less(h.hs[j].e.pos)
	}
	return h.hs[j].e.pos.less(h.hs[i].e.pos) // newest on top
}
func (h *headHeap) Swap(i, j int) { h.hs[i], h.hs[j] = h.hs[j], h.hs[i] }
func (h *headHeap) Push(x any)    { h.hs = append(h.hs, x.(head)) }
func (h *headHeap) Pop() any {
	old := h.hs
	x := old[len(old)-1]
	h.hs = old[:len(old)-1]
	return x
}

func (m *merger) next(ctx context.Context) (entry, bool, error) {
	if !m.started {
		// The first entry of every tenant, read side by side: one
		// tenant after another, a page of a search of every tenant cost a
		// round trip a tenant at the least.
		m.started = true
		var rs []*streamReader
		for _, it := range m.pending {
			if r, ok := it.(*streamReader); ok {
				rs = append(rs, r)
			}
		}
		if err := seekAll(ctx, rs); err != nil {
			return entry{}, false, err
		}
		if err := fillAll(ctx, rs); err != nil {
			return entry{}, false, err
		}
	}
	for _, r := range m.pending {
		e, ok, err := r.next(ctx)
		if err != nil {
			return entry{}, false, err
		}
		if ok {
			heap.Push(&m.heads, head{e, r})
		}
	}
	m.pending = nil
	if m.heads.Len() == 0 {
		return entry{}, false, nil
	}
	top := heap.Pop(&m.heads).(head)
	m.pending = append(m.pending, top.r)
	return top.e, true, nil
}

// appendedWithin reports whether the entry id, whose record can't be read,
// may belong to q's date range: whether the time Redis appended it, the
// id's milliseconds, is within the range widened by ClockSkew. A record is
// stamped a moment before it is appended, by a clock that may differ from
// Redis's by that much.
func appendedWithin(q Query, id streamID) bool {
	at := time.UnixMilli(int64(id.ms))
	switch {
	case q.fromBound() && at.Before(q.From.Add(-ClockSkew)):
		return false
	case q.toBound() && at.After(q.To.Add(ClockSkew)):
		return false
	}
	return true
}

// Cutting a scan short. A scan stops, or seeks, at an entry by its date
// on the assumption that every entry on the far side of it is dated on the
// far side too: entries are appended in CreationTime order within
// ClockSkew. One replica whose clock ran ahead or behind (a bad NTP step,
// a VM restored with a wrong clock) breaks that for the records it
// stamped, and a scan that stopped at one of them hid every record the
// other replicas wrote beyond it, however right their times. The stream
// id's time is Redis's one clock and never goes back, so an entry cuts a
// scan only when its stream id agrees with its CreationTime: then the
// entries beyond it, stamped within ClockSkew of their own stream ids,
// are beyond the bound too. A misdated record is still shown where its
// CreationTime places it, when the scan reaches it; it no longer decides
// where the scan ends. Where the two clocks disagree for every record
// (Redis's clock far off Lockbox's), scans only read further.

// time is the time in a stream entry id: Redis's clock when it was added.
func (s streamID) time() time.Time { return time.UnixMilli(int64(min(s.ms, math.MaxInt64))) }

// datedBefore reports whether the entry id, created at created, is before
// t both by its CreationTime and by its stream id.
func datedBefore(created time.Time, id streamID, t time.Time) bool {
	return created.Before(t) && id.time().Before(t)
}

// datedAfter reports whether an entry created at created is after t both
// by its CreationTime and by its stream id.
func datedAfter(created time.Time, id streamID, t time.Time) bool {
	return created.After(t) && id.time().After(t)
}

// listed reports whether e goes on a page of q. An unreadable record's
// fields are unknown: a search names it wherever its scan passes it, a
// request's trail (ofRequest) only when Redis appended it within the
// request's span, which the scan reads ClockSkew past on either side.
func listed(q Query, e entry, provider, ofRequest bool) bool {
	if !e.bad {
		return matches(q, e.rec, provider)
	}
	return !ofRequest || appendedWithin(q, e.pos.id)
}

// matches reports whether r passes q's filters.
func matches(q Query, r record.Record, provider bool) bool {
	switch {
	case q.fromBound() && r.CreationTime.Before(q.From):
		return false
	case q.toBound() && r.CreationTime.After(q.To):
		return false
	case q.Operation != "" && !strings.EqualFold(q.Operation, r.Operation):
		return false
	case q.RequestID != "" && q.RequestID != r.LockboxRequestId:
		return false
	case q.User != "" && !strings.EqualFold(q.User, r.UserId) &&
		!(provider && r.ProviderUserId != "" && strings.EqualFold(q.User, r.ProviderUserId)):
		return false
	}
	return true
}

// encodeCursor turns a position into an opaque cursor of q's search: the
// entry id, the tenant for a search of every tenant, and the checksum of
// q's filters (filtersSum).
func encodeCursor(p position, q Query) string {
	return encodeCursorText(cursorText(p, q.Tenant == ""), q)
}

// cursorText is the text of a cursor without the checksum of its
// filters: all a cursor held before they were bound to it.
func cursorText(p position, allTenants bool) string {
	s := p.id.String()
	if allTenants {
		s += "/" + p.tenant
	}
	return s
}

// encodeCursorText appends the checksum of q's filters to text.
func encodeCursorText(text string, q Query) string {
	return base64.RawURLEncoding.EncodeToString([]byte(text + filtersSep + filtersSum(q)))
}

// newerPrefix starts the text of a cursor of the records newer than its
// position (Page.Prev). No Next cursor starts so, so every cursor handed
// out before reads as it did, and a server from before refuses one as
// any cursor it did not return. lockboxctl tells a Prev cursor by it
// (cli.newerCursor), the page saying nothing of its direction, to read on
// in that direction: a cursor of another form reads there as a Next one.
const newerPrefix = "n:"

// encodeNewerCursor is the cursor of the records newer than p.
func encodeNewerCursor(p position, q Query) string {
	return encodeCursorText(newerPrefix+cursorText(p, q.Tenant == ""), q)
}

// filtersSep ends a cursor's position and starts the checksum of its
// search's filters; no id or tenant holds it.
const filtersSep = "~"

// filtersSum is the checksum of q's filters, normalized as the search
// matches them (User and Operation case-insensitively, the bounds as
// instants): the tenant (the effective one, a tenant user's own filled
// in), From, To, User, Operation and RequestID; of a request's trail, the
// tenant and the request alone (Query.trail). A cursor carries it so
// one used with other filters is refused (errCursorFilters) rather than
// quietly continuing another listing from its place. No secret and no
// signature: a cursor is only a place in the log, and every record after
// it is filtered and checked against what the caller may read exactly as
// in a search without one.
func filtersSum(q Query) string {
	bound := func(has bool, t time.Time) string {
		if !has {
			return ""
		}
		return "@" + t.UTC().Format(time.RFC3339Nano)
	}
	h := sha256.New()
	fields := []string{"audit-filters-1", q.Tenant, bound(q.fromBound(), q.From), bound(q.toBound(), q.To),
		strings.ToLower(q.User), strings.ToLower(q.Operation), q.RequestID}
	if q.trail {
		fields = []string{"request-trail-1", q.Tenant, q.RequestID}
	}
	for _, f := range fields {
		// Length-prefixed, so no two filter sets hash the same input.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// decodeCursor returns the position of a cursor of q's search and whether
// it leads to the newer records. It refuses (errBadCursor) anything
// encodeCursor or encodeNewerCursor would not have produced for this kind
// of search, and (errCursorFilters) a cursor returned for other filters.
// A cursor without the filters' checksum, as every cursor was before they
// were bound to it, is taken as it was then: one handed out before an
// upgrade, or by a replica not yet upgraded, goes on working.
func decodeCursor(c string, q Query) (position, bool, error) {
	allTenants := q.Tenant == ""
	if len(c) > 200 {
		return position{}, false, errBadCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil {
		return position{}, false, errBadCursor
	}
	full, sum, bound := strings.Cut(string(b), filtersSep)
	text, newer := strings.CutPrefix(full, newerPrefix)
	s, tenant, hasTenant := strings.Cut(text, "/")
	if hasTenant != allTenants {
		return position{}, false, errBadCursor
	}
	if hasTenant && keys.ValidTenant(tenant) != nil {
		return position{}, false, errBadCursor
	}
	id, err := parseID(s)
	if err != nil {
		return position{}, false, errBadCursor
	}
	p := position{id: id, tenant: tenant}
	canonical := cursorText(p, allTenants)
	if newer {
		canonical = newerPrefix + canonical
	}
	if bound {
		if len(sum) != 16 || strings.Trim(sum, "0123456789abcdef") != "" {
			return position{}, false, errBadCursor
		}
		canonical += filtersSep + sum
	}
	// The whole cursor, not only its text: decoding skips line breaks.
	if base64.RawURLEncoding.EncodeToString([]byte(canonical)) != c {
		return position{}, false, errBadCursor
	}
	if !bound && q.trail {
		// A trail's cursors were always bound to their filters; a search
		// takes an unbound one from before they were.
		return position{}, false, errBadCursor
	}
	if bound && sum != filtersSum(q) {
		return position{}, false, errCursorFilters
	}
	return p, newer, nil
}

// parseUint parses a canonical decimal (no sign, no leading zeros).
func parseUint(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return strconv.ParseUint(s, 10, 64)
}
