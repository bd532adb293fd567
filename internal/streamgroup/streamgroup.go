// Package streamgroup reads Redis streams as one consumer of a consumer
// group: the reading loop the SIEM forwarder (audit) and the notification
// worker (notify) share. One visit of a stream reads, in order, the
// consumer's own pending entries, the entries another consumer left pending
// for too long (it died or stalled, or keeps them pending on purpose: see
// Config.Expected), and new entries, and hands each batch to the caller,
// who acknowledges what it finished.
//
// Delivery is at least once: an entry stays pending until the caller
// acknowledges it, and a consumer that dies with pending entries has them
// taken over by another once Redis has seen them idle for ClaimAfter. The
// group is created with the stream (MKSTREAM) from its first entry, once per
// Reader; a group that vanished (the stream was deleted) is created again
// and the read retried, so a deleted stream costs no visit. Consumers with
// nothing pending that have been idle for ForgetAfter are removed at the
// end of a visit, so replicas long gone do not stay in the group.
//
// Redis errors are told apart by their prefix through go-redis
// (redis.HasErrorPrefix), never by searching an error's text.
//
// The package knows nothing of what the entries hold; it imports no other
// Lockbox package.
package streamgroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a Reader.
type Config struct {
	Redis redis.UniversalClient
	// Group is the consumer group's name, the same for every replica.
	Group string
	// Consumer is this replica's name in the group: unique among live
	// replicas, and best stable across restarts (a restarted replica then
	// reads its own pending entries at once instead of after ClaimAfter).
	Consumer string
	// ClaimAfter is how long an entry must have been pending at another
	// consumer, as Redis measures it, before this one takes it over. It
	// must be well above the time the caller takes to finish a batch, or
	// a slow replica's entries are handled twice.
	ClaimAfter time.Duration
	// Batch is the most entries one read returns; 100 by default.
	Batch int64
	// MaxBatches bounds the batches of each kind (own pending, taken over,
	// new) one Visit reads, so one busy stream does not starve the others;
	// Visit then reports that more is left. 0 means no bound.
	MaxBatches int
	// ForgetAfter, when set, has each Visit remove from the stream's group
	// the consumers other than this one that have no pending entries and
	// that Redis has seen idle for ForgetAfter: replicas gone for good
	// (every rollout names new ones), whose names would otherwise stay in
	// the group, on every stream they visited, forever. Removing one loses
	// nothing (a replica still running is added again by its next read),
	// but it must be well above ClaimAfter and any caller's pause between
	// visits, so that live replicas' names are not churned. 0 keeps every
	// consumer.
	ForgetAfter time.Duration
	// KeepIdle has Visit read this consumer's own pending entries without
	// restarting the idle time Redis keeps for each: XREADGROUP counts a
	// read of a pending entry as a new delivery, so a live consumer that
	// retries an entry every visit and keeps failing on it holds it for
	// good, never idle for ClaimAfter. With KeepIdle the entries are read
	// through XPENDING and XRANGE instead, and one this consumer has held
	// for ClaimAfter since it first read it is taken over by another, as
	// a dead consumer's is. It suits callers whose failures are the
	// consumer's own (the SIEM forwarder's sink broke), not callers that
	// keep entries pending on purpose (a retry backing off), whose entries
	// other consumers would take over every ClaimAfter. Its handler must
	// fail on a batch it leaves unfinished: a visit that goes on takes
	// over the entries idle for ClaimAfter, this consumer's own among
	// them, which restarts their idle time.
	KeepIdle bool
	// Expected, when set, reports for each entry a visit takes over from
	// another consumer whether that consumer left it pending on purpose
	// (a retry backing off for longer than ClaimAfter): a routine
	// handover, logged at debug. The others are logged at info, naming
	// the consumers that held them: those died or stalled with the
	// entries in hand. A missing or false answer counts as not expected,
	// so that a dead replica is never hidden. Entries taken back from
	// this consumer itself (KeepIdle) are logged at debug and not asked
	// about.
	Expected func(ctx context.Context, stream string, taken []Taken) []bool
	// Logger; discards when nil.
	Logger *slog.Logger
}

