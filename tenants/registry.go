package tenants

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/storedjson"
	"github.com/lockbox-oss/lockbox/internal/text"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// Tenant is a tenant's registry entry: who the tenant is. Lockbox knows a
// tenant only once the provider onboarded it; requests, settings and
// approvers exist only for onboarded tenants, so a typo in a tenant name is
// refused at once instead of producing a request nobody will ever decide.
type Tenant struct {
	// ID is the tenant's short name, as in tokens' "tid", keys and paths.
	ID string `json:"id"`
	// OrganizationID is the tenant's GUID, as Microsoft 365 names a tenant;
	// audit records carry it as OrganizationId.
	OrganizationID string `json:"organization_id"`
	// DisplayName is the organization's name as people know it.
	DisplayName string `json:"display_name"`
	// Domains are the tenant's user domains. Its users, and so its
	// approvers, are the user@domain identities of these domains.
	Domains []string `json:"domains"`
	// GlobalAdmins are the e-mail addresses of the tenant's global
	// administrators: notified, with the approvers, of every request that
	// awaits the tenant.
	GlobalAdmins []string  `json:"global_admins"`
	OnboardedAt  time.Time `json:"onboarded_at"`
	// Offboarded is set once the provider offboarded the tenant (Offboard):
	// the entry stays, so the tenant's audit log keeps its organization and
	// its readers, and so the id is never onboarded again for another
	// customer. Nil for a tenant Lockbox serves.
	Offboarded *Offboarded `json:"offboarded,omitempty"`
	// Revision numbers the stored entry: each write sets it to one more
	// than the revision it replaces, in the same SET, so entries read with
	// the same revision are the same entry. Onboarding and adoption write
	// revision 1; entries stored before revisions existed are revision 0.
	// It is the version a read-modify-write passes back to UpdateTenantIf,
	// not part of the entry: stored beside it (storedTenant), it is left
	// out of the entry's JSON.
	Revision int64 `json:"-"`
}

// storedTenant is the value of a registry entry's key: the entry and its
// revision, in one JSON document so that one SET writes both.
type storedTenant struct {
	Tenant
	Revision int64 `json:"revision,omitempty"`
}

// encodeTenant returns the value of the registry key for t at revision.
func encodeTenant(t Tenant, revision int64) ([]byte, error) {
	return json.Marshal(storedTenant{Tenant: t, Revision: revision})
}

// decodeTenant reads a registry entry's value, with its revision. newer
// reports that it holds fields this version does not know (see
// decodeTenantStrict).
func decodeTenant(b []byte) (t Tenant, newer bool, err error) {
	var v storedTenant
	if newer, err = storedjson.Decode(b, &v); err != nil {
		return Tenant{}, false, err
	}
	t = v.Tenant
	t.Revision = v.Revision
	return t, newer, nil
}

// errNewerEntry is why a registry entry or settings are not used: they
// hold a field this version does not know.
var errNewerEntry = errors.New("written by a newer version of Lockbox, which holds fields this version does not know")

// unreadableRecord reports tenant's record at key, of kind (what names it:
// "registry entry", "Customer Lockbox settings"), that did not decode
// (cause): a partial write, a value set by hand, a flipped bit. It counts
// it and logs it at error as a listing reports one it names, since no
// listing shows settings, and a registry entry is listed only when someone
// lists the tenants: counted there alone, it set off no alert while every
// other call that read it failed. It is called once for each read that
// met it, where the read is, so a call that fails on it counts it once.
//
// It returns the read's error. No retry reads the record, so it is not
// the store failing (503, which sends clients and their scripts round in
// circles): it is fault.ErrUnreadable, code record_unreadable, as for a
// request whose record does not decode, until an operator repairs the
// record (deploy/RUNBOOK.md). The message names the record, never its
// content; the key and the decode error are for the log line of the call
// that met it.
func (s *Store) unreadableRecord(ctx context.Context, kind, what, tenant, key string, cause error) error {
	s.unreadable.Report(ctx, kind, key, cause, "tenant", tenant)
	fe := fault.New(fault.ErrUnreadable, "record_unreadable",
		"the %s of tenant %s %s: its stored record does not decode", what, tenant, unreadable.Message)
	return fmt.Errorf("tenants: %s: %w: %v", key, fe, cause)
}

// decodeTenantStrict is decodeTenant for the reads that decide who may do
// what, and for updates: an entry holding a field this version does not
// know, written by a newer replica during a rolling upgrade, may restrict
// the tenant (or its users); deciding without it could allow what it
// forbids, and writing the entry back would drop it for every replica. It
// fails as the store failing does (503, retried, by then likely on an
// upgraded replica). Listings still show the entry.
func decodeTenantStrict(b []byte) (Tenant, error) {
	t, newer, err := decodeTenant(b)
	if err != nil {
		return Tenant{}, err
	}
	if newer {
		return Tenant{}, fault.Unavailable("tenants: registry entry of "+t.ID, errNewerEntry)
	}
	return t, nil
}

