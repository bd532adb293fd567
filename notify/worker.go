package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/streamgroup"
	"github.com/lockbox-oss/lockbox/tenants"
)

// Directory is what the worker reads about tenants, as of delivery. A
// failure to read the store wraps fault.ErrUnavailable: the worker retries
// it without counting an attempt, while any other error counts towards
// dead-lettering the entry.
type Directory interface {
	// Get returns the tenant's registry entry (its global administrators'
	// contacts), or an error wrapping fault.ErrNotFound.
	Get(ctx context.Context, tenant string) (tenants.Tenant, error)
	// Lookup returns the tenant's settings (its notification addresses).
	Lookup(ctx context.Context, tenant string) (tenants.Settings, error)
	// AssignedApprovers returns the tenant's assigned approvers that still
	// count (users of one of its domains), each once, reading the set once.
	AssignedApprovers(ctx context.Context, tenant string) ([]string, error)
}

var _ Directory = (*tenants.Store)(nil)

// Config configures a Worker.
type Config struct {
	Redis redis.UniversalClient
	// SMTP, when set, delivers e-mail; without it e-mail goes to a DevSink
	// (the log, and files under DevDir when set).
	SMTP *SMTPConfig
	// Webhooks receive every event, once each, as signed JSON in the
	// tenant's view (WebhookPayload).
	Webhooks []WebhookConfig
	// Tenants answers who a tenant's global administrators, approvers and
	// notification addresses are; a *tenants.Store over Redis by default.
	Tenants Directory
	// ManagerAddresses are the support managers' addresses, told of every
	// new request (KindCreated).
	ManagerAddresses []string
	// ExpiryWarning is how long before an access window ends its engineer
	// is warned (KindExpiring); 0 sends no warnings. Windows no longer than
	// it get no warning: the approval e-mail already said when they end.
	ExpiryWarning time.Duration
	// DevDir is where the DevSink writes e-mails (`lockbox dev` passes
	// $LOCKBOX_DEV_DIR/mail); ignored when SMTP is set.
	DevDir string
	Logger *slog.Logger
	// Registerer receives the notification metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now is the clock that schedules retries.
	Now func() time.Time
	// Backoff is the wait before retry number attempt (1, 2, ...);
	// exponential from 5s, capped at 15m, by default. Tests set it to
	// return 0.
	Backoff func(attempt int) time.Duration
	// Consumer names this replica in the consumer group; host name and
	// process id by default. Each replica must have its own.
	Consumer string
	// MaxAttempts is how many failed attempts send an event to the
	// dead-letter stream; 16 by default (about 2 hours with the default
	// backoff).
	MaxAttempts int
	// ClaimAfter is how long an entry delivered to a replica may stay
	// unacknowledged before another replica takes it over (the replica
	// died); also the lease of a recipient being sent to. 2m by default;
	// it must exceed the longest send (SMTP timeout).
	ClaimAfter time.Duration
	// ForgetAfter is how long a replica's name stays in the consumer group
	// of a tenant's outbox once it has nothing pending there and has not
	// read it: streamgroup.DefaultForgetAfter(ClaimAfter) by default.
	// Replicas are named by pod, so without it every rollout added a name
	// to the group of every tenant, for good.
	ForgetAfter time.Duration
	// PollInterval is the pause between rounds; 1s by default.
	PollInterval time.Duration
	// Batch bounds the entries read per tenant and round; 100 by default.
	Batch int
	// mailer replaces the e-mail channel (tests).
	mailer Mailer
}

// CheckAndSetDefaults fills defaults and rejects bad settings.
func (c *Config) CheckAndSetDefaults() error {
	if c.Redis == nil {
		return errors.New("notify: Redis is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SMTP != nil {
		if err := c.SMTP.CheckAndSetDefaults(); err != nil {
			return err
		}
	}
	for i, w := range c.Webhooks {
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
			return fmt.Errorf("notify: webhook %d: URL %q must be http(s)", i, w.URL)
		}
		if len(w.Secret) == 0 {
			return fmt.Errorf("notify: webhook %d: a signing secret is required", i)
		}
		if _, err := checkSignatures(w.Signatures); err != nil {
			return fmt.Errorf("notify: webhook %d: %w", i, err)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for _, a := range c.ManagerAddresses {
		if !isAddress(a) {
			return fmt.Errorf("notify: manager address %q is not a plain e-mail address", a)
		}
	}
	if c.ExpiryWarning < 0 {
		return fmt.Errorf("notify: expiry warning %s is negative", c.ExpiryWarning)
	}
	if c.Tenants == nil {
		// Only reads are reachable through Directory, and they need no
		// audit log.
		c.Tenants = tenants.NewStore(c.Redis, nil, c.Now)
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.Consumer == "" {
		host, _ := os.Hostname()
		c.Consumer = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 16
	}
	if c.ClaimAfter <= 0 {
		c.ClaimAfter = 2 * time.Minute
	}
	if c.ForgetAfter <= 0 {
		c.ForgetAfter = streamgroup.DefaultForgetAfter(c.ClaimAfter)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	return nil
}

// maxBackoff is DefaultBackoff's longest wait, and the longest a
// receiver's Retry-After delays a retry.
const maxBackoff = 15 * time.Minute

// DefaultBackoff doubles from 5s up to 15m.
func DefaultBackoff(attempt int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// sentTTL is how long a delivered recipient is remembered: longer than any
// retry schedule, so a retried entry never re-sends to it.
const sentTTL = 7 * 24 * time.Hour

// Worker delivers the outbox. Run one per replica; they share entries
// through the consumer group.
//
// Delivery is at least once: before sending to a recipient the worker
// takes a lease on (entry, recipient), as SET NX would, in one step that
// checks it still holds the entry (lease), and after the channel
// accepted the message it marks the pair sent (or, refused for good, dead:
// see deadLetter; or, news following an ask that never reached them,
// skipped: see askGate); the entry is acknowledged once every recipient is
// marked. So another replica never sends a pair that is being sent or was
// sent, and a retried entry skips the recipients already done. A pair is
// sent again, under the same delivery id, when the channel took it but the
// worker can't know: the answer was lost (a broken connection, a timeout),
// or the worker died, or failed to write to Redis, between the answer and
// the "sent" mark (then once the lease ends). We chose this over
// at-most-once because the contract is "nothing lost".
type Worker struct {
	cfg    Config
	mailer Mailer
	hooks  []*webhook
	sent   *prometheus.CounterVec
	// dropped counts recipients without an e-mail address, by template.
	dropped *prometheus.CounterVec
	group   *streamgroup.Reader
	// unknown counts entries of a kind this version does not know, once
	// per entry; told holds those entries ("tenant/entry") so that each
	// is logged and counted once however many rounds see it.
	unknown prometheus.Counter
	// deadDropped counts dead letters that made room for newer ones
	// (MaxDeadLetters).
	deadDropped prometheus.Counter
	toldMu      sync.Mutex
	told        map[string]bool

	// timedOut holds, for the round (Tick) in progress, the receivers that
	// did not answer within their timeout, or failed slowly (target.slow),
	// by target.via, with the error: see process.
	timedOutMu sync.Mutex
	timedOut   map[string]error
	// mailSlow is target.slow of e-mails: half the mailer's timeout, when
	// it has one.
	mailSlow time.Duration
}

// NewWorker returns a Worker and registers its metrics.
func NewWorker(cfg Config) (*Worker, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, told: map[string]bool{}}
	group, err := streamgroup.New(streamgroup.Config{
		Redis: cfg.Redis, Group: Group, Consumer: cfg.Consumer, ClaimAfter: cfg.ClaimAfter,
		ForgetAfter: cfg.ForgetAfter, Batch: int64(cfg.Batch), Logger: cfg.Logger,
		Expected: w.backingOff,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	w.group = group
	switch {
	case cfg.mailer != nil:
		w.mailer = cfg.mailer
	case cfg.SMTP != nil:
		sm := NewSMTP(*cfg.SMTP)
		sm.logger = cfg.Logger
		w.mailer = sm
	default:
		from := "lockbox@localhost"
		w.mailer = &DevSink{Dir: cfg.DevDir, From: from, Logger: cfg.Logger, Now: cfg.Now}
	}
	if tm, ok := w.mailer.(interface{ Timeout() time.Duration }); ok {
		w.mailSlow = tm.Timeout() / 2
	}
	for _, h := range cfg.Webhooks {
		w.hooks = append(w.hooks, newWebhook(h, cfg.Now))
	}
	w.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockbox_notifications_sent_total",
		Help: "Notification deliveries by channel (smtp, dev, webhook) and result (ok, error, dead; refused: a webhook receiver's answer says its URL or key is wrong, or the SMTP server refuses Lockbox for good, shows a certificate Lockbox does not trust or offers no AUTH PLAIN on the connection; retried; skipped: an e-mail following a request's ask, to a recipient the ask never reached; deleted: given up on as dead is, but its request was deleted by request retention, so no dead letter was kept).",
	}, []string{"channel", "result"})
	for _, ch := range []string{"smtp", "dev", "webhook"} {
		for _, res := range []string{"ok", "error", "dead", "deleted"} {
			w.sent.WithLabelValues(ch, res)
		}
	}
	for _, ch := range []string{"smtp", "webhook"} {
		w.sent.WithLabelValues(ch, "refused")
	}
	for _, ch := range []string{"smtp", "dev"} {
		w.sent.WithLabelValues(ch, "skipped")
	}
	w.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockbox_notification_recipients_dropped_total",
		Help: "Recipients not e-mailed because Lockbox knows no e-mail address of theirs (an engineer whose token had neither an address subject nor an email claim), by template.",
	}, []string{"template"})
	for _, t := range Templates {
		w.dropped.WithLabelValues(string(t))
	}
	w.unknown = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lockbox_notifications_unknown_kind_total",
		Help: "Outbox entries of a kind this version does not know (queued by a newer replica during a rolling upgrade), left in the outbox for a replica that knows it.",
	})
	w.deadDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lockbox_notification_dead_letters_dropped_total",
		Help: "Dead letters removed, oldest first, from a tenant's dead-letter stream that held its maximum (10000) to make room for a new one, each logged at error with its request, kind, recipients and error: they can no longer be re-driven.",
	})
	if cfg.Registerer != nil {
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lockbox_notifications_outbox_depth",
			Help: "Notification events waiting in the outbox, read from Redis at scrape time (-1 when Redis can't be read).",
		}, w.depth)
		for _, c := range []prometheus.Collector{w.sent, w.dropped, w.unknown, w.deadDropped, depth} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("notify: register metrics: %w", err)
			}
		}
	}
	return w, nil
}