// Taken is an entry a visit took over from another consumer, as the
// pending list showed it just before: who held it, and how long Redis had
// seen it idle there since that consumer last read it.
type Taken struct {
	ID string
	// Consumer held the entry; "" when the pending list no longer showed
	// it (the entry changed hands in between).
	Consumer string
	Idle     time.Duration
}

// DefaultForgetAfter is the ForgetAfter of a caller that visits its
// streams at least every claimAfter: a day, or 100 × claimAfter if that is
// longer. Replicas are named by pod, so each rollout adds names to the
// group of every stream they visit; a day is far past every pause between
// visits (ClaimAfter, a minute or two by default) and short enough that
// names do not pile up over a day of rollouts.
func DefaultForgetAfter(claimAfter time.Duration) time.Duration {
	const day = 24 * time.Hour
	switch {
	case claimAfter <= day/100:
		return day
	case claimAfter < math.MaxInt64/100:
		return 100 * claimAfter
	default:
		return time.Duration(math.MaxInt64)
	}
}

// CheckAndSetDefaults fills defaults and rejects missing settings.
func (c *Config) CheckAndSetDefaults() error {
	switch {
	case c.Redis == nil:
		return errors.New("streamgroup: Redis is required")
	case c.Group == "":
		return errors.New("streamgroup: the group name is required")
	case c.Consumer == "":
		return errors.New("streamgroup: the consumer name is required")
	case c.ClaimAfter <= 0:
		return errors.New("streamgroup: ClaimAfter must be positive")
	case c.MaxBatches < 0:
		return errors.New("streamgroup: MaxBatches must not be negative")
	case c.ForgetAfter < 0:
		return errors.New("streamgroup: ForgetAfter must not be negative")
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Reader reads streams as Config.Consumer of Config.Group. It is safe for
// concurrent use, on different streams or the same one.
type Reader struct {
	cfg Config

	mu      sync.Mutex
	ensured map[string]bool // streams whose group this Reader has created or found
}

// New checks cfg and returns a Reader.
func New(cfg Config) (*Reader, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Reader{cfg: cfg, ensured: map[string]bool{}}, nil
}

// Handler works on a batch of entries of one stream, in stream order. It
// acknowledges the entries it finished (Reader.Ack, or XACK in a
// transaction of its own); the others stay this consumer's pending entries
// and come back at the next visit. An error ends the visit and is returned
// by it. A pending entry deleted from the stream (trimmed) may come back
// with no fields. Those taken over from another consumer come at the end
// of their batch and are off the pending list already (see claim): a
// handler that stops early on a batch must still go through them, or
// nothing will know of them again. Deleted tells them from this
// consumer's own, which stay pending until acknowledged.
type Handler func(ctx context.Context, msgs []redis.XMessage) error

// deletedKey keys, in the context a Handler gets, the entries of its
// batch that XAUTOCLAIM named deleted (see Deleted).
type deletedKey struct{}

// deletedIn is the value under deletedKey: the stream, so that a visit
// begun in a handler of another stream's visit does not inherit it.
type deletedIn struct {
	stream string
	ids    map[string]bool
}

// Deleted reports whether entry id, handed without fields to a Handler of
// stream with ctx, is one a visit took over from another consumer that
// XAUTOCLAIM named deleted from the stream: it took it off the pending
// list as it named it, so no visit hands it over again, whatever the
// handler does, and acknowledging it changes nothing. A handler that
// counts such entries must count these whether or not its
// acknowledgement succeeds. This consumer's own entries without fields
// are not: they stay pending, and come back, until acknowledged.
func Deleted(ctx context.Context, stream, id string) bool {
	d, _ := ctx.Value(deletedKey{}).(deletedIn)
	return d.stream == stream && d.ids[id]
}

// Visit reads stream and hands every batch to h: first this consumer's own
// pending entries (a batch h left unfinished, or entries read before a
// restart under the same name), oldest first; then entries pending at
// other consumers for ClaimAfter, which it takes over; then new entries.
// It reports whether it stopped at MaxBatches with more to read. A visit
// that read everything then removes the consumers gone for good
// (Config.ForgetAfter).
func (r *Reader) Visit(ctx context.Context, stream string, h Handler) (more bool, err error) {
	if err := r.Ensure(ctx, stream); err != nil {
		return false, err
	}
	// 1. Own pending entries, paging by id: entries h leaves pending (a
	// retry not due yet) must not hide the ones after them.
	from := "0"
	own := r.read
	if r.cfg.KeepIdle {
		own = r.readPending
	}
	more, err = r.batches(func() (bool, error) {
		msgs, err := own(ctx, stream, from)
		if err != nil || len(msgs) == 0 {
			return false, err
		}
		from = msgs[len(msgs)-1].ID
		return int64(len(msgs)) == r.cfg.Batch, h(ctx, msgs)
	})
	if err != nil || more {
		return more, err
	}
	// 2. Entries idle at another consumer: it died or stalled, or (see
	// Config.Expected) keeps them pending on purpose.
	cursor := "0-0"
	more, err = r.batches(func() (bool, error) {
		msgs, held, deleted, next, err := r.claim(ctx, stream, cursor)
		if err != nil {
			return false, err
		}
		if len(msgs) > 0 {
			r.logTakeover(ctx, stream, msgs, held)
			hctx := ctx
			if len(deleted) > 0 {
				d := deletedIn{stream: stream, ids: make(map[string]bool, len(deleted))}
				for _, id := range deleted {
					d.ids[id] = true
				}
				hctx = context.WithValue(ctx, deletedKey{}, d)
			}
			if err := h(hctx, msgs); err != nil {
				return false, err
			}
		}
		// XAUTOCLAIM's cursor is 0-0 once it has looked at every pending
		// entry.
		cursor = next
		return next != "0-0" && next != "", nil
	})
	if err != nil || more {
		return more, err
	}
	// 3. New entries, until a read returns less than a full batch.
	more, err = r.batches(func() (bool, error) {
		msgs, err := r.read(ctx, stream, ">")
		if err != nil || len(msgs) == 0 {
			return false, err
		}
		return int64(len(msgs)) == r.cfg.Batch, h(ctx, msgs)
	})
	if err != nil || more || r.cfg.ForgetAfter == 0 {
		return more, err
	}
	// 4. Consumers gone for good. The entries were handled; failing to
	// tidy the group only leaves it as it was, so it does not fail the
	// visit.
	if err := r.forget(ctx, stream); err != nil && ctx.Err() == nil {
		r.cfg.Logger.WarnContext(ctx, "could not remove consumers gone from the group", "stream", stream, "group", r.cfg.Group, "err", err)
	}
	return false, nil
}

// forgetScript removes from group ARGV[1] of stream KEYS[1] every consumer
// but ARGV[2] that has no pending entries and has been idle for ARGV[3]
// ms, and returns their names. XGROUP DELCONSUMER deletes a consumer's
// pending entries with it, so the count it checks and the deletion must be
// one step: between two commands another replica's read or XAUTOCLAIM
// could give the consumer an entry, which would then be lost. A script
// runs alone. (Scripts read XINFO's answers in RESP2: flat field lists.)
var forgetScript = redis.NewScript(`
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f.name ~= ARGV[2] and f.pending == 0 and f.idle >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f.name)
    removed[#removed + 1] = f.name
  end
end
return removed
`)

// forget removes from stream's group the consumers ForgetAfter says are
// gone (Config.ForgetAfter), never this Reader's own.
func (r *Reader) forget(ctx context.Context, stream string) error {
	names, err := forgetScript.Run(ctx, r.cfg.Redis, []string{stream},
		r.cfg.Group, r.cfg.Consumer, max(r.cfg.ForgetAfter.Milliseconds(), 1)).StringSlice()
	switch {
	case redis.HasErrorPrefix(err, "NOGROUP"), redis.HasErrorPrefix(err, "no such key"):
		// The stream went with its group since the visit read it:
		// nothing left to tidy.
		return nil
	case err != nil:
		return fmt.Errorf("streamgroup: remove idle consumers of %s on %s: %w", r.cfg.Group, stream, err)
	}
	if len(names) > 0 {
		r.cfg.Logger.InfoContext(ctx, "removed consumers gone from the group: nothing pending, idle past ForgetAfter",
			"stream", stream, "group", r.cfg.Group, "consumers", names, "forget_after", r.cfg.ForgetAfter)
	}
	return nil
}

// batches calls step until it reports nothing left or fails, at most
// MaxBatches times when that is set; it reports whether it stopped at the
// bound with more left.
func (r *Reader) batches(step func() (bool, error)) (bool, error) {
	for n := 0; r.cfg.MaxBatches == 0 || n < r.cfg.MaxBatches; n++ {
		again, err := step()
		if err != nil || !again {
			return false, err
		}
	}
	return true, nil
}

// Ensure creates the group on stream, and the stream if need be, reading
// from the stream's first entry. It asks Redis once per Reader and stream;
// a group another replica created (BUSYGROUP) is the one wanted.
func (r *Reader) Ensure(ctx context.Context, stream string) error {
	r.mu.Lock()
	ok := r.ensured[stream]
	r.mu.Unlock()
	if ok {
		return nil
	}
	err := r.cfg.Redis.XGroupCreateMkStream(ctx, stream, r.cfg.Group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("streamgroup: create group %s on %s: %w", r.cfg.Group, stream, err)
	}
	r.mu.Lock()
	r.ensured[stream] = true
	r.mu.Unlock()
	return nil
}

// Ack acknowledges ids on stream: they leave this consumer's pending
// entries.
func (r *Reader) Ack(ctx context.Context, stream string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return r.cfg.Redis.XAck(ctx, stream, r.cfg.Group, ids...).Err()
}

// read reads up to Batch entries for this consumer: its pending entries
// after id from, or new entries when from is ">". Reads never block.
func (r *Reader) read(ctx context.Context, stream, from string) ([]redis.XMessage, error) {
	var msgs []redis.XMessage
	err := r.regroup(ctx, stream, func() error {
		res, err := r.cfg.Redis.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: r.cfg.Group, Consumer: r.cfg.Consumer, Streams: []string{stream, from},
			Count: r.cfg.Batch, Block: -1,
		}).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		for _, s := range res {
			if s.Stream == stream {
				msgs = s.Messages
			}
		}
		return err
	})
	return msgs, err
}

