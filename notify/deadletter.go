package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/text"
)

// kindRedrive is the kind of an outbox entry that DeadLetters.Redrive put
// back: the event itself, whose own kind is in Redrive, for the recipients
// Redrive lists. A kind of its own rather than a field beside the event's
// kind: a replica of an earlier version, in a rolling upgrade, would read
// past the field and send the event to all its recipients again; a kind it
// does not know it leaves for a replica that knows it (Worker.leave).
const kindRedrive Kind = "redrive"

// Redrive is what an entry put back from the dead-letter stream carries
// besides its event.
type Redrive struct {
	// Kind is the event's own kind.
	Kind Kind `json:"kind"`
	// Recipients are the dead letter's recipients, named as there
	// ("mail:<address>", "webhook:<n>"): the only ones the entry is
	// delivered to.
	Recipients []string `json:"recipients"`
	// DeadLetter is the id the event had in the dead-letter stream.
	DeadLetter string `json:"dead_letter"`
	// Entry is the outbox entry the event was first: its deliveries keep
	// their Message-ID and X-Lockbox-Delivery, so a receiver that did
	// take one (its answer lost) drops the copy.
	Entry string `json:"entry,omitempty"`
	// At is when it was re-driven: how long it has waited counts from
	// then (Worker.patientUntil). Zero in an entry an earlier version
	// re-drove.
	At time.Time `json:"at,omitzero"`
}

// Errors of DeadLetters.Redrive, for one letter.
var (
	// ErrNoDeadLetter: the tenant's dead-letter stream holds no letter
	// of that id (re-driven already, by this call or another).
	ErrNoDeadLetter = errors.New("no such dead letter")
	// ErrUnredrivable: the letter can't be put back as it is: its event
	// can't be read, or it names no recipient (one whose recipients could
	// not be worked out). It stays in the stream.
	ErrUnredrivable = errors.New("dead letter can't be re-driven")
)

// DeadLetter is one letter of a tenant's dead-letter stream.
type DeadLetter struct {
	// ID is the letter's id in the stream, which Redrive takes.
	ID string `json:"id"`
	// At is when the event was dead-lettered; zero when unreadable.
	At time.Time `json:"at,omitzero"`
	// Entry is the outbox entry the event was.
	Entry string `json:"entry"`
	// Kind and RequestID say what the event is about; empty when the
	// event can't be read.
	Kind      Kind   `json:"kind"`
	RequestID string `json:"request_id"`
	// Attempts is how many attempts the recipients failed.
	Attempts int `json:"attempts"`
	// Recipients are the recipients the event failed: "mail:<address>",
	// or "webhook:<n>", the n-th of the configured webhooks when the
	// letter was written, counting from 0.
	Recipients []string `json:"recipients"`
	// Error is the last error.
	Error string `json:"error"`
	// Problem says why the letter can't be re-driven; empty when it can.
	Problem string `json:"problem,omitempty"`

	// event is the stored event, ready for Redrive; nil with a Problem.
	event map[string]json.RawMessage
	// redriveOf is the entry the event was first, when it was re-driven
	// before.
	redriveOf string
}

// Redriven is what Redrive did with one letter.
type Redriven struct {
	// ID is the dead letter's id.
	ID string
	// Entry is the outbox entry the event is now; empty when Err is set.
	Entry      string
	Kind       Kind
	RequestID  string
	Recipients []string
	// Err, when set, wraps ErrNoDeadLetter, ErrUnredrivable or
	// keys.ErrInvalid (an id that is no stream id), and the letter, if
	// any, stays where it was.
	Err error
}

// DeadLetters lists a tenant's dead letters and puts them back in its
// outbox, for operators once the cause is fixed (a mail server's
// credentials, a webhook's URL).
type DeadLetters struct {
	rdb    redis.UniversalClient
	audit  Auditor
	now    func() time.Time
	logger *slog.Logger
}

// Auditor writes the audit record of a re-drive in the transaction that
// makes it; *audit.Log implements it.
type Auditor interface {
	AppendTx(ctx context.Context, tx redis.Pipeliner, r record.Record) error
	// Written tells the SIEM forwarder and retention that the tenant's
	// log got records, once the transaction committed.
	Written(ctx context.Context, tenant string)
}

// NewDeadLetters returns DeadLetters on rdb; log records each re-drive
// (Redrive refuses to put a letter back without it), now (time.Now when
// nil) marks the tenant due for delivery, and logger (none when nil)
// hears of each letter re-driven.
func NewDeadLetters(rdb redis.UniversalClient, log Auditor, now func() time.Time, logger *slog.Logger) *DeadLetters {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DeadLetters{rdb: rdb, audit: log, now: now, logger: logger}
}