func (w *Worker) depth() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := w.Depth(ctx)
	if err != nil {
		return -1
	}
	return float64(n)
}

// Depth counts the events waiting in the outboxes of the tenants the
// notification schedule (internal/due) lists: every tenant with a waiting
// event, unless its schedule entry was lost (the next rescan restores it).
// Its cost follows the tenants with work, not all tenants, and its round
// trips do not: the lengths are read in one pipeline. The gauge has 2 s,
// and a backlog reaches every tenant at once (an SMTP outage): a round
// trip for each would turn the depth into -1, "Redis unreadable", exactly
// when the backlog is what there is to see.
func (w *Worker) Depth(ctx context.Context) (int64, error) {
	tenants, err := w.index().Tenants(ctx)
	if err != nil {
		return 0, err
	}
	var lens []*redis.IntCmd
	if _, err := w.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tenants {
			if keys.ValidTenant(t) == nil {
				lens = append(lens, p.XLen(ctx, OutboxKey(t)))
			}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	var n int64
	for _, l := range lens {
		n += l.Val()
	}
	return n, nil
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	w.cfg.Logger.InfoContext(ctx, "notification worker started", "consumer", w.cfg.Consumer, "mailer", w.mailer.Name(), "webhooks", len(w.hooks))
	for {
		if _, err := w.Tick(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "notification round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.cfg.PollInterval):
		}
	}
}

// Tick runs one round over the tenants the notification schedule
// (internal/due) lists as due — those with new outbox entries, entries
// whose retry is due, entries left at a replica that may have died, or an
// expiry warning to queue — and, for each: queues the expiry warnings that
// are due, takes over entries left by dead replicas, retries its own due
// entries and reads new ones. An idle deployment's round costs one
// command however many tenants it serves. It returns how many entries it
// finished (delivered or dead-lettered).
//
// Several replicas may run rounds at once: each claims its tenants, and the
// consumer group and the per-recipient leases (see Worker) keep a message
// from being sent twice even when two replicas visit one tenant.
func (w *Worker) Tick(ctx context.Context) (int, error) {
	w.timedOutMu.Lock()
	w.timedOut = map[string]error{}
	w.timedOutMu.Unlock()
	done := 0
	d := due.Drainer{Index: w.index(), Lease: w.cfg.ClaimAfter, RetryAfter: w.cfg.PollInterval, Logger: w.cfg.Logger}
	_, err := d.Drain(ctx, func(ctx context.Context, t string) (time.Time, error) {
		if keys.ValidTenant(t) != nil {
			return time.Time{}, nil
		}
		// One instant for the visit: nextDue leaves out the warnings
		// queueWarnings judged, and a later clock would skip a window
		// that came inside its lead time between the two.
		now := w.cfg.Now()
		n, err := w.tickTenant(ctx, t, now)
		done += n
		if err != nil {
			return time.Time{}, err
		}
		return w.nextDue(ctx, t, now)
	})
	return done, err
}

func (w *Worker) index() *due.Index { return due.New(w.cfg.Redis, due.Notify, w.cfg.Now) }

// nextDue returns when tenant next has work: the earliest retry of an
// entry backing off; soon, for entries at another replica (in flight, or
// to take over once idle for ClaimAfter); and the next expiry warning.
// Zero when there is none. A due schedule whose entry is gone is deleted
// (forgetStale) rather than counted.
func (w *Worker) nextDue(ctx context.Context, t string, now time.Time) (time.Time, error) {
	var length *redis.IntCmd
	var retries *redis.MapStringStringCmd
	var warn *redis.ZSliceCmd
	if _, err := w.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		length = p.XLen(ctx, OutboxKey(t))
		retries = p.HGetAll(ctx, retryKey(t))
		if w.cfg.ExpiryWarning > 0 {
			warn = p.ZRangeByScoreWithScores(ctx, keys.TenantActive(t), &redis.ZRangeBy{
				Min: "(" + strconv.FormatInt(now.Add(w.cfg.ExpiryWarning).UnixMilli(), 10), Max: "+inf", Count: 1})
		}
		return nil
	}); err != nil {
		return time.Time{}, err
	}
	rs := map[string]int64{}
	var dueIDs []any
	for id, st := range retries.Val() {
		_, ms, _ := strings.Cut(st, ":")
		at, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			at = now.UnixMilli()
		}
		rs[id] = at
		if at <= now.UnixMilli() {
			dueIDs = append(dueIDs, id)
		}
	}
	if len(dueIDs) > 0 {
		forgotten, err := w.forgetStale(ctx, t, dueIDs)
		if err != nil {
			return time.Time{}, err
		}
		for _, id := range forgotten {
			delete(rs, id)
		}
	}
	var next time.Time
	earlier := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if n := length.Val(); n > 0 {
		if n > int64(len(rs)) {
			earlier(now.Add(w.cfg.ClaimAfter / 2))
		}
		for _, at := range rs {
			earlier(time.UnixMilli(at))
		}
	}
	if warn != nil {
		if z := warn.Val(); len(z) > 0 {
			// Warnings of windows already inside their lead time were
			// queued (or found not due) by this visit.
			earlier(time.UnixMilli(int64(z[0].Score)).Add(-w.cfg.ExpiryWarning))
		}
	}
	return next, nil
}

// forgetStale deletes the retry schedules among entries ids (due ones)
// whose entry no consumer holds, and returns their ids. A version that let
// a replica no longer holding an entry write its schedule left such
// states behind, and so may a trimmed entry's: no visit finds their entry
// to delete them, and each one's due time, past, would make the tenant due
// at once after every visit. A schedule is written only while its entry is
// pending, so one whose entry is not is nobody's; a due one whose entry
// another replica holds, backing off or to be taken over, stays.
func (w *Worker) forgetStale(ctx context.Context, t string, ids []any) ([]string, error) {
	res, err := forgetStaleScript.Run(ctx, w.cfg.Redis, []string{OutboxKey(t), retryKey(t)},
		append([]any{Group}, ids...)...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("notify: forget stale retry schedules of %s: %w", t, err)
	}
	return res, nil
}

// forgetStaleScript is forgetStale's, on the outbox (KEYS[1]) and its
// retry hash (KEYS[2]): of entries ARGV[2...], it deletes the field of each
// one not pending in group ARGV[1] (none is without the group) and returns
// their ids. One script, so that the check and the delete see the same
// entry: no schedule written while its entry is pending is ever deleted.
var forgetStaleScript = redis.NewScript(`
local gone = {}
for i = 2, #ARGV do
  local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if not ok and not string.find(tostring(pending.err or pending), 'NOGROUP', 1, true) then
    return redis.error_reply(tostring(pending.err or pending))
  end
  if not ok or #pending == 0 then
    redis.call('HDEL', KEYS[2], ARGV[i])
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
`)

