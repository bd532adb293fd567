// Package due keeps the provider-wide schedules of Lockbox's background
// jobs — request expiry, notification delivery, SIEM forwarding, audit
// retention and audit sealing — so that each job visits only the tenants that have work, and
// an idle deployment costs Redis the same whether it serves ten tenants or
// ten thousand.
//
// Each job has an Index: a sorted set of tenants (keys.Due) scored by the
// Unix millisecond at which the job must next visit the tenant. Writers
// mark a tenant after its own transaction commits (Set); a job's replicas
// claim the due tenants (Claim), visit each, and reschedule it with when it
// is next due (Done), which the visit computes from the tenant's own keys.
//
// # Consistency
//
// The index is in no tenant's hash slot, so it is never written in a
// tenant's transaction (a Redis Cluster transaction touches one slot). The
// tenant's own keys are the truth; the index only says where to look:
//
//   - A mark is written after the transaction it follows, and only ever
//     moves a tenant's time earlier (as ZADD LT), so marks are idempotent
//     and their order does not matter. A lease that ended by the marker's
//     clock is the exception: its visit overran it, and read the tenant
//     before the marker's work, so the mark replaces it (at the marker's
//     now at the latest) rather than leave it for the visit's Done to
//     replace (see markScript).
//   - A claim moves the claimed tenants' times to a lease in the future, in
//     one script, so one replica visits a tenant at a time. Lease times end
//     in half a millisecond, which no mark (whole milliseconds) can equal.
//   - Done replaces the lease by the visit's answer only if the score is
//     still that lease: a mark that arrived during the visit (work committed
//     after the visit read the tenant) wins, and the tenant is visited again.
//     A mark for after the lease ends (a deadline hours on) leaves the
//     lease in place, as it is earlier, but flags it (its score then ends in
//     a quarter of a millisecond): the visit's answer may not know of the
//     marked work, so Done makes the tenant due at once instead, and that
//     visit reads the tenant's times again.
//   - A replica that dies while visiting leaves its lease, which falls due
//     when it ends: another replica visits the tenant then.
//   - A mark lost between a commit and its index write (the process died,
//     or a failover of the index's node lost it) is repaired by Rescan,
//     which re-reads every tenant's keys at a slow, configured rate.
//
// So a lost or late index update can delay a job's visit, never do a job's
// work twice nor skip it for good, and never grant access: each job still
// decides from the tenant's own keys (the proxy checks a grant's
// expires_at itself, a request past its deadline can't be approved whether
// or not the sweep has expired it, and the SIEM consumer group and the
// notification outbox keep every entry until it is handled).
//
// The claim is an optimization, not what makes a job's effect happen once:
// that is each job's own mechanism (a WATCH transaction per request, a
// consumer group, an idempotent trim). Two replicas visiting one tenant at
// once — a lease that ran out during a slow visit, a mark during a visit —
// stay correct, only wasteful.
package due

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Job names a background job's schedule.
type Job string

// The jobs.
const (
	// Sweep settles requests whose decision window or grant ended; a
	// tenant is due at its earliest request deadline.
	Sweep Job = "sweep"
	// Notify delivers the notification outbox and queues expiry warnings.
	Notify Job = "notify"
	// SIEM forwards audit records to the SIEM sink.
	SIEM Job = "siem"
	// Retention trims audit records past the retention period; a tenant
	// is due when its oldest record passes it.
	Retention Job = "retention"
	// Seal signs the newest record of a tenant's audit chain; a tenant is
	// due once a record was written since its last seal.
	Seal Job = "seal"
)

// Jobs lists every job.
var Jobs = []Job{Sweep, Notify, SIEM, Retention, Seal}

// Index is one job's schedule.
type Index struct {
	rdb redis.UniversalClient
	key string
	now func() time.Time
}

// New returns job's Index on rdb; now is the clock of claims (time.Now
// when nil), the same clock writers mark with.
func New(rdb redis.UniversalClient, job Job, now func() time.Time) *Index {
	if now == nil {
		now = time.Now
	}
	return &Index{rdb: rdb, key: keys.Due(string(job)), now: now}
}

