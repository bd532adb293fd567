package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// trimScript removes the stream's entries before ARGV[1] (an exclusive
// MINID threshold) and records the hash of the last one removed (ARGV[3],
// whose id is ARGV[2]) as the chain's anchor, so verification of what
// remains starts from it, and what that hash is the SHA-1 of (ARGV[6]: the
// record's link, "\n" and the record) as the anchor's record, which dates
// it (anchorProblem). Trimming only moves forward: several replicas may
// trim at once, and an older cut arriving late changes nothing.
//
// It returns how many entries it removed and how many of those the SIEM
// group (ARGV[4]) had not read yet: entries after the group's
// last-delivered id, which no forwarder will ever see. Entries the group
// read and left pending are the forwarder's to count (as skipped), when
// they come back without fields. With ARGV[5] = 1 (the SIEM is on), a
// stream without the group yet — no forwarder ever visited it: they were
// down since the tenant's first record — has every removed entry counted,
// as none was read; otherwise nothing is counted without the group.
// Counted here, in the script, the reads and the trim can't race a
// forwarder reading meanwhile (and creating the group).
var trimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[2])
if cur then
  local cms, cseq = string.match(cur, '^(%d+)-(%d+) ')
  local nms, nseq = string.match(ARGV[2], '^(%d+)-(%d+)$')
  cms, cseq, nms, nseq = tonumber(cms), tonumber(cseq), tonumber(nms), tonumber(nseq)
  if nms < cms or (nms == cms and nseq <= cseq) then return {0, 0} end
end
local unread = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local grouped = false
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == ARGV[4] then
      grouped = true
      unread = #redis.call('XRANGE', KEYS[1], '(' .. info['last-delivered-id'], ARGV[2])
    end
  end
  if not grouped and ARGV[5] == '1' then
    unread = #redis.call('XRANGE', KEYS[1], '-', ARGV[2])
  end