// Onboarding is what the provider states when it onboards a tenant.
type Onboarding struct {
	ID             string   `json:"id"`
	OrganizationID string   `json:"organization_id,omitempty"`
	DisplayName    string   `json:"display_name"`
	Domains        []string `json:"domains"`
	GlobalAdmins   []string `json:"global_admins"`
	// LockboxEnabled is the tenant's switch from the start. Nil means on:
	// unlike Microsoft 365, where Customer Lockbox is opt-in, a tenant
	// Lockbox protects is protected from its first request, and turning it
	// off is the tenant's own, audited decision.
	LockboxEnabled *bool `json:"lockbox_enabled,omitempty"`
}

// TenantUpdate changes a registry entry; nil fields stay as they are.
type TenantUpdate struct {
	DisplayName  *string   `json:"display_name,omitempty"`
	Domains      *[]string `json:"domains,omitempty"`
	GlobalAdmins *[]string `json:"global_admins,omitempty"`
}

const (
	// maxDisplayName counts characters, as openapi.yaml's maxLength
	// does, not bytes: a name in Japanese may be as long as one in English.
	maxDisplayName = 256
	maxDomains     = 50
)

// domainRE is a DNS name of at least two labels, lower case.
var domainRE = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

func invalid(format string, args ...any) error {
	return fault.New(fault.ErrInvalid, "invalid_tenant", format, args...)
}

// invalidField is invalid about one field of an entry, which it names.
func invalidField(field, format string, args ...any) error {
	e := fault.New(fault.ErrInvalid, "invalid_tenant", format, args...)
	e.Field = field
	return e
}

