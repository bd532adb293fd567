// Package tenants owns who the tenants are and how each wants Customer
// Lockbox: the registry of onboarded tenants (display name, organization
// id, user domains, global administrators' contacts), each tenant's
// settings (the on/off switch, notification addresses) and its assigned
// approvers, and who may read or change each of them:
//
//   - the provider's Lockbox administrators onboard tenants and keep their
//     registry entries;
//   - a tenant's global administrators and assigned approvers change its
//     settings, as Microsoft 365 lets "the tenant administrator and
//     Customer Lockbox access approver" configure Customer Lockbox;
//   - only its global administrators assign or remove approvers, who must
//     be users of the tenant (user@ one of its domains); a user's id is
//     compared without ASCII case (foldUser), as user principal names are;
//   - its global administrators and approvers, and the provider's support
//     managers, read its settings and approvers.
//
// A tenant's global administrators and approvers act for it, reading as
// well as changing, only as users of the tenant (user@ one of its domains)
// whose tokens carry no provider-only role: a global-admin role in a token
// with the tenant's tid does not make a provider identity one of them.
//
// Approver rights come from the assignment kept here, not from a role claim
// in a token, so only the tenant's global admins can create approvers.
//
// Every key of a tenant carries its Redis Cluster hash tag (internal/keys),
// so each change — onboarding, a registry or settings change with the
// grants it ends, an approver assignment — commits with its audit record
// in one transaction on every topology. Only the provider-wide tenant set
// is elsewhere: written after the tenant's transaction, idempotently, and
// rebuilt from the registry entries by Reindex.
//
// It knows nothing of HTTP and must not import grants: the lifecycle's part
// in a settings change reaches it through the Guard interface.
package tenants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/storedjson"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// Settings are a tenant's Customer Lockbox settings.
type Settings struct {
	// LockboxEnabled is the tenant's switch. Off, the provider manager's
	// approval is final.
	LockboxEnabled bool `json:"lockbox_enabled"`
	// NotificationAddresses receive request e-mails besides the approvers
	// and global administrators.
	NotificationAddresses []string `json:"notification_addresses"`
	// Revision numbers the stored settings: each write sets it to one more
	// than the revision it replaces, in the same transaction, so settings
	// read with the same revision are the same settings. Settings nobody
	// configured, and settings stored before revisions existed, are
	// revision 0. It is the version a read-modify-write passes back to
	// PutSettingsIf, not a setting: stored beside them (storedSettings),
	// it is left out of their JSON, which is the API's Settings body.
	Revision int64 `json:"-"`
}

// AnyRevision, as PutSettingsIf's or UpdateTenantIf's ifRevision, writes
// the settings or the registry entry whatever their revision: what
// PutSettings and UpdateTenant do.
const AnyRevision int64 = -1

// Condition is what a change of the settings or of a registry entry is
// made conditional on: HTTP's If-Match (IfRevision) and If-None-Match
// (NotAny, NotRevisions). It is judged in the change's own transaction,
// against the revision the change would replace, so no write can slip in
// between the judgement and the change. The zero Condition is not "no
// condition": IfRevision 0 is a revision; a change made whatever it is
// sets IfRevision to AnyRevision.
type Condition struct {
	// IfRevision is the revision the change must replace (AnyRevision:
	// any); another is fault.ErrPrecondition settings_changed or
	// tenant_changed, as PutSettingsIf and UpdateTenantIf refuse it.
	IfRevision int64
	// NotAny refuses the change whatever the revision
	// (If-None-Match: *): the settings and an onboarded tenant's entry
	// always exist, so "create, never overwrite" can only be refused.
	NotAny bool
	// NotRevisions refuses the change while the revision is one of them
	// (an If-None-Match list).
	NotRevisions []int64
}

// judge returns why a change replacing revision may not be made under c,
// nil when it may. If-Match comes first, as RFC 9110 13.2.2 orders them:
// a client whose read is stale is told so rather than that its other
// condition failed. changed is the refusal of a stale IfRevision; what
// names the settings or the entry, for the message.
func (c Condition) judge(revision int64, changed func() error, what string) error {
	if c.IfRevision != AnyRevision && revision != c.IfRevision {
		return changed()
	}
	return c.judgeNone(revision, what)
}