// readPending reads up to Batch of this consumer's pending entries after
// id from ("0": from the first) the way KeepIdle asks: their ids from
// XPENDING, their fields from XRANGE, so Redis does not count the read as
// a delivery. An entry trimmed from the stream comes back without fields,
// as XREADGROUP returns it.
func (r *Reader) readPending(ctx context.Context, stream, from string) ([]redis.XMessage, error) {
	start := "-"
	if from != "0" {
		start = "(" + from
	}
	var msgs []redis.XMessage
	err := r.regroup(ctx, stream, func() error {
		msgs = nil
		ps, err := r.cfg.Redis.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: r.cfg.Group, Start: start, End: "+", Count: r.cfg.Batch, Consumer: r.cfg.Consumer,
		}).Result()
		if err != nil || len(ps) == 0 {
			return err
		}
		// One XRANGE per entry: a range from the first to the last would
		// also read every entry between them that others hold or acked.
		cmds := make([]*redis.XMessageSliceCmd, len(ps))
		if _, err := r.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, pe := range ps {
				cmds[i] = p.XRange(ctx, stream, pe.ID, pe.ID)
			}
			return nil
		}); err != nil {
			return err
		}
		for i, pe := range ps {
			m := redis.XMessage{ID: pe.ID}
			if got := cmds[i].Val(); len(got) == 1 {
				m = got[0]
			}
			msgs = append(msgs, m)
		}
		return nil
	})
	return msgs, err
}