// normalize checks t's fields and puts them in canonical form.
func (t *Tenant) normalize() error {
	if err := keys.ValidTenant(t.ID); err != nil {
		return invalidField("id", "%v", err)
	}
	t.OrganizationID = strings.ToLower(strings.TrimSpace(t.OrganizationID))
	if !keys.IsUUID(t.OrganizationID) {
		return invalidField("organization_id", "organization_id %q is not a GUID", t.OrganizationID)
	}
	t.DisplayName = strings.TrimSpace(t.DisplayName)
	// The name heads the admin center's pages and the approvers' mail: one
	// line that reads as written (internal/text).
	if t.DisplayName == "" || utf8.RuneCountInString(t.DisplayName) > maxDisplayName || !text.Line(t.DisplayName) {
		return invalidField("display_name", "display_name is required: 1-%d printable characters on one line, with no control or bidirectional characters", maxDisplayName)
	}
	if len(t.Domains) == 0 || len(t.Domains) > maxDomains {
		return invalidField("domains", "domains: 1-%d domains are required: the tenant's users, and so its approvers, are user@domain of these", maxDomains)
	}
	domains := make([]string, 0, len(t.Domains))
	for _, d := range t.Domains {
		// Lower case in ASCII only, as user ids' domains are compared
		// (HasUser): strings.ToLower would turn a Kelvin sign (U+212A)
		// into the k of another domain.
		d = strings.TrimSuffix(foldUser(strings.TrimSpace(d)), ".")
		if strings.ContainsFunc(d, func(r rune) bool { return r >= utf8.RuneSelf }) {
			return invalidField("domains", "domain %+q is not an ASCII DNS name: give an internationalized domain in its xn-- form (its A-label), as user ids name it", d)
		}
		if len(d) > 253 || !domainRE.MatchString(d) {
			return invalidField("domains", "domain %q is not a DNS name", d)
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	slices.Sort(domains)
	t.Domains = domains
	admins, err := normalizeAddresses("global_admins", t.GlobalAdmins)
	if err != nil {
		return err
	}
	t.GlobalAdmins = admins
	return nil
}

// normalizeAddresses checks a list of plain e-mail addresses and drops
// duplicates: addresses equal without ASCII case (foldUser) are one person,
// as a tenant user's id is and as notifications address them, so the first
// spelling is kept and the others dropped. Otherwise an entry that lists
// Gina@Contoso.example would list gina@contoso.example again when she is
// added in that spelling.
func normalizeAddresses(field string, in []string) ([]string, error) {
	if len(in) > maxAddresses {
		return nil, invalidField(field, "%s: at most %d addresses", field, maxAddresses)
	}
	out := make([]string, 0, len(in))
	for _, a := range in {
		// Lockbox mails these addresses without SMTPUTF8 (RFC 6531): a
		// server may refuse a non-ASCII one for good, and its mail would
		// only reach the dead letters. net/mail takes it (RFC 6532), so it
		// is refused here, as a domain outside ASCII is.
		if strings.ContainsFunc(a, func(r rune) bool { return r >= utf8.RuneSelf }) {
			return nil, invalidField(field, "%s: %+q is not an ASCII address: Lockbox mails without SMTPUTF8, which a mail server may refuse; give the local part in ASCII and an internationalized domain in its xn-- form", field, a)
		}
		addr, err := mail.ParseAddress(a)
		if err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(a) {
			return nil, invalidField(field, "%s: %q is not a plain e-mail address", field, a)
		}
		if !MailDomain(addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]) {
			return nil, invalidField(field, "%s: %q does not name a mail domain: give a domain with a dot and a top-level label that starts with a letter, not an IP address or a single name", field, a)
		}
		id := foldUser(addr.Address)
		if !slices.ContainsFunc(out, func(o string) bool { return foldUser(o) == id }) {
			out = append(out, addr.Address)
		}
	}
	return out, nil
}

// MailDomain reports whether d, the domain of an address, names a domain
// on the Internet: two labels or more, the last (the top-level domain)
// starting with a letter. The provider's mail relay delivers from inside
// the provider's network to whatever an address names: an address literal
// ("[10.0.0.5]"), a bare IP address in any form a resolver takes
// ("169.254.169.254", "127.1", "0x7f.0x1") or a single label that the
// relay's resolver completes with its own search domains ("localhost",
// "redis") would have it connect to a host the tenant picks among the
// provider's own. So would a special-use or never-delegated top-level
// domain, which names hosts of the network resolving it, not of the
// Internet: relay.localhost (loopback, RFC 6761), localhost.localdomain
// (127.0.0.1 in many a stock /etc/hosts), metadata.google.internal (the
// cloud's metadata service), redis.ns.svc.cluster.local (the provider's
// own Kubernetes services), printer.local, router.home.arpa. A name under
// a public domain that resolves to a private address (10.0.0.5.nip.io)
// is past what a name can tell: the relay must refuse private addresses
// itself (the README says so).
func MailDomain(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || dot == len(d)-1 {
		return false
	}
	c := d[dot+1]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	return !localTLDs[strings.ToLower(d[dot+1:])]
}

// localTLDs are the top-level domains whose names are local to whoever
// resolves them: special-use (RFC 6761, 6762, 7686, 8375, the .internal
// ICANN set aside) or never to be delegated (the name-collision ones
// networks use privately).
var localTLDs = map[string]bool{
	"localhost": true, "localdomain": true, "local": true, "internal": true, "intranet": true,
	"lan": true, "home": true, "corp": true, "invalid": true, "onion": true, "arpa": true,
}

// HasUser reports whether user is one of the tenant's users: an identity
// user@domain in one of its domains, the domain compared without ASCII
// case (Tenant.Domains are stored in lower case). user must be a user id
// (keys.IsUser, which is ASCII), so no Unicode case mapping can make
// another name one of the tenant's: strings.ToLower turns the Kelvin sign
// U+212A into "k".
func (t Tenant) HasUser(user string) bool {
	if !keys.IsUser(user) {
		return false
	}
	at := strings.LastIndexByte(user, '@')
	if at <= 0 {
		return false
	}
	return slices.Contains(t.Domains, foldUser(user[at+1:]))
}

// foldUser is the form in which Lockbox keeps and compares the ids of a
// tenant's users: ASCII letters in lower case, every other byte as it is.
// A tenant's users are user@domain names, and Microsoft 365 user principal
// names are case-insensitive: Alice@Contoso.com and alice@contoso.com are
// one person, whichever spelling an identity provider puts in a token or
// a global admin typed when assigning them. Only ASCII is folded: user
// ids are ASCII (keys.IsUser), and Unicode folding (strings.EqualFold,
// strings.ToLower) would make names that are not ids (a Kelvin sign for
// k) equal to ones that are.
func foldUser(u string) string { return identity.FoldSubject(u) }

// ActsAsGlobalAdmin reports whether p acts for the tenant as one of its
// global administrators. The role comes from the token alone, so the
// token must also be a user of the tenant by the rule an assigned approver
// is held to (HasUser: user@ one of its registered domains), and carry no
// role only the provider's staff hold: a provider identity that a shared
// issuer signed with the tenant's tid and global-admin is neither.
func (t Tenant) ActsAsGlobalAdmin(p identity.Principal) bool {
	return p.ActsInTenant(t.ID) && p.Has(identity.RoleGlobalAdmin) && t.HasUser(p.Subject)
}

// IsUser reports whether user is one of tenant's users (Tenant.HasUser),
// without an access check: false for a tenant that is not onboarded.
func (s *Store) IsUser(ctx context.Context, tenant, user string) (bool, error) {
	t, err := s.Get(ctx, tenant)
	if errors.Is(err, fault.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return t.HasUser(user), nil
}

// notOnboarded is the error for a tenant without a registry entry.
func notOnboarded(tenant string) error {
	return fault.New(fault.ErrNotFound, "tenant_not_found", "tenant %s is not onboarded to Lockbox", tenant)
}

// Get returns tenant's registry entry without an access check, or an
// error wrapping fault.ErrNotFound when it is not onboarded.
func (s *Store) Get(ctx context.Context, tenant string) (Tenant, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return Tenant{}, invalid("%v", err)
	}
	return s.get(ctx, s.rdb, tenant)
}

func (s *Store) get(ctx context.Context, g getter, tenant string) (Tenant, error) {
	b, err := g.Get(ctx, keys.Tenant(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Tenant{}, notOnboarded(tenant)
	}
	if err != nil {
		return Tenant{}, fault.Unavailable("tenants: registry", err)
	}
	t, err := decodeTenantStrict(b)
	if errors.Is(err, fault.ErrUnavailable) {
		return Tenant{}, err
	}
	if err != nil {
		return Tenant{}, s.unreadableRecord(ctx, unreadable.KindTenant, "registry entry", tenant, keys.Tenant(tenant), err)
	}
	return t, nil
}

type getter interface {
	Get(ctx context.Context, key string) *redis.StringCmd
}

// Onboarded returns nil when tenant is onboarded, and an error wrapping
// fault.ErrNotFound (code tenant_not_found) naming it when it is not.
func (s *Store) Onboarded(ctx context.Context, tenant string) error {
	_, err := s.Get(ctx, tenant)
	return err
}

// CanAdminister returns nil when p may onboard tenants and change their
// registry entries, the error Onboard and UpdateTenantIf return first
// otherwise. A front end asks it before it reads what the change is (a
// body, a form, If-Match), as for CanConfigure.
func (s *Store) CanAdminister(p identity.Principal) error { return canAdminister(p) }

// canAdminister is the rule for onboarding and registry changes: the
// provider's Lockbox administrators.
func canAdminister(p identity.Principal) error {
	if !p.IsProvider() || !p.Has(identity.RoleLockboxAdmin) {
		return fault.New(fault.ErrForbidden, "forbidden", "only the provider's Lockbox administrators (role lockbox-admin) can onboard tenants and change their registry entries")
	}
	return nil
}

// canView is the first rule for reading registry entries, before the entry
// is read: the provider's staff (operators choose a tenant when they file a
// request), and tokens of the tenant; Tenant then holds the latter to the
// tenant's users.
func canView(p identity.Principal, tenant string) error {
	if p.IsProvider() && len(p.Roles) > 0 {
		return nil
	}
	if p.InTenant(tenant) {
		return nil
	}
	// Not found rather than forbidden: a tenant user learns nothing of
	// which other tenants exist.
	return notOnboarded(tenant)
}

// Onboard registers a tenant, for the provider's Lockbox administrators,
// with its switch set as in.LockboxEnabled (on when nil). Onboarding a
// tenant twice is a conflict.
func (s *Store) Onboard(ctx context.Context, p identity.Principal, clientIP string, in Onboarding) (Tenant, Settings, error) {
	return s.onboard(ctx, p, clientIP, in, false)
}

// OnboardIfAbsent is Onboard for a caller that made the onboarding
// conditional on the id having no registry entry yet (HTTP's
// If-None-Match: *): an id that has one, whatever it holds (a tenant
// onboarded, offboarded, or an entry that does not decode), is
// fault.ErrPrecondition "tenant_exists" instead of Onboard's conflict, and
// nothing is written. The check is the onboarding transaction's own, so
// of two such onboardings sent at once one is refused.
func (s *Store) OnboardIfAbsent(ctx context.Context, p identity.Principal, clientIP string, in Onboarding) (Tenant, Settings, error) {
	return s.onboard(ctx, p, clientIP, in, true)
}

func (s *Store) onboard(ctx context.Context, p identity.Principal, clientIP string, in Onboarding, ifAbsent bool) (Tenant, Settings, error) {
	if err := canAdminister(p); err != nil {
		return Tenant{}, Settings{}, err
	}
	t := Tenant{
		ID: in.ID, OrganizationID: in.OrganizationID, DisplayName: in.DisplayName,
		Domains: in.Domains, GlobalAdmins: in.GlobalAdmins, OnboardedAt: s.now().UTC().Truncate(time.Second),
	}
	if t.OrganizationID == "" {
		t.OrganizationID = uuid.NewString()
	}
	if err := t.normalize(); err != nil {
		return Tenant{}, Settings{}, err
	}
	st := Defaults()
	if in.LockboxEnabled != nil {
		st.LockboxEnabled = *in.LockboxEnabled
	}
	release, err := s.organizationFree(ctx, p, t)
	if err != nil {
		return Tenant{}, Settings{}, err
	}
	defer release()
	// The entry did not exist (the transaction checks): its first revision.
	t.Revision = 1
	tb, err := encodeTenant(t, t.Revision)
	if err != nil {
		return Tenant{}, Settings{}, err
	}
	key := keys.Tenant(t.ID)
	// What the guard asks to be done once its writes committed.
	var committed func()
	err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		committed = nil
		n, err := tx.Exists(ctx, key).Result()
		if err != nil {
			return err
		}
		if n > 0 && ifAbsent {
			return fault.New(fault.ErrPrecondition, "tenant_exists",
				"tenant %s already has a registry entry, and the onboarding was to be made only for an id that has none; nothing was written", t.ID)
		}
		if n > 0 {
			if cur, err := s.get(ctx, tx, t.ID); err == nil && cur.Offboarded != nil {
				// The id names the organization that left, in its audit
				// log and its requests' history: a new customer under it
				// would read that log as its own.
				return fault.New(fault.ErrConflict, "tenant_offboarded",
					"tenant %s was offboarded on %s and its id can't be onboarded again: its audit log belongs to the organization that left; onboard the new organization under another id",
					t.ID, cur.Offboarded.At.Format(time.RFC3339))
			}
			return fault.New(fault.ErrConflict, "tenant_exists", "tenant %s is already onboarded", t.ID)
		}
		// Settings stored before the tenant was onboarded (from before
		// onboarding existed) are replaced, under a new revision: a
		// change based on them must not match what onboarding wrote.
		rev, err := storedRevision(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		st.Revision = rev + 1
		sb, err := encodeSettings(st, st.Revision)
		if err != nil {
			return err
		}
		// Onboarding with the switch on over settings that had it off
		// turns it on, as PutSettings does: the grants only the
		// provider's manager approved while it was off end in this same
		// transaction.
		var revoke func(redis.Pipeliner) error
		var revoked func()
		if st.LockboxEnabled {
			wasOn, err := storedSwitchOn(ctx, tx, t.ID)
			if err != nil {
				return err
			}
			if !wasOn {
				if s.guard == nil {
					return errors.New("tenants: no guard: turning Customer Lockbox on could not end the grants it must end")
				}
				if revoke, revoked, err = s.guard.LockboxOnTx(ctx, tx, t.ID, p, clientIP); err != nil {
					return err
				}
			}
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, key, tb, 0)
			pipe.Set(ctx, keys.Settings(t.ID), sb, 0)
			events.PublishTx(ctx, pipe, t.ID)
			// The registry entry is written in this same transaction, so
			// the log can't read the GUID yet: the record names it.
			if err := s.log.AppendTx(ctx, pipe, providerRecord(p, clientIP, changeRecord(record.OpOnboardTenant, t.ID, t.ID,
				append(tenantProperties(Tenant{}, t),
					record.ModifiedProperty{Name: "LockboxEnabled", OldValue: "", NewValue: fmt.Sprint(st.LockboxEnabled)}),
				t.OrganizationID))); err != nil {
				return err
			}
			if revoke != nil {
				return revoke(pipe)
			}
			return nil
		})
		if err == nil {
			committed = revoked
		}
		return err
	}, key, keys.Settings(t.ID))
	if err != nil {
		return Tenant{}, Settings{}, storeErr("tenants: onboard", err)
	}
	if committed != nil {
		committed()
	}
	s.changed(t.ID)
	s.scheduled(ctx, t.ID)
	// The provider-wide index lives in another slot: written after the
	// tenant's own transaction, and idempotent, so a failure here (or a
	// failover that loses this write) is repaired by Reindex, which the
	// server runs as a job. The tenant is onboarded by now, whatever
	// becomes of this write: the answer says so (see remember).
	s.remember(ctx, t.ID)
	return t, st, nil
}

