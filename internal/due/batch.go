package due

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batch marks tenants in the background, at most once per tenant and
// flush: for writers on a hot path (the proxy's audit records), which must
// not pay a round trip per call for it. Add costs a map read and an atomic
// load once a tenant is known.
//
// A mark still waiting when the process dies is lost, which delays the
// job's visit until Rescan repairs the schedule; the work itself (the
// record in the tenant's stream) is not lost.
type Batch struct {
	rdb   redis.UniversalClient
	now   func() time.Time
	marks func(now time.Time) []Mark
	log   *slog.Logger
	seen  sync.Map // tenant → *atomic.Bool (marked since the last flush)
	dirty atomic.Bool
}

// NewBatch returns a Batch writing marks(now) for each tenant added.
func NewBatch(rdb redis.UniversalClient, now func() time.Time, log *slog.Logger, marks func(now time.Time) []Mark) *Batch {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Batch{rdb: rdb, now: now, marks: marks, log: log}
}

// Add asks for tenant to be marked at the next flush.
func (b *Batch) Add(tenant string) {
	v, ok := b.seen.Load(tenant)
	if !ok {
		v, _ = b.seen.LoadOrStore(tenant, new(atomic.Bool))
	}
	if f := v.(*atomic.Bool); !f.Load() {
		f.Store(true)
		b.dirty.Store(true)
	}
}

// Run flushes every interval until ctx ends, then once more.
func (b *Batch) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			b.Flush(fctx)
			cancel()
			return
		case <-t.C:
			b.Flush(ctx)
		}
	}
}

// Flush writes the pending marks in one round trip. Marks that fail are
// tried again at the next flush.
func (b *Batch) Flush(ctx context.Context) {
	if !b.dirty.Swap(false) {
		return
	}
	var tenants []string
	var flags []*atomic.Bool
	b.seen.Range(func(k, v any) bool {
		if f := v.(*atomic.Bool); f.Swap(false) {
			tenants, flags = append(tenants, k.(string)), append(flags, f)
		}
		return true
	})
	if len(tenants) == 0 {
		return
	}
	marks := b.marks(b.now())
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tenants {
			for _, m := range marks {
				queueMark(ctx, p, t, m)
			}
		}
		return nil
	})
	if err != nil {
		for _, f := range flags {
			f.Store(true)
		}
		b.dirty.Store(true)
		b.log.Warn("background-job marks not written; retrying", "tenants", len(tenants), "err", err)
	}
}