// claim takes over up to Batch entries idle at other consumers for
// ClaimAfter, scanning the pending entries from cursor; it returns them,
// who held each (see logTakeover), the ids of those deleted, and the
// cursor of the rest. Entries that were pending but are no longer in the
// stream (trimmed) come back without fields, as a consumer's own do, at
// the end: XAUTOCLAIM takes them off the pending list and only names them
// (Redis 7), so they are the caller's last chance to know of them.
//
// XAUTOCLAIM does not say whom it took an entry from, so the pending
// entries idle for ClaimAfter are listed first (XPENDING IDLE, the same
// scan); when there are none, as in most visits, there is nothing to
// claim, and the visit costs no more commands than XAUTOCLAIM alone did.
func (r *Reader) claim(ctx context.Context, stream, cursor string) ([]redis.XMessage, map[string]redis.XPendingExt, []string, string, error) {
	var msgs []redis.XMessage
	var held map[string]redis.XPendingExt
	var deleted []string
	var next string
	err := r.regroup(ctx, stream, func() error {
		msgs, held, deleted, next = nil, nil, nil, ""
		idle, err := r.cfg.Redis.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: r.cfg.Group, Idle: r.cfg.ClaimAfter, Start: cursor, End: "+", Count: r.cfg.Batch,
		}).Result()
		if err != nil || len(idle) == 0 {
			return err
		}
		held = make(map[string]redis.XPendingExt, len(idle))
		for _, p := range idle {
			held[p.ID] = p
		}
		msgs, next, deleted, err = r.cfg.Redis.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: r.cfg.Group, Consumer: r.cfg.Consumer,
			MinIdle: r.cfg.ClaimAfter, Start: cursor, Count: r.cfg.Batch,
		}).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		for _, id := range deleted {
			msgs = append(msgs, redis.XMessage{ID: id})
		}
		return err
	})
	return msgs, held, deleted, next, err
}

