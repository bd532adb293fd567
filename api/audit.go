package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
	"github.com/lockbox-oss/lockbox/internal/writedeadline"
)

// auditFilters are the query parameters GET /v1/audit and
// GET /v1/audit/export share.
var auditFilters = []string{"tenant", "from", "to", "user", "operation", "request_id"}

// auditQuery reads the shared filters of q.
func auditQuery(q url.Values) (audit.Query, error) {
	aq := audit.Query{
		Tenant:    q.Get("tenant"),
		User:      q.Get("user"),
		Operation: q.Get("operation"),
		RequestID: q.Get("request_id"),
	}
	// An empty tenant (or any empty filter) was refused by query.
	// No tenant reads every tenant's log: the domain allows that to the
	// provider's audit readers only.

	// A bound given is a bound, also 0001-01-01T00:00:00Z: the zero
	// time, read as no bound, made to= of it return every record.
	for _, b := range []struct {
		name string
		dst  *time.Time
		set  *bool
	}{{"from", &aq.From, &aq.HasFrom}, {"to", &aq.To, &aq.HasTo}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := queryTime(b.name, v)
		if err != nil {
			return aq, err
		}
		*b.dst, *b.set = t, true
	}
	if aq.HasFrom && aq.HasTo && aq.To.Before(aq.From) {
		return aq, httperr.New(http.StatusBadRequest, "invalid_range", "to must not be before from")
	}
	return aq, nil
}

func (s *server) searchAudit(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q := r.URL.Query() // checked by the adapter against the route's params
	// The right comes before the filters: a caller who may not read the
	// log is told so, not what is wrong with a date or a limit.
	if err := s.mayReadAudit(r, p, q.Get("tenant")); err != nil {
		return err
	}
	aq, err := auditQuery(q)
	if err != nil {
		return err
	}
	aq.Cursor = q.Get("cursor")
	if aq.Limit, err = limit(q, audit.MaxLimit); err != nil {
		return err
	}
	page, err := s.cfg.Audit.Search(r.Context(), p, aq)
	if err != nil {
		return err
	}
	if page.Records == nil {
		page.Records = []record.Record{}
	}
	var bad []wire.UnreadableRecord
	for _, u := range page.Unreadable {
		bad = append(bad, wire.UnreadableRecord{StreamID: u.StreamID, Tenant: u.Tenant, Error: unreadable.Message})
	}
	return writeJSON(w, http.StatusOK, wire.RecordPage{Records: page.Records, NextCursor: page.Next, PrevCursor: page.Prev, Unreadable: bad})
}

// mayReadAudit returns the refusal (403, 404, or the store's failure) of
// a read of tenant's log by p, judged before the other filters are
// parsed. A tenant named wrong (400) is left to the read itself, which
// answers it as it did, after the filters' own mistakes.
func (s *server) mayReadAudit(r *http.Request, p identity.Principal, tenant string) error {
	err := s.cfg.Audit.CanRead(r.Context(), p, tenant)
	if status, _, _ := httperr.FromError(err); err != nil && status != http.StatusBadRequest {
		return err
	}
	return nil
}

// exportAudit streams every record of the filtered range as CSV (the
// columns of the Microsoft 365 audit log export) or JSON Lines.
//
// The status line goes out with the first record, so what fails before
// that (a refused query, a forbidden tenant, Redis down) is an ordinary
// error response. A failure after it can't change the status any more: the
// stream just ends early — for HTTP/1.1 chunked responses without the
// terminating chunk, so clients see a truncated body rather than a complete
// one — and the failure is logged. The export is not bound by the call's
// deadline (Config.Timeout), nor as a whole by the listener's WriteTimeout,
// so a large export is not cut off; a client that goes away ends it, and so
// does one that takes no bytes for the WriteTimeout (writedeadline).
func (s *server) exportAudit(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q := r.URL.Query() // checked by the adapter against the route's params
	// As for a search: the right before the filters and the format.
	if err := s.mayReadAudit(r, p, q.Get("tenant")); err != nil {
		return err
	}
	aq, err := auditQuery(q)
	if err != nil {
		return err
	}
	format := record.ExportCSV
	if v := q.Get("format"); v != "" {
		if format, err = record.ParseExportFormat(v); err != nil {
			return httperr.New(http.StatusBadRequest, "invalid_format", "format must be csv or jsonl")
		}
	}
	// Without a tenant, a tenant user exports its own.
	name := format.FileName(cmp.Or(aq.Tenant, p.TenantID))
	begin := func() {
		w.Header().Set("Content-Type", format.ContentType())
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		// The mux serves HEAD with this handler and net/http drops the
		// body: the export would read the whole range for nothing. HEAD
		// gets what GET would answer before its first record.
		if err := s.cfg.Audit.CheckRead(r.Context(), p, aq); err != nil {
			return err
		}
		begin()
		return nil
	}

	// Under the adapter's record.CallContext: past the call's deadline,
	// the export still ends when the client goes away.
	ctx, cancel := record.ExportContext(r.Context())
	defer cancel()
	// What the export would answer before its first record comes first:
	// a caller who may not read the log, or asks for a tenant never
	// onboarded, is told so, not 429 "retry when one has ended" (no retry
	// makes it pass), and is no long read refused.
	if err := s.cfg.Audit.CheckRead(ctx, p, aq); err != nil {
		return err
	}
	release, err := s.longRead(w, r, p)
	if err != nil {
		return err
	}
	defer release()
	// The listener's WriteTimeout would cut a long export; the export
	// moves it on as it goes, so only a client that stops taking bytes for
	// that long is cut.
	out := writedeadline.New(w, r)
	defer out.Close()
	x := record.NewExportWriter(out, format)
	x.Begin = begin
	x.Flush = out.Flush
	err = x.Finish(s.cfg.Audit.Export(ctx, p, aq, x.Write))
	if errors.Is(err, record.ErrExportCut) {
		s.log.ErrorContext(r.Context(), "audit export ended early",
			"trace_id", w.Header().Get(headerTraceID), "tenant", aq.Tenant, "records", x.Records(), "error", err)
		panic(http.ErrAbortHandler) // the client must see a cut stream, not a short one
	}
	return err
}