end
local n = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3])
redis.call('SET', KEYS[3], ARGV[6])
return {n, unread}
`)

// Trim removes tenant's records created before cutoff, oldest first, and
// keeps the chain verifiable from what remains. It returns how many it
// removed.
func (l *Log) Trim(ctx context.Context, tenant string, cutoff time.Time) (int, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return 0, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	total := 0
	now := l.now()
	for {
		msgs, err := l.rdb.XRangeN(ctx, keys.Audit(tenant), "-", "+", 500).Result()
		if err != nil {
			return total, fault.Unavailable("audit: trim", err)
		}
		last := -1
		// The records of this batch dated by their stream id (unreadable,
		// or dated ahead of it), by index: reported once the cut that
		// removes them commits.
		var byID []int
		dates := make([]entryDate, len(msgs))
		for i, m := range msgs {
			d, err := entryTime(m, now)
			if err != nil || !d.at.Before(cutoff) {
				break
			}
			last, dates[i] = i, d
			if d.unreadable() || d.ahead() {
				byID = append(byID, i)
			}
		}
		if last < 0 {
			return total, nil
		}
		m := msgs[last]
		h, _ := m.Values["h"].(string)
		link, _ := m.Values["p"].(string)
		rec, _ := m.Values[field].(string)
		next, err := nextID(m.ID)
		if err != nil {
			return total, err
		}
		siemOn := "0"
		if l.siemTrims != nil {
			siemOn = "1"
		}
		res, err := trimScript.Run(ctx, l.rdb, []string{keys.Audit(tenant), keys.AuditAnchor(tenant), keys.AuditAnchorRecord(tenant)},
			next, m.ID, h, SIEMGroup, siemOn, link+"\n"+rec).Int64Slice()
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("trim script returned %v", res)
		}
		if err != nil {
			return total, fault.Unavailable("audit: trim", err)
		}
		n := int(res[0])
		if unread := res[1]; unread > 0 {
			l.siemTrims.unread(ctx, tenant, unread, m.ID)
		}
		// Cuts only ever remove a stream's oldest entries, and no entry
		// older than m can be added, so the n this cut removed are the
		// last n of msgs[:last+1]: another replica's cut took the ones
		// before them, and reports those.
		for _, i := range byID {
			switch {
			case i <= last-n:
			case dates[i].unreadable():
				l.retention.unreadable(ctx, tenant, msgs[i].ID)
			default:
				l.retention.ahead(ctx, tenant, msgs[i].ID, dates[i])
			}
		}
		total += n
		if last < len(msgs)-1 || n == 0 {
			return total, nil
		}
	}
}

// retentionLease is how long one replica's claim on a tenant's trim lasts.
const retentionLease = time.Minute

// TrimAll applies retention to the tenants whose oldest record has passed
// it, as the retention schedule (internal/due) lists them: each tenant is
// scheduled for when its oldest record will be retention old, so an idle
// deployment's retention costs one command however many tenants it serves.
// It returns how many records it removed.
//
// Several replicas may run it at once: each claims its tenants, and
// trimming is idempotent anyway (a cut only moves forward, in one script
// with the chain's anchor), so a tenant trimmed twice loses its old
// records once. A replica that stops mid-trim leaves a consistent stream
// and anchor, and its claim, which another replica takes when it ends.
func (l *Log) TrimAll(ctx context.Context, retention time.Duration) (int, error) {
	total := 0
	d := due.Drainer{Index: due.New(l.rdb, due.Retention, l.now), Lease: retentionLease, RetryAfter: time.Minute}
	_, err := d.Drain(ctx, func(ctx context.Context, t string) (time.Time, error) {
		if keys.ValidTenant(t) != nil {
			return time.Time{}, nil
		}
		n, err := l.Trim(ctx, t, l.now().Add(-retention))
		total += n
		if err != nil {
			return time.Time{}, err
		}
		return l.retentionDue(ctx, t, retention)
	})
	if err != nil {
		return total, fault.Unavailable("audit: trim", err)
	}
	return total, nil
}

// retentionDue returns when tenant's oldest record passes retention; zero
// for an empty stream (the next record written marks the tenant again).
func (l *Log) retentionDue(ctx context.Context, tenant string, retention time.Duration) (time.Time, error) {
	msgs, err := l.rdb.XRangeN(ctx, keys.Audit(tenant), "-", "+", 1).Result()
	if err != nil {
		return time.Time{}, err
	}
	return oldestDue(msgs, retention, l.now()), nil
}

func oldestDue(msgs []redis.XMessage, retention time.Duration, now time.Time) time.Time {
	if len(msgs) == 0 {
		return time.Time{}
	}
	d, err := entryTime(msgs[0], now)
	if err != nil {
		// Trim stops at an entry it can't date; look again in a while
		// rather than at once.
		return now.Add(retention)
	}
	return d.at.Add(retention)
}

// entryDate is how retention dates a stream entry.
type entryDate struct {
	// at is when the entry counts as written: its age is measured from it.
	at time.Time
	// created is its record's CreationTime, zero for a record that can't
	// be read or carries none.
	created time.Time
	// appended is the time in its stream id.
	appended time.Time
}

// unreadable is whether the entry is dated by its stream id for want of a
// CreationTime.
func (d entryDate) unreadable() bool { return d.created.IsZero() }

// ahead is whether the entry's CreationTime is further ahead of its
// stream id, and of the sweeping replica's clock, than ClockSkew allows,
// so it is dated by its stream id.
func (d entryDate) ahead() bool { return !d.created.IsZero() && d.at.Before(d.created) }

// entryTime is when the stream entry m was written, as retention judges
// it: its record's CreationTime or, for a record that can't be read (cut
// short, edited by hand, or in a form this version refuses) or carries no
// CreationTime, the time in its stream id. Stopping at such a record
// instead held back the tenant's retention for ever, and taking a missing
// CreationTime for the zero time removed the record whatever its age.
//
// Every audit entry is added by XADD with a generated id (appendScript,
// appendBatchScript), whose milliseconds are Redis's clock when it was
// added, or later (ids never go back): never before the record was
// written, as far as Redis's clock and the writers' agree, which
// CreationTime from several replicas already assumes. So a CreationTime
// more than ClockSkew after the id's time was stamped by a replica whose
// clock ran ahead (a bad NTP step, a VM restored with a wrong clock), and
// the entry is dated by its id instead: taken at its word, it stopped
// retention for the whole log after it until that date, which may be
// years away. A replica a little ahead, within ClockSkew, is no fault,
// and its records keep their CreationTime. So does a record no further
// ahead of now, the sweeping replica's clock, than ClockSkew: once that
// clock has reached a CreationTime, it holds nothing back, and the
// sweeping replica judges every record's age by its own clock anyway
// (a deployment whose replicas' clocks all run ahead of Redis's, a test
// whose clock jumps, would otherwise see every record dated by Redis's
// clock and removed early).
//
// An error means m's id is not one Redis generates.
func entryTime(m redis.XMessage, now time.Time) (entryDate, error) {
	ms, _, _ := strings.Cut(m.ID, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return entryDate{}, fmt.Errorf("audit: bad stream id %q", m.ID)
	}
	d := entryDate{appended: time.UnixMilli(n).UTC()}
	d.at = d.appended
	var rec struct{ CreationTime record.Time }
	s, _ := m.Values[field].(string)
	if json.Unmarshal([]byte(s), &rec) == nil && !rec.CreationTime.IsZero() {
		d.created = rec.CreationTime.Time
		if !d.created.After(d.appended.Add(ClockSkew)) || !d.created.After(now.Add(ClockSkew)) {
			d.at = d.created
		}
	}
	return d, nil
}

// RetentionProbe reads when a tenant's oldest record passes retention, for
// due.Rescan.
func RetentionProbe(retention time.Duration) due.Probe {
	return func(ctx context.Context, p redis.Pipeliner, tenant string, now time.Time) func() (time.Time, bool) {
		c := p.XRangeN(ctx, keys.Audit(tenant), "-", "+", 1)
		return func() (time.Time, bool) {
			msgs, err := c.Result()
			if err != nil {
				return now, true // can't tell: look
			}
			at := oldestDue(msgs, retention, now)
			return at, !at.IsZero()
		}
	}
}

// siemTrimReport counts and logs the records retention trims before the
// SIEM group read them. Nil reports nothing.
type siemTrimReport struct {
	counter prometheus.Counter
	log     *slog.Logger
}

// ReportSIEMTrims makes Trim count, in
// lockbox_siem_records_trimmed_unread_total registered with reg, and log
// at warn to logger (which may be nil), the records it removes that no
// SIEM forwarder had read: they never reach the SIEM, and nothing else
// will ever know of them. That includes every record of a tenant's log
// that no forwarder ever visited (it has no SIEM group yet). Call it
// before trimming, where the SIEM forwarder runs: it is what tells Trim
// that the SIEM is on.
func (l *Log) ReportSIEMTrims(reg prometheus.Registerer, logger *slog.Logger) error {
	c, logger, err := reportCounter(reg, logger, "lockbox_siem_records_trimmed_unread_total",
		"Audit records retention removed before any SIEM forwarder read them: they never reached the SIEM.")
	if err != nil {
		return err
	}
	l.siemTrims = &siemTrimReport{counter: c, log: logger}
	return nil
}

// reportCounter is a Report method's counter, registered with reg when
// there is one, and its logger, which discards when nil.
func reportCounter(reg prometheus.Registerer, logger *slog.Logger, name, help string) (prometheus.Counter, *slog.Logger, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("audit: metrics: %w", err)
		}
	}
	return c, logger, nil
}

func (r *siemTrimReport) unread(ctx context.Context, tenant string, n int64, through string) {
	if r == nil {
		return
	}
	r.counter.Add(float64(n))
	r.log.WarnContext(ctx, "audit retention removed records no SIEM forwarder had read; they never reached the SIEM",
		"tenant", tenant, "unread", n, "through_id", through)
}

// retentionReport counts and logs the records retention removes that it
// could not read, and those it dated by their stream id because their
// CreationTime was ahead of it. Nil reports nothing.
type retentionReport struct {
	counter prometheus.Counter
	future  prometheus.Counter
	log     *slog.Logger
}

// ReportRetention makes Trim count, in
// lockbox_audit_records_trimmed_unreadable_total registered with reg, and
// log at warn to logger (which may be nil) with its stream id, each record
// it removes that it could not read (cut short, edited by hand, in a form
// this version refuses, or without a CreationTime), dated by its stream
// id: no search or export ever showed it, and once removed nothing else
// tells that it was there. It counts likewise, in
// lockbox_audit_records_trimmed_future_dated_total, and logs with both
// times, each record it removes by its stream id's age because its
// CreationTime was further ahead of it than ClockSkew: the only sign left
// that a replica's clock ran ahead. Call it before trimming, where
// retention runs.
func (l *Log) ReportRetention(reg prometheus.Registerer, logger *slog.Logger) error {
	c, logger, err := reportCounter(reg, logger, "lockbox_audit_records_trimmed_unreadable_total",
		"Audit records retention removed that it could not read (or that carried no CreationTime), dated by their stream id; each is also logged at warn.")
	if err != nil {
		return err
	}
	f, _, err := reportCounter(reg, logger, "lockbox_audit_records_trimmed_future_dated_total",
		"Audit records retention removed whose CreationTime was ahead of their stream id, and of the sweeping replica's clock, by more than the allowed clock skew, dated by their stream id: a replica's clock was ahead; each is also logged at warn.")
	if err != nil {
		return err
	}
	l.retention = &retentionReport{counter: c, future: f, log: logger}
	return nil
}

func (r *retentionReport) unreadable(ctx context.Context, tenant, id string) {
	if r == nil {
		return
	}
	r.counter.Inc()
	r.log.WarnContext(ctx, "audit retention removed a record it could not read, by its stream id's age",
		"tenant", tenant, "stream_id", id)
}

func (r *retentionReport) ahead(ctx context.Context, tenant, id string, d entryDate) {
	if r == nil {
		return
	}
	r.future.Inc()
	r.log.WarnContext(ctx, "audit retention removed a record dated ahead of its stream id, by its stream id's age; the replica that wrote it had its clock ahead",
		"tenant", tenant, "stream_id", id, "creation_time", d.created, "stream_time", d.appended)
}

// nextID is the smallest stream id after id: the exclusive MINID bound.
func nextID(id string) (string, error) {
	ms, seq, ok := strings.Cut(id, "-")
	s, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("audit: bad stream id %q", id)
	}
	return ms + "-" + strconv.FormatUint(s+1, 10), nil
}