// organizationFree checks that no tenant but t.ID has t's organization
// GUID, and holds the GUID for t's onboarding until release is called.
// Every audit record names the tenant by its GUID (OrganizationId), which
// can't be changed once onboarded: a second tenant under an organization's
// GUID, live or offboarded, had the two organizations' logs and records
// name one. The check reads every registry entry (onboarding is rare; the
// entries are the truth, from before this check too), and the hold keeps
// two onboardings of one GUID under two ids from both passing it; it is
// released once the tenant is onboarded and indexed, or when the
// onboarding fails, and expires on its own after onboardingHold.
func (s *Store) organizationFree(ctx context.Context, p identity.Principal, t Tenant) (release func(), err error) {
	hold := keys.OnboardingOrganization(t.OrganizationID)
	ok, err := s.rdb.SetNX(ctx, hold, t.ID, onboardingHold).Result()
	if err != nil {
		return nil, storeErr("tenants: onboard", err)
	}
	if !ok {
		if other, err := s.rdb.Get(ctx, hold).Result(); err == nil && other != t.ID {
			return nil, fault.New(fault.ErrConflict, "organization_exists",
				"organization %s is being onboarded as tenant %s right now: one organization is one tenant", t.OrganizationID, other)
		}
	}
	release = func() { _ = releaseHold.Run(context.WithoutCancel(ctx), s.rdb, []string{hold}, t.ID).Err() }
	all, err := s.List(ctx, p)
	if err != nil {
		release()
		return nil, err
	}
	for _, o := range all.Tenants {
		if o.ID != t.ID && o.OrganizationID == t.OrganizationID {
			release()
			state := "is onboarded"
			if o.Offboarded != nil {
				state = "was offboarded, and its GUID names it in its audit log for good"
			}
			return nil, fault.New(fault.ErrConflict, "organization_exists",
				"organization %s is tenant %s, which %s: one organization is one tenant, and every audit record names its tenant by that GUID", t.OrganizationID, o.ID, state)
		}
	}
	return release, nil
}