// logTakeover logs the entries msgs a visit took over, held (as claim
// read them) by other consumers. Entries left pending on purpose (see
// Config.Expected) and this consumer's own are routine, at debug; the
// others, at info with the consumers that held them, say that those died
// or stalled. The notification worker keeps retries pending past
// ClaimAfter from about their sixth attempt, so with several replicas such
// handovers are routine, and logging each one as a takeover read as a
// replica dying.
func (r *Reader) logTakeover(ctx context.Context, stream string, msgs []redis.XMessage, held map[string]redis.XPendingExt) {
	var own []string
	var others []Taken
	for _, m := range msgs {
		p := held[m.ID]
		if p.Consumer == r.cfg.Consumer {
			own = append(own, m.ID)
			continue
		}
		others = append(others, Taken{ID: m.ID, Consumer: p.Consumer, Idle: p.Idle})
	}
	var expected []bool
	if r.cfg.Expected != nil && len(others) > 0 {
		expected = r.cfg.Expected(ctx, stream, others)
	}
	var routine []string
	var lost []string
	var consumers []string
	var longest time.Duration
	for i, t := range others {
		if i < len(expected) && expected[i] {
			routine = append(routine, t.ID)
			continue
		}
		lost = append(lost, t.ID)
		name := t.Consumer
		if name == "" {
			name = "(unknown)"
		}
		if !slices.Contains(consumers, name) {
			consumers = append(consumers, name)
		}
		longest = max(longest, t.Idle)
	}
	if len(lost) > 0 {
		r.cfg.Logger.InfoContext(ctx, "took over entries of another consumer: it held them idle past ClaimAfter, so it died or stalled",
			"stream", stream, "group", r.cfg.Group, "count", len(lost), "consumers", consumers,
			"idle", longest.Round(time.Second), "claim_after", r.cfg.ClaimAfter)
	}
	if len(routine) > 0 {
		r.cfg.Logger.DebugContext(ctx, "took over entries another consumer left pending on purpose",
			"stream", stream, "group", r.cfg.Group, "count", len(routine))
	}
	if len(own) > 0 {
		r.cfg.Logger.DebugContext(ctx, "took back this consumer's own entries, idle past ClaimAfter",
			"stream", stream, "group", r.cfg.Group, "count", len(own))
	}
}

// regroup runs op and, if the group is gone (NOGROUP: the stream was
// deleted, with its group, since this Reader created it), creates it again
// and runs op once more. The new group reads the new stream from its start.
func (r *Reader) regroup(ctx context.Context, stream string, op func() error) error {
	err := op()
	if !redis.HasErrorPrefix(err, "NOGROUP") {
		return err
	}
	r.cfg.Logger.WarnContext(ctx, "consumer group vanished; creating it again", "stream", stream, "group", r.cfg.Group)
	r.mu.Lock()
	delete(r.ensured, stream)
	r.mu.Unlock()
	if err := r.Ensure(ctx, stream); err != nil {
		return err
	}
	return op()
}