// judgeNone is judge's If-None-Match half.
func (c Condition) judgeNone(revision int64, what string) error {
	switch {
	case c.NotAny:
		return fault.New(fault.ErrPrecondition, "precondition_failed",
			"%s exists, and the change was to be made only if it did not (If-None-Match: *); nothing was saved", what)
	case slices.Contains(c.NotRevisions, revision):
		return fault.New(fault.ErrPrecondition, "precondition_failed",
			"%s is still revision %d, and the change was to be made only if it was not (If-None-Match); nothing was saved", what, revision)
	}
	return nil
}

// storedSettings is the value of the settings key: the settings and their
// revision, in one JSON document so that one SET writes both.
type storedSettings struct {
	Settings
	Revision int64 `json:"revision,omitempty"`
}

// encodeSettings returns the value of the settings key for st at revision.
func encodeSettings(st Settings, revision int64) ([]byte, error) {
	return json.Marshal(storedSettings{Settings: st, Revision: revision})
}

// Defaults are the settings of a tenant nobody configured: on.
func Defaults() Settings { return Settings{LockboxEnabled: true, NotificationAddresses: []string{}} }

const maxAddresses = 50

// MaxApprovers bounds a tenant's assigned approvers. Each is told of every
// request that awaits the tenant, and the set is read whole by every check
// of a tenant user's rights and every assignment: a script assigning
// user0..userN without end would make each of those, on the replicas and
// the mail worker every tenant shares, grow with it.
const MaxApprovers = 1000

// maxRetries bounds the optimistic-locking loop of one settings,
// approver or registry change.
const maxRetries = 10

// Validate checks the settings and normalizes the addresses.
func (s *Settings) Validate() error {
	addrs, err := normalizeAddresses("notification_addresses", s.NotificationAddresses)
	if err != nil {
		return fault.New(fault.ErrInvalid, "invalid_settings", "%s", err.Error())
	}
	s.NotificationAddresses = addrs
	return nil
}

// Store keeps tenants' registry entries, settings and approvers in Redis.
type Store struct {
	rdb     redis.UniversalClient
	log     *audit.Log
	now     func() time.Time
	guard   Guard
	changed func(tenant string)
	// unreadable reports the registry entries and settings reads meet
	// that do not decode; nil (reporting nothing) until ReportUnreadable.
	unreadable *unreadable.Reporter
}

// Guard ends the access that a settings change no longer allows. Which
// requests a change ends, and how that is recorded, is the lifecycle's
// business, so this package only declares what it needs.
type Guard interface {
	// LockboxOnTx is called when actor turns tenant's switch on, inside the
	// optimistic transaction of the change: tx is watching the tenant's
	// settings, and the guard may read (and watch) more of the tenant's
	// keys with it. It returns the writes that end every grant no tenant
	// approver approved, queued in the same MULTI as the settings, so the
	// switch and the revocations commit together or not at all; and what
	// to do once they committed (nil for nothing), called only for the
	// attempt that committed: a transaction that lost its optimistic lock
	// is judged again, calling LockboxOnTx again.
	LockboxOnTx(ctx context.Context, tx *redis.Tx, tenant string, actor identity.Principal, clientIP string) (writes func(redis.Pipeliner) error, committed func(), err error)
	// OffboardTx is called when actor offboards tenant, inside the
	// offboarding's optimistic transaction (tx is watching the registry
	// entry), as LockboxOnTx is: it returns the writes that end every
	// request of the tenant still open (grants revoked, pending requests
	// canceled), for the MULTI that marks the tenant offboarded, and what
	// to do once they committed.
	OffboardTx(ctx context.Context, tx *redis.Tx, tenant string, actor identity.Principal, clientIP string) (writes func(redis.Pipeliner) error, committed func(), err error)
}

// NewStore returns a Store. log receives the audit records of changes.
func NewStore(rdb redis.UniversalClient, log *audit.Log, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, log: log, now: now, changed: func(string) {}}
}

// ReportUnreadable makes every read of a registry entry or Customer
// Lockbox settings that does not decode (the tenant list, a read of the
// one tenant, the proxy's and the lifecycle's reads of the settings) count
// it, in lockbox_unreadable_records_total{kind="tenant"} or
// {kind="settings"} registered with reg (shared with the requests' and
// audit records' series), and log it at error to logger with its key,
// never its content. Call it before serving.
func (s *Store) ReportUnreadable(reg prometheus.Registerer, logger *slog.Logger) error {
	r, err := unreadable.New(reg, logger)
	if err != nil {
		return fmt.Errorf("tenants: metrics: %w", err)
	}
	s.unreadable = r
	return nil
}

