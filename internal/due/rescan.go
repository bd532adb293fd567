package due

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Probe queues on p the reads that tell when tenant is next due for one
// job, and returns what reads the answer once p has run: ok is false when
// the job has nothing to do for tenant. A probe that can't tell (a read
// failed) should answer now: a needless visit is cheap, a missed one is
// not.
type Probe func(ctx context.Context, p redis.Pipeliner, tenant string, now time.Time) func() (at time.Time, ok bool)

// Rescan repairs the schedules: it reads every onboarded tenant's keys
// through each job's Probe and marks the tenant where the job has work.
// It is the only part of the background jobs whose cost grows with the
// number of tenants, so it runs rarely (Interval, an hour by default) and
// on one replica at a time: the replica that takes the rescan lease, which
// lasts one Interval. Its cost is about one command per tenant and probe,
// pipelined Chunk tenants at a time.
//
// It bounds how long a lost mark can delay a job: one Interval plus the
// time to the lease check (at most a minute).
type Rescan struct {
	Redis  redis.UniversalClient
	Now    func() time.Time
	Probes map[Job]Probe
	// Interval between rescans; an hour when zero.
	Interval time.Duration
	// Owner names this replica in the lease (for operators reading it).
	Owner string
	// Chunk is how many tenants one pipeline probes; 500 when zero.
	Chunk  int
	Logger *slog.Logger
}

func (r *Rescan) defaults() {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Interval <= 0 {
		r.Interval = time.Hour
	}
	if r.Chunk <= 0 {
		r.Chunk = 500
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run rescans at once if no replica did within Interval (so an upgrade
// from a version without schedules builds them at start-up), then checks
// the lease every minute (or Interval, if shorter) until ctx ends.
func (r *Rescan) Run(ctx context.Context) {
	r.defaults()
	check := min(r.Interval, time.Minute)
	for {
		if n, marked, ran, err := r.TryOnce(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Warn("rescan of the background-job schedules failed; the next replica to take the lease retries", "err", err)
		} else if ran {
			r.Logger.Info("rescanned the background-job schedules", "tenants", n, "marked", marked)
		}
		t := time.NewTimer(check)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// TryOnce rescans if this replica takes the lease, and reports whether it
// did. A failed rescan gives the lease back.
func (r *Rescan) TryOnce(ctx context.Context) (tenants, marked int, ran bool, err error) {
	r.defaults()
	owner := r.Owner
	if owner == "" {
		owner = "lockbox"
	}
	got, err := r.Redis.SetNX(ctx, keys.DueRescan(), owner, r.Interval).Result()
	if err != nil {
		return 0, 0, false, fmt.Errorf("due: rescan lease: %w", err)
	}
	if !got {
		return 0, 0, false, nil
	}
	tenants, marked, err = r.Once(ctx)
	if err != nil {
		r.Redis.Del(context.WithoutCancel(ctx), keys.DueRescan())
	}
	return tenants, marked, true, err
}

// Once rescans every tenant now, lease or not, and returns how many
// tenants it read and how many marks it wrote.
func (r *Rescan) Once(ctx context.Context) (tenants, marked int, err error) {
	r.defaults()
	var cursor uint64
	for {
		ids, next, err := r.Redis.SScan(ctx, keys.Tenants(), cursor, "*", int64(r.Chunk)).Result()
		if err != nil {
			return tenants, marked, fmt.Errorf("due: rescan: %w", err)
		}
		n, err := r.chunk(ctx, ids)
		tenants, marked = tenants+len(ids), marked+n
		if err != nil {
			return tenants, marked, err
		}
		if cursor = next; cursor == 0 {
			return tenants, marked, nil
		}
	}
}

// chunk probes ids and writes their marks, in two round trips.
func (r *Rescan) chunk(ctx context.Context, ids []string) (int, error) {
	type answer struct {
		tenant string
		job    Job
		read   func() (time.Time, bool)
	}
	now := r.Now()
	var answers []answer
	_, err := r.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range ids {
			if !keys.IsTenant(t) {
				continue
			}
			for job, probe := range r.Probes {
				answers = append(answers, answer{t, job, probe(ctx, p, t, now)})
			}
		}
		return nil
	})
	// One probe's command failing (a key of another type, a stream
	// without the group) is that probe's to judge; a broken connection
	// fails the marks below as well.
	if err != nil && ctx.Err() != nil {
		return 0, fmt.Errorf("due: rescan: %w", err)
	}
	n := 0
	_, err = r.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, a := range answers {
			if at, ok := a.read(); ok {
				queueMark(ctx, p, a.tenant, Mark{Job: a.job, At: at, Now: now})
				n++
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("due: rescan marks: %w", err)
	}
	return n, nil
}