// Probe reads whether a tenant has notification work, for due.Rescan:
// entries in its outbox (due at once; the visit sorts out which), or a
// grant whose expiry warning is still to come.
func (w *Worker) Probe(ctx context.Context, p redis.Pipeliner, t string, now time.Time) func() (time.Time, bool) {
	length := p.XLen(ctx, OutboxKey(t))
	var warn *redis.ZSliceCmd
	if w.cfg.ExpiryWarning > 0 {
		// Every window not yet ended: one already inside its lead time
		// may not have been warned yet (a lost mark is what the rescan
		// repairs), and the warning's marker keeps a needless visit from
		// warning twice.
		warn = p.ZRangeByScoreWithScores(ctx, keys.TenantActive(t), &redis.ZRangeBy{
			Min: "(" + strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf", Count: 1})
	}
	return func() (time.Time, bool) {
		if n, err := length.Result(); err != nil || n > 0 {
			return now, true
		}
		if warn != nil {
			z, err := warn.Result()
			if err != nil {
				return now, true // can't tell: look
			}
			if len(z) > 0 {
				return later(time.UnixMilli(int64(z[0].Score)).Add(-w.cfg.ExpiryWarning), now), true
			}
		}
		return time.Time{}, false
	}
}

func (w *Worker) tickTenant(ctx context.Context, t string, now time.Time) (int, error) {
	// Due warnings first, so they go out in this same round.
	if _, err := w.queueWarnings(ctx, t, now); err != nil {
		w.cfg.Logger.WarnContext(ctx, "expiry warnings not queued", "tenant", t, "err", err)
	}
	rdb, stream := w.cfg.Redis, OutboxKey(t)
	// Delivered and dead-lettered entries are deleted: an empty outbox has
	// nothing new, nothing to retry and nothing to take over.
	if n, err := rdb.XLen(ctx, stream).Result(); err != nil || n == 0 {
		return 0, err
	}
	// Our own pending entries (retries; entries backing off stay pending
	// without hiding the ones behind them), entries another replica took
	// and never acknowledged (it died), then new entries.
	done := 0
	_, err := w.group.Visit(ctx, stream, func(ctx context.Context, msgs []redis.XMessage) error {
		n, err := w.processAll(ctx, t, msgs)
		done += n
		return err
	})
	return done, err
}

func (w *Worker) processAll(ctx context.Context, t string, msgs []redis.XMessage) (int, error) {
	done := 0
	for _, m := range msgs {
		fin, err := w.process(ctx, t, m)
		if err != nil {
			return done, err
		}
		if fin {
			done++
		}
	}
	return done, nil
}

// leftToOther logs that this replica stops acting on entry id of tenant
// t because another replica took it over.
func (w *Worker) leftToOther(ctx context.Context, t, id string, ev Event) {
	w.cfg.Logger.InfoContext(ctx, "notification left to the replica that took the entry over", "tenant", t, "entry", id,
		"kind", ev.Kind, "request_id", ev.Request.ID)
}

// channels names the channels an entry may go through, for counting an
// entry whose recipients are unknown: e-mail, and webhooks when any are
// configured.
func (w *Worker) channels() []string {
	if len(w.hooks) > 0 {
		return []string{w.mailer.Name(), "webhook"}
	}
	return []string{w.mailer.Name()}
}

// target is one recipient of an event on one channel.
type target struct {
	// key is who the recipient is, the same at every attempt however
	// the recipients are listed then: "mail:<addr in lower case>" or
	// "webhook:<URL>". The sent mark and the delivery id hash it, and it
	// is never shown, as a webhook's URL may hold its credential.
	key string
	// name is how logs and dead letters name the recipient:
	// "mail:<addr>", or "webhook:<n>", the n-th configured webhook.
	name    string
	channel string
	// via is the server the message goes to: the mailer's name for every
	// e-mail (one SMTP server sends them all), the key for a webhook.
	via  string
	send func(ctx context.Context, id string) error
	// slow, when set, is how long a failed send to via takes for via to
	// be left for the rest of the round, as one that timed out is (half
	// its timeout): a receiver failing just before its timeout costs the
	// round nearly as much, once per entry, every later message waiting.
	slow time.Duration
	// ask, when set, ties the e-mail to the request's ask reaching the
	// recipient (Worker.askGate).
	ask *askMark
}

// askMark ties a recipient's e-mail to the request's "awaits your
// decision" reaching them: the ask itself is recorded there, and "no
// longer needs your decision" (follows) goes only to whom it reached.
type askMark struct {
	key, field string
	follows    bool
}

// process works on one entry and reports whether it is finished.
func (w *Worker) process(ctx context.Context, t string, m redis.XMessage) (bool, error) {
	rdb := w.cfg.Redis
	raw, ok := m.Values["event"].(string)
	if !ok { // deleted under us: only the acknowledgement is left
		return true, rdb.XAck(ctx, OutboxKey(t), Group, m.ID).Err()
	}
	var ev Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		// Counted on the channels it would have gone through, as an entry
		// whose recipients can't be worked out is: the dead-letter alert
		// reads the counter, and nobody would learn of it otherwise.
		return w.deadLetter(ctx, t, m.ID, raw, 1, fmt.Errorf("corrupt event: %w", err), nil, nil, w.channels()...)
	}
	// only, for an entry put back from the dead-letter stream, are the
	// recipients it is for: the others had it, or were given up on in
	// another dead letter.
	var only []string
	if ev.Kind == kindRedrive {
		if ev.Redrive == nil {
			return w.deadLetter(ctx, t, m.ID, raw, 1, errors.New("corrupt event: re-driven without its own kind"), nil, nil, w.channels()...)
		}
		ev.Kind, only = ev.Redrive.Kind, ev.Redrive.Recipients
	}
	// The deliveries of a re-driven entry are named as those of the
	// entry it was first.
	named := m.ID
	if ev.Redrive != nil && streamID.MatchString(ev.Redrive.Entry) {
		named = ev.Redrive.Entry
	}
	attempts, next := 0, int64(0)
	if st, err := rdb.HGet(ctx, retryKey(t), m.ID).Result(); err == nil {
		a, n, _ := strings.Cut(st, ":")
		attempts, _ = strconv.Atoi(a)
		next, _ = strconv.ParseInt(n, 10, 64)
	} else if !errors.Is(err, redis.Nil) {
		return false, err
	}
	if next > w.cfg.Now().UnixMilli() {
		return false, nil // backing off
	}
	if !known(ev.Kind) {
		return false, w.leave(ctx, t, m.ID, ev.Kind, attempts)
	}
	targets, dropped, err := w.targets(ctx, t, ev)
	if err != nil {
		if transient(err) {
			// The store is down or slow: no fault of the entry's, and the
			// entries behind it would fail alike, so the visit ends and
			// the entry is retried without counting an attempt.
			return false, err
		}
		// Nobody can be told until what names the recipients is repaired
		// (a corrupt request or registry entry): a failed attempt like a refused delivery, so the
		// entry backs off without holding up the tenant's later entries
		// and is dead-lettered after MaxAttempts rather than retried
		// forever. Its webhooks wait with it: they go out with the
		// e-mails, once the entry resolves.
		channels := w.channels()
		for _, ch := range channels {
			w.sent.WithLabelValues(ch, "error").Inc()
		}
		w.cfg.Logger.WarnContext(ctx, "notification recipients not resolved", "tenant", t, "entry", m.ID,
			"kind", ev.Kind, "request_id", ev.Request.ID, "attempt", attempts+1, "err", err)
		// A re-driven entry's letter names its recipients again, so that
		// it can be re-driven once more when the cause is fixed.
		return w.failed(ctx, t, m.ID, raw, attempts+1, errors.As(err, new(permanentError)), err, 0, only, channels)
	}
	if ev.Redrive != nil {
		if targets, err = w.redriven(ctx, t, m.ID, ev, targets, attempts); err != nil {
			return false, err
		}
		dropped = nil
	}
	if attempts == 0 && len(dropped) > 0 {
		// Told once per entry, not on every retry of its other
		// recipients, nor on every visit of an entry that comes round
		// again with no attempt on record: its other recipients waited
		// for their receiver's Retry-After, or for another replica
		// sending to them.
		first, err := rdb.SetNX(ctx, droppedKey(t, m.ID), 1, sentTTL).Result()
		if err != nil {
			return false, fmt.Errorf("notify: mark the dropped recipients of %s told: %w", m.ID, err)
		}
		if !first {
			dropped = nil
		}
		for _, d := range dropped {
			w.dropped.WithLabelValues(string(d.template)).Inc()
			w.cfg.Logger.WarnContext(ctx, "notification recipient has no e-mail address", "tenant", t, "entry", m.ID,
				"kind", ev.Kind, "request_id", ev.Request.ID, "template", d.template, "recipient", d.who)
		}
	}
	// The recipients that failed and that a retry may reach.
	var retry failures
	busy := false
	// deferred is when the last of the recipients whose receivers asked to
	// be left alone (Retry-After) may be tried again: zero when none did.
	var deferred time.Time
	// patient: the entry still waits for its receivers' holds (another
	// message's Retry-After) without counting an attempt.
	until, bounded := w.patientUntil(ev)
	patient := !bounded || until.After(w.cfg.Now())
	for _, tg := range targets {
		mk := sentKey(t, m.ID, hashKey(tg.key))
		if err := w.timedOutErr(tg.via); err != nil {
			// The server did not answer a message of this round within
			// its timeout, or failed it after half of that (target.slow):
			// a failed attempt without waiting for it again.
			// A server that hangs would otherwise cost every message of
			// the round its timeout (up to Batch entries a tenant, and
			// an SMTP server once per recipient), holding up the ones
			// that other channels would deliver, past the lease of the
			// tenant's visit. The next round tries it again. A recipient
			// the entry is done with is passed by, as in any round, and
			// one another replica is sending to is waited for: neither
			// failed, and counting it would dead-letter it in the end.
			// Nor is it counted once another replica took the entry over
			// (as lease does): that replica counts its own attempts.
			sk, serr := w.skipTimedOut(ctx, t, m.ID, tg.key)
			if serr != nil {
				return false, serr
			}
			switch sk.state {
			case leaseLost:
				w.leftToOther(ctx, t, m.ID, ev)
				return false, nil
			case leaseHeld:
				busy = busy || sk.mark != "sent" && sk.mark != "dead" && sk.mark != "skipped"
				continue
			}
			w.sent.WithLabelValues(tg.channel, "error").Inc()
			w.cfg.Logger.WarnContext(ctx, "notification not delivered", "tenant", t, "entry", m.ID,
				"kind", ev.Kind, "request_id", ev.Request.ID, "channel", tg.channel, "attempt", attempts+1, "err", err)
			retry.add(tg, err, sk.tries)
			continue
		}
		l, err := w.lease(ctx, t, m.ID, tg.key, tg.via, patient)
		if err != nil {
			return false, err
		}
		switch l.state {
		case leaseLost:
			// Another replica took the entry over since this visit read
			// it: what this one read of it (its attempts, its retry being
			// due) is out of date, and the replica holding it now sends
			// to its recipients and schedules its retries. Acting on it
			// here would send to a recipient that replica just tried, or
			// before the retry it scheduled, and count an attempt it did
			// not make; the recipients done here stay done.
			w.leftToOther(ctx, t, m.ID, ev)
			return false, nil
		case leaseHeld:
			if l.mark != "sent" && l.mark != "dead" && l.mark != "skipped" {
				busy = true // another replica is sending it right now
			}
			continue
		case leaseWait:
			// Its receiver asked an earlier attempt to wait (Retry-After),
			// this message's or any other's, whichever replica made it:
			// not an attempt, and the entry is retried once the wait is
			// over.
			if l.notBefore.After(deferred) {
				deferred = l.notBefore
			}
			continue
		}
		gate := askUntracked
		if tg.ask != nil {
			if gate, err = w.askGate(ctx, tg.ask); err != nil {
				rdb.Del(context.WithoutCancel(ctx), mk)
				return false, err
			}
			switch gate {
			case askWithdrawn:
				// An ask the request no longer needs, or news that
				// follows it for a recipient the ask never reached:
				// nothing to tell them. A retry of the entry finds the
				// same.
				if !tg.ask.follows {
					rdb.Del(context.WithoutCancel(ctx), mk)
					continue
				}
				// Marked, so that the entry's retries (for its other
				// recipients) pass them by without logging and counting
				// them again.
				if err := rdb.Set(context.WithoutCancel(ctx), mk, "skipped", sentTTL).Err(); err != nil {
					return false, err
				}
				w.sent.WithLabelValues(tg.channel, "skipped").Inc()
				w.cfg.Logger.InfoContext(ctx, "notification not sent: its recipient never got the request's ask", "tenant", t, "entry", m.ID,
					"kind", ev.Kind, "request_id", ev.Request.ID, "channel", tg.channel)
				continue
			case askBusy:
				// The ask is being sent right now: the news follows it.
				rdb.Del(context.WithoutCancel(ctx), mk)
				busy = true
				continue
			}
		}
		sendCtx, cancel := context.WithTimeout(ctx, w.cfg.ClaimAfter/2)
		began := time.Now()
		err = tg.send(sendCtx, deliveryID(t, named, tg.key))
		took := time.Since(began)
		cancel()
		if gate == askSending && err != nil && !errors.As(err, new(unansweredError)) {
			// Not reached: a withdrawal passes them by. The worst a
			// failed write does is leave the lease, at whose end a
			// withdrawal takes the ask as sent. An ask the server may
			// have taken, its answer lost, keeps its lease for that
			// reason: what follows it is sent at the lease's end, as
			// delivery is at least once, rather than leave its
			// recipient asked to decide a request that is gone.
			_ = w.askSettle(context.WithoutCancel(ctx), tg.ask, false)
		}
		if err != nil && ctx.Err() != nil {
			// The replica is stopping (its jobs' context ended) and cut
			// the send: no failure of the receiver's, so neither logged as
			// undelivered nor counted as an error, which every rolling
			// restart would show, and no attempt is spent. The recipient
			// is freed; the entry stays pending, for this replica's next
			// start or another replica to take over.
			rdb.Del(context.WithoutCancel(ctx), mk)
			w.cfg.Logger.InfoContext(ctx, "notification send stopped with the replica; it is sent again", "tenant", t, "entry", m.ID,
				"kind", ev.Kind, "request_id", ev.Request.ID, "channel", tg.channel)
			return false, ctx.Err()
		}
		if err != nil {
			result, level, msg := "error", slog.LevelWarn, "notification not delivered"
			if errors.As(err, new(misconfiguredError)) {
				// Retried all the same, but shown at once: see
				// misconfigured.
				result, level, msg = "refused", slog.LevelError, "notification refused: its receiver or settings need fixing"
			}
			w.sent.WithLabelValues(tg.channel, result).Inc()
			w.cfg.Logger.Log(ctx, level, msg, "tenant", t, "entry", m.ID,
				"kind", ev.Kind, "request_id", ev.Request.ID, "channel", tg.channel, "attempt", attempts+1, "err", err)
			if errors.As(err, new(permanentError)) {
				// No retry can reach it: a dead letter now, under its own
				// error, marked dead while its lease still holds. The
				// entry's later sends may outlast the lease, and a replica
				// that took the entry over meanwhile would try the
				// recipient again and dead-letter it a second time. The
				// entry's other failed recipients are not dead letters: a
				// receiver that is gone for good (a deleted Slack webhook
				// fails every event) must not take down with it the
				// e-mails that an SMTP outage failed in the same attempt.
				held, err := w.deadLetter(ctx, t, m.ID, raw, attempts+1, err, []string{tg.name}, []string{tg.key}, tg.channel)
				if err != nil || !held {
					// Taken over: the recipient is free for the replica
					// that holds the entry now to settle.
					rdb.Del(context.WithoutCancel(ctx), mk)
					return false, err
				}
				continue
			}
			n, terr := w.tried(ctx, t, m.ID, tg.key)
			if terr != nil {
				rdb.Del(context.WithoutCancel(ctx), mk)
				return false, terr
			}
			retry.add(tg, err, n)
			switch {
			case timeout(err):
				w.leaveForTheRound(tg.via, fmt.Errorf("not tried again this round: %w", err))
			case tg.slow > 0 && took >= tg.slow:
				w.leaveForTheRound(tg.via, fmt.Errorf("not tried again this round: it failed after %s: %w", took.Round(time.Millisecond), err))
			}
			// The attempt is on record before the recipient is free
			// again: a replica that takes the entry over while this one
			// is busy with its later recipients (their sends together may
			// outlast ClaimAfter) finds the entry backing off, rather
			// than sending to the recipient again before its backoff or
			// Retry-After, and scheduling a retry of an entry this
			// replica then finishes. failed writes the attempt's schedule
			// again once every recipient was tried. Only the replica
			// holding the entry writes its schedule, so the receiver's
			// Retry-After is also recorded with the recipient as its
			// lease ends (release), whoever holds the entry: a replica
			// that took it over while this send was under way would
			// otherwise call the receiver again at once.
			// The receiver's wait holds its other messages too, the
			// other entries' and the other tenants', on every replica:
			// sent meanwhile, each would be refused in turn and spend an
			// attempt of its own on the answer this one already got.
			var herr error
			if d, ok := errors.AsType[*delayedError](err); ok && d.wait > 0 {
				herr = w.hold(context.WithoutCancel(ctx), tg.via, d.wait)
			}
			serr := w.schedule(ctx, t, m.ID, attempts+1, retry.wait)
			rerr := w.release(context.WithoutCancel(ctx), t, m.ID, tg.key, err)
			if err := errors.Join(herr, serr, rerr); err != nil {
				return false, err
			}
			continue
		}
		if err := rdb.Set(context.WithoutCancel(ctx), mk, "sent", sentTTL).Err(); err != nil {
			return false, err
		}
		if gate == askSending {
			// As above, a lease left behind ends as "sent".
			_ = w.askSettle(context.WithoutCancel(ctx), tg.ask, true)
		}
		w.sent.WithLabelValues(tg.channel, "ok").Inc()
		w.cfg.Logger.InfoContext(ctx, "notification delivered", "tenant", t, "entry", m.ID,
			"kind", ev.Kind, "request_id", ev.Request.ID, "channel", tg.channel)
	}
	if !deferred.IsZero() {
		retry.wait = max(retry.wait, deferred.Sub(w.cfg.Now()))
	}
	switch {
	case len(retry.names) == 0 && !deferred.IsZero():
		// No attempt was made at the waiting recipients: the entry's
		// attempts stay as they were.
		return false, w.scheduleAt(ctx, t, m.ID, attempts, deferred)
	case len(retry.names) == 0 && busy:
		return false, nil
	case len(retry.names) == 0:
		_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.XAck(ctx, OutboxKey(t), Group, m.ID)
			p.XDel(ctx, OutboxKey(t), m.ID)
			p.HDel(ctx, retryKey(t), m.ID)
			return nil
		})
		return err == nil, err
	}
	// Each recipient has MaxAttempts of its own: one that sat out some of
	// the entry's attempts (another replica was sending to it, or it
	// waited for the request's ask being sent to it) is not cut short by
	// the others' failures.
	spent, tries := retry.spent(w.cfg.MaxAttempts)
	switch {
	case len(spent.names) == 0:
		return false, w.schedule(ctx, t, m.ID, attempts+1, retry.wait)
	case len(spent.names) == len(retry.names) && !busy && deferred.IsZero():
		return w.deadLetter(ctx, t, m.ID, raw, tries, spent.errs[len(spent.errs)-1], spent.names, nil, spent.channels...)
	}
	// These recipients failed their last attempt, but the entry is not
	// done with the others: they are to be retried, another replica is
	// sending to them, their receiver asked them to wait, or they wait
	// for the request's ask being sent to them. Finishing the entry would
	// lose those in silence, named by no dead letter (a withdrawal never
	// reaching the approver whose ask went out meanwhile). So the spent ones are dead letters, marked dead for
	// the entry's next visit to pass them by, as a recipient refused for
	// good is, and the entry stays for the rest.
	if held, err := w.deadLetter(ctx, t, m.ID, raw, tries, spent.errs[len(spent.errs)-1], spent.names, spent.keys, spent.channels...); err != nil || !held {
		return false, err
	}
	return false, w.schedule(ctx, t, m.ID, attempts+1, retry.wait)
}