// onboardingHold bounds how long an onboarding holds its organization's
// GUID (organizationFree), should it end without releasing it.
const onboardingHold = 30 * time.Second

// releaseHold deletes the hold KEYS[1] if ARGV[1] holds it.
var releaseHold = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// OnboardedAs reports whether tenant in.ID is onboarded as in asks: its
// registry entry and its switch are what Onboard would have written from
// in, in's fields normalized as the store keeps them (the organization id
// compared only when in names one, as Onboard otherwise makes one up). An
// onboarding sent twice (a double click on Onboard) finds the tenant its
// first sending onboarded, a conflict; this tells that from a tenant
// onboarded, or changed since, otherwise. For the provider's Lockbox
// administrators, whom Onboard serves; an invalid in is onboarded as
// nothing.
func (s *Store) OnboardedAs(ctx context.Context, p identity.Principal, in Onboarding) (bool, error) {
	if err := canAdminister(p); err != nil {
		return false, err
	}
	cur, err := s.Get(ctx, in.ID)
	if errors.Is(err, fault.ErrNotFound) || errors.Is(err, fault.ErrInvalid) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	want := Tenant{ID: in.ID, OrganizationID: in.OrganizationID, DisplayName: in.DisplayName,
		Domains: slices.Clone(in.Domains), GlobalAdmins: slices.Clone(in.GlobalAdmins)}
	if strings.TrimSpace(want.OrganizationID) == "" {
		want.OrganizationID = cur.OrganizationID
	}
	if cur.Offboarded != nil || want.normalize() != nil || len(tenantProperties(cur, want)) > 0 {
		return false, nil
	}
	on, err := s.LockboxEnabled(ctx, in.ID)
	if err != nil {
		return false, err
	}
	wantOn := Defaults().LockboxEnabled
	if in.LockboxEnabled != nil {
		wantOn = *in.LockboxEnabled
	}
	return on == wantOn, nil
}

