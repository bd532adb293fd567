package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// ErrUnavailable means the audit store could not be read or written.
var ErrUnavailable = fault.ErrUnavailable

// field is the stream entry field that holds the record's JSON.
const field = "r"

// Log reads and writes tenants' audit streams.
type Log struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// NewLog returns a Log over rdb. now stamps records; nil means time.Now.
func NewLog(rdb redis.UniversalClient, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{rdb: rdb, now: now}
}

// Prepare fills the record's Id, CreationTime (UTC) and ResultStatus when
// they are empty.
func (l *Log) Prepare(r Record) Record {
	if r.Id == "" {
		r.Id = uuid.Must(uuid.NewV7()).String()
	}
	if r.CreationTime.IsZero() {
		r.CreationTime = l.now()
	}
	r.CreationTime = r.CreationTime.UTC().Truncate(time.Millisecond)
	if r.ResultStatus == "" {
		r.ResultStatus = ResultSucceeded
	}
	return r
}

// AppendTx queues r on the tenant's stream inside the caller's transaction,
// so the record commits with the change it describes.
func (l *Log) AppendTx(ctx context.Context, tx redis.Pipeliner, r Record) error {
	if err := keys.ValidTenant(r.OrganizationId); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	b, err := json.Marshal(l.Prepare(r))
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	appendScript.Eval(ctx, tx, []string{keys.Audit(r.OrganizationId), keys.AuditHead(r.OrganizationId)}, string(b))
	return nil
}

// Append writes r durably on its own.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	r = l.Prepare(r)
	_, err := l.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error { return l.AppendTx(ctx, tx, r) })
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return r, nil
}

// List returns up to limit of the tenant's records, newest first.
func (l *Log) List(ctx context.Context, tenant string, limit int64) ([]Record, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return nil, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	msgs, err := l.rdb.XRevRangeN(ctx, keys.Audit(tenant), "+", "-", limit).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		s, _ := m.Values[field].(string)
		var r Record
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("audit: stream entry %s of %s is corrupt: %w", m.ID, tenant, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
