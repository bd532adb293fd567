// Package audit stores Lockbox's audit records (their shape and encodings
// are package audit/record) durably: one Redis stream per tenant, appended
// inside the same transaction as the change it records, so a change and its
// record are committed together or not at all. It searches, exports and
// verifies them, and forwards them to a SIEM.
//
// It knows nothing of HTTP; callers decide who may read which view.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// ErrUnavailable means the audit store could not be read or written.
var ErrUnavailable = fault.ErrUnavailable

// field is the stream entry field that holds the record's JSON.
const field = "r"

// Log reads and writes tenants' audit streams.
type Log struct {
	rdb redis.UniversalClient
	now func() time.Time

	// orgIDs caches each tenant's organization GUID (tenant → string).
	// A tenant's GUID never changes once it is onboarded, so an entry is
	// never invalidated, and the proxy's hot path reads Redis for it once
	// per tenant and process. Misses are not cached: a tenant onboarded
	// later is found on its first record.
	orgIDs sync.Map

	// dir says who a tenant's users are, for the read rule (check), and
	// whether a tenant is onboarded, for verify; set by
	// SetTenantDirectory before serving.
	dir TenantDirectory

	// siemTrims reports records Trim removes unread by the SIEM
	// forwarders; nil until ReportSIEMTrims.
	siemTrims *siemTrimReport

	// retention reports the unreadable and future-dated records Trim
	// removes; nil until ReportRetention.
	retention *retentionReport

	// keepFor is the audit retention in force, which verification judges
	// the chain's anchor by once keepForSet (SetRetention); 0 keeps
	// records forever. Unset, an anchor is taken at its word.
	keepFor    time.Duration
	keepForSet bool

	// sealIssuer and sealKeys check the chains' seals (SetSealKeys);
	// without them every seal is unverifiable.
	sealIssuer string
	sealKeys   func() *grantsig.KeySet

	// unreadable reports the records searches and exports meet that do
	// not decode, and the registry entries OrganizationID can't use; nil
	// (reporting nothing) until ReportUnreadable.
	unreadable *unreadable.Reporter
}

// ReportUnreadable makes the log count, in lockbox_unreadable_records_total
// {kind="audit"} registered with reg (shared with the requests' series),
// and log at error to logger with the tenant and stream id, each record a
// read meets that does not decode, and in {kind="tenant"} each read of a
// tenant's registry entry for its organization id that can't use it. Call
// it before serving.
func (l *Log) ReportUnreadable(reg prometheus.Registerer, logger *slog.Logger) error {
	r, err := unreadable.New(reg, logger)
	if err != nil {
		return fmt.Errorf("audit: metrics: %w", err)
	}
	l.unreadable = r
	return nil
}

// NewLog returns a Log over rdb. now stamps records; nil means time.Now.
func NewLog(rdb redis.UniversalClient, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{rdb: rdb, now: now}
}

// TenantDirectory answers the audit log's questions about tenants: who a
// tenant's users are (the read rule) and whether it is onboarded (an
// onboarded tenant's chain is never empty). Tenants are another package's
// business (which imports this one), so the log declares only the
// questions it asks. *tenants.Store implements it.
type TenantDirectory interface {
	// IsUser reports whether user is a user of tenant: user@ one of the
	// domains the tenant registered; false for a tenant that is not
	// onboarded. An error is returned, never taken as an answer.
	IsUser(ctx context.Context, tenant, user string) (bool, error)
	// Onboarded returns nil for an onboarded tenant, an error wrapping
	// fault.ErrNotFound for one that is not, or the error that kept it
	// from knowing.
	Onboarded(ctx context.Context, tenant string) error
}

// SetTenantDirectory sets who answers the log's questions about tenants.
// Until one is set, every read as a tenant user, and every verification,
// fails with an error (the provider's audit readers need none to search).
// It is a setter rather than a NewLog argument because the tenant registry
// writes its records through this Log; set it before serving.
func (l *Log) SetTenantDirectory(d TenantDirectory) { l.dir = d }