// UpdateTenant changes tenant's registry entry, for the provider's Lockbox
// administrators, whatever it is now: UpdateTenantIf with AnyRevision.
func (s *Store) UpdateTenant(ctx context.Context, p identity.Principal, clientIP, tenant string, u TenantUpdate) (Tenant, error) {
	return s.UpdateTenantIf(ctx, p, clientIP, tenant, u, AnyRevision)
}

// UpdateTenantIf changes tenant's registry entry, for the provider's
// Lockbox administrators, if its revision is still ifRevision (the
// Revision of the entry the change was based on), and returns it as
// stored, with its revision. Its id and organization id never change.
//
// The fields u sets replace the entry's whole (a list of domains or of
// global administrators is replaced, not merged), so a caller that read
// the entry, added a domain and wrote the list back would otherwise undo
// a change another administrator made in between; with a revision that is
// no longer current nothing is written and the error is
// fault.ErrPrecondition "tenant_changed". The check and the write are one
// transaction; a change that is invalid is refused as such (400) first,
// as PutSettingsIf does. AnyRevision writes whatever the revision. A
// change that changes nothing writes nothing and keeps the revision.
func (s *Store) UpdateTenantIf(ctx context.Context, p identity.Principal, clientIP, tenant string, u TenantUpdate, ifRevision int64) (Tenant, error) {
	return s.UpdateTenantWhen(ctx, p, clientIP, tenant, u, Condition{IfRevision: ifRevision})
}

// UpdateTenantWhen is UpdateTenantIf under a whole Condition: besides a
// stale IfRevision, one of its If-None-Match conditions failing writes
// nothing and is fault.ErrPrecondition "precondition_failed", judged in
// the write's transaction where the revision is.
func (s *Store) UpdateTenantWhen(ctx context.Context, p identity.Principal, clientIP, tenant string, u TenantUpdate, cond Condition) (Tenant, error) {
	if err := canAdminister(p); err != nil {
		return Tenant{}, err
	}
	if err := keys.ValidTenant(tenant); err != nil {
		return Tenant{}, invalid("%v", err)
	}
	key := keys.Tenant(tenant)
	var out Tenant
	change := func(tx *redis.Tx) error {
		old, err := s.get(ctx, tx, tenant)
		if err != nil {
			return err
		}
		if err := old.active(); err != nil {
			return err
		}
		next := old.with(u)
		if err := next.normalize(); err != nil {
			return err
		}
		// Read under WATCH: a write by anyone else between this read and
		// EXEC fails the transaction, and the retry reads the new
		// revision, so the comparison and the write are atomic.
		if err := cond.judge(old.Revision, func() error { return tenantChanged(tenant) },
			"the registry entry of tenant "+tenant); err != nil {
			return err
		}
		out = next // at old's revision, until the write commits
		changed := tenantProperties(old, next)
		if len(changed) == 0 {
			return nil
		}
		next.Revision = old.Revision + 1
		b, err := encodeTenant(next, next.Revision)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, key, b, 0)
			return s.log.AppendTx(ctx, pipe, providerRecord(p, clientIP,
				changeRecord(record.OpUpdateTenant, tenant, tenant, changed, old.OrganizationID)))
		})
		if err == nil {
			out = next
		}
		return err
	}
	// Another write of the entry committing meanwhile fails the
	// optimistic lock: the retry reads it again, and its new revision.
	var err error
	for range maxRetries {
		if err = s.rdb.Watch(ctx, change, key); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return Tenant{}, storeErr("tenants: update", err)
	}
	s.scheduled(ctx, tenant)
	return out, nil
}

// Applied reports whether t already is what u asks for, u's fields
// normalized as the store keeps them: UpdateTenantIf would change nothing.
// An edit form sent twice (a double click on Save) finds its revision
// passed by its own first sending; this tells that from someone else's
// change. An invalid u is applied to nothing.
func (t Tenant) Applied(u TenantUpdate) bool {
	next := t.with(u)
	if next.normalize() != nil {
		return false
	}
	return len(tenantProperties(t, next)) == 0
}

// with is t with the fields u sets replaced, not yet normalized.
func (t Tenant) with(u TenantUpdate) Tenant {
	if u.DisplayName != nil {
		t.DisplayName = *u.DisplayName
	}
	if u.Domains != nil {
		t.Domains = slices.Clone(*u.Domains)
	}
	if u.GlobalAdmins != nil {
		t.GlobalAdmins = slices.Clone(*u.GlobalAdmins)
	}
	return t
}

// tenantChanged is UpdateTenantIf's refusal of a change based on a
// registry entry that is no longer current.
func tenantChanged(tenant string) error {
	return fault.New(fault.ErrPrecondition, "tenant_changed",
		"the registry entry of tenant %s changed since it was read; nothing was saved: read it again and reapply the change", tenant)
}

