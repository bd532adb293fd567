package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/storedjson"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// TenantDirectory answers the questions about a tenant that a transition
// and the read rule (canSee) depend on. Its errors are returned, never
// taken as an answer.
type TenantDirectory interface {
	// Onboarded returns nil for an onboarded tenant and an error wrapping
	// ErrNotFound, naming the tenant, for any other.
	Onboarded(ctx context.Context, tenant string) error
	// Active is Onboarded for a tenant that also was not offboarded: for
	// one that was, an error wrapping ErrConflict (code
	// tenant_offboarded). Filing and deciding ask it; reading does not,
	// so an offboarded tenant's history stays readable.
	Active(ctx context.Context, tenant string) error
	LockboxEnabled(ctx context.Context, tenant string) (bool, error)
	IsApprover(ctx context.Context, tenant, user string) (bool, error)
	// IsUser reports whether user is a user of tenant: user@ one of its
	// registered domains, the rule IsApprover also applies. A global
	// admin or audit reader decides and reads as the tenant only then.
	IsUser(ctx context.Context, tenant, user string) (bool, error)
}

// Config configures a Store.
type Config struct {
	Redis   redis.UniversalClient
	Audit   AuditLog
	Tenants TenantDirectory
	Catalog Catalog
	// Now is the clock; every transition and expiry check reads it.
	Now func() time.Time
	// NewID returns request ids; UUID v7 by default.
	NewID func() string
	// MaxRetries bounds the optimistic-locking loop of one transition.
	MaxRetries int
	Logger     *slog.Logger
	// Registerer receives the lifecycle's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Outbox, when set, queues the notifications of each transition in the
	// transition's own MULTI; nil sends no notifications.
	Outbox Outbox
	// Changed, when set, is called with the tenant after each committed
	// transition, so this process's caches drop the tenant's grants at once
	// (other replicas hear of it through the event the transition
	// publishes).
	Changed func(tenant string)
	// RetentionBatch is how many requests DeleteEnded deletes in a tenant
	// before it removes their provider-wide index entries, in one
	// pipeline: what that pipeline and the tenant's note of deletions
	// (keys.RequestsDeleting) hold at most. DefaultRetentionBatch when 0.
	RetentionBatch int
	// RetentionLimit is how many requests one run of DeleteEnded deletes
	// at most, over every tenant; the next run goes on from there.
	// DefaultRetentionLimit when 0.
	RetentionLimit int
	// DeadLetters, when set, removes a tenant's notification dead letters
	// whose request DeleteEnded deleted: each carries a copy of the
	// request, history and all. Nil keeps them.
	DeadLetters DeadLetters
}

// DeadLetters removes the dead letters (notifications given up on) of a
// tenant's requests that are gone; *notify.DeadLetters implements it.
type DeadLetters interface {
	ForgetDeleted(ctx context.Context, tenant string) (int, error)
}

// Outbox queues the notifications a transition causes. EnqueueTx adds its
// writes to p, the transaction that commits the transition, so a
// notification is queued if and only if the transition commits. It must
// only write keys in the tenant's hash slot.
type Outbox interface {
	EnqueueTx(ctx context.Context, p redis.Pipeliner, prev, next Request) error
}

// CheckAndSetDefaults fills defaults and rejects missing dependencies.
func (c *Config) CheckAndSetDefaults() error {
	switch {
	case c.Redis == nil:
		return errors.New("grants: Redis is required")
	case c.Audit == nil:
		return errors.New("grants: Audit is required")
	case c.Tenants == nil:
		return errors.New("grants: Tenants is required")
	case c.Catalog == nil:
		return errors.New("grants: Catalog is required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Changed == nil {
		c.Changed = func(string) {}
	}
	if c.RetentionBatch <= 0 {
		c.RetentionBatch = DefaultRetentionBatch
	}
	if c.RetentionLimit <= 0 {
		c.RetentionLimit = DefaultRetentionLimit
	}
	return nil
}

// Store applies the lifecycle to requests kept in Redis. Each transition
// reads the request under WATCH, runs the pure Apply, and commits the new
// request, its grant, its indexes and its audit record in one MULTI, so a
// request can't be approved and expired at once and no change goes
// unaudited.
//
// On Redis Cluster that MULTI stays in one hash slot: everything it
// writes (the request, its grant, the tenant's request, deadline, pending
// and active indexes, the open-request marker, the filing's
// Idempotency-Key record, the audit chain, the notification outbox)
// carries the tenant's hash tag, and so does what it watches (the request,
// the tenant's settings, approvers and registry entry). The provider-wide
// indexes can't join it: request id → tenant (which tenant's slot a request
// is in) and the provider-wide listings (every request, and each
// operator's own); nor can the claim of a filing's Idempotency-Key, which
// only refuses the key sent for another tenant (see claim), and is written
// before it. Create writes the indexes, and the tenant set, idempotently
// before the request's own transaction, so a committed
// request is normally always indexed; an entry whose request never
// committed is skipped by readers. A write to them can still be lost
// where the request's is not — they are on other nodes, and Redis
// replicates asynchronously, so a failover can drop a node's last writes —
// so Reindex rebuilds them from each tenant's own index, and the server runs
// it as a job. An index only finds a request: every decision reads the
// request itself, from its tenant's slot, and load refuses a request found
// under a tenant it does not belong to.
type Store struct {
	cfg     Config
	metrics *metrics
	// unreadable reports the stored requests that do not decode.
	unreadable *unreadable.Reporter
	// newerTold holds the requests ("tenant/id") of a newer version the
	// sweep has logged that it left (see tellNewer).
	newerTold sync.Map
	// unreadableTries is when the sweep tries again each request it met
	// that does not decode (see unreadableBackoff).
	unreadableTries unreadableBackoff
}

// NewStore returns a Store.
func NewStore(cfg Config) (*Store, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	bad, err := unreadable.New(cfg.Registerer, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("grants: metrics: %w", err)
	}
	return &Store{cfg: cfg, metrics: newMetrics(cfg.Registerer, cfg.Redis, cfg.Now), unreadable: bad}, nil
}

// Create files a new request for actor.
func (s *Store) Create(ctx context.Context, actor Actor, in CreateInput) (Request, error) {
	r, _, err := s.create(ctx, actor, in, nil)
	return r, err
}

// create files a new request for actor; once, when set, is the filing's
// Idempotency-Key (CreateOnce).
func (s *Store) create(ctx context.Context, actor Actor, in CreateInput, once *filing) (Request, bool, error) {
	// One time for the whole filing: the new request is created at the
	// time the previous one's end is judged at, so none is filed while
	// the previous grant is still live.
	now := s.cfg.Now()
	r, replayed, err := s.file(ctx, actor, in, once, now)
	if once != nil && errors.Is(err, ErrConflict) {
		// Refused as a second open request, or for a change that won
		// every try: the winner may be the same filing, sent at once,
		// that committed after this one looked its key up. It wrote its
		// open marker and its key's record together, so whoever saw the
		// one finds the other now.
		if id, rerr := s.remembered(ctx, s.cfg.Redis, *once, now); rerr == nil && id != "" {
			return s.replay(ctx, actor, id)
		}
	}
	return r, replayed, err
}

// file is create at now.
func (s *Store) file(ctx context.Context, actor Actor, in CreateInput, once *filing, now time.Time) (Request, bool, error) {
	r, err := New(in, actor, s.cfg.NewID(), now, s.cfg.Catalog)
	if err != nil {
		return Request{}, false, err
	}
	rdb := s.cfg.Redis
	if once != nil {
		// Before every other check: a retry is answered with the request
		// its key filed, which by now is the open request the check
		// below refuses a second one for, and may be of a tenant since
		// offboarded.
		id, err := s.remembered(ctx, rdb, *once, now)
		if err != nil {
			return Request{}, false, s.storeErr("create", err)
		}
		if id != "" {
			return s.replay(ctx, actor, id)
		}
	}
	// Requests exist only for tenants the provider onboarded, and has not
	// offboarded: a request for a misspelt tenant is refused now, not left
	// to expire unseen.
	if err := s.cfg.Tenants.Active(ctx, r.Tenant); err != nil {
		return Request{}, false, s.storeErr("create", err)
	}
	open := keys.Open(r.Tenant, r.Requester, r.Service)
	// Refuse early, before any index is written; the transaction below
	// checks again under WATCH.
	if _, err := s.checkNoOpen(ctx, rdb, open, r, now); err != nil {
		return Request{}, false, s.storeErr("create", err)
	}
	// Claimed only by a filing that passed the checks above, so that one
	// refused for its input or its tenant leaves the key free to correct
	// it with.
	watched := []string{open, keys.Tenant(r.Tenant)}
	if once != nil {
		if err := s.claim(ctx, *once, now); err != nil {
			return Request{}, false, s.storeErr("create", err)
		}
		watched = append(watched, keys.Filing(r.Tenant, once.caller))
	}
	// Global indexes live outside the tenant's hash slot, so they can't join
	// its transaction. They are written first: an index entry whose request
	// never got committed is skipped by readers, while a committed request
	// missing from an index would be lost to listings.
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, keys.Tenants(), r.Tenant)
		p.Set(ctx, keys.RequestIndex(r.ID), r.Tenant, 0)
		p.ZAdd(ctx, keys.AllRequests(), redis.Z{Score: score(r.CreatedAt), Member: r.Tenant + "/" + r.ID})
		if keys.IsUser(r.Requester) {
			p.ZAdd(ctx, keys.OperatorRequests(r.Requester), redis.Z{Score: score(r.CreatedAt), Member: r.Tenant + "/" + r.ID})
		}
		return nil
	}); err != nil {
		return Request{}, false, fault.Unavailable("grants: create", err)
	}
	var ended *change
	// replay is the request the key filed, found under WATCH: the same
	// filing sent twice at once commits once, and the other, its
	// transaction failed by that commit, finds it on its next try.
	var replay string
	// sent says the try got as far as sending its transaction: an error
	// after that (a connection lost) may hide a commit.
	var sent bool
	for range s.cfg.MaxRetries {
		sent = false
		err = rdb.Watch(ctx, func(tx *redis.Tx) error {
			if once != nil {
				var err error
				if replay, err = s.remembered(ctx, tx, *once, now); err != nil || replay != "" {
					return err
				}
			}
			// Asked again under WATCH of the registry entry: an
			// offboarding committing since the check above fails this
			// transaction, and the retry is refused, so no request is left
			// pending for a tenant whose requests offboarding ended.
			if err := s.cfg.Tenants.Active(ctx, r.Tenant); err != nil {
				return err
			}
			var err error
			if ended, err = s.checkNoOpen(ctx, tx, open, r, now); err != nil {
				return err
			}
			sent = true
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if ended != nil {
					// Recorded first: its end deletes the open marker and
					// its grant, which then become the new request's.
					if err := s.queue(ctx, p, ended.prev, ended.next, now); err != nil {
						return err
					}
				}
				p.Set(ctx, open, r.ID, 0)
				p.ZAdd(ctx, keys.TenantRequests(r.Tenant), redis.Z{Score: score(r.CreatedAt), Member: r.ID})
				if once != nil {
					p.Set(ctx, keys.Filing(r.Tenant, once.caller), once.record(r.ID, now), IdempotencyWindow)
				}
				return s.queue(ctx, p, Request{}, r, now)
			})
			return err
		}, watched...)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if replay != "" || errors.Is(err, redis.TxFailedErr) || (err != nil && !sent) {
		// Never filed: refused under WATCH, every try lost, or another
		// filing of the key committed. Nothing else removes the global
		// index entries written above: request retention walks the
		// tenant's listing, which never held this id.
		s.unindex(ctx, rdb, r)
	}
	if errors.Is(err, redis.TxFailedErr) {
		// Every try lost to a change that committed meanwhile: Redis
		// answered each time, so this is the conflict an action on a
		// request reports in the same case (commit), not the store being
		// unavailable, which sends an SRE to look at a healthy Redis.
		return Request{}, false, newErr(ErrConflict, "conflict", "request not filed: tenant %s, or your last request for %s there, changed concurrently each time; retry", r.Tenant, r.Service)
	}
	if err != nil {
		return Request{}, false, s.storeErr("create", err)
	}
	if replay != "" {
		return s.replay(ctx, actor, replay)
	}
	s.cfg.Changed(r.Tenant)
	if ended != nil {
		s.metrics.observe(ended.prev, ended.next)
		s.cfg.Logger.InfoContext(ctx, "request ended before its next one", "request_id", ended.next.ID,
			"tenant", r.Tenant, "to", ended.next.State)
	}
	s.scheduled(ctx, r)
	s.metrics.observe(Request{}, r)
	s.cfg.Logger.InfoContext(ctx, "request created", "request_id", r.ID, "tenant", r.Tenant, "service", r.Service, "requester", r.Requester)
	return r, false, nil
}