// redriven returns the targets of a re-driven entry: those its dead
// letter names, as they are listed now (an address in any case, a webhook
// by its place in the configured list). A recipient that is no longer
// among the event's (an address since corrected or removed, an approver
// no longer assigned, an ask the request no longer needs) gets nothing,
// which is logged once per entry: not again on every visit of an entry
// that comes round with no attempt on record (its other recipients waited
// for their receiver's Retry-After, or for another replica sending to
// them), nor by a replica that took it over.
func (w *Worker) redriven(ctx context.Context, t, id string, ev Event, targets []target, attempts int) ([]target, error) {
	var out []target
	for _, tg := range targets {
		if slices.ContainsFunc(ev.Redrive.Recipients, func(r string) bool { return strings.EqualFold(r, tg.name) }) {
			out = append(out, tg)
		}
	}
	if attempts > 0 {
		return out, nil
	}
	var gone []string
	for _, r := range ev.Redrive.Recipients {
		if !slices.ContainsFunc(out, func(tg target) bool { return strings.EqualFold(r, tg.name) }) {
			gone = append(gone, r)
		}
	}
	if len(gone) == 0 {
		return out, nil
	}
	first, err := w.cfg.Redis.SetNX(ctx, goneKey(t, id), 1, sentTTL).Result()
	if err != nil {
		return nil, fmt.Errorf("notify: mark the recipients re-driven entry %s no longer has told: %w", id, err)
	}
	if !first {
		return out, nil
	}
	for _, r := range gone {
		w.cfg.Logger.InfoContext(ctx, "re-driven notification not sent to a recipient it no longer has", "tenant", t, "entry", id,
			"kind", ev.Kind, "request_id", ev.Request.ID, "dead_letter", ev.Redrive.DeadLetter, "recipient", r)
	}
	return out, nil
}

// What askGate finds.
const (
	// askUntracked: the request's asks are not recorded (queued by an
	// earlier version): send as before.
	askUntracked = "untracked"
	// askSending: the ask may be sent, and is recorded as being sent
	// (askSettle records how it ended).
	askSending = "sending"
	// askReached: the ask reached the recipient (or may have: an ask is
	// sent again); the withdrawal follows.
	askReached = "sent"
	// askWithdrawn: nothing to send (see Worker.process).
	askWithdrawn = "withdrawn"
	// askBusy: the ask is being sent; the withdrawal waits for it.
	askBusy = "busy"
)

// askScript is askGate's, on the request's askedKey (KEYS[1]) and the
// recipient's field (ARGV[1]), as of ARGV[2] (Unix milliseconds): for the
// ask itself (ARGV[3] = "ask") it records it as being sent until ARGV[4],
// unless a withdrawal came first; for the withdrawal it passes by a
// recipient the ask never reached, recording so, so that an ask sent later
// (it resolved its recipients before the request moved on) is not sent
// after all.
//
// An ask sent again while its field still holds an earlier send's lease
// (the send ended without a word: its replica died, the write recording it
// failed, or the server's answer was lost) may have reached its recipient
// the first time: it is recorded as sent, whatever becomes of the second
// copy, as is one recorded sent already.
var askScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'recorded') == 0 then return 'untracked' end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v == 'withdrawn' then return 'withdrawn' end
if ARGV[3] == 'ask' then
  if v then
    redis.call('HSET', KEYS[1], ARGV[1], 'sent')
    return 'sent'
  end
  redis.call('HSET', KEYS[1], ARGV[1], 'sending:' .. ARGV[4])
  return 'sending'