// Prepare fills what the writer leaves to the log: Id, CreationTime (UTC,
// whole seconds), ResultStatus, UserKey (= UserId) and Version.
func (l *Log) Prepare(r record.Record) record.Record {
	if r.Id == "" {
		r.Id = uuid.Must(uuid.NewV7()).String()
	}
	if r.CreationTime.IsZero() {
		r.CreationTime = record.Time{Time: l.now()}
	}
	r.CreationTime = record.TimeOf(r.CreationTime.Time)
	if r.LockboxApprovalTime != nil {
		t := record.TimeOf(r.LockboxApprovalTime.Time)
		r.LockboxApprovalTime = &t
	}
	if r.ResultStatus == "" {
		r.ResultStatus = record.ResultSucceeded
	}
	if r.UserKey == "" {
		r.UserKey = r.UserId
	}
	if r.Version == 0 {
		r.Version = record.SchemaVersion
	}
	return r
}

// orgIDCached reports whether OrganizationID answers for tenant without
// reading Redis.
func (l *Log) orgIDCached(tenant string) bool {
	_, ok := l.orgIDs.Load(tenant)
	return ok
}

// OrganizationID returns tenant's organization GUID from its registry
// entry, read from Redis once per tenant and process. A tenant without a
// registry entry has none: the error wraps fault.ErrNotFound (code
// tenant_not_found). An entry that does not decode, or holds no valid
// GUID, wraps fault.ErrUnreadable (code record_unreadable: see
// unreadableEntry).
func (l *Log) OrganizationID(ctx context.Context, tenant string) (string, error) {
	if id, ok := l.orgIDs.Load(tenant); ok {
		return id.(string), nil
	}
	if err := keys.ValidTenant(tenant); err != nil {
		return "", fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	b, err := l.rdb.Get(ctx, keys.Tenant(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return "", fault.New(fault.ErrNotFound, "tenant_not_found",
			"tenant %s is not onboarded: its audit records would have no OrganizationId", tenant)
	}
	if err != nil {
		return "", fmt.Errorf("%w: audit: organization id of %s: %w", ErrUnavailable, tenant, err)
	}
	// The registry is the tenants package's; only its organization_id
	// matters here, and audit must not import tenants (tenants writes
	// audit records).
	var entry struct {
		OrganizationID string `json:"organization_id"`
	}
	if err := json.Unmarshal(b, &entry); err != nil || !record.IsGUID(entry.OrganizationID) {
		return "", l.unreadableEntry(ctx, tenant, entry.OrganizationID, err)
	}
	l.orgIDs.Store(tenant, entry.OrganizationID)
	return entry.OrganizationID, nil
}

// unreadableEntry is OrganizationID's error for tenant's registry entry
// that does not decode (cause) or holds no valid organization id (orgID).
// No retry reads it, so it is not the store failing (503, which sends
// clients round in circles): it is fault.ErrUnreadable, code
// record_unreadable, named as the tenant registry names it, so a call
// that writes a record for the tenant on a replica that has not cached
// the GUID (a revocation, a cancellation) answers as every call that
// reads the entry does. The message names the record, never its content;
// the key and the cause are for the call's log line. It is counted and
// logged as every read that meets the entry counts it (kind "tenant"):
// the proxy's audited calls and the lifecycle's records read it here, and
// on a replica that had not cached the GUID nothing else told the alert.
// A failed read is not cached, so each read that fails counts once.
func (l *Log) unreadableEntry(ctx context.Context, tenant, orgID string, cause error) error {
	why := "its stored record does not decode"
	if cause == nil {
		why = "it holds no valid organization id"
		cause = fmt.Errorf("organization_id %q is not a GUID", orgID)
	}
	l.unreadable.Report(ctx, unreadable.KindTenant, keys.Tenant(tenant), cause, "tenant", tenant)
	fe := fault.New(fault.ErrUnreadable, "record_unreadable", "the registry entry of tenant %s %s: %s", tenant, unreadable.Message, why)
	return fmt.Errorf("audit: %s: %w: %v", keys.Tenant(tenant), fe, cause)
}

// complete checks r before it is written and fills its OrganizationId from
// the registry when the writer left it empty. Only the writer of a tenant's
// registry entry (onboarding, in the transaction that creates it) knows
// the GUID before it is readable, and sets it.
func (l *Log) complete(ctx context.Context, r record.Record) (record.Record, error) {
	if err := keys.ValidTenant(r.LockboxTenant); err != nil {
		return r, fmt.Errorf("audit: LockboxTenant: %w", err)
	}
	switch {
	case r.Operation == "":
		return r, errors.New("audit: a record needs an Operation")
	case r.UserId == "":
		return r, errors.New("audit: a record needs a UserId")
	case !r.RecordType.Known():
		return r, fmt.Errorf("audit: RecordType %d is not one Lockbox writes", r.RecordType)
	case !r.UserType.Valid():
		return r, fmt.Errorf("audit: UserType %d is not one of the schema's", r.UserType)
	}
	if r.OrganizationId == "" {
		id, err := l.OrganizationID(ctx, r.LockboxTenant)
		if err != nil {
			return r, err
		}
		r.OrganizationId = id
	} else if !record.IsGUID(r.OrganizationId) {
		return r, fmt.Errorf("audit: OrganizationId %q is not the tenant's GUID", r.OrganizationId)
	}
	return l.Prepare(r), nil
}

// AppendTx queues r on the tenant's stream (r.LockboxTenant) inside the
// caller's transaction, so the record commits with the change it
// describes. It fails, queueing nothing, for a tenant without a registry
// entry: a record without its OrganizationId is never written.
func (l *Log) AppendTx(ctx context.Context, tx redis.Pipeliner, r record.Record) error {
	r, err := l.complete(ctx, r)
	if err != nil {
		return err
	}
	return queue(ctx, tx, r)
}

// Append writes r durably on its own and returns it as written.
func (l *Log) Append(ctx context.Context, r record.Record) (record.Record, error) {
	// Completed before the transaction, so the (cached) registry read is
	// not inside it and the returned record is the one written.
	r, err := l.complete(ctx, r)
	if err != nil {
		return record.Record{}, err
	}
	_, err = l.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error { return queue(ctx, tx, r) })
	if err != nil {
		return record.Record{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.Written(ctx, r.LockboxTenant)
	return r, nil
}

// Written tells the SIEM forwarder and retention (their schedules in
// internal/due) that tenant's stream got records. Callers of AppendTx call
// it after their transaction committed; Append does it itself. It is best
// effort: a lost mark delays forwarding until the next rescan, and the
// record itself is in the stream.
func (l *Log) Written(ctx context.Context, tenant string) {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = due.Set(mctx, l.rdb, tenant, due.AuditWritten(l.now())...)
}

// queue adds the append of the completed record r to tx.
func queue(ctx context.Context, tx redis.Pipeliner, r record.Record) error {
	appendScript.Eval(ctx, tx, []string{keys.Audit(r.LockboxTenant), keys.AuditHead(r.LockboxTenant)}, r.AppendJSON(nil))
	return nil
}

// List returns up to limit of the tenant's records, newest first.
func (l *Log) List(ctx context.Context, tenant string, limit int64) ([]record.Record, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return nil, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	msgs, err := l.rdb.XRevRangeN(ctx, keys.Audit(tenant), "+", "-", limit).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out := make([]record.Record, 0, len(msgs))
	for _, m := range msgs {
		r, err := l.decode(ctx, tenant, m)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// decode reads the record of a stream entry of tenant's log. A record
// written before Lockbox followed the common schema gets its tenant's
// GUID as OrganizationId, when the tenant has one.
func (l *Log) decode(ctx context.Context, tenant string, m redis.XMessage) (record.Record, error) {
	s, _ := m.Values[field].(string)
	r, err := record.Unmarshal(s)
	if err != nil {
		l.unreadable.Report(ctx, unreadable.KindAudit, keys.Audit(tenant), err, "tenant", tenant, "stream_id", m.ID)
		return record.Record{}, fault.New(fault.ErrUnreadable, "record_unreadable",
			"audit record %s of tenant %s %s", m.ID, tenant, unreadable.Message)
	}
	// Reading goes on without the GUID when Redis can't give it: the
	// record is still the tenant's, and hiding it would hide history.
	_ = l.completeLegacy(ctx, tenant, &r)
	return r, nil
}

// completeLegacy gives r, read from tenant's stream, when it was written
// before Lockbox followed the common schema, the tenant it lacks: its
// short name, and its GUID as OrganizationId, when the tenant has one.
// It returns the error (wrapping ErrUnavailable) when Redis could not say
// whether the tenant has one: the caller decides whether to go on without
// it. A tenant without a valid GUID is no error: the record never gets one.
func (l *Log) completeLegacy(ctx context.Context, tenant string, r *record.Record) error {
	if !r.Legacy() {
		return nil
	}
	if r.LockboxTenant == "" {
		r.LockboxTenant = tenant
	}
	if !record.IsGUID(r.OrganizationId) {
		id, err := l.OrganizationID(ctx, tenant)
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		if err == nil {
			r.OrganizationId = id
		}
	}
	return nil
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
