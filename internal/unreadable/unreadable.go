// Package unreadable reports the stored records Lockbox reads that do not
// decode: a request cut short by an old version's partial write, a value
// set by hand during an incident, a flipped bit, a tenant's registry entry
// or Customer Lockbox settings. A listing that meets one shows the rest
// with a placeholder in its place, and a read of that record alone fails
// with record_unreadable; either way this package is how operators hear of
// it: one ERROR line naming the key and the decode error (never the
// content, which may hold personal data) and a counter.
package unreadable

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Kinds of record, the values of the counter's kind label.
const (
	KindRequest = "request"
	KindAudit   = "audit"
	// KindTenant is a tenant's registry entry: named by the tenant list,
	// and failing with record_unreadable every other read of it (its
	// organization id read for an audit record included).
	KindTenant = "tenant"
	// KindSettings is a tenant's Customer Lockbox settings, which no
	// listing shows: every read fails with record_unreadable, and the
	// proxy denies the tenant's calls (store_unavailable). Without this
	// kind nothing told the alert of them.
	KindSettings = "settings"
)

// Message is what every view shows in place of a record that does not
// decode.
const Message = "cannot be read"

// MetricName is the counter of reads that met a record that does not
// decode, by kind.
const MetricName = "lockbox_unreadable_records_total"

// Reporter logs and counts unreadable records. A nil Reporter reports
// nothing.
type Reporter struct {
	counter *prometheus.CounterVec
	log     *slog.Logger
}

// New returns a Reporter counting in reg (nil registers nothing) and
// logging to logger (nil logs nothing). The grants store, the audit log and
// the tenant registry each make one over the server's one registry, so the
// counter is registered by the first and shared by the others.
func New(reg prometheus.Registerer, logger *slog.Logger) (*Reporter, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricName,
		Help: "Reads that met a stored record that does not decode (named as unreadable in a listing, refused with record_unreadable alone), by kind (request, audit, tenant, settings); each is also logged at error with its key.",
	}, []string{"kind"})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			if !ok {
				return nil, err
			}
			if c, ok = are.ExistingCollector.(*prometheus.CounterVec); !ok {
				return nil, err
			}
		}
	}
	// Every series exists from start-up, so an alert on their rate has a
	// zero to compare with.
	c.WithLabelValues(KindRequest)
	c.WithLabelValues(KindAudit)
	c.WithLabelValues(KindTenant)
	c.WithLabelValues(KindSettings)
	return &Reporter{counter: c, log: logger}, nil
}

// Report counts one read of the record at key, of kind, that did not
// decode with err, and logs it at error. attrs add fields (tenant, ids).
func (r *Reporter) Report(ctx context.Context, kind, key string, err error, attrs ...any) {
	if r == nil {
		return
	}
	r.counter.WithLabelValues(kind).Inc()
	r.log.ErrorContext(ctx, "stored record cannot be read; shown as unreadable",
		append([]any{"kind", kind, "key", key, "error", err}, attrs...)...)
}

// WrongType reports whether err is Redis refusing a command for the type
// of the key (WRONGTYPE): a record's key that holds a hash, a list or the
// like where a string belongs, set by hand or by a broken write. It is the
// record being unreadable, as one that does not decode is, not the store
// being unavailable: no retry reads it, and a reader that took it for an
// outage would stop at it, every visit, and no alert would name it.
func WrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE ")
}