end
if not v then
  redis.call('HSET', KEYS[1], ARGV[1], 'withdrawn')
  return 'withdrawn'
end
if v == 'sent' then return 'sent' end
local lease = tonumber(string.sub(v, 9))
if lease and lease > tonumber(ARGV[2]) then return 'busy' end
return 'sent'
`)

// askGate decides, in one step, whether an e-mail tied to a request's ask
// (target.ask) goes out. What follows the ask (Template.followsAsk: "no
// longer needs your decision", "already decided", "access ended early") is
// news only to those the ask reached: delivered late, the ask waiting for
// its retry (the recipient's mailbox was busy) while the request was
// canceled or expired, it would tell someone of a request they never heard
// of, whose ask then goes nowhere, being stale; and so it would an
// approver assigned after the ask went out, or one whose ask was a dead
// letter. So it goes to a recipient once the ask reached them, waits while
// the ask is being sent, and passes by one it never reached. An ask whose
// sender's lease ended without a word (the replica died) may have gone
// out: what follows it goes too.
func (w *Worker) askGate(ctx context.Context, a *askMark) (string, error) {
	role := "follow"
	if !a.follows {
		role = "ask"
	}
	now := w.cfg.Now()
	res, err := askScript.Run(ctx, w.cfg.Redis, []string{a.key}, a.field, now.UnixMilli(), role,
		now.Add(w.cfg.ClaimAfter).UnixMilli()).Text()
	if err != nil {
		return "", fmt.Errorf("notify: ask record: %w", err)
	}
	return res, nil
}

// askSettleScript records how an ask being sent ended, unless the record
// expired meanwhile.
var askSettleScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'recorded') == 0 then return 0 end
if ARGV[2] == 'sent' then
  redis.call('HSET', KEYS[1], ARGV[1], 'sent')
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
`)

// askSettle records that the ask reached its recipient, or that it did
// not (the field is cleared for a retry, or a withdrawal, to find).
func (w *Worker) askSettle(ctx context.Context, a *askMark, reached bool) error {
	v := "failed"
	if reached {
		v = askReached
	}
	return askSettleScript.Run(ctx, w.cfg.Redis, []string{a.key}, a.field, v).Err()
}

// leaveForTheRound has the server via not tried again in this round, for
// err.
func (w *Worker) leaveForTheRound(via string, err error) {
	w.timedOutMu.Lock()
	defer w.timedOutMu.Unlock()
	w.timedOut[via] = err
}

// timedOutErr returns why the server via is not tried again in this
// round, or nil.
func (w *Worker) timedOutErr(via string) error {
	w.timedOutMu.Lock()
	defer w.timedOutMu.Unlock()
	return w.timedOut[via]
}

// timeout reports whether a send failed because its server did not answer
// in time (a connection's deadline, the channel's timeout), rather than
// answering no or refusing the connection, which take no time.
func timeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// failures are the recipients of one entry that failed in one attempt, in
// the order they were tried.
type failures struct {
	names, channels []string
	errs            []error
	// keys are their target keys, to mark them dead.
	keys []string
	// tries are how many attempts each has failed, this one included.
	tries []int
	// wait is the longest any of their receivers asked to be left alone
	// (a webhook's Retry-After).
	wait time.Duration
}

func (f *failures) add(tg target, err error, tries int) {
	f.names, f.channels, f.errs = append(f.names, tg.name), append(f.channels, tg.channel), append(f.errs, err)
	f.keys, f.tries = append(f.keys, tg.key), append(f.tries, tries)
	if d, ok := errors.AsType[*delayedError](err); ok {
		f.wait = max(f.wait, d.wait)
	}
}

// spent returns the recipients of f that have failed last attempts or
// more, and the most attempts any of them failed.
func (f *failures) spent(last int) (failures, int) {
	var s failures
	most := 0
	for i, n := range f.tries {
		if n >= last {
			s.names, s.channels, s.errs = append(s.names, f.names[i]), append(s.channels, f.channels[i]), append(s.errs, f.errs[i])
			s.keys, s.tries = append(s.keys, f.keys[i]), append(s.tries, n)
			most = max(most, n)
		}
	}
	return s, most
}

// tried records a failed attempt at the recipient (target key) of entry
// id and returns how many it has failed. The count lives as long as a sent
// mark, longer than any retry schedule.
func (w *Worker) tried(ctx context.Context, t, id, key string) (int, error) {
	k := triesKey(t, id, hashKey(key))
	var n *redis.IntCmd
	_, err := w.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.Incr(ctx, k)
		p.PExpire(ctx, k, sentTTL)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n.Val()), nil
}

// skipped is what skipTimedOut found.
type skipped struct {
	// state is leaseLost, leaseHeld (mark set), or leaseGot: the
	// attempt was counted, tries in all.
	state string
	mark  string
	tries int
}

// skipTimedOut counts, as tried does, a failed attempt at the recipient
// (target key) of entry id whose server did not answer earlier in this
// round: in one step, only while the entry is pending at this replica
// (leaseLost otherwise) and the recipient has no mark (leaseHeld: done,
// or another replica is sending to it). A replica that took the entry
// over counts its own attempts: one counted here too would bring the
// recipient's dead letter closer for an attempt that never was.
func (w *Worker) skipTimedOut(ctx context.Context, t, id, key string) (skipped, error) {
	h := hashKey(key)
	res, err := skipTimedOutScript.Run(ctx, w.cfg.Redis, []string{OutboxKey(t), sentKey(t, id, h), triesKey(t, id, h)},
		Group, w.cfg.Consumer, id, sentTTL.Milliseconds()).StringSlice()
	if err != nil {
		return skipped{}, fmt.Errorf("notify: count a timed-out recipient of %s: %w", id, err)
	}
	s := skipped{state: res[0]}
	switch {
	case s.state == leaseLost:
		return s, nil
	case s.state == leaseHeld && len(res) == 2:
		s.mark = res[1]
		return s, nil
	case s.state == leaseGot && len(res) == 2:
		if s.tries, err = strconv.Atoi(res[1]); err == nil {
			return s, nil
		}
	}
	return skipped{}, fmt.Errorf("notify: count a timed-out recipient of %s: unexpected answer %q", id, res)
}

// entryHereLua begins the scripts that act on a recipient of entry
// ARGV[3] only while it is pending at consumer ARGV[2] of group ARGV[1]
// on the outbox KEYS[1]: it answers {"lost"} otherwise (a group gone with
// its stream holds nothing).
const entryHereLua = `
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if not ok then
  if string.find(tostring(pending.err or pending), 'NOGROUP', 1, true) then return {'lost'} end
  return redis.error_reply(tostring(pending.err or pending))
end
if #pending == 0 then return {'lost'} end`

// skipTimedOutScript is skipTimedOut's, on the outbox (KEYS[1]), the
// recipient's sent mark (KEYS[2]) and its count of failed attempts
// (KEYS[3]), for consumer ARGV[2] of group ARGV[1] and entry ARGV[3]: it
// answers {"lost"} unless the entry is pending at the consumer (a group
// gone with its stream holds nothing), {"held", mark} when the mark
// exists, and otherwise adds one to the count, keeps it ARGV[4] ms and
// answers {"got", count}. One script, so that no other replica takes the
// entry over between the check and the count.
var skipTimedOutScript = redis.NewScript(entryHereLua + `
local mark = redis.call('GET', KEYS[2])
if mark then return {'held', mark} end
local n = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {'got', tostring(n)}
`)

// failed records a failed attempt (number attempts) at entry id: it
// dead-letters the entry when the failure is permanent or the attempts are
// used up, and otherwise schedules the retry after the backoff, or after
// wait if a receiver asked for longer (Retry-After). The entry stays
// pending while it backs off, without hiding the ones after it
// (streamgroup.Reader.Visit pages past it). It reports whether the entry
// is finished.
//
// Retries are scheduled per entry, not per recipient: a receiver's
// Retry-After delays the entry's other failed recipients too, by at most
// maxBackoff.
func (w *Worker) failed(ctx context.Context, t, id, raw string, attempts int, perm bool, cause error, wait time.Duration, recipients, channels []string) (bool, error) {
	if perm || attempts >= w.cfg.MaxAttempts {
		return w.deadLetter(ctx, t, id, raw, attempts, cause, recipients, nil, channels...)
	}
	return false, w.schedule(ctx, t, id, attempts, wait)
}

// known reports whether this version knows whom entries of kind k go to.
func known(k Kind) bool {
	switch k {
	case legacyPendingCustomer, legacyRequesterUpdate, legacyAlreadyDecided:
		return true
	}
	return slices.Contains(Kinds, k)
}

// leave leaves entry id, of a kind this version does not know, in the
// outbox for a replica that knows it: during a rolling upgrade a newer
// replica queues kinds an older one has never heard of, and dead-lettering
// the entry (or acknowledging it) would take it from the newer replicas
// too. It stays pending here, without counting an attempt, and is looked at
// again after ClaimAfter rather than on every round; a newer replica gets it
// once this one is upgraded (its own pending entries at its restart, or
// taken over as a gone replica's). The entry is logged and counted once.
func (w *Worker) leave(ctx context.Context, t, id string, k Kind, attempts int) error {
	w.toldMu.Lock()
	tell := !w.told[t+"/"+id]
	if tell {
		if len(w.told) >= 10000 { // bounded; an entry forgotten is told again
			clear(w.told)
		}
		w.told[t+"/"+id] = true
	}
	w.toldMu.Unlock()
	if tell {
		w.unknown.Inc()
		w.cfg.Logger.WarnContext(ctx, "notification of a kind this version does not know left for a newer replica",
			"tenant", t, "entry", id, "kind", k)
	}
	return w.schedule(ctx, t, id, attempts, w.cfg.ClaimAfter)
}

// schedule records failed attempt number attempts at entry id: its retry
// is due after the backoff, or after wait if a receiver asked for longer.
//
// As for a dead letter, only the consumer holding the entry writes it. A
// replica paused past ClaimAfter has had the entry taken over, and the
// replica that took it may have finished it (its state deleted with it)
// before this write lands: written then, the state would stay in the
// retry hash for good, as no visit finds its entry to delete it, and
// bring the tenant's visits forward while its outbox holds others. The
// replica holding the entry writes its own schedule.
func (w *Worker) schedule(ctx context.Context, t, id string, attempts int, wait time.Duration) error {
	return w.scheduleAt(ctx, t, id, attempts, w.cfg.Now().Add(max(w.cfg.Backoff(attempts), wait)))
}