// requestActivity returns one page of the audit records tied to one
// lockbox request, newest first: the decisions on it and each operator
// action under it; and names the records of the page's stretch that do
// not decode, as a search's page does, since each may be one of them.
func (s *server) requestActivity(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q := r.URL.Query() // checked by the adapter against the route's params
	pg := grants.TrailPage{Cursor: q.Get("cursor")}
	var err error
	if pg.Limit, err = limit(q, audit.MaxLimit); err != nil {
		return err
	}
	tr, err := s.cfg.Requests.Trail(r.Context(), p, r.PathValue("id"), pg)
	if err != nil {
		return err
	}
	var bad []wire.UnreadableRecord
	for _, u := range tr.Unreadable {
		bad = append(bad, wire.UnreadableRecord{StreamID: u.StreamID, Tenant: u.Tenant, Error: unreadable.Message})
	}
	return writeJSON(w, http.StatusOK, wire.RecordPage{Records: tr.Records, NextCursor: tr.Next, PrevCursor: tr.Prev, Unreadable: bad})
}

// verifyAudit re-computes the tenant's audit hash chain and reports the
// first broken or missing record.
//
// Verification reads and hashes the tenant's whole log, which for millions
// of records takes longer than the call's deadline (Config.Timeout) and
// the listener's WriteTimeout; bound by them, a large log could never be
// verified. Like an export, it runs until it is done or its client goes
// away, and moves the write deadline on meanwhile. It answers only once
// the whole chain was read: a verification cut short is an error, never a
// partial verdict.
//
// since_seal is a seal of the chain the caller kept (the seal_token of an
// earlier answer): the chain is checked against it as against the stored
// seal, and a bad one is refused before anything is read, HEAD included.
func (s *server) verifyAudit(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q := r.URL.Query() // checked by the adapter against the route's params
	tenant, since := q.Get("tenant"), q.Get("since_seal")
	if r.Method == http.MethodHead {
		// The mux serves HEAD with this handler and net/http drops the
		// body: the verification would read and hash the whole log, with
		// no deadline, for nothing. HEAD gets what GET would answer
		// before it reads the chain, as for an export.
		if err := s.cfg.Audit.CheckVerifySince(r.Context(), p, tenant, since); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// Under the adapter's record.CallContext: past the call's deadline,
	// the verification still ends when the client goes away.
	ctx, cancel := record.ExportContext(r.Context())
	defer cancel()
	// As for an export: a verification that could never run is answered
	// for what it is before the bound on long reads is judged.
	if err := s.cfg.Audit.CheckVerifySince(ctx, p, tenant, since); err != nil {
		return err
	}
	release, err := s.longRead(w, r, p)
	if err != nil {
		return err
	}
	defer release()
	out := writedeadline.New(w, r)
	defer out.Close()
	v, err := s.cfg.Audit.VerifySince(ctx, p, tenant, since)
	// The answer, an error's too, gets a whole WriteTimeout from here.
	out.Close()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireVerification(v))
}

// longRead takes a slot of Config.LongReads for an export or a
// verification of p, which runs until it is done or its client leaves:
// beyond the bound it is 429 too_many_reads, before it reads anything.
// The caller must call release when the read has ended, however it ended.
func (s *server) longRead(w http.ResponseWriter, r *http.Request, p identity.Principal) (release func(), err error) {
	release, err = s.cfg.LongReads.Acquire(p)
	if err == nil {
		return release, nil
	}
	s.log.WarnContext(r.Context(), "audit read refused: too many at once",
		"trace_id", w.Header().Get(headerTraceID), "user", p.Subject, "tenant", p.TenantID, "error", err)
	w.Header().Set("Retry-After", readlimit.RetryAfter)
	if errors.Is(err, readlimit.ErrCallerBusy) {
		return nil, httperr.New(http.StatusTooManyRequests, "too_many_reads",
			"you already run %d audit exports or verifications at once, the most one caller may; retry when one has ended",
			s.cfg.LongReads.PerCaller())
	}
	return nil, httperr.New(http.StatusTooManyRequests, "too_many_reads",
		"this server already runs %d audit exports or verifications at once, the most it runs; retry later",
		s.cfg.LongReads.Total())
}