// SetChanged sets what is called with the tenant after each committed
// settings change or onboarding, so this process's caches drop the
// tenant's settings at once (other replicas hear of it through the event
// the change publishes).
func (s *Store) SetChanged(f func(tenant string)) { s.changed = f }

// SetGuard sets the Guard that turning the switch on calls. Until one is
// set, turning Customer Lockbox on is refused: it could not end the grants
// it must end. It is a setter rather than a NewStore argument because the
// guard (the lifecycle's store) reads tenants through this Store; set it
// before serving.
func (s *Store) SetGuard(g Guard) { s.guard = g }

// Lookup returns the tenant's settings without an access check, for the
// lifecycle and the proxy.
func (s *Store) Lookup(ctx context.Context, tenant string) (Settings, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return Settings{}, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	return s.lookup(ctx, s.rdb, tenant)
}

func (s *Store) lookup(ctx context.Context, g getter, tenant string) (Settings, error) {
	b, err := g.Get(ctx, keys.Settings(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Defaults(), nil
	}
	if err != nil {
		return Settings{}, fault.Unavailable("tenants: settings", err)
	}
	v := storedSettings{Settings: Defaults()}
	newer, err := storedjson.Decode(b, &v)
	if err != nil {
		// Reported here, off the path of settings that decode: the proxy
		// denies the tenant's calls on this error (store_unavailable),
		// and this count is how the alert hears of the record.
		return Settings{}, s.unreadableRecord(ctx, unreadable.KindSettings, "Customer Lockbox settings", tenant, keys.Settings(tenant), err)
	}
	if newer {
		// A setting this version does not know was stored by a newer
		// replica (a rolling upgrade), and may restrict access: deciding
		// without it could allow what the tenant forbade, and writing the
		// settings back would drop it for every replica. Both fail as the
		// store failing does (503, retried, by then likely on an upgraded
		// replica).
		return Settings{}, fault.Unavailable("tenants: settings of "+tenant, errNewerEntry)
	}
	st := v.Settings
	st.Revision = v.Revision
	if st.NotificationAddresses == nil {
		st.NotificationAddresses = []string{}
	}
	return st, nil
}

// storedRevision returns the revision of tenant's stored settings: 0 when
// there are none, and when they do not decode, for onboarding, which
// replaces them whatever they are.
func storedRevision(ctx context.Context, g getter, tenant string) (int64, error) {
	b, err := g.Get(ctx, keys.Settings(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fault.Unavailable("tenants: settings", err)
	}
	var v storedSettings
	if json.Unmarshal(b, &v) != nil {
		return 0, nil
	}
	return v.Revision, nil
}

// storedSwitchOn reports whether the tenant's stored settings have the
// switch on: true when none are stored (no grant can predate them), false
// when they say off or can't be read, since then grants the manager alone
// approved may be live.
func storedSwitchOn(ctx context.Context, g getter, tenant string) (bool, error) {
	b, err := g.Get(ctx, keys.Settings(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return true, nil
	}
	if err != nil {
		return false, fault.Unavailable("tenants: settings", err)
	}
	v := storedSettings{Settings: Defaults()}
	if json.Unmarshal(b, &v) != nil {
		return false, nil
	}
	return v.LockboxEnabled, nil
}

// LockboxEnabled reports the tenant's switch, without an access check.
func (s *Store) LockboxEnabled(ctx context.Context, tenant string) (bool, error) {
	st, err := s.Lookup(ctx, tenant)
	return st.LockboxEnabled, err
}

// IsApprover reports whether user is an assigned approver of tenant,
// without an access check. An assignment counts only while the user is a
// user of the tenant (one of its domains): removing a domain from the
// registry takes approver rights from its users.
//
// The id is compared without ASCII case (foldUser), with every entry of
// the set: assignments are stored folded, but entries stored before that
// may be in any case and must still count. The set holds the people the
// tenant's global admins assigned, so it is read whole, in the round trip
// that reads the registry entry.
func (s *Store) IsApprover(ctx context.Context, tenant, user string) (bool, error) {
	if !keys.IsUser(user) {
		// Not an id Lockbox accepts from a token or assigns: nobody's.
		return false, nil
	}
	members, entry, err := s.approverSet(ctx, tenant)
	if err != nil {
		return false, err
	}
	if len(stored(members, user)) == 0 {
		return false, nil
	}
	t, ok, err := s.entryOf(ctx, tenant, entry)
	if err != nil || !ok {
		return false, err
	}
	return t.HasUser(user), nil
}

// AssignedApprovers returns tenant's assigned approvers that count (IsApprover:
// users of one of its domains), folded (foldUser), each once, sorted,
// without an access check. It reads the set once: a caller with a use for
// every approver asks it, not IsApprover for each, which would read the
// whole set again for every one of them, the square of their number.
func (s *Store) AssignedApprovers(ctx context.Context, tenant string) ([]string, error) {
	members, entry, err := s.approverSet(ctx, tenant)
	if err != nil || len(members) == 0 {
		return nil, err
	}
	t, ok, err := s.entryOf(ctx, tenant, entry)
	if err != nil || !ok {
		return nil, err
	}
	var out []string
	for _, m := range members {
		if u := foldUser(m); t.HasUser(u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// approverSet reads tenant's approver set and its registry entry (nil when
// there is none) in one round trip.
func (s *Store) approverSet(ctx context.Context, tenant string) ([]string, []byte, error) {
	var members *redis.StringSliceCmd
	var entry *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		members = p.SMembers(ctx, keys.Approvers(tenant))
		entry = p.Get(ctx, keys.Tenant(tenant))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fault.Unavailable("tenants: approvers", err)
	}
	b, err := entry.Bytes()
	if errors.Is(err, redis.Nil) {
		return members.Val(), nil, nil
	}
	if err != nil {
		return nil, nil, fault.Unavailable("tenants: approvers", fmt.Errorf("registry entry of %s: %v", tenant, err))
	}
	return members.Val(), b, nil
}

// entryOf decodes the registry entry approverSet read; false when there
// is none (a tenant not onboarded, whose assignments count for nobody).
func (s *Store) entryOf(ctx context.Context, tenant string, entry []byte) (Tenant, bool, error) {
	if entry == nil {
		return Tenant{}, false, nil
	}
	t, err := decodeTenantStrict(entry)
	if errors.Is(err, fault.ErrUnavailable) {
		return Tenant{}, false, err
	}
	if err != nil {
		return Tenant{}, false, s.unreadableRecord(ctx, unreadable.KindTenant, "registry entry", tenant, keys.Tenant(tenant), err)
	}
	return t, true, nil
}

// stored returns the entries of an approver set that are user, in
// whatever case each was stored (foldUser): one, or more for a person
// assigned in two spellings before ids were folded.
func stored(members []string, user string) []string {
	var out []string
	id := foldUser(user)
	for _, m := range members {
		if foldUser(m) == id {
			out = append(out, m)
		}
	}
	return out
}

// CanRead reports whether p may read tenant's settings and approvers: its
// global admins and assigned approvers, each a user of the tenant without a
// provider role (actsForTenant, the rule for changing them too), and the
// provider's support managers. A token with the tenant's tid and
// global-admin that names no user of the tenant (a provider identity, as a
// shared issuer can sign it) reads nothing of the tenant's configuration.
func (s *Store) CanRead(ctx context.Context, p identity.Principal, tenant string) error {
	return s.canRead(ctx, p, tenant, "settings")
}

// canRead is CanRead, its refusal naming what was to be read ("settings",
// "approvers"): a refused approver list said "you may not read the
// settings".
func (s *Store) canRead(ctx context.Context, p identity.Principal, tenant, what string) error {
	if err := keys.ValidTenant(tenant); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	if p.IsProvider() && p.Has(identity.RoleSupportManager) {
		return s.Onboarded(ctx, tenant)
	}
	if ok, err := s.actsForTenant(ctx, p, tenant); err != nil || ok {
		return err
	}
	return fault.New(fault.ErrForbidden, "forbidden", "you may not read the %s of tenant %s", what, tenant)
}

// CanConfigure returns nil when p may change tenant's Customer Lockbox
// settings, the error PutSettingsIf returns first otherwise, without
// looking at a change. A front end asks it before it reads what the
// change is (a body, a form, If-Match), so a caller with no right learns
// nothing of what a valid change looks like or of the settings' revision.
func (s *Store) CanConfigure(ctx context.Context, p identity.Principal, tenant string) error {
	return s.canConfigure(ctx, p, tenant)
}

// canConfigure is the rule for changing a tenant's Customer Lockbox
// settings: its global admins and assigned approvers (actsForTenant).
func (s *Store) canConfigure(ctx context.Context, p identity.Principal, tenant string) error {
	if err := keys.ValidTenant(tenant); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	ok, err := s.actsForTenant(ctx, p, tenant)
	if err != nil {
		return err
	}
	if !ok {
		return fault.New(fault.ErrForbidden, "forbidden", "only global administrators and approvers of %s can change its Customer Lockbox settings", tenant)
	}
	// The right first, then the tenant's state: someone without the right
	// learns nothing of it. PutSettingsIf asks again under WATCH of the
	// registry entry, so a change can't commit after the offboarding.
	return s.Active(ctx, tenant)
}

// actsForTenant reports whether p acts for tenant as one of its global
// admins or assigned approvers: each a user of the tenant (user@ one of its
// registered domains: Tenant.ActsAsGlobalAdmin, IsApprover) without a
// provider role. For a global admin of a tenant that is not onboarded it
// returns the registry's not-found error; any error of the registry is
// returned, never taken as an answer.
func (s *Store) actsForTenant(ctx context.Context, p identity.Principal, tenant string) (bool, error) {
	if !p.ActsInTenant(tenant) {
		return false, nil
	}
	if p.IsGlobalAdminOf(tenant) {
		t, err := s.Get(ctx, tenant)
		if err != nil {
			return false, err
		}
		if t.ActsAsGlobalAdmin(p) {
			return true, nil
		}
	}
	return s.IsApprover(ctx, tenant, p.Subject)
}

// canAssign is the rule for assigning approvers: the tenant's global
// administrators only (Tenant.ActsAsGlobalAdmin). It returns the registry
// entry the assignment is checked against.
// CanAssign returns the error AddApprover and RemoveApprover return for p
// before they look at the user, nil when p may assign tenant's approvers.
func (s *Store) CanAssign(ctx context.Context, p identity.Principal, tenant string) error {
	_, err := s.canAssign(ctx, p, tenant)
	return err
}

func (s *Store) canAssign(ctx context.Context, p identity.Principal, tenant string) (Tenant, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return Tenant{}, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	forbidden := fault.New(fault.ErrForbidden, "forbidden", "only global administrators of %s can assign and remove its approvers", tenant)
	if !p.IsGlobalAdminOf(tenant) {
		return Tenant{}, forbidden
	}
	t, err := s.Get(ctx, tenant)
	if err != nil {
		return Tenant{}, err
	}
	if !t.ActsAsGlobalAdmin(p) {
		return Tenant{}, forbidden
	}
	if err := t.active(); err != nil {
		return Tenant{}, err
	}
	return t, nil
}

// Settings returns tenant's settings to p.
func (s *Store) Settings(ctx context.Context, p identity.Principal, tenant string) (Settings, error) {
	if err := s.CanRead(ctx, p, tenant); err != nil {
		return Settings{}, err
	}
	return s.Lookup(ctx, tenant)
}

// PutSettings replaces tenant's settings, for its global admins and
// assigned approvers, whatever they are now: PutSettingsIf with
// AnyRevision.
func (s *Store) PutSettings(ctx context.Context, p identity.Principal, clientIP, tenant string, st Settings) (Settings, error) {
	return s.PutSettingsIf(ctx, p, clientIP, tenant, st, AnyRevision)
}

// PutSettingsIf replaces tenant's settings, for its global admins and
// assigned approvers, if their revision is still ifRevision (the Revision
// of the settings the change was based on), and returns them as stored,
// with their revision. Settings are replaced whole, so a caller that read
// them, changed one field and wrote them back would otherwise undo a
// change another made in between; with a revision that is no longer
// current nothing is written and the error is fault.ErrPrecondition
// "settings_changed". The check and the write are one transaction.
// st.Revision is ignored; AnyRevision writes whatever the revision.
//
// The record of the change lists the old and new value of every setting
// that changed; a change that changes nothing writes nothing (and keeps
// the revision). Turning Customer Lockbox on ends, in the same
// transaction, every grant of the tenant that no tenant approver approved
// (see Guard): from then on no content is reached without a tenant's
// approval.
func (s *Store) PutSettingsIf(ctx context.Context, p identity.Principal, clientIP, tenant string, st Settings, ifRevision int64) (Settings, error) {
	return s.PutSettingsWhen(ctx, p, clientIP, tenant, st, Condition{IfRevision: ifRevision})
}

// PutSettingsWhen is PutSettingsIf under a whole Condition: besides a
// stale IfRevision, one of its If-None-Match conditions failing writes
// nothing and is fault.ErrPrecondition "precondition_failed". Every part
// is judged in the write's transaction, after the right and the settings'
// validity.
func (s *Store) PutSettingsWhen(ctx context.Context, p identity.Principal, clientIP, tenant string, st Settings, cond Condition) (Settings, error) {
	if err := s.canConfigure(ctx, p, tenant); err != nil {
		return Settings{}, err
	}
	if err := st.Validate(); err != nil {
		return Settings{}, err
	}
	key := keys.Settings(tenant)
	var out Settings
	// What the guard asks to be done once its writes committed, for the
	// attempt that commits.
	var committed func()
	change := func(tx *redis.Tx) error {
		committed = nil
		// The right to change them is judged again under WATCH (of the
		// approvers and the registry entry, whose domains say who is a
		// user of the tenant): an approver unassigned, or a domain
		// removed, after the check above and before EXEC would otherwise
		// leave a change by someone who no longer holds the right, such
		// as the switch turned off by an approver just removed.
		if err := s.canConfigure(ctx, p, tenant); err != nil {
			return err
		}
		old, err := s.lookup(ctx, tx, tenant)
		if err != nil {
			return err
		}
		// Read under WATCH: a write by anyone else between this read and
		// EXEC fails the transaction, and the retry reads the new
		// revision, so the comparison and the write are atomic.
		if err := cond.judge(old.Revision, func() error { return settingsChanged(tenant) },
			"the Customer Lockbox settings of tenant "+tenant); err != nil {
			return err
		}
		out = old
		changed := settingsProperties(old, st)
		if len(changed) == 0 {
			return nil
		}
		next := st
		next.Revision = old.Revision + 1
		b, err := encodeSettings(next, next.Revision)
		if err != nil {
			return err
		}
		var revoke func(redis.Pipeliner) error
		var revoked func()
		if st.LockboxEnabled && !old.LockboxEnabled {
			if s.guard == nil {
				return errors.New("tenants: no guard: turning Customer Lockbox on could not end the grants it must end")
			}
			if revoke, revoked, err = s.guard.LockboxOnTx(ctx, tx, tenant, p, clientIP); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, key, b, 0)
			// Every replica's cache of the settings hears of it at once.
			events.PublishTx(ctx, pipe, tenant)
			rec := changeRecord(record.OpSetSettings, tenant, tenant, changed, "")
			rec.UserId, rec.UserType, rec.ClientIP = p.Subject, audit.UserTypeOf(p, tenant), clientIP
			if err := s.log.AppendTx(ctx, pipe, rec); err != nil {
				return err
			}
			if revoke != nil {
				return revoke(pipe)
			}
			return nil
		})
		if err == nil {
			out, committed = next, revoked
		}
		return err
	}
	// A transition of one of the tenant's requests committing meanwhile
	// (the guard watches them) fails the optimistic lock: read again.
	var err error
	for range maxRetries {
		if err = s.rdb.Watch(ctx, change, key, keys.Approvers(tenant), keys.Tenant(tenant)); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return Settings{}, storeErr("tenants: put settings", err)
	}
	if committed != nil {
		committed()
	}
	s.changed(tenant)
	s.scheduled(ctx, tenant)
	return out, nil
}

// settingsChanged is PutSettingsIf's refusal of a change based on settings
// that are no longer current.
func settingsChanged(tenant string) error {
	return fault.New(fault.ErrPrecondition, "settings_changed",
		"the Customer Lockbox settings of tenant %s changed since they were read; nothing was saved: read them again and reapply the change", tenant)
}

// settingsProperties lists the settings that differ between old and next,
// for the audit record.
func settingsProperties(old, next Settings) []record.ModifiedProperty {
	var out []record.ModifiedProperty
	if old.LockboxEnabled != next.LockboxEnabled {
		out = append(out, record.ModifiedProperty{Name: "LockboxEnabled",
			OldValue: fmt.Sprint(old.LockboxEnabled), NewValue: fmt.Sprint(next.LockboxEnabled)})
	}
	if o, n := strings.Join(old.NotificationAddresses, ","), strings.Join(next.NotificationAddresses, ","); o != n {
		out = append(out, record.ModifiedProperty{Name: "NotificationAddresses", OldValue: o, NewValue: n})
	}
	return out
}

// ApproverList is a tenant's approver assignments as Approvers lists them.
type ApproverList struct {
	// Approvers are the assigned approvers that count (IsApprover), folded
	// (foldUser), each once, sorted.
	Approvers []string
	// NotCounting are the assignments that approve nothing now, sorted by
	// user, each with why: a user whose domain was removed from the
	// registry entry. They stay stored, so the tenant's global admins see
	// them to remove them: registering the domain again makes them count
	// again.
	NotCounting []NotCounting
}

// NotCounting is an approver assignment that counts for nothing, and why.
type NotCounting struct {
	User   string
	Reason string
}

// Approvers lists tenant's approver assignments for p: those that count,
// and apart from them, with the reason, those that do not. A list that
// showed every assignment as an approver would name people whose approval
// Lockbox refuses (IsApprover holds them to the tenant's domains).
func (s *Store) Approvers(ctx context.Context, p identity.Principal, tenant string) (ApproverList, error) {
	if err := s.canRead(ctx, p, tenant, "approvers"); err != nil {
		return ApproverList{}, err
	}
	members, entry, err := s.approverSet(ctx, tenant)
	if err != nil {
		return ApproverList{}, err
	}
	t, ok, err := s.entryOf(ctx, tenant, entry)
	if err != nil {
		return ApproverList{}, err
	}
	if !ok {
		return ApproverList{}, notOnboarded(tenant)
	}
	// Each person once, as assignments are now stored, whatever the case
	// of entries stored before ids were folded.
	for i, u := range members {
		members[i] = foldUser(u)
	}
	slices.Sort(members)
	out := ApproverList{Approvers: []string{}}
	for _, u := range slices.Compact(members) {
		if t.HasUser(u) {
			out.Approvers = append(out.Approvers, u)
			continue
		}
		why := "not user@ one of the tenant's domains: it approves nothing"
		if at := strings.LastIndexByte(u, '@'); keys.IsUser(u) && at > 0 {
			why = fmt.Sprintf("its domain %s is not one of the tenant's domains (%s): it approves nothing unless the domain is registered again",
				u[at+1:], strings.Join(t.Domains, ", "))
		}
		out.NotCounting = append(out.NotCounting, NotCounting{User: u, Reason: why})
	}
	return out, nil
}

// AddApprover assigns user as an approver of tenant. The user must be a
// user of the tenant (user@ one of its domains). The id is kept in lower
// case (foldUser): the tenant's users are one person whatever the case.
// Adding an existing approver, in any case, is a no-op that succeeds (and
// is not audited twice).
func (s *Store) AddApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error {
	return s.changeApprover(ctx, p, clientIP, tenant, user, true)
}

// RemoveApprover removes user from tenant's approvers, in whatever case
// they were assigned (every spelling of an assignment stored before ids
// were folded). Removing a user who is not an approver changes nothing and
// is refused with a not-found fault, code approver_not_found, after the
// caller's right to assign was checked: answered as a removal, a typo in
// the name ("approver remove contoso zed@...") looked like success.
func (s *Store) RemoveApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error {
	return s.changeApprover(ctx, p, clientIP, tenant, user, false)
}

func (s *Store) changeApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string, add bool) error {
	t, err := s.canAssign(ctx, p, tenant)
	if err != nil {
		return err
	}
	if err := keys.ValidUser(user); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_user", "%v", err)
	}
	user = foldUser(user)
	notUser := func(t Tenant) error {
		if !add || t.HasUser(user) {
			return nil
		}
		// The provider's staff, and users of other organizations, never
		// approve access to this tenant's data.
		domains := "none registered"
		if len(t.Domains) > 0 {
			domains = strings.Join(t.Domains, ", ")
		}
		return fault.New(fault.ErrInvalid, "not_tenant_user",
			"%s is not a user of tenant %s: an approver must be user@ one of the tenant's domains (%s)", user, tenant, domains)
	}
	if err := notUser(t); err != nil {
		return err
	}
	key := keys.Approvers(tenant)
	op := record.OpAddApprover
	if !add {
		op = record.OpRemoveApprover
	}
	// WATCH makes "change and audit only if it changes anything" atomic.
	// The registry entry is watched too, and the right to assign judged
	// again under it: a global admin whose domain was removed after the
	// check above and before EXEC is no user of the tenant any more, and
	// assigns nobody.
	change := func(tx *redis.Tx) error {
		t, err := s.canAssign(ctx, p, tenant)
		if err != nil {
			return err
		}
		if err := notUser(t); err != nil {
			return err
		}
		members, err := tx.SMembers(ctx, key).Result()
		if err != nil {
			return err
		}
		was := stored(members, user)
		if !add && len(was) == 0 {
			return fault.New(fault.ErrNotFound, "approver_not_found",
				"%s is not an approver of tenant %s: nothing was changed", user, tenant)
		}
		if (len(was) > 0) == add {
			return nil
		}
		if add && len(members) >= MaxApprovers {
			return fault.New(fault.ErrConflict, "too_many_approvers",
				"tenant %s has %d approvers, the most it may have: remove one before assigning %s", tenant, len(members), user)
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			if add {
				pipe.SAdd(ctx, key, user)
			} else {
				rm := make([]any, len(was))
				for i, m := range was {
					rm[i] = m
				}
				pipe.SRem(ctx, key, rm...)
			}
			rec := changeRecord(op, tenant, user, nil, t.OrganizationID)
			rec.Parameters = append(rec.Parameters, record.Parameter{Name: "User", Value: user})
			rec.UserId, rec.UserType, rec.ClientIP = p.Subject, audit.UserTypeOf(p, tenant), clientIP
			return s.log.AppendTx(ctx, pipe, rec)
		})
		return err
	}
	// Another change of the set or the entry committing meanwhile fails
	// the optimistic lock: judged again on what it wrote.
	for range maxRetries {
		if err = s.rdb.Watch(ctx, change, key, keys.Tenant(tenant)); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return storeErr("tenants: change approver", err)
	}
	s.scheduled(ctx, tenant)
	return nil
}