// tenantProperties lists the registry fields that differ between old and
// next, for the audit record.
func tenantProperties(old, next Tenant) []record.ModifiedProperty {
	var out []record.ModifiedProperty
	add := func(name, o, n string) {
		if o != n {
			out = append(out, record.ModifiedProperty{Name: name, OldValue: o, NewValue: n})
		}
	}
	add("DisplayName", old.DisplayName, next.DisplayName)
	add("OrganizationId", old.OrganizationID, next.OrganizationID)
	add("Domains", strings.Join(old.Domains, ","), strings.Join(next.Domains, ","))
	add("GlobalAdmins", strings.Join(old.GlobalAdmins, ","), strings.Join(next.GlobalAdmins, ","))
	return out
}

// providerRecord stamps r as the work of provider staff member p: tenants
// see "Microsoft Support", the provider's own views the person.
func providerRecord(p identity.Principal, clientIP string, r record.Record) record.Record {
	r.UserId, r.UserType, r.ProviderUserId, r.ClientIP = record.ProviderUserID, record.UserTypeDcAdmin, p.Subject, clientIP
	return r
}

// changeRecord is the audit record of a change to tenant's configuration:
// an Exchange admin cmdlet record whose object is object, with the
// cmdlet's parameters (Identity, then each changed property's new value)
// and the changes. orgID is the tenant's GUID when the caller knows it;
// empty, the log reads it from the registry. The caller stamps who acted.
func changeRecord(op, tenant, object string, changed []record.ModifiedProperty, orgID string) record.Record {
	params := []record.Parameter{{Name: "Identity", Value: tenant}}
	for _, c := range changed {
		params = append(params, record.Parameter{Name: c.Name, Value: c.NewValue})
	}
	return record.Record{
		Operation: op, LockboxTenant: tenant, OrganizationId: orgID, RecordType: record.RecordTypeExchangeAdmin,
		Workload: record.WorkloadLockbox, ObjectId: object, Parameters: params, ModifiedProperties: changed,
	}
}

// Tenant returns tenant's registry entry to p.
func (s *Store) Tenant(ctx context.Context, p identity.Principal, tenant string) (Tenant, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return Tenant{}, invalid("%v", err)
	}
	if err := canView(p, tenant); err != nil {
		return Tenant{}, err
	}
	t, err := s.Get(ctx, tenant)
	if err != nil || p.IsProvider() {
		return t, err
	}
	// The entry names the tenant's domains and its global administrators'
	// addresses: a tenant's own users see it, by the rule every tenant
	// read follows (HasUser, no provider role), not any token that names
	// the tenant in its tid.
	if !p.ActsInTenant(tenant) || !t.HasUser(p.Subject) {
		return Tenant{}, notOnboarded(tenant)
	}
	if t.Offboarded != nil {
		// Who offboarded it is one of the provider's staff: its users
		// see the provider's label, as in their audit log.
		off := *t.Offboarded
		off.By = record.ProviderUserID
		t.Offboarded = &off
	}
	return t, nil
}

// Listing is the tenants a principal may see, or a page of them.
type Listing struct {
	// Tenants are the registry entries that decode, sorted by id.
	Tenants []Tenant
	// Unreadable names, sorted by id, the tenants whose registry entry
	// does not decode (Unreadable); nil when there is none.
	Unreadable []Unreadable
	// Next is the cursor of the following page (ListPage); empty at the
	// end.
	Next string
}

// ListQuery asks for one page of the tenants a principal may see.
type ListQuery struct {
	// Cursor continues where a page ended (Listing.Next); empty for the
	// first page.
	Cursor string
	// Limit caps the page: 0 means DefaultListLimit, at most
	// MaxListLimit.
	Limit int
}

// The tenant listing's page sizes.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Unreadable stands in a listing for a tenant whose registry entry Lockbox
// stored but can't read: the others are listed, and this one is named,
// never dropped. Reading it alone answers record_unreadable.
type Unreadable struct {
	ID string
}

// List returns the onboarded tenants p may see, sorted by id: every one
// for the provider's staff, their own for a tenant's users.
//
// A registry entry the provider's staff would see that does not decode is
// named in Listing.Unreadable, and the others are listed, as a listing of
// requests names a request it can't read (and it is reported, once for
// each listing that meets it, as every read that meets it reports it: see
// ReportUnreadable): failing the whole listing hid
// every tenant Lockbox serves because of one. A tenant's own users are not
// told of it: whether they are its users is in the entry (HasUser), so
// their listing fails with record_unreadable, as reading it alone does.
func (s *Store) List(ctx context.Context, p identity.Principal) (Listing, error) {
	return s.list(ctx, p, "", 0)
}