// scheduleAt writes entry id's retry state, as schedule does: attempts
// failed, the next one due at at.
func (w *Worker) scheduleAt(ctx context.Context, t, id string, attempts int, at time.Time) error {
	err := scheduleScript.Run(ctx, w.cfg.Redis, []string{OutboxKey(t), retryKey(t)},
		Group, w.cfg.Consumer, id, fmt.Sprintf("%d:%d", attempts, at.UnixMilli())).Err()
	if err != nil {
		return fmt.Errorf("notify: schedule %s: %w", id, err)
	}
	return nil
}

// scheduleScript is schedule's, on the outbox (KEYS[1]) and its retry
// hash (KEYS[2]): it sets entry ARGV[3]'s field to ARGV[4] when the entry
// is pending at consumer ARGV[2] of group ARGV[1], and returns whether it
// did. One script, so that no other replica takes the entry over, and
// finishes it, between the check and the write.
var scheduleScript = redis.NewScript(`
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 1
`)

// What lease finds.
const (
	// leaseGot: the recipient is this replica's to send to, until
	// ClaimAfter.
	leaseGot = "got"
	// leaseHeld: the recipient's mark (lease.mark) is there already: it
	// is done (sent, dead, skipped), or another replica is sending to it.
	leaseHeld = "held"
	// leaseWait: its receiver asked not to be called before
	// lease.notBefore.
	leaseWait = "wait"
	// leaseLost: the entry is no longer pending at this replica.
	leaseLost = "lost"
)

// leaseResult is what lease found.
type leaseResult struct {
	state     string
	mark      string
	notBefore time.Time
}

// lease takes, in one step, the lease on recipient key (a target key) of
// entry id, for ClaimAfter: only while the entry is pending at this
// replica (a replica that took it over since this one read it settles
// it: see leaseLost), the recipient has no mark (sent, dead, skipped, or
// another replica's lease), and neither the Retry-After its receiver gave
// this message (release) nor the one it gave any message (the hold on
// via, holdUntil) lasts past now.
//
// The hold is read first, apart: it lives in no tenant's slot, and a
// script may not reach beyond one slot on Redis Cluster. A hold written
// between the read and the send costs the receiver one more call, as one
// written while this send was under way does.
func (w *Worker) lease(ctx context.Context, t, id, key, via string, patient bool) (leaseResult, error) {
	h := hashKey(key)
	var hold int64
	if patient {
		var err error
		if hold, err = w.holdUntil(ctx, via); err != nil {
			return leaseResult{}, err
		}
	}
	now := w.cfg.Now()
	res, err := leaseScript.Run(ctx, w.cfg.Redis, []string{OutboxKey(t), sentKey(t, id, h), notBeforeKey(t, id, h)},
		Group, w.cfg.Consumer, id, now.UnixMilli(), "sending:"+w.cfg.Consumer, max(w.cfg.ClaimAfter.Milliseconds(), 1),
		hold).StringSlice()
	if err != nil {
		return leaseResult{}, fmt.Errorf("notify: lease on a recipient of %s: %w", id, err)
	}
	l := leaseResult{state: res[0]}
	switch l.state {
	case leaseHeld:
		if len(res) > 1 {
			l.mark = res[1]
		}
	case leaseWait:
		ms, _ := strconv.ParseInt(res[1], 10, 64)
		l.notBefore = time.UnixMilli(ms)
	case leaseGot, leaseLost:
	default:
		return leaseResult{}, fmt.Errorf("notify: lease on a recipient of %s: unexpected answer %q", id, res)
	}
	return l, nil
}

// leaseScript is lease's, on the outbox (KEYS[1]), the recipient's sent
// mark (KEYS[2]) and its not-before (KEYS[3]), for consumer ARGV[2] of
// group ARGV[1] and entry ARGV[3], as of ARGV[4] (Unix ms): it answers
// {"lost"} unless the entry is pending at the consumer (a group gone with
// its stream holds nothing), {"held", mark} when the mark exists,
// {"wait", not-before} when the later of the not-before and the
// receiver's hold ARGV[7] (Unix ms, 0 for none; absent from an earlier
// version's call) is later than ARGV[4], and otherwise sets the mark to
// ARGV[5] for ARGV[6] ms and answers {"got"}. One script, so that no other
// replica takes the entry over between the check and the lease.
var leaseScript = redis.NewScript(entryHereLua + `
local mark = redis.call('GET', KEYS[2])
if mark then return {'held', mark} end
local nb = redis.call('GET', KEYS[3])
if not (nb and tonumber(nb)) then nb = nil end
local hold = tonumber(ARGV[7] or '0')
if hold and hold > 0 and (not nb or hold > tonumber(nb)) then nb = ARGV[7] end
if nb and tonumber(nb) > tonumber(ARGV[4]) then return {'wait', nb} end
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
return {'got'}
`)

// patientUntil returns until when an entry of ev waits for its receivers'
// holds without counting an attempt (lease): as long as its attempts may
// take at the longest, each waiting out a Retry-After at its cap, counted
// from when the event was queued (or re-driven). Holds are renewed by
// whichever message is tried first when one ends, so a receiver that
// kept asking to wait (a maintenance page for the hours of an outage) had
// one message tried per wait, the others never tried nor dead-lettered,
// and the outbox kept every event since the outage began. Past it the
// entry is tried at its own pace, its own Retry-After still honoured,
// its refusals counted, and dead-lettered after its attempts, as with a
// receiver that fails. An entry an earlier version re-drove has no time
// of its own: it waits as it did then, for good (ok false).
func (w *Worker) patientUntil(ev Event) (until time.Time, ok bool) {
	start := ev.Event.At
	if ev.Redrive != nil {
		if start = ev.Redrive.At; start.IsZero() {
			return time.Time{}, false
		}
	}
	return start.Add(time.Duration(w.cfg.MaxAttempts) * maxBackoff), true
}

// holdUntil returns when the receiver via may be called again as it
// asked (Unix ms), 0 when no hold is recorded (hold). Retry-After's cap
// (maxBackoff) bounds what a hold may be, and its key's expiry how long it
// lasts, on Redis's clock, whatever the replicas' clocks say.
func (w *Worker) holdUntil(ctx context.Context, via string) (int64, error) {
	v, err := w.cfg.Redis.Get(ctx, holdKey(via)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("notify: read the hold on a receiver: %w", err)
	}
	at, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, nil // not a time: no hold, and the key expires
	}
	return at, nil
}

// hold records that the receiver via asked (Retry-After) not to be called
// before now plus wait, for every message: the later of that and a hold
// already there stands, so that two replicas told different waits keep
// the longer one. The key expires with the wait (and ClaimAfter, as a
// recipient's not-before does), clearing the hold with nobody to do it.
func (w *Worker) hold(ctx context.Context, via string, wait time.Duration) error {
	at := w.cfg.Now().Add(wait).UnixMilli()
	if err := holdScript.Run(ctx, w.cfg.Redis, []string{holdKey(via)}, at, (wait + w.cfg.ClaimAfter).Milliseconds()).Err(); err != nil {
		return fmt.Errorf("notify: hold a receiver: %w", err)
	}
	return nil
}

// holdScript is hold's, on the receiver's hold (KEYS[1]): it sets it to
// ARGV[1] (Unix ms) for ARGV[2] ms unless it holds a later time already.
var holdScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
if cur and cur >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// release ends this replica's lease on recipient key of entry id after a
// failed send, recording first, when the receiver asked for a wait
// (Retry-After), when it may be called again: in one transaction, so
// that no replica finds the recipient free and the wait not recorded.
// The record is the recipient's, not the entry's schedule, which only the
// replica holding the entry writes; it lasts the wait and ClaimAfter.
func (w *Worker) release(ctx context.Context, t, id, key string, cause error) error {
	h := hashKey(key)
	var err error
	if d, ok := errors.AsType[*delayedError](cause); ok && d.wait > 0 {
		_, err = w.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, notBeforeKey(t, id, h), w.cfg.Now().Add(d.wait).UnixMilli(), d.wait+w.cfg.ClaimAfter)
			p.Del(ctx, sentKey(t, id, h))
			return nil
		})
	} else {
		err = w.cfg.Redis.Del(ctx, sentKey(t, id, h)).Err()
	}
	if err != nil {
		return fmt.Errorf("notify: release a recipient of %s: %w", id, err)
	}
	return nil
}

// transient reports whether err is the store failing (Redis down, slow or
// failing over; the round's context ending) rather than anything about the
// entry. Store reads wrap fault.ErrUnavailable; a Directory that passes a
// client's or the network's error on unwrapped counts as failing too.
func transient(err error) bool {
	if errors.Is(err, fault.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var re redis.Error
	var ne net.Error
	return (errors.As(err, &re) && !errors.Is(err, redis.Nil)) || errors.As(err, &ne) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, io.EOF)
}