// deadPage bounds the letters read per round trip: a stream of thousands
// is read a page at a time rather than in one reply.
const deadPage = 500

// List returns the tenant's dead letters, oldest first.
func (d *DeadLetters) List(ctx context.Context, tenant string) ([]DeadLetter, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return nil, err
	}
	var out []DeadLetter
	for start := "-"; ; {
		msgs, err := d.rdb.XRangeN(ctx, DeadKey(tenant), start, "+", deadPage).Result()
		if err != nil {
			return nil, fmt.Errorf("notify: read dead letters: %w", err)
		}
		for _, m := range msgs {
			out = append(out, readDeadLetter(m))
		}
		if len(msgs) < deadPage {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// ForgetDeleted removes the tenant's dead letters whose request is gone:
// request retention (LOCKBOX_REQUEST_RETENTION) deleted it, with its
// history, and a letter's event carries a copy of both, which must not
// outlive them. Such a letter could not be delivered anyway: recipients
// are worked out from the request. A letter whose event can't be read is
// left alone. It returns how many letters it removed, each logged at
// info. It reads the whole stream, a page at a time: a tenant without
// dead letters costs one round trip.
func (d *DeadLetters) ForgetDeleted(ctx context.Context, tenant string) (int, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return 0, err
	}
	removed := 0
	for start := "-"; ; {
		msgs, err := d.rdb.XRangeN(ctx, DeadKey(tenant), start, "+", deadPage).Result()
		if err != nil {
			return removed, fmt.Errorf("notify: read dead letters: %w", err)
		}
		var letters []DeadLetter
		var exists []*redis.IntCmd
		if _, err := d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range msgs {
				if l := readDeadLetter(m); keys.IsUUID(l.RequestID) {
					letters, exists = append(letters, l), append(exists, p.Exists(ctx, keys.Request(tenant, l.RequestID)))
				}
			}
			return nil
		}); err != nil {
			return removed, fmt.Errorf("notify: look up dead letters' requests: %w", err)
		}
		var gone []string
		for i, l := range letters {
			if exists[i].Val() == 0 {
				gone = append(gone, l.ID)
			}
		}
		if len(gone) > 0 {
			n, err := d.rdb.XDel(ctx, DeadKey(tenant), gone...).Result()
			if err != nil {
				return removed, fmt.Errorf("notify: remove dead letters: %w", err)
			}
			removed += int(n)
			for i, l := range letters {
				if exists[i].Val() == 0 {
					d.logger.InfoContext(ctx, "dead letter deleted with its request", "tenant", tenant, "id", l.ID,
						"request_id", l.RequestID, "kind", l.Kind)
				}
			}
		}
		if len(msgs) < deadPage {
			return removed, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// TenantDeadLetters is how many dead letters a tenant has.
type TenantDeadLetters struct {
	Tenant      string `json:"tenant"`
	DeadLetters int64  `json:"dead_letters"`
}

// tenantPage bounds the tenants read, and their streams' lengths asked
// for, per round trip.
const tenantPage = 500

// Tenants returns the tenants that have dead letters, with how many, in
// the order of the tenant set: the dead-letter alert counts deliveries,
// not tenants, and an operator answering it needs to know where to look.
// Its cost is two round trips per tenantPage tenants.
func (d *DeadLetters) Tenants(ctx context.Context) ([]TenantDeadLetters, error) {
	var out []TenantDeadLetters
	seen := map[string]bool{} // SSCAN may return a member twice
	var cursor uint64
	for {
		ids, next, err := d.rdb.SScan(ctx, keys.Tenants(), cursor, "*", tenantPage).Result()
		if err != nil {
			return nil, fmt.Errorf("notify: read tenants: %w", err)
		}
		var tenants []string
		var lens []*redis.IntCmd
		if _, err := d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, t := range ids {
				// The set is an index outside the tenants' slots: a
				// member that is no tenant id names no key of ours.
				if seen[t] || !keys.IsTenant(t) {
					continue
				}
				seen[t] = true
				tenants, lens = append(tenants, t), append(lens, p.XLen(ctx, DeadKey(t)))
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("notify: count dead letters: %w", err)
		}
		for i, t := range tenants {
			if n := lens[i].Val(); n > 0 {
				out = append(out, TenantDeadLetters{Tenant: t, DeadLetters: n})
			}
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

func readDeadLetter(m redis.XMessage) DeadLetter {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	l := DeadLetter{ID: m.ID, Entry: str("entry"), Error: str("error")}
	l.At, _ = time.Parse(time.RFC3339, str("at"))
	l.Attempts, _ = strconv.Atoi(str("attempts"))
	for r := range strings.SplitSeq(str("recipients"), ",") {
		if r = strings.TrimSpace(r); r != "" {
			l.Recipients = append(l.Recipients, r)
		}
	}
	var ev Event
	var fields map[string]json.RawMessage
	raw := []byte(str("event"))
	if err := json.Unmarshal(raw, &ev); err != nil {
		l.Problem = fmt.Sprintf("its event can't be read: %v", err)
		return l
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		l.Problem = fmt.Sprintf("its event can't be read: %v", err)
		return l
	}
	l.Kind, l.RequestID = ev.Kind, ev.Request.ID
	if ev.Kind == kindRedrive {
		// Re-driven before, and failed again: the event is the same.
		if ev.Redrive == nil {
			l.Problem = "its event was re-driven but does not say its kind"
			return l
		}
		l.Kind, l.redriveOf = ev.Redrive.Kind, ev.Redrive.Entry
	}
	if len(l.Recipients) == 0 {
		// A corrupt entry, or one whose recipients could not be worked
		// out: sending it to everyone would repeat what reached some of
		// them before its last attempt.
		l.Problem = "it names no recipient: its recipients could not be worked out (see its error)"
		return l
	}
	l.event = fields
	return l
}

// OpRedrive is the audit operation of a dead letter put back in the
// outbox: record.OpRedriveNotification.
const OpRedrive = record.OpRedriveNotification

// redriveTries bounds the optimistic transactions of one letter's
// re-drive: each is retried when the dead-letter stream changed under it
// (a worker dead-lettering another message, another re-drive).
const redriveTries = 16

// streamID is the shape of a stream entry id. XRANGE also takes "-", "+"
// and incomplete ids, which would name other letters than the one meant.
var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// Redrive puts each of the tenant's dead letters ids back in its outbox,
// with fresh attempts, for the recipients the letter names alone (a
// recipient since removed from the event's recipients is not sent to):
// each in one step that removes it from the dead-letter stream. The
// worker then delivers it as of its request's current state, as it does
// every entry: an approvers' "awaits your decision" of a request that no
// longer awaits them is not sent. A letter that can't be re-driven is
// reported in its Redriven and left alone; the error is for the store
// failing, after which the letters not yet handled are not in the result.
//
// Each letter re-driven writes the audit record OpRedrive to the tenant's
// log in the transaction that puts it back: by, the provider's person or
// account behind it, is kept in the provider-only ProviderUserId, and the
// tenant sees "Microsoft Support". Without an audit log, or a by, nothing
// is re-driven.
func (d *DeadLetters) Redrive(ctx context.Context, tenant, by string, ids []string) ([]Redriven, error) {
	return d.RedriveWithReason(ctx, tenant, by, "", ids)
}

// RedriveWithReason is Redrive with why the letters are put back (a
// ticket, the cause fixed), which each audit record keeps as its Comment,
// which the tenant reads as every record's, and the log line as reason.
// A reason of control characters or longer than MaxRedriveReason is
// refused before anything is re-driven.
func (d *DeadLetters) RedriveWithReason(ctx context.Context, tenant, by, reason string, ids []string) ([]Redriven, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return nil, err
	}
	if d.audit == nil || strings.TrimSpace(by) == "" {
		return nil, errors.New("notify: a re-drive is audited: it needs the audit log and who re-drives")
	}
	if err := ValidRedriveReason(reason); err != nil {
		return nil, err
	}
	out := make([]Redriven, 0, len(ids))
	done := 0
	defer func() {
		if done > 0 {
			// After the script, as every writer of the outbox marks
			// the tenant (due.Committed): the schedule is in no
			// tenant's slot. A lost mark only delays the delivery
			// until the schedule's rescan.
			now := d.now()
			if err := due.Set(context.WithoutCancel(ctx), d.rdb, tenant, due.Mark{Job: due.Notify, At: now, Now: now}); err != nil {
				d.logger.WarnContext(ctx, "re-driven notifications wait for the schedule's rescan", "tenant", tenant, "err", err)
			}
		}
	}()
	for _, id := range ids {
		r, err := d.redrive(ctx, tenant, by, reason, id)
		if err != nil {
			return out, err
		}
		if r.Err == nil {
			done++
			d.audit.Written(ctx, tenant)
			d.logger.InfoContext(ctx, "notification re-driven", "tenant", tenant, "dead_letter", id, "entry", r.Entry,
				"kind", r.Kind, "request_id", r.RequestID, "recipients", r.Recipients, "by", by, "reason", reason)
		}
		out = append(out, r)
	}
	return out, nil
}

func (d *DeadLetters) redrive(ctx context.Context, tenant, by, reason, id string) (Redriven, error) {
	r := Redriven{ID: id}
	if !streamID.MatchString(id) {
		r.Err = fmt.Errorf("%w: %q is no dead letter id (<milliseconds>-<sequence>)", keys.ErrInvalid, id)
		return r, nil
	}
	// Optimistic: the letter is read under WATCH, and put back, removed
	// and audited in one MULTI, so a crash can neither lose the letter nor
	// leave it in both streams nor re-drive it unrecorded, and of two
	// re-drives of one letter only the first finds it.
	for range redriveTries {
		err := d.rdb.Watch(ctx, func(tx *redis.Tx) error {
			r = Redriven{ID: id}
			msgs, err := tx.XRange(ctx, DeadKey(tenant), id, id).Result()
			if err != nil {
				return fmt.Errorf("notify: read dead letter %s: %w", id, err)
			}
			if len(msgs) == 0 {
				r.Err = fmt.Errorf("%w: %s (re-driven already?)", ErrNoDeadLetter, id)
				return nil
			}
			l := readDeadLetter(msgs[0])
			r.Kind, r.RequestID, r.Recipients = l.Kind, l.RequestID, l.Recipients
			if l.Problem != "" {
				r.Err = fmt.Errorf("%w: %s: %s", ErrUnredrivable, id, l.Problem)
				return nil
			}
			ev, err := redriveEvent(l, id, d.now())
			if err != nil {
				return err
			}
			var entry *redis.StringCmd
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				entry = p.XAdd(ctx, &redis.XAddArgs{Stream: OutboxKey(tenant), Values: []any{"event", ev}})
				p.XDel(ctx, DeadKey(tenant), id)
				return d.audit.AppendTx(ctx, p, redriveRecord(tenant, by, reason, id, l))
			}); err != nil {
				return err
			}
			r.Entry = entry.Val()
			return nil
		}, DeadKey(tenant))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return Redriven{ID: id}, fmt.Errorf("notify: re-drive %s: %w", id, err)
		}
		return r, nil
	}
	return Redriven{ID: id}, fmt.Errorf("notify: re-drive %s: the dead-letter stream kept changing; try again", id)
}

// redriveEvent is the outbox entry of dead letter l (of id id) put back
// at now.
func redriveEvent(l DeadLetter, id string, now time.Time) ([]byte, error) {
	// The event's other fields are kept as stored, including any this
	// version does not know.
	first := l.Entry
	if l.redriveOf != "" {
		first = l.redriveOf
	}
	if !streamID.MatchString(first) {
		first = "" // the worker names the deliveries by the new entry
	}
	rd, err := json.Marshal(Redrive{Kind: l.Kind, Recipients: l.Recipients, DeadLetter: id, Entry: first, At: now})
	if err != nil {
		return nil, fmt.Errorf("notify: encode re-drive: %w", err)
	}
	ev := maps.Clone(l.event)
	ev["kind"], _ = json.Marshal(kindRedrive)
	ev["redrive"] = rd
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("notify: encode re-drive: %w", err)
	}
	return b, nil
}