// Mark is one schedule entry a writer asks for.
type Mark struct {
	Job Job
	// At is when the job should visit the tenant.
	At time.Time
	// IfAbsent only adds the tenant when the job has no time for it yet
	// (ZADD NX): for jobs that keep their own schedule once they know the
	// tenant, such as retention. During a visit, it flags the visit's
	// lease instead (see ifAbsentScript).
	IfAbsent bool
	// Now is the marker's clock as it marks: a lease that ended by then
	// gives way to the mark. Zero for a marker without one: the mark
	// only moves a tenant's time earlier.
	Now time.Time
}

// Set writes marks for tenant in one round trip. Call it after the
// tenant's transaction committed, never inside it. It is idempotent: a
// tenant's time only moves earlier.
func Set(ctx context.Context, rdb redis.Cmdable, tenant string, marks ...Mark) error {
	if len(marks) == 0 {
		return nil
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range marks {
			queueMark(ctx, p, tenant, m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("due: mark %s: %w", tenant, err)
	}
	return nil
}

func queueMark(ctx context.Context, p redis.Pipeliner, tenant string, m Mark) {
	if m.IfAbsent {
		ifAbsentScript.Eval(ctx, p, []string{keys.Due(string(m.Job))}, tenant, m.At.UnixMilli())
		return
	}
	var now int64
	if !m.Now.IsZero() {
		now = m.Now.UnixMilli()
	}
	// EVAL, not EVALSHA: a pipeline can't load the script on NOSCRIPT.
	// Redis keeps it compiled by its hash either way.
	markScript.Eval(ctx, p, []string{keys.Due(string(m.Job))}, tenant, m.At.UnixMilli(), now)
}

// markScript marks tenant ARGV[1] due at ARGV[2] in schedule KEYS[1], by a
// marker whose clock reads ARGV[3] (0: unknown). Marks only move a time
// earlier, like ZADD LT, except over a lease (its score is never a whole
// millisecond):
//
//   - A lease that ended by the marker's clock: the visit holding it
//     overran it, and read the tenant before this mark's work, yet its
//     Done replaces a score that is still its lease. ZADD LT would leave
//     such a lease (it is earlier than the mark), and Done would then drop
//     the mark: the work would wait for another mark or the rescan. So the
//     mark replaces it, at the marker's now at the latest: the tenant is
//     due at once, and that visit reads its times again.
//   - A lease still running, and a mark at or after its end: the lease
//     stays, so that no other replica visits the tenant meanwhile and a
//     replica that dies still hands the tenant on when its lease ends. But
//     the visit may have read the tenant before this mark's work, so its
//     answer can't replace the lease as if nothing had been marked: the
//     lease is flagged (moved from .5 to .25 of its millisecond, which
//     falls due at the same whole millisecond), and Done on a flagged
//     lease makes the tenant due at once (see doneScript).
//
// A mark before a running lease ends replaces it, like any earlier time.
var markScript = redis.NewScript(`
local at = tonumber(ARGV[2])
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s then
  s = tonumber(s)
  local now = tonumber(ARGV[3])
  local frac = s % 1
  if frac ~= 0 and now > 0 and s < now then
    if now < at then at = now end
  elseif s <= at then
    if frac == 0.5 then
      redis.call('ZADD', KEYS[1], s - 0.25, ARGV[1])
      return 1
    end
    return 0
  end
end
redis.call('ZADD', KEYS[1], at, ARGV[1])
return 1
`)

// ifAbsentScript adds tenant ARGV[1] at ARGV[2] to schedule KEYS[1] if
// it is not there (as ZADD NX). A tenant held by a visit's lease is not
// known to the job the way a scheduled one is: the visit may have read
// the tenant before the marked work (retention found the stream empty)
// and answer that nothing is due, and Done would then remove the tenant
// with the mark. So the lease is flagged, as markScript does for a mark
// after its end, and Done makes the tenant due at once.
var ifAbsentScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
s = tonumber(s)
if s % 1 == 0.5 then
  redis.call('ZADD', KEYS[1], s - 0.25, ARGV[1])
  return 1
end
return 0
`)

// Mark asks for tenant to be visited at or before at.
func (x *Index) Mark(ctx context.Context, tenant string, at time.Time) error {
	err := markScript.Run(ctx, x.rdb, []string{x.key}, tenant, at.UnixMilli(), x.now().UnixMilli()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("due: mark %s: %w", tenant, err)
	}
	return nil
}

// Claim is a tenant claimed for one visit.
type Claim struct {
	Tenant string
	lease  string // the lease's score, as written
}

// claimScript takes up to ARGV[2] tenants due by ARGV[1] and moves them to
// the lease score ARGV[3], atomically, so concurrent claimers get disjoint
// tenants.
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, t in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], t) end
return due
`)

// doneScript reschedules tenant ARGV[1] at ARGV[3] (removes it when empty)
// only if its score is still the lease ARGV[2]: otherwise a writer marked
// it during the visit and the mark stands. A lease flagged by a mark for
// after its end (markScript) makes the tenant due at ARGV[4], the
// replica's now, unless the visit's answer is earlier: the mark's time is
// not kept, and the answer may have been read before its work.
var doneScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return 0 end
s = tonumber(s)
local lease = tonumber(ARGV[2])
if s == lease - 0.25 then
  if ARGV[3] == '' or tonumber(ARGV[4]) < tonumber(ARGV[3]) then ARGV[3] = ARGV[4] end
elseif s ~= lease then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
`)

// Claim takes up to limit tenants due now and leases them for lease.
func (x *Index) Claim(ctx context.Context, limit int, lease time.Duration) ([]Claim, error) {
	now := x.now()
	// Half a millisecond before the lease's end: due when it ends, and no
	// mark (whole milliseconds) can equal a lease.
	score := strconv.FormatInt(now.Add(lease).UnixMilli()-1, 10) + ".5"
	ts, err := claimScript.Run(ctx, x.rdb, []string{x.key}, now.UnixMilli(), limit, score).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("due: claim: %w", err)
	}
	out := make([]Claim, len(ts))
	for i, t := range ts {
		out[i] = Claim{Tenant: t, lease: score}
	}
	return out, nil
}

// Done ends c's visit: the tenant is next due at next, or not until it is
// marked again when next is zero. A mark made during the visit stands; one
// for after the lease's end makes the tenant due at once instead.
func (x *Index) Done(ctx context.Context, c Claim, next time.Time) error {
	at := ""
	if !next.IsZero() {
		at = strconv.FormatInt(next.UnixMilli(), 10)
	}
	now := strconv.FormatInt(x.now().UnixMilli(), 10)
	if err := doneScript.Run(ctx, x.rdb, []string{x.key}, c.Tenant, c.lease, at, now).Err(); err != nil {
		return fmt.Errorf("due: reschedule %s: %w", c.Tenant, err)
	}
	return nil
}

// Tenants returns every tenant the job has scheduled (due or not), for
// gauges that need the tenants with work of a kind: their cost follows
// the tenants with work, not all tenants.
func (x *Index) Tenants(ctx context.Context) ([]string, error) {
	ts, err := x.rdb.ZRange(ctx, x.key, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("due: list: %w", err)
	}
	out := ts[:0]
	for _, t := range ts {
		if keys.IsTenant(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Visit does a job's due work for tenant and returns when the tenant is
// next due (zero: not until a writer marks it).
type Visit func(ctx context.Context, tenant string) (next time.Time, err error)

// Drainer claims and visits due tenants.
type Drainer struct {
	Index *Index
	// Lease is how long a claimed tenant is this replica's before another
	// may visit it; longer than a visit usually takes.
	Lease time.Duration
	// Batch is how many tenants one claim takes; 20 when zero. A replica
	// that dies holds the tenants of its last claim for a lease.
	Batch int
	// RetryAfter is how long after a failed visit the tenant is due again;
	// zero makes it due at once, for the next Drain.
	RetryAfter time.Duration
	Logger     *slog.Logger
}

// Drain visits the tenants due now, a batch at a time, until none is due
// or ctx ends, and returns how many it visited. It visits a tenant at most
// once per call: a tenant due again at once (a failed visit retried
// without delay, work that came in meanwhile) keeps its claim until the
// call ends, and waits for the next Drain. A failed visit is retried
// after RetryAfter; the others go on, and the failures are returned
// joined. When ctx ends, the tenants claimed but not finished are released
// at once for other replicas.
func (d *Drainer) Drain(ctx context.Context, visit Visit) (int, error) {
	batch := d.Batch
	if batch <= 0 {
		batch = 20
	}
	type held struct {
		c    Claim
		next time.Time
	}
	seen := map[string]bool{}
	var hold []held
	var errs []error
	stop := func(rest []Claim) (int, error) {
		for _, h := range hold {
			rest = append(rest, h.c)
		}
		d.release(ctx, rest)
		return len(seen), errors.Join(errs...)
	}
	for ctx.Err() == nil {
		claims, err := d.Index.Claim(ctx, batch, d.Lease)
		if err != nil {
			errs = append(errs, err)
			break
		}
		for i, c := range claims {
			if ctx.Err() != nil {
				return stop(claims[i:])
			}
			if seen[c.Tenant] {
				// Marked again during this call: keep the claim, so it
				// is not claimed again, and let the next call visit it.
				hold = append(hold, held{c, d.Index.now()})
				continue
			}
			seen[c.Tenant] = true
			next, err := visit(ctx, c.Tenant)
			if err != nil {
				if ctx.Err() != nil {
					return stop(claims[i:])
				}
				errs = append(errs, fmt.Errorf("tenant %s: %w", c.Tenant, err))
				next = d.Index.now().Add(d.RetryAfter)
			}
			if next.IsZero() || next.After(d.Index.now()) {
				if err := d.done(ctx, c, next); err != nil {
					// The lease stays and falls due when it ends.
					errs = append(errs, err)
				}
				continue
			}
			hold = append(hold, held{c, next})
		}
		if len(claims) < batch {
			break
		}
	}
	if ctx.Err() != nil {
		return stop(nil)
	}
	for _, h := range hold {
		if err := d.Index.Done(ctx, h.c, h.next); err != nil {
			errs = append(errs, err)
		}
	}
	return len(seen), errors.Join(errs...)
}

// done records a finished visit's answer. A visit that finished as ctx
// ended (the replica stopping) still has it written, under a short
// deadline of its own: failing with ctx, it would leave the tenant's
// lease, and no replica could visit the tenant until the lease ended.
func (d *Drainer) done(ctx context.Context, c Claim, next time.Time) error {
	if ctx.Err() == nil {
		return d.Index.Done(ctx, c, next)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	return d.Index.Done(dctx, c, next)
}

// release hands back claimed tenants, due at once, when this replica
// stops before visiting them.
func (d *Drainer) release(ctx context.Context, claims []Claim) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	now := d.Index.now()
	for _, c := range claims {
		if err := d.Index.Done(rctx, c, now); err != nil && d.Logger != nil {
			d.Logger.Warn("claimed tenant not released; it is due again when its lease ends", "tenant", c.Tenant, "err", err)
		}
	}
}

// Committed lists the marks of a control-plane transaction of a tenant
// that committed at now: it may have queued notifications and written
// audit records.
func Committed(now time.Time) []Mark {
	return append([]Mark{{Job: Notify, At: now, Now: now}}, AuditWritten(now)...)
}

// AuditWritten lists the marks of audit records written to a tenant's
// stream at now: the SIEM forwarder and the sealer at once (the sealer
// visits its due tenants once an interval); retention, which keeps its
// own schedule from the oldest record on, only if it does not know the
// tenant yet.
func AuditWritten(now time.Time) []Mark {
	return []Mark{{Job: SIEM, At: now, Now: now}, {Job: Retention, At: now, IfAbsent: true}, {Job: Seal, At: now, Now: now}}
}