// checkNoOpen refuses a second open request of the same operator for the
// same tenant and service: one grant key has one owner, and one open marker
// names it. A previous request that has ended by now, the new one's
// created_at (its window over, or undecided past its deadline), but that
// no sweep has recorded yet is returned as the change that records its
// end: Create commits it with the new request, since settling it later
// would delete the marker and the grant key, by then the new request's.
// Within a transaction (tx a *redis.Tx) the previous request is watched
// before it is read.
func (s *Store) checkNoOpen(ctx context.Context, tx getter, open string, r Request, now time.Time) (*change, error) {
	id, err := tx.Get(ctx, open).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if w, ok := tx.(*redis.Tx); ok {
		if err := w.Watch(ctx, keys.Request(r.Tenant, id)).Err(); err != nil {
			return nil, err
		}
	}
	stored, newer, err := s.loadChecked(ctx, tx, r.Tenant, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prev, settled := Settle(stored, now)
	switch {
	case !prev.State.Final():
		return nil, newErr(ErrConflict, "open_request_exists",
			"you already have request %s (%s) for %s on tenant %s; cancel it or wait for it to end", prev.ID, prev.State, r.Service, r.Tenant)
	case settled && newer:
		// Recording its end would write it without what this version
		// does not know (see update).
		return nil, fault.Unavailable("grants: request "+id, errNewer)
	case settled:
		return &change{stored, prev}, nil
	}
	return nil, nil
}

// Act applies act to request id on behalf of actor, and returns the request
// as actor may see it; with an error, the zero Request.
func (s *Store) Act(ctx context.Context, id string, act Action, actor Actor, comment string) (Request, error) {
	if act == ActionCreate || act == ActionExpire || act == ActionComplete {
		return Request{}, newErr(ErrInvalid, "invalid_action", "%s is not an action users take", act)
	}
	tenant, err := s.tenantOf(ctx, id)
	if err != nil {
		return Request{}, err
	}
	// Visibility first: someone who may not see the request learns nothing
	// from it, not even that it is due to expire.
	seen, err := s.load(ctx, s.cfg.Redis, tenant, id)
	if err != nil {
		return Request{}, err
	}
	if err := s.canSee(ctx, actor.Principal, seen); err != nil {
		return Request{}, err
	}
	r, err := s.update(ctx, tenant, id, act, func(r Request, env Env) (Request, error) {
		if err := s.canSee(ctx, actor.Principal, r); err != nil {
			return r, err
		}
		if act == ActionApprove || act == ActionDeny {
			// Judged under WATCH of the registry entry (commit): a
			// decision can't commit after the tenant was offboarded.
			if err := s.cfg.Tenants.Active(ctx, r.Tenant); err != nil {
				return r, err
			}
		}
		if err := s.fillEnv(ctx, r, act, actor.Principal, &env); err != nil {
			return r, err
		}
		return Apply(r, act, actor, comment, env)
	})
	if err != nil {
		// r is the request as stored (or as it settled), not as the actor
		// may see it: none of it goes back with a refusal.
		return Request{}, err
	}
	return s.view(actor.Principal, r), nil
}

// CanAct returns the error Act returns for p taking act on request id
// before it looks at the request's state or the comment: ErrNotFound when
// there is no such request or p may not see it, ErrForbidden when p may
// never take act on it. A caller checks it before reading what comes with
// the action, so that who may not act is not told what a valid body looks
// like, and who may not see the request not even that it exists. Act
// judges again, atomically: nil here promises nothing.
func (s *Store) CanAct(ctx context.Context, p identity.Principal, id string, act Action) error {
	if act == ActionCreate || act == ActionExpire || act == ActionComplete {
		return newErr(ErrInvalid, "invalid_action", "%s is not an action users take", act)
	}
	tenant, err := s.tenantOf(ctx, id)
	if err != nil {
		return err
	}
	r, err := s.load(ctx, s.cfg.Redis, tenant, id)
	if err != nil {
		return err
	}
	if err := s.canSee(ctx, p, r); err != nil {
		return err
	}
	var env Env
	if err := s.fillEnv(ctx, r, act, p, &env); err != nil {
		return err
	}
	_, err = authorize(r, act, p, env)
	return err
}

// fillEnv sets what env says of r's tenant and of p in it, for act: the
// tenant's switch, and whether p is a user and an assigned approver of it.
//
// The switch is read for an approval only, the one action it decides (is
// the manager's approval final?). A denial or a revocation ends access
// whatever it says, and settings that can't be used (a newer replica's,
// during a rolling upgrade) must not keep access open by refusing them.
func (s *Store) fillEnv(ctx context.Context, r Request, act Action, p identity.Principal, env *Env) error {
	if act != ActionApprove && act != ActionDeny && act != ActionRevoke {
		return nil
	}
	var err error
	if act == ActionApprove {
		if env.LockboxEnabled, err = s.cfg.Tenants.LockboxEnabled(ctx, r.Tenant); err != nil {
			return err
		}
	}
	if p.InTenant(r.Tenant) {
		if env.TenantUser, err = s.cfg.Tenants.IsUser(ctx, r.Tenant, p.Subject); err != nil {
			return err
		}
		if env.AssignedApprover, err = s.cfg.Tenants.IsApprover(ctx, r.Tenant, p.Subject); err != nil {
			return err
		}
	}
	return nil
}

// Get returns request id as p may see it.
func (s *Store) Get(ctx context.Context, p identity.Principal, id string) (Request, error) {
	tenant, err := s.tenantOf(ctx, id)
	if err != nil {
		return Request{}, err
	}
	r, err := s.load(ctx, s.cfg.Redis, tenant, id)
	if err != nil {
		return Request{}, err
	}
	if err := s.canSee(ctx, p, r); err != nil {
		return Request{}, err
	}
	if settled, due := Settle(r, s.cfg.Now()); due {
		if r, err = s.settle(ctx, tenant, id); errors.Is(err, errNewer) {
			// A newer replica's request: shown as it stands by now, and
			// left for a replica that knows all of it to settle.
			r, err = settled, nil
		}
		if err != nil {
			return Request{}, err
		}
	}
	return s.view(p, r), nil
}

// Filter narrows List.
type Filter struct {
	Tenant       string
	State        State
	CreatedAfter time.Time
	// CreatedBefore, when set, keeps the requests created before it. The
	// listing starts reading the index there, so a bound far in the past
	// doesn't read every newer request first.
	CreatedBefore time.Time
	// ExcludePending leaves out the requests still pending: the history
	// the admin center shows beside its pending list. Like State, it is
	// matched before a page is cut, so a page is full whenever more
	// requests match.
	ExcludePending bool
	// Limit caps the result; 0 means 100, at most 1000.
	Limit int
	// Cursor continues a listing after the page that returned it
	// (Page.Next), or goes back to the page before it (Page.Prev). It is
	// opaque, and only valid for the caller it was
	// returned to and with the same filter (every field above but Limit);
	// Limit may change from page to page.
	Cursor string
}

// Page is one page of a listing, newest first.
type Page struct {
	Requests []Request
	// Next continues the listing after this page; empty when no request
	// after it matched when the page was read.
	Next string
	// Prev goes back to the requests newer than this page: a cursor like
	// Next, read the same way (Filter.Cursor), whose page is the one just
	// before this page, newest first. Empty on the first page (read
	// without a cursor), on an empty one, and on a page read back that
	// reached the newest request that matched. A page read on with Next
	// always has one, read nothing for: there were newer requests when
	// its cursor was made, and should none of them match any more, it
	// leads to the first page.
	Prev string
	// Unreadable names the requests of the page's stretch of the index
	// whose stored record does not decode, in the page's order: each
	// takes a place of the page's Limit, as the request it stands for
	// would have, so that a page of them still ends where its cursor
	// continues. Their state and fields are unknown, so the filters past
	// the index's creation bounds can't be applied to them: one is shown
	// in every listing of its stretch of the index.
	Unreadable []Unreadable
}

// Unreadable stands in a listing for a stored request that does not
// decode: never dropped in silence, never failing the page it is on.
type Unreadable struct {
	Tenant string
	ID     string
}

// List returns the requests p may see that match f, newest first: the
// page of ListPage, without looking past it for a next one.
func (s *Store) List(ctx context.Context, p identity.Principal, f Filter) ([]Request, error) {
	pg, err := s.listPage(ctx, p, f, false)
	return pg.Requests, err
}

// ListPage returns a page of the requests p may see that match f, newest
// first, with the cursor of the next page when there is one. Tenant users
// see only their tenant's; operators only their own.
//
// Pages follow the order of the request index (creation millisecond, then
// id), and a cursor names the last request of its page in that order, not
// a count: requests created between two pages don't make the next one
// repeat or skip any. What the caller may see is checked on each request,
// page after page, as for the first.
//
// A full page reads on to the next request that matches, so Next is set
// only when there is one: at most the rest of the index, what a page that
// isn't full reads anyway.
//
// The index read is the tenant's with a tenant filter; for an operator who
// sees only their own requests, without one, their own
// (keys.OperatorRequests) once Reindex has back-filled it, so a page
// reads their requests, not every operator's; else the provider-wide one.
func (s *Store) ListPage(ctx context.Context, p identity.Principal, f Filter) (Page, error) {
	return s.listPage(ctx, p, f, true)
}

// CanList returns nil when p may list the requests of tenant ("" for
// every one p sees), and otherwise the error ListPage returns before it
// looks at the rest of the filter: a tenant named wrong, or a tenant's
// user naming another tenant. A front end asks it before it parses the
// other filters, so such a caller is refused as such first.
func CanList(p identity.Principal, tenant string) error {
	if tenant != "" {
		if err := keys.ValidTenant(tenant); err != nil {
			return newErr(ErrInvalid, "invalid_tenant", "%v", err)
		}
	}
	if !p.IsProvider() && tenant != "" && tenant != p.TenantID {
		return newErr(ErrForbidden, "forbidden", "you may only list requests of tenant %s", p.TenantID)
	}
	return nil
}

// listPage is ListPage; without next it stops at a full page and leaves
// Page.Next empty.
func (s *Store) listPage(ctx context.Context, p identity.Principal, f Filter, next bool) (Page, error) {
	if err := CanList(p, f.Tenant); err != nil {
		return Page{}, err
	}
	if f.State != "" && !f.State.Valid() {
		return Page{}, newErr(ErrInvalid, "invalid_state", "unknown state %q", f.State)
	}
	switch {
	case f.Limit <= 0:
		f.Limit = 100
	case f.Limit > 1000:
		f.Limit = 1000
	}
	if !p.IsProvider() {
		f.Tenant = p.TenantID
	}
	scope, v := scopeOf(p, f), s.viewer(p)
	// own: the index read holds only the caller's own requests, so one
	// that can't be read is theirs too.
	own := false
	index, member := keys.AllRequests(), func(m string) (string, string, bool) { return strings.Cut(m, "/") }
	switch {
	case f.Tenant != "":
		index, member = keys.TenantRequests(f.Tenant), func(m string) (string, string, bool) { return f.Tenant, m, true }
	case v.ownOnly() && keys.IsUser(p.Subject):
		// The operator's own index has the members and scores of the
		// provider-wide one, so the order, the positions and the cursors
		// are the same on both: a cursor from either continues on the
		// other. Until the repair job has back-filled it with the requests
		// filed before it existed, it would miss those, so the listing
		// reads the provider-wide index as before.
		built, err := s.cfg.Redis.Exists(ctx, keys.OperatorRequestsBuilt()).Result()
		if err != nil {
			return Page{}, fault.Unavailable("grants: list", err)
		}
		if built == 1 {
			index, own = keys.OperatorRequests(p.Subject), true
		}
	}
	// The index scores are milliseconds; created_at and CreatedAfter are
	// exact. An exclusive bound on the millisecond lost the requests
	// created later within it (a client polling with the newest created_at
	// it saw missed them for good), so the bound includes it and the exact
	// comparison is made on each request below.
	min, max := "-inf", "+inf"
	if !f.CreatedAfter.IsZero() {
		min = fmt.Sprintf("%d", f.CreatedAfter.UnixMilli())
	}
	if !f.CreatedBefore.IsZero() {
		// Inclusive for the same reason: requests earlier within that
		// millisecond are before the bound.
		max = fmt.Sprintf("%d", f.CreatedBefore.UnixMilli())
	}
	scan := &indexScan{rdb: s.cfg.Redis, index: index, min: min, max: max}
	var newer bool
	var from position // the cursor's place
	if f.Cursor != "" {
		pos, n, err := scope.decode(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		from = pos
		scan.after, scan.newer, newer = &pos, n, n
	}
	page := Page{Requests: []Request{}}
	if v.seesNone() {
		// Nothing to find: not worth reading every request to find it.
		return page, s.noRequests(ctx, p, f.Tenant)
	}
	if !p.IsProvider() {
		// A tenant's user sees the tenant's requests as one of its readers
		// or none of them (viewer.sees), which one question tells: any
		// signed-in user of the tenant made a listing read its whole
		// history to answer an empty page.
		if ok, err := v.readsTenant(ctx, f.Tenant); err != nil || !ok {
			return page, err
		}
	}
	l := lister{s: s, p: p, f: f, v: v, member: member, own: own, now: s.cfg.Now()}
	// probe reads on from pos, older, for a request that matches:
	// whether a link that way leads to any. Usually the first it reads
	// does (the newest of the page the cursor came from), so it reads
	// one, then batches that grow.
	probe := func(pos position) (bool, error) {
		got, _, stop, err := l.read(ctx, &indexScan{rdb: s.cfg.Redis, index: index, min: min, max: max, after: &pos, batch: 1}, 1, false)
		// Its budget spent, the link may lead to a page with none.
		return len(got) > 0 || stop != nil, err
	}
	if newer {
		// The page of the requests just newer than the cursor's, read
		// oldest first from it and shown newest first. Its bounds are
		// those of the pages it lies between, so that going back Older
		// shows again the page the cursor came from, whatever was created
		// since at the head of the list.
		items, more, stop, err := l.read(ctx, scan, f.Limit, next)
		if err != nil {
			return Page{}, err
		}
		if stop != nil {
			// The budget ran out before a full page: the page holds what
			// matched up to stop, the edge of the last millisecond read;
			// newer requests lie past it, and older ones, the page the
			// cursor came from, past the oldest request of the page or,
			// with none, from the edge down.
			older := position{score: stop.score, member: newerEdge}
			if len(items) > 0 {
				older = items[0].at
			}
			slices.Reverse(items)
			page = pageOf(items)
			page.Prev, page.Next = scope.encodeNewer(*stop), scope.encode(older)
			return page, nil
		}
		if len(items) == 0 {
			// Nothing newer matches (any more): the newest page is
			// where newer leads.
			f.Cursor = ""
			return s.listPage(ctx, p, f, next)
		}
		slices.Reverse(items)
		page = pageOf(items)
		if more {
			page.Prev = scope.encodeNewer(items[0].at)
		}
		if next {
			last := items[len(items)-1].at
			older, err := probe(last)
			if err != nil {
				return Page{}, err
			}
			if older {
				page.Next = scope.encode(last)
			}
		}
		return page, nil
	}
	items, more, stop, err := l.read(ctx, scan, f.Limit, next)
	if err != nil {
		return Page{}, err
	}
	if len(items) == 0 && stop == nil {
		return page, s.noRequests(ctx, p, f.Tenant)
	}
	page = pageOf(items)
	switch {
	case stop != nil && next:
		// The budget ran out before a full page: the next page starts
		// after the last entry read, matching or not.
		page.Next = scope.encode(*stop)
	case more:
		// There is a next page, and it starts after this page's last
		// entry, readable or not.
		page.Next = scope.encode(items[len(items)-1].at)
	}
	if f.Cursor != "" {
		// A page after the first links back to the requests newer than
		// it. Those were there when the cursor was made; it costs no read
		// to say so, and should none of them match any more, the link
		// leads to the newest page.
		first := from
		if len(items) > 0 {
			first = items[0].at
		}
		page.Prev = scope.encodeNewer(first)
	}
	return page, nil
}

// maxListScan bounds the index entries one listing call reads. A page's
// size is capped, but which requests match its filter (a state, what the
// caller may see) is known only once each is read: a filter few requests
// match read the whole history, every tenant's for the provider's staff,
// to fill one page. Spent, the call answers what it found with a cursor
// at the last entry read, as an audit search does.
const maxListScan = 2000

// lister reads the requests of one listing that p may see and that match
// its filter from an index scan.
type lister struct {
	s      *Store
	p      identity.Principal
	f      Filter
	v      *viewer
	member func(string) (tenant, id string, ok bool)
	// own: the index read is the caller's own (keys.OperatorRequests).
	own bool
	now time.Time
}

// item is one entry of a listing: a request, or the place of one that
// can't be read.
type item struct {
	req *Request
	bad *Unreadable
	at  position
}

// read returns up to limit entries that match from scan, in the scan's
// order, with their places in the index; with more, it reads on to the
// next entry that matches and reports whether there is one. A request
// that does not decode is an entry of its own (see Page.Unreadable) when
// the viewer would see it whatever it holds (seesUnreadable).
//
// It reads at most maxListScan entries: spent before the page is full, it
// returns what matched and stop, the place of the last entry it read; the
// listing goes on from there. Spent looking past a full page for one more
// match, it reports more.
func (l lister) read(ctx context.Context, scan *indexScan, limit int, more bool) (items []item, hasMore bool, stop *position, err error) {
	items = []item{}
	scanned := 0
	for {
		zs, err := scan.next(ctx)
		if err != nil {
			return nil, false, nil, err
		}
		if len(zs) == 0 {
			return items, false, nil, nil
		}
		if room := maxListScan - scanned; len(zs) > room {
			zs = zs[:room]
		}
		scanned += len(zs)
		if done, hasMore, err := l.take(ctx, zs, &items, limit, more); err != nil || done {
			return items, hasMore, nil, err
		}
		if scanned < maxListScan {
			continue
		}
		if len(items) == limit {
			// Looking past a full page: there may be more.
			return items, true, nil, nil
		}
		// The budget ran out within the millisecond of the last entry
		// read: the millisecond's other members are read too, and the
		// cursor stands at its edge. At the entry itself it named a
		// request the caller may not see (another operator's, say), which
		// no answer may confirm exists.
		last := positionOf(zs[len(zs)-1])
		rest, err := l.restOf(ctx, scan, last)
		if err != nil {
			return nil, false, nil, err
		}
		if done, hasMore, err := l.take(ctx, rest, &items, limit, more); err != nil || done {
			return items, hasMore, nil, err
		}
		if len(items) == limit {
			return items, true, nil, nil
		}
		edge := position{score: last.score, member: olderEdge}
		if scan.newer {
			edge.member = newerEdge
		}
		return items, false, &edge, nil
	}
}

// The members of a position at a millisecond's edge (read): "" comes after
// every member of the millisecond newest first, "~" before every one.
// Index members are ids or tenant/id, lower-case letters, digits, '-' and
// '/', all of which sort between the two.
const (
	olderEdge = ""
	newerEdge = "~"
)

// take reads the requests of index members zs and appends those that are
// entries of the listing to items, up to limit; done when the page is
// complete: full and, with more, one more match found (hasMore).
func (l lister) take(ctx context.Context, zs []redis.Z, items *[]item, limit int, more bool) (done, hasMore bool, err error) {
	if len(zs) == 0 {
		return false, false, nil
	}
	cmds := make([]*redis.StringCmd, len(zs))
	if _, err := l.s.cfg.Redis.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, z := range zs {
			t, id, _ := l.member(z.Member.(string))
			cmds[i] = pl.Get(ctx, keys.Request(t, id))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return false, false, fault.Unavailable("grants: list", err)
	}
	for i, c := range cmds {
		t, id, _ := l.member(zs[i].Member.(string))
		it := item{at: positionOf(zs[i])}
		ok, err := l.match(ctx, c, t, id, &it)
		if err != nil {
			return false, false, err
		}
		if !ok {
			continue
		}
		if len(*items) == limit {
			// One more match.
			return true, true, nil
		}
		*items = append(*items, it)
		if !more && len(*items) == limit {
			return true, false, nil
		}
	}
	return false, false, nil
}

// restOf returns the members of scan's index in the millisecond of pos
// that come after pos in the scan's order.
func (l lister) restOf(ctx context.Context, scan *indexScan, pos position) ([]redis.Z, error) {
	ms := strconv.FormatInt(pos.score, 10)
	by := &redis.ZRangeBy{Min: ms, Max: ms}
	read, past := l.s.cfg.Redis.ZRevRangeByScoreWithScores, pos.before
	if scan.newer {
		read, past = l.s.cfg.Redis.ZRangeByScoreWithScores, pos.after
	}
	zs, err := read(ctx, scan.index, by).Result()
	if err != nil {
		return nil, fault.Unavailable("grants: list", err)
	}
	return slices.DeleteFunc(zs, func(z redis.Z) bool { return !past(z) }), nil
}

// match decodes the request c read, tenant's id, and reports whether it
// is an entry of the listing, set on it: a request that matches the
// filter and that the viewer sees, or the place of one that does not
// decode that the viewer would see whatever it held.
func (l lister) match(ctx context.Context, c *redis.StringCmd, t, id string, it *item) (bool, error) {
	r, err := l.s.decodeRead(ctx, c, t, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil // index written, request never committed
	case errors.Is(err, fault.ErrUnreadable):
		ok, err := l.v.seesUnreadable(ctx, t, l.own)
		if ok {
			it.bad = &Unreadable{Tenant: t, ID: id}
		}
		return ok, err
	case err != nil:
		return false, err
	}
	// The sweeper persists time-driven transitions; a listing shows them
	// at once.
	r, _ = Settle(r, l.now)
	f := l.f
	switch {
	case !f.CreatedAfter.IsZero() && !r.CreatedAt.After(f.CreatedAfter),
		!f.CreatedBefore.IsZero() && !r.CreatedAt.Before(f.CreatedBefore),
		f.State != "" && r.State != f.State || f.ExcludePending && r.State.Pending():
		return false, nil
	}
	// Checked on whichever index was read: an operator's own index only
	// finds requests, as the provider-wide one does.
	if ok, err := l.v.sees(ctx, r); err != nil || !ok {
		return false, err
	}
	r = l.s.view(l.p, r)
	it.req = &r
	return true, nil
}

// decodeRead decodes the request a pipelined GET of tenant's request id
// returned: ErrNotFound when there is none (an index entry whose request
// never committed), the record_unreadable error, reported, when it does
// not decode.
func (s *Store) decodeRead(ctx context.Context, c *redis.StringCmd, tenant, id string) (Request, error) {
	b, err := c.Bytes()
	if errors.Is(err, redis.Nil) {
		return Request{}, newErr(ErrNotFound, "not_found", "request %s not found", id)
	}
	if err != nil {
		return Request{}, fault.Unavailable("grants: list", fmt.Errorf("read %s: %w", c.Args()[1], err))
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		s.unreadable.Report(ctx, unreadable.KindRequest, keys.Request(tenant, id), err, "tenant", tenant, "request_id", id)
		return Request{}, errUnreadable(id)
	}
	return r, nil
}

// pageOf splits a listing's entries into a page's requests and
// unreadable ones.
func pageOf(items []item) Page {
	pg := Page{Requests: []Request{}}
	for _, it := range items {
		if it.req != nil {
			pg.Requests = append(pg.Requests, *it.req)
		} else {
			pg.Unreadable = append(pg.Unreadable, *it.bad)
		}
	}
	return pg
}

// noRequests answers a listing of tenant's requests that found none to
// show. A tenant that was never onboarded has no requests to list: that is
// 404 tenant_not_found, as searching its audit log answers, rather than an
// empty list that reads as "no request was ever filed there". Only the
// provider's staff are told, who may read any tenant's registry entry
// (tenants' canView) and so learn nothing new: a tenant user lists only
// its own tenant (listPage refused any other, onboarded or not, with 403),
// and a provider token without a role may read no entry. The directory is
// asked only while the tenant's index is empty, so an onboarded tenant
// with requests, none matching, costs one EXISTS more, and a tenant that
// has requests is never told it has none.
func (s *Store) noRequests(ctx context.Context, p identity.Principal, tenant string) error {
	if tenant == "" || !p.IsProvider() || len(p.Roles) == 0 {
		return nil
	}
	n, err := s.cfg.Redis.Exists(ctx, keys.TenantRequests(tenant)).Result()
	if err != nil {
		return fault.Unavailable("grants: list", err)
	}
	if n > 0 {
		return nil
	}
	return s.cfg.Tenants.Onboarded(ctx, tenant)
}

// Grant returns the live grant for (tenant, operator, service), read with
// its request in two Redis reads. It returns ErrNotFound when there is
// none, and an error wrapping fault.ErrUnreadable when its request's
// record does not decode; the caller must still check Grant.Valid against
// its clock.
func (s *Store) Grant(ctx context.Context, tenant, operator, service string) (Grant, error) {
	if keys.ValidTenant(tenant) != nil || keys.ValidUser(operator) != nil || keys.ValidService(service) != nil {
		return Grant{}, newErr(ErrInvalid, "invalid_grant_key", "invalid tenant, operator or service")
	}
	b, err := s.cfg.Redis.Get(ctx, keys.Grant(tenant, operator, service)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Grant{}, newErr(ErrNotFound, "no_grant", "no grant")
	}
	if err != nil {
		return Grant{}, fault.Unavailable("grants: grant", err)
	}
	// A field this version does not know was written by a newer replica
	// (a rolling upgrade), and may narrow what the grant allows; reading
	// the grant without it could allow what was not approved. The lookup
	// fails instead, so the call is refused (503, to be retried, likely on
	// an upgraded replica). Only on a cache miss: the decoder's
	// allocations stay off the proxy's cached path.
	var g Grant
	newer, err := storedjson.Decode(b, &g)
	if err == nil && newer {
		err = errNewer
	}
	if err != nil {
		return Grant{}, fault.Unavailable("grants: grant", err)
	}
	// The grant counts only while its request's record says it is
	// approved, the requester's, on this service. Every change writes the
	// two in one transaction, and every ending (a revocation, the sweep,
	// offboarding, the lockbox switch) finds a grant through its request:
	// a request whose record no longer decodes could not be ended, and
	// its grant stayed live until expires_at, up to 4 h, with nothing to
	// stop it. One more read, on a cache miss only. A row that names no
	// request, or another tenant, operator or service than its key, is
	// returned as it is, for the caller to refuse as what it is (the
	// proxy: store_unavailable, tenant_mismatch).
	if g.RequestID == "" || g.Tenant != tenant || g.Operator != operator || g.Service != service {
		return g, nil
	}
	r, err := s.load(ctx, s.cfg.Redis, tenant, g.RequestID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Grant{}, err
	case r.State == StateApproved && r.Requester == operator && r.Service == service:
		err = nil
	default:
		err = ErrNotFound
	}
	if err != nil {
		return Grant{}, newErr(ErrNotFound, "no_grant", "no grant: its request %s is not an approved request of %s on %s", g.RequestID, operator, service)
	}
	if g.ApprovedBy == "" {
		// Written before grants said who approved them: the request's
		// history does. Unknown counts as not tenant-approved: fail
		// closed.
		g.ApprovedBy = KindProvider
		if by := approvedBy(r); by != "" {
			g.ApprovedBy = by
		}
	}
	return g, nil
}

// LockboxOnTx ends, when the tenant turns Customer Lockbox on, every live
// grant that no approver of the tenant approved: it implements
// tenants.Guard. It runs inside the settings change's optimistic
// transaction: it watches the tenant's active-grant index and each request
// it reads, and returns the writes (each request revoked by actor, its
// grant deleted, its audit record and notifications) for the settings
// change's MULTI, and what to do once that MULTI committed (count and log
// the revocations). An approval committing meanwhile fails the
// transaction, and the change is retried by the caller or reported as a
// conflict. Like OffboardTx it refuses (503) to record a window's end
// over a request holding fields this version does not know.
//
// It does not call Changed or schedule the jobs itself, as commit does:
// every caller (the settings change, an onboarding with the switch on)
// publishes the tenant's event in the same MULTI, then drops this
// process's caches of the tenant and schedules its jobs once committed;
// an ended request needs no sweep of its own.
func (s *Store) LockboxOnTx(ctx context.Context, tx *redis.Tx, tenant string, by identity.Principal, clientIP string) (func(redis.Pipeliner) error, func(), error) {
	writes, changes, err := s.endTx(ctx, tx, tenant, Actor{Principal: by, ClientIP: clientIP}, ender{
		indexes: []string{keys.TenantActive(tenant)},
		end:     EndUntenantApproved,
	})
	if err != nil || writes == nil {
		return nil, nil, err
	}
	// Counted once committed: a transaction that loses its optimistic
	// lock (another change of the settings, an approval) is judged again,
	// and its revocations would otherwise be counted again.
	committed := func() {
		for _, c := range changes {
			s.metrics.observe(c.prev, c.next)
			s.cfg.Logger.InfoContext(ctx, "request ended: Customer Lockbox turned on", "request_id", c.next.ID,
				"tenant", tenant, "to", c.next.State)
		}
	}
	return writes, committed, nil
}

// OffboardTx ends every open request of tenant when actor offboards it:
// it implements tenants.Guard. Like LockboxOnTx it runs inside the
// offboarding's optimistic transaction: it watches the tenant's pending,
// active and deadline indexes and each request they name, and returns the
// writes (each live grant revoked and each pending request canceled by
// actor, EndForOffboarding, with its grant deleted, its audit record,
// notifications and the event the proxies' grant caches listen to) for
// the offboarding's MULTI, and what to do once it committed. A transition
// or a new request committing meanwhile fails the transaction, which the
// caller judges again.
func (s *Store) OffboardTx(ctx context.Context, tx *redis.Tx, tenant string, by identity.Principal, clientIP string) (func(redis.Pipeliner) error, func(), error) {
	writes, changes, err := s.endTx(ctx, tx, tenant, Actor{Principal: by, ClientIP: clientIP}, ender{
		indexes: []string{keys.TenantPending(tenant), keys.TenantActive(tenant), keys.TenantDeadlines(tenant)},
		end:     EndForOffboarding,
	})
	if err != nil || writes == nil {
		return nil, nil, err
	}
	committed := func() {
		s.cfg.Changed(tenant)
		for _, c := range changes {
			s.scheduled(ctx, c.next)
			s.metrics.observe(c.prev, c.next)
			s.cfg.Logger.InfoContext(ctx, "request ended: tenant offboarded", "request_id", c.next.ID,
				"tenant", tenant, "to", c.next.State)
		}
	}
	return writes, committed, nil
}

// ender is what one of the tenant-wide endings (LockboxOnTx, OffboardTx)
// judges: the requests its indexes name, each ended by end.
type ender struct {
	indexes []string
	end     func(Request, Actor, time.Time) (Request, bool)
}

// endTx is the watch-and-end step of a tenant-wide ending inside the
// caller's optimistic transaction tx: it watches e's indexes and every
// request they name, reads those requests and ends each as e says. It
// returns the writes for the caller's MULTI and the changes they make, or
// no writes when nothing changes. Anything committing meanwhile to those
// keys fails the caller's EXEC, which judges everything again.
func (s *Store) endTx(ctx context.Context, tx *redis.Tx, tenant string, actor Actor, e ender) (func(redis.Pipeliner) error, []change, error) {
	if err := tx.Watch(ctx, e.indexes...).Err(); err != nil {
		return nil, nil, err
	}
	var ids []string
	for _, idx := range e.indexes {
		got, err := tx.ZRange(ctx, idx, 0, -1).Result()
		if err != nil {
			return nil, nil, err
		}
		for _, id := range got {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	reqKeys := make([]string, len(ids))
	for i, id := range ids {
		reqKeys[i] = keys.Request(tenant, id)
	}
	if err := tx.Watch(ctx, reqKeys...).Err(); err != nil {
		return nil, nil, err
	}
	now := s.cfg.Now()
	var changes []change
	for _, id := range ids {
		prev, newer, err := s.loadChecked(ctx, tx, tenant, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if errors.Is(err, fault.ErrUnreadable) {
			// Reported and counted (loadChecked), and passed over as the
			// sweep passes it over: the tenant's other grants still end.
			// Refusing the whole ending for it left the switch off, or the
			// tenant onboarded, and every other grant live, until someone
			// repaired the record by hand. The grant the record held
			// itself is not ended here, but it is not honoured either:
			// Grant refuses a grant whose request does not decode.
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		next, changed := e.end(prev, actor, now)
		if !changed {
			continue
		}
		if newer && next.State != StateRevoked {
			// As commit: only a revocation is written over fields this
			// version does not know. The ending fails (503) and is
			// retried, by then likely on an upgraded replica. Both
			// endings settle what time ended on the way (a switch turned
			// on records a closed window as completed), so both refuse.
			return nil, nil, fault.Unavailable("grants: request "+id, errNewer)
		}
		changes = append(changes, change{prev, next})
	}
	if len(changes) == 0 {
		return nil, nil, nil
	}
	writes := func(p redis.Pipeliner) error {
		for _, c := range changes {
			if err := s.queue(ctx, p, c.prev, c.next, now); err != nil {
				return err
			}
		}
		return nil
	}
	return writes, changes, nil
}

// settle persists the time-driven transitions of one request.
func (s *Store) settle(ctx context.Context, tenant, id string) (Request, error) {
	r, _, err := s.commit(ctx, tenant, id, "", nil)
	return r, err
}

// update is the optimistic-locking loop every transition goes through.
// With fn nil it only settles. When settling changes the request, the
// settled request is committed and the action fails: fn is still called,
// on the request as it was, so that its error says whether the actor may
// take the action at all (ErrForbidden) or may but is too late (a
// TransitionError naming the new state). A retry of an action the actor
// took before is no action: it succeeds, with the settled request.
func (s *Store) update(ctx context.Context, tenant, id string, act Action, fn func(Request, Env) (Request, error)) (Request, error) {
	r, _, err := s.commit(ctx, tenant, id, act, fn)
	return r, err
}

// commit is update that also reports whether its own transaction wrote a
// change of the request: not when another replica, or a read that settles
// on the way, committed it first.
func (s *Store) commit(ctx context.Context, tenant, id string, act Action, fn func(Request, Env) (Request, error)) (Request, bool, error) {
	key := keys.Request(tenant, id)
	var out, cur Request
	var actErr error
	var newer bool
	for range s.cfg.MaxRetries {
		actErr = nil
		// Everything a decision reads about the tenant is watched, so a
		// change committing between those reads and EXEC fails it and the
		// decision is judged again: the switch (settings), the assignments
		// (approvers) and the registry entry, whose domains say who is a
		// user of the tenant at all (removing a domain takes the rights of
		// its global admins and approvers).
		err := s.cfg.Redis.Watch(ctx, func(tx *redis.Tx) error {
			var err error
			if cur, newer, err = s.loadChecked(ctx, tx, tenant, id); err != nil {
				return err
			}
			now := s.cfg.Now()
			next, settled := Settle(cur, now)
			switch {
			case fn != nil:
				applied, err := fn(cur, Env{Now: now})
				switch {
				case err == nil && !settled:
					next = applied
				case !settled:
					out = cur
					return err
				case err == nil:
					// Apply settles first and refuses every action on a
					// request it settled but a retry of one taken
					// before, which adds nothing to the settlement. This
					// is a safety net: an action that would add more is
					// refused, and only the settlement is written.
					if len(applied.History) != len(next.History) {
						actErr = &TransitionError{Action: act, State: next.State}
					}
				default:
					actErr = err
				}
			case !settled:
				out = cur
				return nil
			}
			out = next
			if len(next.History) == len(cur.History) {
				return nil // idempotent retry: nothing to write
			}
			if newer && next.State != StateRevoked {
				// Refused (503, to be retried, by then likely on an
				// upgraded replica) rather than written without the
				// fields this version does not know. A revocation goes
				// ahead: refusing it would keep access open, and ending
				// access can't be widened by a field left out.
				out = cur
				return fault.Unavailable("grants: request "+id, errNewer)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				return s.queue(ctx, p, cur, next, now)
			})
			return err
		}, key, keys.Settings(tenant), keys.Approvers(tenant), keys.Tenant(tenant))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return out, false, s.storeErr("update", err)
		}
		committed := len(out.History) > len(cur.History)
		if committed {
			s.cfg.Changed(tenant)
			s.scheduled(ctx, out)
			s.metrics.observe(cur, out)
			last := out.History[len(out.History)-1]
			s.cfg.Logger.InfoContext(ctx, "request transition", "request_id", id, "tenant", tenant,
				"action", last.Action, "actor", last.Actor, "from", last.From, "to", last.To)
		}
		if actErr != nil {
			return out, committed, s.storeErr("update", actErr)
		}
		return out, committed, nil
	}
	return out, false, newErr(ErrConflict, "conflict", "request %s is changing concurrently; retry", id)
}

// queue adds to p the writes that take a request from prev to next: the
// request itself, its grant, its indexes and one audit record per new
// history event. now is the time the transition was judged at, the one
// the grant's expires_at counts from: read again here, the clock has moved
// on by as long as the transaction's reads took, and a grant shorter than
// that got a TTL of zero or less, which Redis takes as none.
func (s *Store) queue(ctx context.Context, p redis.Pipeliner, prev, next Request, now time.Time) error {
	next.History = recordedAt(prev, next, now)
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	p.Set(ctx, keys.Request(next.Tenant, next.ID), b, 0)
	deadlines := keys.TenantDeadlines(next.Tenant)
	pending, active := keys.TenantPending(next.Tenant), keys.TenantActive(next.Tenant)
	switch {
	case next.State.Pending() && next.DecideBy != nil:
		p.ZAdd(ctx, deadlines, redis.Z{Score: score(*next.DecideBy), Member: next.ID})
		p.ZAdd(ctx, pending, redis.Z{Score: score(*next.DecideBy), Member: next.ID})
	case next.State == StateApproved && next.ExpiresAt != nil:
		p.ZAdd(ctx, deadlines, redis.Z{Score: score(*next.ExpiresAt), Member: next.ID})
		p.ZRem(ctx, pending, next.ID)
		p.ZAdd(ctx, active, redis.Z{Score: score(*next.ExpiresAt), Member: next.ID})
	default:
		p.ZRem(ctx, deadlines, next.ID)
		p.ZRem(ctx, pending, next.ID)
		p.ZRem(ctx, active, next.ID)
	}
	grantKey := keys.Grant(next.Tenant, next.Requester, next.Service)
	if g, ok := GrantOf(next); ok && prev.State != StateApproved {
		gb, err := json.Marshal(g)
		if err != nil {
			return err
		}
		// The TTL is cleanup only; readers check ExpiresAt. It is relative
		// to our clock, not Redis's, so an injected clock stays coherent.
		p.Set(ctx, grantKey, gb, g.ExpiresAt.Sub(now))
	}
	if prev.State == StateApproved && next.State != StateApproved {
		// One open request per (tenant, operator, service) means this
		// request owns the grant key.
		p.Del(ctx, grantKey)
	}
	if next.State.Final() {
		// Only this request can own the open marker (Create refuses a
		// second), so deleting it is safe.
		p.Del(ctx, keys.Open(next.Tenant, next.Requester, next.Service))
	}
	for _, ev := range next.History[len(prev.History):] {
		rec := recordFor(next, ev, now)
		err := s.cfg.Audit.AppendTx(ctx, p, rec)
		if errors.Is(err, fault.ErrUnreadable) && ev.To.Final() {
			err = s.appendEnding(ctx, p, rec, err)
		}
		if err != nil {
			return err
		}
	}
	if s.cfg.Outbox != nil {
		if err := s.cfg.Outbox.EnqueueTx(ctx, p, prev, next); err != nil {
			return err
		}
	}
	// Every replica's cache of this tenant's grants hears of the change
	// if, and as soon as, it commits.
	events.PublishTx(ctx, p, next.Tenant)
	return nil
}

// recordedAt returns next's history with RecordedAt set, to now, on the
// events new since prev that happened more than a second before now (a
// late sweep's expiry or completion): a copy when it sets any, so that the
// caller's request is not changed under it.
func recordedAt(prev, next Request, now time.Time) []Event {
	h := next.History
	for i := len(prev.History); i < len(h); i++ {
		if h[i].At.Before(now.Add(-time.Second)) && h[i].RecordedAt.IsZero() {
			if &h[0] == &next.History[0] {
				h = slices.Clone(h)
			}
			h[i].RecordedAt = now
		}
	}
	return h
}

// appendEnding queues rec, the record of a request ending (revoked,
// canceled, denied, expired, completed), that AppendTx refused with
// failed (record_unreadable) because the tenant's registry entry, which
// holds the organization id every record carries, does not decode.
//
// Whether that refusal happened depended on the replica: each caches the
// id once it has read it, so a revocation went ahead on one replica and
// answered 500 on another, and the sweep could not complete or expire the
// tenant's requests where the id was not cached. Ending access never
// needs the entry for anything else (who may revoke or cancel is read
// from the request and the caller's roles; a tenant user's rights are
// read from the entry before, and refused there), and refusing it keeps
// access open until the grant's own expiry. So the record is written
// with the id the tenant's own audit log carries (RecordedOrganizationID),
// the same on every replica; without one, failed stands and nothing is
// written. A transition that grants access or files a request never gets
// here: it reads the entry first, and is refused on it.
func (s *Store) appendEnding(ctx context.Context, p redis.Pipeliner, rec record.Record, failed error) error {
	id, err := s.cfg.Audit.RecordedOrganizationID(ctx, rec.LockboxTenant)
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "the tenant's registry entry can't be read and no audit record carries its organization id: the request is not ended",
			"tenant", rec.LockboxTenant, "request_id", rec.LockboxRequestId, "operation", rec.Operation, "err", err)
		return failed
	}
	rec.OrganizationId = id
	s.cfg.Logger.WarnContext(ctx, "the tenant's registry entry can't be read: the request's end is recorded with the organization id of the tenant's audit log",
		"tenant", rec.LockboxTenant, "request_id", rec.LockboxRequestId, "operation", rec.Operation, "organization_id", id)
	return s.cfg.Audit.AppendTx(ctx, p, rec)
}

// recordFor builds the audit record of one history event: an Exchange
// admin cmdlet record, as the Customer Lockbox cmdlets are in Microsoft
// 365, with the cmdlet's parameters. committed is when the transaction
// writing it runs.
//
// An expiry or completion is stamped in the request's history with the
// deadline it happened at, which a late sweep records long after. Its audit
// record is created when it is written instead, with the deadline as a
// parameter: audit search, export and a request's activity read each
// stream in append order, trusting creation times to follow it within
// ClockSkew, and would skip a record stamped hours before its neighbours.
func recordFor(r Request, ev Event, committed time.Time) record.Record {
	created := ev.At
	if ev.ActorKind == KindSystem && committed.After(created) {
		created = committed
	}
	rec := record.Record{
		CreationTime:     record.Time{Time: created},
		LockboxTenant:    r.Tenant,
		RecordType:       record.RecordTypeExchangeAdmin,
		Workload:         r.Service,
		ClientIP:         ev.ClientIP,
		ObjectId:         r.ID,
		LockboxRequestId: r.ID,
		Comment:          ev.Comment,
		UserId:           ev.Actor,
	}
	switch ev.ActorKind {
	case KindSystem:
		rec.UserId, rec.UserType, rec.ClientIP = record.SystemUserID, record.UserTypeSystem, ""
	case KindProvider:
		// Tenants see the provider's staff by a label; the person is kept
		// for the provider's own investigations.
		rec.UserId, rec.UserType, rec.ProviderUserId = ProviderLabel(ev), record.UserTypeDcAdmin, ev.Actor
	default:
		rec.UserType = record.UserTypeRegular
		if ev.ActorGlobalAdmin {
			rec.UserType = record.UserTypeAdmin
		}
	}
	params := []record.Parameter{{Name: "Identity", Value: r.ID}}
	switch ev.Action {
	case ActionCreate:
		rec.Operation, rec.Comment = record.OpNewRequest, r.Reason
		params = append(params,
			record.Parameter{Name: "Tenant", Value: r.Tenant},
			record.Parameter{Name: "Service", Value: r.Service},
			record.Parameter{Name: "ServiceRequest", Value: r.ServiceRequest},
			record.Parameter{Name: "Reason", Value: r.Reason},
			record.Parameter{Name: "Duration", Value: r.Duration.Std().String()})
		if len(r.Activities) > 0 {
			params = append(params, record.Parameter{Name: "Activities", Value: strings.Join(r.Activities, ",")})
		}
	case ActionApprove, ActionDeny:
		rec.ApprovalDecision = map[Action]string{ActionApprove: record.ApprovalApprove, ActionDeny: record.ApprovalDeny}[ev.Action]
		rec.Operation = record.OpTenantDecision
		if ev.From == StatePendingManager {
			rec.Operation = record.OpManagerDecision
		}
		// Set-AccessToCustomerDataRequest names its request -RequestId,
		// not -Identity, and Exchange admin records carry the parameters
		// a cmdlet was given: a SIEM rule written for Microsoft 365's
		// records looks the request up there. Identity stays first, as
		// in every other record of a request.
		params = append(params,
			record.Parameter{Name: "ApprovalDecision", Value: rec.ApprovalDecision},
			record.Parameter{Name: "RequestId", Value: r.ID})
	case ActionCancel:
		rec.Operation = record.OpCancelRequest
	case ActionRevoke:
		rec.Operation = record.OpRevokeAccess
	case ActionExpire:
		rec.Operation = record.OpExpireRequest
		params = append(params, record.Parameter{Name: "ExpiredAt", Value: ev.At.UTC().Format(record.TimeLayout)})
	case ActionComplete:
		rec.Operation = record.OpCompleteAccess
		params = append(params, record.Parameter{Name: "EndedAt", Value: ev.At.UTC().Format(record.TimeLayout)})
	}
	if ev.Comment != "" {
		params = append(params, record.Parameter{Name: "Comment", Value: ev.Comment})
	}
	rec.Parameters = params
	return rec
}

// canSee is the read rule: provider managers and auditors see every
// request, operators their own; a tenant's requests are seen by its global
// admins and audit readers and by the approvers it assigned, each only as a
// user of the tenant (viewer.asTenant). Anyone else is told the request is
// not found, so the id's existence is not confirmed; an error of the
// tenant directory is returned as it is, never taken as a yes or a no.
func (s *Store) canSee(ctx context.Context, p identity.Principal, r Request) error {
	ok, err := s.viewer(p).sees(ctx, r)
	if err != nil {
		return err
	}
	if !ok {
		return newErr(ErrNotFound, "not_found", "request %s not found", r.ID)
	}
	return nil
}

// viewer applies the read rule for one principal across one call. A
// listing checks many requests, all of one tenant for a tenant user, so
// the tenant directory is asked about the principal once per call, not
// once per request.
type viewer struct {
	s *Store
	p identity.Principal
	// asked is set once tenantReader holds the directory's answer.
	asked, tenantReader bool
}

func (s *Store) viewer(p identity.Principal) *viewer { return &viewer{s: s, p: p} }

// sees reports whether the principal may see r.
func (v *viewer) sees(ctx context.Context, r Request) (bool, error) {
	p := v.p
	switch {
	case p.IsProvider() && (p.Has(identity.RoleSupportManager) || p.Has(identity.RoleAuditReader)):
		return true, nil
	case p.IsProvider() && p.Has(identity.RoleOperator) && p.Subject == r.Requester:
		return true, nil
	case p.ActsInTenant(r.Tenant):
		// InTenant: r.Tenant is p's one tenant, so the answer holds for
		// every request this viewer is asked about.
		return v.readsTenant(ctx, r.Tenant)
	}
	return false, nil
}

// seesUnreadable reports whether the principal may be shown that a
// request of tenant, read from an index, can't be read: whether it would
// see the request whatever the request holds. Managers and auditors see
// every request, a tenant's readers every one of their tenant's; an
// operator sees their own, and only an index of their own says a request
// is theirs (own). Anyone else is shown nothing of it; the record is
// still logged and counted.
func (v *viewer) seesUnreadable(ctx context.Context, tenant string, own bool) (bool, error) {
	p := v.p
	switch {
	case p.IsProvider() && (p.Has(identity.RoleSupportManager) || p.Has(identity.RoleAuditReader)):
		return true, nil
	case v.ownOnly():
		return own, nil
	case p.ActsInTenant(tenant):
		return v.readsTenant(ctx, tenant)
	}
	return false, nil
}

// ownOnly reports whether the principal sees exactly the requests it filed
// itself: an operator of the provider's that carries no role seeing more
// (support manager, audit reader). For such a principal sees is true of r
// if and only if r.Requester is its Subject, byte for byte, and those are
// the requests of keys.OperatorRequests(Subject). A provider principal has
// no tenant, so the tenant rule never applies to it.
func (v *viewer) ownOnly() bool {
	p := v.p
	return p.IsProvider() && p.Has(identity.RoleOperator) &&
		!p.Has(identity.RoleSupportManager) && !p.Has(identity.RoleAuditReader)
}

// readsTenant reports whether a tenant's user reads the requests of
// tenant, its own: as one of the tenant's readers (asTenant), the only way
// it sees any (sees). The answer is kept for sees.
func (v *viewer) readsTenant(ctx context.Context, tenant string) (bool, error) {
	if !v.p.ActsInTenant(tenant) {
		return false, nil
	}
	if !v.asked {
		ok, err := v.asTenant(ctx, tenant)
		if err != nil {
			return false, err
		}
		v.asked, v.tenantReader = true, ok
	}
	return v.tenantReader, nil
}

// seesNone reports whether the principal sees no request at all: one of
// the provider's that carries none of the roles sees grants a request on
// (a Lockbox administrator's alone, say). A provider principal has no
// tenant, so the tenant rule never applies to it either.
func (v *viewer) seesNone() bool {
	p := v.p
	return p.IsProvider() && !p.Has(identity.RoleOperator) &&
		!p.Has(identity.RoleSupportManager) && !p.Has(identity.RoleAuditReader)
}

// asTenant reports whether the principal reads tenant's requests as one of
// its users: a global admin or audit reader whose subject is a user of the
// tenant (user@ one of its registered domains), or an approver the tenant
// assigned (an assignment counts only for such a user too). The roles come
// from the token alone, and a shared issuer can sign a provider identity
// with a tenant's tid and global-admin: the domain rule, the one deciding
// holds global admins to (Env.TenantUser), is what ties them to the tenant.
// The caller has checked that the principal is in tenant and carries no
// provider-only role.
func (v *viewer) asTenant(ctx context.Context, tenant string) (bool, error) {
	p, dir := v.p, v.s.cfg.Tenants
	if p.Has(identity.RoleGlobalAdmin) || p.Has(identity.RoleAuditReader) {
		ok, err := dir.IsUser(ctx, tenant, p.Subject)
		if err != nil || ok {
			return ok, err
		}
	}
	return dir.IsApprover(ctx, tenant, p.Subject)
}

// SelfApproval reports whether the two-person rule refuses p's approval
// or denial of request id for the tenant (self_approval): p took part in
// it for the provider (TookPart). It lets a page that shows p the tenant
// view, which names none of the provider's staff, leave out decisions
// the lifecycle would refuse. p must be allowed to see the request, as
// for Get.
func (s *Store) SelfApproval(ctx context.Context, p identity.Principal, id string) (bool, error) {
	tenant, err := s.tenantOf(ctx, id)
	if err != nil {
		return false, err
	}
	r, err := s.load(ctx, s.cfg.Redis, tenant, id)
	if err != nil {
		return false, err
	}
	if err := s.canSee(ctx, p, r); err != nil {
		return false, err
	}
	return TookPart(r, p), nil
}

// view hides provider identities from tenant users.
func (s *Store) view(p identity.Principal, r Request) Request {
	if p.IsProvider() {
		return r
	}
	return TenantView(r)
}

// ProviderLabel is how tenants see the provider staff member who took
// ev: the engineer's own steps (filing, canceling) are "Microsoft
// Operator", as every operator action is; a support manager's decisions
// and revocations are "Microsoft Support", and so is every step the
// provider took with a cause (the cancellations offboarding the tenant
// caused, which no engineer chose).
func ProviderLabel(ev Event) string {
	if ev.Cause == "" && (ev.Action == ActionCreate || ev.Action == ActionCancel) {
		return record.OperatorUserID
	}
	return record.ProviderUserID
}

// TenantView returns r as tenant users see it: no provider identity in any
// field. The engineer is "Microsoft Operator" (and their e-mail address is
// left out), the support manager
// "Microsoft Support", and where the provider's staff acted from is not
// shown.
func TenantView(r Request) Request {
	r.Requester, r.RequesterEmail = record.OperatorUserID, ""
	if r.ManagerApprover != "" {
		r.ManagerApprover = record.ProviderUserID
	}
	// Unless the history says an approver of the tenant gave the final
	// approval, the approver was the manager (lockbox off): fail closed.
	if r.Approver != "" && approvedBy(r) != KindTenant {
		r.Approver = record.ProviderUserID
	}
	h := make([]Event, len(r.History))
	for i, ev := range r.History {
		// Anyone not known to be the tenant's or Lockbox's is the
		// provider's: fail closed.
		if ev.ActorKind != KindTenant && ev.ActorKind != KindSystem {
			ev.Actor, ev.ClientIP = ProviderLabel(ev), ""
		}
		h[i] = ev
	}
	r.History = h
	return r
}

func (s *Store) tenantOf(ctx context.Context, id string) (string, error) {
	if err := keys.ValidRequestID(id); err != nil {
		return "", newErr(ErrInvalid, "invalid_request_id", "%v", err)
	}
	t, err := s.cfg.Redis.Get(ctx, keys.RequestIndex(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", newErr(ErrNotFound, "not_found", "request %s not found", id)
	}
	if err != nil {
		return "", fault.Unavailable("grants: index", err)
	}
	return t, nil
}

// change is one request's move from prev to next, to be queued.
type change struct{ prev, next Request }

type getter interface {
	Get(ctx context.Context, key string) *redis.StringCmd
}

func (s *Store) load(ctx context.Context, g getter, tenant, id string) (Request, error) {
	r, _, err := s.loadChecked(ctx, g, tenant, id)
	return r, err
}

// errNewer is why a request is not rewritten, or a grant not honoured: it
// holds a field this version does not know.
var errNewer = errors.New("written by a newer version of Lockbox, which holds fields this version does not know")

// loadChecked is load, and also reports whether the stored request holds
// fields this version does not know: a newer replica wrote it, during a
// rolling upgrade. Such a request is read (listed, shown) without them,
// but this version must not write it back, which would drop them: they
// may restrict the grant an approval writes, or record what an audit
// needs.
func (s *Store) loadChecked(ctx context.Context, g getter, tenant, id string) (Request, bool, error) {
	b, err := g.Get(ctx, keys.Request(tenant, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Request{}, false, newErr(ErrNotFound, "not_found", "request %s not found", id)
	}
	var r Request
	var newer bool
	if err == nil {
		newer, err = storedjson.Decode(b, &r)
	} else if !unreadable.WrongType(err) {
		return Request{}, false, fault.Unavailable("grants: load", err)
	}
	if err != nil {
		s.unreadable.Report(ctx, unreadable.KindRequest, keys.Request(tenant, id), err, "tenant", tenant, "request_id", id)
		return Request{}, false, errUnreadable(id)
	}
	if r.Tenant != tenant || r.ID != id {
		// Not this tenant's request, whatever led here (an index entry is
		// only a hint): it is not found, never acted on as the tenant's.
		return Request{}, false, newErr(ErrNotFound, "not_found", "request %s not found", id)
	}
	return r, newer, nil
}

// errUnreadable is the error of request id, stored but not decodable: no
// retry reads it, and no transition may be judged on it.
func errUnreadable(id string) error {
	return newErr(fault.ErrUnreadable, "record_unreadable", "request %s %s: its stored record does not decode", id, unreadable.Message)
}

// storeErr keeps domain errors as they are and marks anything else as the
// store being unavailable.
func (s *Store) storeErr(op string, err error) error {
	var fe *fault.Error
	var te *TransitionError
	if errors.As(err, &fe) || errors.As(err, &te) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fault.Unavailable("grants: "+op, err)
}

func score(t time.Time) float64 { return float64(t.UnixMilli()) }

// unindex removes the global index entries Create wrote for r, a request
// it then did not file, as far as Redis answers: readers skip entries
// whose request is missing, so one left behind costs memory, not a wrong
// answer.
func (s *Store) unindex(ctx context.Context, rdb redis.UniversalClient, r Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestIndexCleanupTimeout)
	defer cancel()
	member := r.Tenant + "/" + r.ID
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys.RequestIndex(r.ID))
		p.ZRem(ctx, keys.AllRequests(), member)
		if keys.IsUser(r.Requester) {
			p.ZRem(ctx, keys.OperatorRequests(r.Requester), member)
		}
		return nil
	})
}

// requestIndexCleanupTimeout bounds unindex, which runs after the call's
// own work, whatever its context's deadline.
const requestIndexCleanupTimeout = 2 * time.Second