// MaxRedriveReason bounds a re-drive's reason, in bytes: it is written to
// every record of the re-drive.
const MaxRedriveReason = 500

// ErrBadReason: a re-drive's reason holds a control character (or another
// that text.Line refuses) or is longer than MaxRedriveReason.
var ErrBadReason = errors.New("bad re-drive reason")

// ValidRedriveReason returns an error wrapping ErrBadReason for a reason
// RedriveWithReason refuses.
func ValidRedriveReason(reason string) error {
	if len(reason) > MaxRedriveReason {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadReason, len(reason), MaxRedriveReason)
	}
	// The reason is the Comment of an audit record the tenant reads: held
	// to text.Line as every other text people read there is, so that it
	// reads in the order it is written, on one line.
	if !utf8.ValidString(reason) || !text.Line(reason) {
		return fmt.Errorf("%w: it holds a control character, a line separator, a bidirectional control or invalid UTF-8", ErrBadReason)
	}
	return nil
}

// redriveRecord is the audit record of by's re-drive of the tenant's dead
// letter l (of id id), for reason. The letter's recipients are not in it:
// they may be the provider's own (its managers, its engineer), whom a
// tenant's view never names; the log line "notification re-driven" lists
// them.
func redriveRecord(tenant, by, reason, id string, l DeadLetter) record.Record {
	return record.Record{
		Operation: OpRedrive, LockboxTenant: tenant, RecordType: record.RecordTypeExchangeAdmin,
		Workload: record.WorkloadLockbox, ObjectId: id, LockboxRequestId: l.RequestID, Comment: reason,
		UserId: record.ProviderUserID, UserType: record.UserTypeDcAdmin, ProviderUserId: by,
		Parameters: []record.Parameter{
			{Name: "Identity", Value: id},
			{Name: "Kind", Value: string(l.Kind)},
			{Name: "RecipientCount", Value: strconv.Itoa(len(l.Recipients))},
		},
	}
}