// ListPage returns one page of List, q.Limit tenants at most, sorted by
// id, with the cursor of the next page. The listing grows with the
// provider's business: one answer with every tenant read every registry
// entry, and built them all in memory, for any of the provider's staff
// with a role (an operator, say).
func (s *Store) ListPage(ctx context.Context, p identity.Principal, q ListQuery) (Listing, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxListLimit:
		return Listing{}, fault.New(fault.ErrInvalid, "invalid_limit", "limit must be from 1 to %d", MaxListLimit)
	case q.Limit == 0:
		q.Limit = DefaultListLimit
	}
	after := ""
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.Strict().DecodeString(q.Cursor)
		id, ok := strings.CutPrefix(string(b), listCursorPrefix)
		if err != nil || !ok || keys.ValidTenant(id) != nil || base64.RawURLEncoding.EncodeToString(b) != q.Cursor {
			return Listing{}, fault.New(fault.ErrInvalid, "invalid_cursor", "the cursor is not one this server returned for a tenant listing")
		}
		after = id
	}
	return s.list(ctx, p, after, q.Limit)
}

// listCursorPrefix starts the text of a tenant listing's cursor, which
// names the last tenant of its page.
const listCursorPrefix = "tenants-after:"

// list is List from after (exclusive), limit tenants at most (0: all).
func (s *Store) list(ctx context.Context, p identity.Principal, after string, limit int) (Listing, error) {
	if !p.IsProvider() {
		t, err := s.Tenant(ctx, p, p.TenantID)
		if errors.Is(err, fault.ErrNotFound) {
			return Listing{Tenants: []Tenant{}}, nil
		}
		if err != nil {
			return Listing{}, err
		}
		return Listing{Tenants: []Tenant{t}}, nil
	}
	if len(p.Roles) == 0 {
		return Listing{Tenants: []Tenant{}}, nil
	}
	ids, err := s.rdb.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return Listing{}, fault.Unavailable("tenants: list", err)
	}
	if after != "" {
		ids = slices.DeleteFunc(ids, func(id string) bool { return id <= after })
	}
	slices.Sort(ids)
	out := Listing{Tenants: []Tenant{}}
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
		out.Next = base64.RawURLEncoding.EncodeToString([]byte(listCursorPrefix + ids[limit-1]))
	}
	for chunk := range slices.Chunk(ids, 200) {
		cmds := make([]*redis.StringCmd, 0, len(chunk))
		read := make([]string, 0, len(chunk)) // the tenant of each of cmds
		if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, id := range chunk {
				if keys.ValidTenant(id) == nil {
					cmds = append(cmds, pl.Get(ctx, keys.Tenant(id)))
					read = append(read, id)
				}
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return Listing{}, fault.Unavailable("tenants: list", err)
		}
		for i, c := range cmds {
			b, err := c.Bytes()
			if errors.Is(err, redis.Nil) {
				continue // seen before onboarding existed, not yet adopted
			}
			if err != nil {
				return Listing{}, fault.Unavailable("tenants: list", fmt.Errorf("read %s: %v", c.Args()[1], err))
			}
			t, _, err := decodeTenant(b)
			if err != nil {
				s.unreadable.Report(ctx, unreadable.KindTenant, keys.Tenant(read[i]), err, "tenant", read[i])
				out.Unreadable = append(out.Unreadable, Unreadable{ID: read[i]})
				continue
			}
			out.Tenants = append(out.Tenants, t)
		}
	}
	return out, nil
}

// AdoptLegacy onboards the tenants Lockbox knew before onboarding existed
// (those in the tenant set without a registry entry), so an upgrade loses
// no tenant: display name = id, a new organization id, no domains (so no
// new approver can be assigned until a Lockbox administrator adds them),
// and the switch as it was. It returns how many it adopted; running it
// again adopts none.
func (s *Store) AdoptLegacy(ctx context.Context) (int, error) {
	ids, err := s.rdb.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return 0, fault.Unavailable("tenants: adopt", err)
	}
	n := 0
	for _, id := range ids {
		if keys.ValidTenant(id) != nil {
			continue
		}
		t := Tenant{ID: id, OrganizationID: uuid.NewString(), DisplayName: id, Domains: []string{},
			GlobalAdmins: []string{}, OnboardedAt: s.now().UTC().Truncate(time.Second), Revision: 1}
		// Written only where there is no entry (checked under WATCH): its
		// first revision, as onboarding's.
		b, err := encodeTenant(t, t.Revision)
		if err != nil {
			return n, err
		}
		key := keys.Tenant(id)
		adopted := false
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			if c, err := tx.Exists(ctx, key).Result(); err != nil || c > 0 {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, key, b, 0)
				rec := changeRecord(record.OpOnboardTenant, id, id, tenantProperties(Tenant{}, t), t.OrganizationID)
				rec.UserId, rec.UserType = record.SystemUserID, record.UserTypeSystem
				rec.Comment = "registered on upgrade: this tenant had Lockbox data before tenants were onboarded"
				return s.log.AppendTx(ctx, pipe, rec)
			})
			adopted = err == nil
			return err
		}, key)
		if err != nil {
			return n, storeErr("tenants: adopt", err)
		}
		if adopted {
			s.scheduled(ctx, id)
			n++
		}
	}
	return n, nil
}

// storeErr keeps domain errors and marks anything else as the store being
// unavailable; a lost optimistic lock is a conflict to retry.
func storeErr(op string, err error) error {
	if _, ok := errors.AsType[*fault.Error](err); ok {
		return err
	}
	if errors.Is(err, redis.TxFailedErr) {
		return fault.New(fault.ErrConflict, "conflict", "the tenant changed concurrently; retry")
	}
	return fault.Unavailable(op, err)
}