// scheduled tells the background jobs' schedules (internal/due) that a
// change of tenant committed: its audit record is to be forwarded, and
// notifications it queued (revocations when the switch turned on) are to
// be delivered. It runs after the tenant's transaction, because the
// schedules live in other Cluster slots; a failure only delays the jobs
// until the next rescan, so it is not reported to the caller.
func (s *Store) scheduled(ctx context.Context, tenant string) {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = due.Set(mctx, s.rdb, tenant, due.Committed(s.now())...)
}

// remember adds tenant to the provider-wide tenant index. It runs after
// the tenant's transaction because the index lives in another Cluster
// slot; adding twice is harmless. Its failure is not the caller's: the
// tenant's transaction has committed, and a 503 for it sent the caller to
// retry into 409 tenant_exists. Reindex (at start-up and then hourly)
// adds the tenant, as it does when a failover lost this write, and so does
// the tenant's first request (grants.Store.Create), before it is filed.
func (s *Store) remember(ctx context.Context, tenant string) {
	_ = s.rdb.SAdd(ctx, keys.Tenants(), tenant).Err()
}

// Reindex adds to the provider-wide tenant set every tenant that has a
// registry entry, and returns how many it added. The set is in a hash slot
// of its own, written after each onboarding's transaction (remember); a
// failover that drops that one write (Redis replicates asynchronously, and
// on Cluster the set and the tenant are on different nodes) would hide
// the tenant from the jobs that walk the set — request expiry,
// notifications, retention, SIEM forwarding — and from provider-wide
// listings. The registry entries are the truth: this finds every one of
// them (SCAN, on every master of a cluster) and adds what is missing. It
// only adds, so any number of replicas may run it at once.
func (s *Store) Reindex(ctx context.Context) (int, error) {
	var mu sync.Mutex
	var found []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			ks, next, err := c.Scan(ctx, cursor, keys.TenantEntryPattern, 1000).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			for _, k := range ks {
				if t, ok := keys.TenantOfEntry(k); ok {
					found = append(found, t)
				}
			}
			mu.Unlock()
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	if cluster, ok := s.rdb.(*redis.ClusterClient); ok {
		// A replica holds nothing its master doesn't: masters suffice.
		err = cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return 0, fault.Unavailable("tenants: reindex", err)
	}
	added := 0
	for chunk := range slices.Chunk(found, 500) {
		members := make([]any, len(chunk))
		for i, t := range chunk {
			members[i] = t
		}
		n, err := s.rdb.SAdd(ctx, keys.Tenants(), members...).Result()
		if err != nil {
			return added, fault.Unavailable("tenants: reindex", err)
		}
		added += int(n)
	}
	return added, nil
}