// deadLetter writes an entry to the dead-letter stream for the failed
// recipients (target names), in one step. Given dead, the keys of
// recipients refused for good (or failed at the last attempt while the
// entry waits for others), the entry stays for its other recipients and
// those are marked dead so that its retries pass them by; without, the
// entry leaves the outbox.
//
// Only the consumer holding the entry writes its letters: it reports false,
// and writes nothing, when the entry is no longer pending at this replica.
// A replica paused past ClaimAfter after its last attempt (a long send, a
// stalled network) has had the entry taken over, and the replica that took
// it tries the recipients again and settles them: it delivers them, or
// writes the letter itself. Both writing one would list the failure twice,
// and a re-drive of both letters would send it twice; a letter written
// after the other replica delivered would say a delivered message was
// given up on.
//
// The stream holds the newest MaxDeadLetters letters: a letter that makes
// room is counted and logged with what it was.
//
// No letter is written for an event whose request is gone (request
// retention deleted it): the recipients are settled as for a letter, the
// delivery counted deleted (not dead, which promises a letter), and the
// failure logged instead. A letter of a request deleted after it was
// written is removed by the deletion's pass over the tenant's letters
// (DeadLetters.ForgetDeleted); a request still there, whatever its state,
// gets its letter.
func (w *Worker) deadLetter(ctx context.Context, t, id, raw string, attempts int, cause error, failed, dead []string, channels ...string) (bool, error) {
	ks := []string{DeadKey(t), OutboxKey(t), retryKey(t)}
	// The request the letter would carry a copy of, when the event names
	// one (a corrupt event does not).
	request, requests := requestOf(raw), 0
	if request != "" {
		ks, requests = append(ks, keys.Request(t, request)), 1
	}
	for _, k := range dead {
		ks = append(ks, sentKey(t, id, hashKey(k)))
	}
	res, err := deadLetterScript.Run(ctx, w.cfg.Redis, ks, Group, w.cfg.Consumer, id, MaxDeadLetters, sentTTL.Milliseconds(), requests,
		"event", raw, "entry", id, "attempts", attempts, "error", fmt.Sprint(cause),
		"recipients", strings.Join(failed, ","), "at", w.cfg.Now().UTC().Format(time.RFC3339)).Slice()
	if err != nil {
		return false, fmt.Errorf("notify: dead-letter %s: %w", id, err)
	}
	if held, _ := res[0].(int64); held == 0 {
		w.cfg.Logger.InfoContext(ctx, "notification not dead-lettered here: another replica took the entry over and settles it",
			"tenant", t, "entry", id, "attempts", attempts, "recipients", failed, "err", cause)
		return false, nil
	}
	if kept, _ := res[len(res)-1].(int64); len(res) > 2 && kept == 0 {
		// Request retention deleted the request: a letter would carry a
		// copy of it and its history, which must not outlive it, and
		// could not be re-driven (recipients are worked out from the
		// request). DeadLetters.ForgetDeleted would remove it only at
		// the tenant's next deletion, which may never come. Counted
		// apart from dead: LockboxNotificationDeadLettered sends on-call
		// to the dead letters, and there is none to find.
		for _, ch := range channels {
			w.sent.WithLabelValues(ch, "deleted").Inc()
		}
		w.cfg.Logger.ErrorContext(ctx, "notification given up on; no dead letter kept: its request was deleted", "tenant", t, "entry", id,
			"request_id", request, "attempts", attempts, "recipients", failed, "err", cause)
		return true, nil
	}
	for _, ch := range channels {
		w.sent.WithLabelValues(ch, "dead").Inc()
	}
	w.cfg.Logger.ErrorContext(ctx, "notification dead-lettered", "tenant", t, "entry", id,
		"attempts", attempts, "recipients", failed, "err", cause)
	var dropped any
	if len(res) > 1 {
		dropped = res[1]
	}
	for _, m := range streamMessages(dropped) {
		l := readDeadLetter(m)
		w.deadDropped.Inc()
		w.cfg.Logger.ErrorContext(ctx, "dead letter dropped: the tenant's dead-letter stream is full; it can no longer be re-driven",
			"tenant", t, "dead_letter", l.ID, "entry", l.Entry, "kind", l.Kind, "request_id", l.RequestID,
			"recipients", l.Recipients, "attempts", l.Attempts, "error", l.Error, "max_dead_letters", MaxDeadLetters)
	}
	return true, nil
}

// MaxDeadLetters is how many letters a tenant's dead-letter stream holds:
// a mail server that refuses for days dead-letters every message, and the
// stream would grow Redis without bound. The oldest letter makes room for
// a new one.
const MaxDeadLetters = 10000

// deadLetterScript is deadLetter's, on the dead-letter stream (KEYS[1]),
// the outbox (KEYS[2]), its retry hash (KEYS[3]), when ARGV[6] is 1 the
// request the event names (KEYS[4]), and the sent marks of the recipients
// to mark dead (the rest). Unless entry ARGV[3] is pending at consumer
// ARGV[2] of group ARGV[1], it returns {0} and writes nothing. Otherwise
// it adds a letter (the field-value pairs from ARGV[7]) to the stream,
// which keeps the newest ARGV[4], unless the request is gone; marks the
// recipients dead for ARGV[5] ms, or, when there are none, acknowledges
// and deletes the entry and its retry state; and returns {1, the letters
// that made room, as XRANGE does, 1 if it added the letter or 0}. One
// script, so that no other replica takes the entry over, and no deletion
// of the request comes, between the checks and the writes: a deletion
// after it finds the letter (DeadLetters.ForgetDeleted).
var deadLetterScript = redis.NewScript(`
if #redis.call('XPENDING', KEYS[2], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2]) == 0 then
  return {0}
end
local marks = 4 + tonumber(ARGV[6])
local kept = 1
if marks > 4 and redis.call('EXISTS', KEYS[4]) == 0 then
  kept = 0
end
local dropped = {}
if kept == 1 then
  local over = redis.call('XLEN', KEYS[1]) + 1 - tonumber(ARGV[4])
  if over > 0 then
    dropped = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', over)
  end
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], '*', unpack(ARGV, 7))
end
if #KEYS >= marks then
  for i = marks, #KEYS do
    redis.call('SET', KEYS[i], 'dead', 'PX', ARGV[5])
  end
else
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[3])
  redis.call('XDEL', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
end
return {1, dropped, kept}
`)

// requestOf returns the id of the request an outbox entry's event names,
// or "" when it names none that could be stored (a corrupt event), as
// DeadLetters.ForgetDeleted reads a letter's.
func requestOf(raw string) string {
	var ev struct {
		Request struct {
			ID string `json:"id"`
		} `json:"request"`
	}
	if json.Unmarshal([]byte(raw), &ev) != nil || !keys.IsUUID(ev.Request.ID) {
		return ""
	}
	return ev.Request.ID
}

// streamMessages reads an XRANGE reply returned by a script.
func streamMessages(v any) []redis.XMessage {
	items, _ := v.([]any)
	var out []redis.XMessage
	for _, it := range items {
		pair, ok := it.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		kv, _ := pair[1].([]any)
		m := redis.XMessage{ID: id, Values: map[string]any{}}
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				m.Values[k] = kv[i+1]
			}
		}
		out = append(out, m)
	}
	return out
}

// dropping is a recipient targets found no e-mail address for.
type dropping struct {
	template Template
	who      string
}

// targets resolves who gets ev, as of now: the tenant's registry entry,
// approvers and settings are read when the entry is delivered, not when it
// was queued. Each address is e-mailed once per entry (the first template
// it is listed for), and each webhook gets the entry once. It also lists
// the recipients it had no address for.
//
// A request's state is read again for the e-mails that ask for something
// the request may no longer need (see stale): the approvers' "awaits your
// decision" and the engineer's expiry warning. Webhooks get every event
// however late, as the record of what happened and when (its "at").
func (w *Worker) targets(ctx context.Context, tenant string, ev Event) ([]target, []dropping, error) {
	var out []target
	var dropped []dropping
	// knows is the tenant's approver who approved the request, if one
	// did: they know of it by their own act, whether or not its ask
	// reached them, and hear what follows the approval all the same.
	knows := ""
	addMail := func(addr string, t Template) {
		if !isAddress(addr) {
			dropped = append(dropped, dropping{t, addr})
			return
		}
		// The key (the recipient's sent mark and Message-ID) ignores
		// case as this deduplication does: a retry may list the
		// address from another source, in another case (a notification
		// address "Security@" later assigned as an approver, stored
		// "security@"), and must know it for the recipient it mailed.
		key := "mail:" + strings.ToLower(addr)
		if slices.ContainsFunc(out, func(tg target) bool { return tg.key == key }) {
			return
		}
		var ask *askMark
		if t == TemplatePendingCustomer || t.followsAsk() && !strings.EqualFold(addr, knows) {
			ask = &askMark{key: askedKey(tenant, ev.Request.ID), field: hashKey(key), follows: t != TemplatePendingCustomer}
		}
		out = append(out, target{key: key, name: "mail:" + addr, channel: w.mailer.Name(), via: w.mailer.Name(), slow: w.mailSlow, ask: ask, send: func(ctx context.Context, id string) error {
			ev := ev
			if t == TemplateExpiryWarning {
				// The time left counts from now, when the warning goes
				// out: retried after a mail server was down for minutes,
				// it would otherwise promise time that is gone.
				ev.Event.At = w.cfg.Now().UTC()
			}
			if t.forTenant() && !tenants.MailDomain(addr[strings.LastIndexByte(addr, '@')+1:]) {
				// Stored before the tenant's settings refused one: the
				// relay would deliver it to a host the tenant picked
				// inside the provider's network (tenants.MailDomain).
				return permanent(fmt.Errorf("address %s does not name a mail domain (an IP address or a single name), which the tenant's settings no longer take: not given to the mail server: replace it", addr))
			}
			msg, err := Render(ev, t, addr)
			if err != nil {
				return permanent(err)
			}
			return w.mailer.Send(ctx, id, msg)
		}})
	}
	addRequester := func(t Template) { addMail(requesterAddress(ev.Request), t) }
	addTenant := func(t Template, except string) error {
		// Every tenant e-mail goes to everyone the tenant's "awaits your
		// decision" goes to: what follows the ask is news to each of them
		// it reached (Worker.askGate), the notification addresses too, or
		// they act on a request that someone else already decided.
		addrs, err := w.tenantRecipients(ctx, ev.Request.Tenant)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if !strings.EqualFold(a, except) {
				addMail(a, t)
			}
		}
		return nil
	}
	// A tenant approver's decision is news to the tenant's other approvers.
	tenantDecided := ev.Event.ActorKind == grants.KindTenant && ev.Event.From == grants.StatePendingCustomer &&
		(ev.Event.Action == grants.ActionApprove || ev.Event.Action == grants.ActionDeny)
	// Whether the tenant is still asked to decide, and the engineer's
	// window still about to end, read once and only for those events.
	ask := func() (bool, error) { return w.current(ctx, tenant, ev, grants.StatePendingCustomer) }
	hook := ev.Kind
	switch ev.Kind {
	case KindCreated:
		for _, a := range w.cfg.ManagerAddresses {
			addMail(a, TemplateNewRequest)
		}
	case KindPendingCustomer:
		// The engineer is told what happened (the manager approved) even
		// when it is old news: every later change sends its own e-mail.
		addRequester(TemplateRequesterUpdate)
		if ok, err := ask(); err != nil {
			return nil, nil, err
		} else if ok {
			if err := addTenant(TemplatePendingCustomer, ""); err != nil {
				return nil, nil, err
			}
		}
	case KindApproved, KindDenied:
		addRequester(TemplateRequesterUpdate)
		if tenantDecided {
			if err := addTenant(TemplateAlreadyDecided, ev.Event.Actor); err != nil {
				return nil, nil, err
			}
		}
	case KindCanceled, KindExpired:
		// The engineer knows of their own cancellation, not of one that
		// something else caused (offboarding the tenant).
		if ev.Kind == KindExpired || ev.Event.Cause != "" {
			addRequester(TemplateRequesterUpdate)
		}
		// The tenant's people were asked to decide: told it no longer
		// awaits them, or they sign in to act on something that is gone.
		// A request that ended before it reached them (pending_manager)
		// was never theirs to decide, and a decision by one of them is
		// TemplateAlreadyDecided's news.
		if ev.Event.From == grants.StatePendingCustomer {
			if err := addTenant(TemplateNoLongerPending, ""); err != nil {
				return nil, nil, err
			}
		}
	case KindRevoked:
		addRequester(TemplateRequesterUpdate)
		// Access the tenant approved ended early: news to the tenant's
		// people, who were asked about it and told of the approval,
		// whoever ended it: the provider, or one of the tenant's
		// approvers, who is not told of their own act (as with
		// TemplateAlreadyDecided). Not a grant only the manager approved
		// while its lockbox was off, which nobody at the tenant was asked
		// about; turning Customer Lockbox on ends only those.
		if grants.TenantApproved(ev.Request) {
			knows = tenantApprover(ev.Request)
			except := ""
			if ev.Event.ActorKind == grants.KindTenant {
				except = ev.Event.Actor
			}
			if err := addTenant(TemplateAccessEnded, except); err != nil {
				return nil, nil, err
			}
		}
	case KindCompleted:
		addRequester(TemplateRequesterUpdate)
	case KindExpiring:
		if ok, err := w.current(ctx, tenant, ev, grants.StateApproved); err != nil {
			return nil, nil, err
		} else if ok {
			addRequester(TemplateExpiryWarning)
		}

	// Entries queued by an older version, one per audience: each is
	// delivered to its audience, and webhooks get the event once, from
	// the entry that carried them then.
	case legacyPendingCustomer:
		if ok, err := ask(); err != nil {
			return nil, nil, err
		} else if ok {
			if err := addTenant(TemplatePendingCustomer, ""); err != nil {
				return nil, nil, err
			}
		}
		hook = KindPendingCustomer
	case legacyRequesterUpdate:
		addRequester(TemplateRequesterUpdate)
		hook = ""
		if k, ok := KindOf(ev.Event); ok && k != KindPendingCustomer {
			hook = k
		}
	case legacyAlreadyDecided:
		if err := addTenant(TemplateAlreadyDecided, ev.Event.Actor); err != nil {
			return nil, nil, err
		}
		hook = ""
	default:
		return nil, nil, permanent(fmt.Errorf("unknown event kind %q", ev.Kind))
	}
	if hook != "" {
		hev := ev
		hev.Kind = hook
		for i, h := range w.hooks {
			// Keyed by its URL, not its place in the list: a receiver
			// removed from the configuration (the runbook's fix for one
			// that is gone) must not hand its mark, sent or dead, to the
			// one that takes its place, whose retry would then be skipped.
			key := "webhook:" + h.cfg.URL
			out = append(out, target{key: key, name: "webhook:" + strconv.Itoa(i), channel: "webhook", via: key, slow: h.cfg.Timeout / 2, send: func(ctx context.Context, id string) error {
				body, err := WebhookBody(hev)
				if err != nil {
					return permanent(err)
				}
				return h.post(ctx, id, body)
			}})
		}
	}
	return out, dropped, nil
}

// current reports whether the request of ev is, as of now, still where the
// event left it: in state want, with the same decision deadline (a
// pending stage) or the same end of its access window (a grant). A
// request that has moved on (decided, canceled, expired, revoked,
// completed, or settled by time alone though no sweep wrote it yet) or is
// gone makes an e-mail asking for a decision, or warning of an end, stale:
// delivery may be late (a mail server down for hours), and an approver
// asked to decide a canceled request, or an engineer warned of the end of
// access already revoked, is misled.
func (w *Worker) current(ctx context.Context, tenant string, ev Event, want grants.State) (bool, error) {
	b, err := w.cfg.Redis.Get(ctx, keys.Request(tenant, ev.Request.ID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fault.Unavailable("notify: request", err)
	}
	var r grants.Request
	if err := json.Unmarshal(b, &r); err != nil {
		return false, fmt.Errorf("request %s is corrupt: %w", ev.Request.ID, err)
	}
	r, _ = grants.Settle(r, w.cfg.Now())
	same := func(a, b *time.Time) bool { return a != nil && b != nil && a.Equal(*b) }
	switch want {
	case grants.StatePendingCustomer:
		return r.State == want && same(r.DecideBy, ev.Request.DecideBy), nil
	case grants.StateApproved:
		return r.State == want && same(r.ExpiresAt, ev.Request.ExpiresAt), nil
	}
	return r.State == want, nil
}

// tenantApprover is the tenant's user whose approval granted r's access,
// or "" when none did.
func tenantApprover(r grants.Request) string {
	for _, e := range slices.Backward(r.History) {
		if e.Action == grants.ActionApprove && e.To == grants.StateApproved {
			if e.ActorKind == grants.KindTenant {
				return e.Actor
			}
			return ""
		}
	}
	return ""
}

// requesterAddress is where the engineer's e-mails go: the address their
// token carried when they filed the request (requests filed before it was
// recorded have none), else their subject. A subject that is no address
// (an opaque "sub" and no email claim) is returned all the same, for
// targets to drop and name in its warning.
func requesterAddress(r grants.Request) string {
	if isAddress(r.RequesterEmail) {
		return r.RequesterEmail
	}
	return r.Requester
}

// tenantRecipients lists, deduplicated, the tenant's global administrators'
// contacts (its registry entry) and its assigned approvers that still count
// (tenants.Store.AssignedApprovers: users of the tenant's domains), plus its
// notification addresses. Microsoft 365 notifies "the Global
// Administrators and the Customer Lockbox access approver roles".
func (w *Worker) tenantRecipients(ctx context.Context, t string) ([]string, error) {
	var out []string
	add := func(a string) {
		if !slices.ContainsFunc(out, func(b string) bool { return strings.EqualFold(a, b) }) {
			out = append(out, a)
		}
	}
	entry, err := w.cfg.Tenants.Get(ctx, t)
	switch {
	case errors.Is(err, fault.ErrNotFound):
		// No registry entry (a tenant from before onboarding): no known
		// global administrators; its approvers don't count either.
	case err != nil:
		return nil, err
	}
	for _, a := range entry.GlobalAdmins {
		add(a)
	}
	// One read of the set, however many approvers it holds.
	approvers, err := w.cfg.Tenants.AssignedApprovers(ctx, t)
	if err != nil {
		return nil, fault.Unavailable("notify: approvers", err)
	}
	for _, a := range approvers {
		add(a)
	}
	st, err := w.cfg.Tenants.Lookup(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, a := range st.NotificationAddresses {
		add(a)
	}
	return out, nil
}

// WebhookPayload is the JSON body of a webhook delivery: one event of one
// request, in the tenant's view (TenantView), because webhooks usually feed
// chat channels the tenant reads: the engineer appears as "Microsoft
// Operator" and any other provider staff as "Microsoft Support".
type WebhookPayload struct {
	// Event is the Kind: request.created, request.pending_customer, ...
	Event          Kind   `json:"event"`
	Tenant         string `json:"tenant"`
	RequestID      string `json:"request_id"`
	Service        string `json:"service"`
	ServiceRequest string `json:"service_request"`
	// Activities are the requested activities; empty means all read
	// activities of the service.
	Activities []string `json:"activities"`
	// Duration is the requested access window, e.g. "2h" or "1h30m".
	Duration  string        `json:"duration"`
	State     grants.State  `json:"state"`
	Action    grants.Action `json:"action,omitempty"`
	Actor     string        `json:"actor"`
	At        time.Time     `json:"at"`
	DecideBy  *time.Time    `json:"decide_by,omitempty"`
	ExpiresAt *time.Time    `json:"expires_at,omitempty"`
	// EndedAt is when a request in a final state (completed, revoked,
	// denied, expired, canceled) ended, as the API's ended_at gives it
	// (grants.EndedAt): a receiver of request.revoked otherwise read
	// ExpiresAt as access lasting until then. Absent while the request
	// is pending or approved.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	Summary string     `json:"summary"`
	// Cause says why the event ended the request when its actor did not
	// choose to end that request: "tenant_offboarded".
	Cause grants.Cause `json:"cause,omitempty"`
}

// WebhookBody renders ev as a webhook body.
func WebhookBody(ev Event) ([]byte, error) {
	tv := TenantView(ev)
	r, e := tv.Request, tv.Event
	if e.ActorKind == grants.KindSystem {
		e.Actor = "Lockbox"
	}
	acts := r.Activities
	if acts == nil {
		acts = []string{}
	}
	// Derived from the history as the API derives it, so the two can't
	// disagree, and an entry queued before the field existed has it too.
	var ended *time.Time
	if at, ok := grants.EndedAt(r); ok {
		at = at.UTC()
		ended = &at
	}
	return json.Marshal(WebhookPayload{
		Event: ev.Kind, Tenant: r.Tenant, RequestID: r.ID, Service: r.Service, ServiceRequest: r.ServiceRequest,
		Activities: acts, Duration: r.Duration.String(),
		State: r.State, Action: e.Action, Actor: e.Actor, At: e.At.UTC(), DecideBy: r.DecideBy, ExpiresAt: r.ExpiresAt,
		EndedAt: ended, Summary: Summary(ev), Cause: e.Cause,
	})
}

func isAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

func hashKey(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// deliveryID names one message (outbox entry and recipient) for the
// receiving side, the same across retries: the Message-ID of an e-mail,
// the X-Lockbox-Delivery of a webhook call. Entry ids are only unique
// within one tenant's outbox (two tenants' entries written in the same
// millisecond get the same one), so the tenant is part of the hash.
func deliveryID(tenant, entry, target string) string {
	return entry + "." + hashKey(tenant+"\x00"+target)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
