// Package keys owns Lockbox's Redis key layout and the validation of every
// identifier that becomes part of a key.
//
// All keys start with "lockbox:". The same code runs on a single Redis, on
// the master of a Sentinel deployment, and on Redis Cluster, where a
// transaction or a script may only touch keys of one hash slot. So:
//
//   - Every key of a tenant carries the tenant as the Cluster hash tag
//     ("lockbox:{contoso}:..."): its registry entry, settings and
//     approvers, its requests, their grants and indexes, its audit chain
//     (stream, head, anchor, seal) and its notification outbox. All of them are
//     in one slot, so each change to a tenant — a request's transition with
//     its grant, its audit record and its notifications; a settings change
//     with the grants it ends; an approver assignment with its record — is
//     one MULTI/EXEC (or one script) and is atomic on every topology.
//   - A few keys are provider-wide and carry no tag: RequestIndex (request
//     id → tenant), AllRequests (the provider-wide listing),
//     OperatorRequests (one operator's listing) and OperatorRequestsBuilt
//     (the mark that those were back-filled), Tenants (the set of tenants
//     the background jobs walk), Due and DueRescan (the background jobs'
//     schedules of tenants with work), FilingClaim (an Idempotency-Key's
//     last tenant), SIEMConsumer (the hold on a SIEM consumer name),
//     ConsoleSession, ConsoleReverify and
//     ConsoleLoginKey. Each lives in a slot of its own, so none is ever
//     written in a tenant's transaction. The indexes are written
//     idempotently beside it (see grants.Store.Create, tenants.Store.Onboard,
//     internal/due), and rebuilt from the tenants' own keys by repair jobs
//     (tenants.Store.Reindex, grants.Store.Reindex, due.Rescan): they are
//     eventually consistent, and only ever used to find a tenant's keys,
//     never to decide anything. A schedule's scripts touch its one key.
//     Console sessions (and their re-verification locks) are single keys,
//     written alone; the console's sign-in key is one key, created once;
//     a SIEM consumer's hold is one key, written alone.
//     ReadyProbe and ReadyProbeIn are names only: /readyz appends to them
//     only where they exist, and nothing writes them.
//   - The change events (internal/events) are a pub/sub channel, no key:
//     PUBLISH inside a tenant's MULTI is allowed on Cluster and reaches
//     subscribers on every node.
//
// Why an eventually consistent index can't grant access: what allows an
// operator's call — the grant, the request it belongs to, the approvals in
// the request's history, the tenant's switch and approvers, and the audit
// record written before the call is forwarded — is all in the tenant's own
// slot, read and written atomically there. An index entry that is missing
// hides a request from a listing or a job until the repair job restores
// it; an entry that is stale or wrong leads a reader to a tenant's key
// that does not hold that request, which reads as "not found". Neither
// can make a request approved, a grant exist, or a call pass.
package keys

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// ErrInvalid is returned for identifiers that can't be used in a key.
var ErrInvalid = errors.New("invalid identifier")

// The shapes of identifiers, checked byte by byte rather than with regular
// expressions because the proxy checks them on every call. The tests hold
// each to its regular expression, the specification:
//
//	tenant   ^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$   lower-case DNS-label-like: reads well in keys and can
//	                                                 never hold the braces, colons or spaces that would
//	                                                 change a key's hash slot or shape
//	user     ^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$    e-mail-like, or an opaque id from an identity provider
//	service  ^[a-z][a-z0-9-]{0,31}$                  as in the activity catalog
//	uuid     ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$  request ids, organization ids

// IsTenant reports whether t is a tenant name.
func IsTenant(t string) bool {
	if len(t) == 0 || len(t) > 63 || t[0] == '-' || t[len(t)-1] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !lowerOrDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// IsUser reports whether u is a user subject.
func IsUser(u string) bool {
	if len(u) == 0 || len(u) > 128 || !alnum(u[0]) {
		return false
	}
	for i := 1; i < len(u); i++ {
		if c := u[i]; !alnum(c) && c != '.' && c != '_' && c != '@' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// IsService reports whether s is a service name.
func IsService(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !lowerOrDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// IsUUID reports whether s is a UUID in lower-case hex.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func lowerOrDigit(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func alnum(c byte) bool { return lowerOrDigit(c) || c >= 'A' && c <= 'Z' }

// ValidTenant checks a tenant name.
func ValidTenant(t string) error {
	if !IsTenant(t) {
		return fmt.Errorf("%w: tenant %q must be 1-63 lower-case letters, digits or '-'", ErrInvalid, t)
	}
	return nil
}

// ValidService checks a service name (as in the activity catalog).
func ValidService(s string) error {
	if !IsService(s) {
		return fmt.Errorf("%w: service %q must be 1-32 lower-case letters, digits or '-'", ErrInvalid, s)
	}
	return nil
}

// ValidUser checks a user subject.
func ValidUser(u string) error {
	if !IsUser(u) {
		return fmt.Errorf("%w: user %q must be 1-128 letters, digits or . _ @ + -", ErrInvalid, u)
	}
	return nil
}

// ValidRequestID checks a request id.
func ValidRequestID(id string) error {
	if !IsUUID(id) {
		return fmt.Errorf("%w: request id %q is not a UUID", ErrInvalid, id)
	}
	return nil
}

const prefix = "lockbox:"

func tagged(tenant, rest string) string { return prefix + "{" + tenant + "}:" + rest }

// Request holds one request as JSON.
func Request(tenant, id string) string { return tagged(tenant, "req:"+id) }

// TenantRequests is a sorted set of the tenant's request ids by creation time.
func TenantRequests(tenant string) string { return tagged(tenant, "requests") }

// RequestsDeleting is a hash of request id -> requester: the requests
// request retention deleted whose provider-wide index entries (RequestIndex,
// AllRequests, OperatorRequests) it has yet to remove. Those live in other
// slots, so they can't join the transaction that deletes the request;
// this hash, in the tenant's slot, does, and survives a crash in between.
func RequestsDeleting(tenant string) string { return tagged(tenant, "requests:deleting") }

// RequestsDeleted, when it exists, says that request retention deleted
// requests of the tenant whose notification dead letters it has yet to go
// through (grants.Config.DeadLetters): it is set in each deletion's
// transaction, and removed once the letters are gone through unless set
// again meanwhile, so a tenant's letters are read only after a deletion.
func RequestsDeleted(tenant string) string { return tagged(tenant, "requests:deleted") }

// Grant holds the live grant of (tenant, operator, service), with a TTL.
func Grant(tenant, operator, service string) string {
	return tagged(tenant, "grant:"+operator+":"+service)
}

// Tenant holds the tenant's registry entry (display name, organization id,
// domains, global administrators' contacts) as JSON, with its revision (a
// counter each write increments in the same SET). A tenant without one is
// not onboarded: no request can be filed for it.
func Tenant(tenant string) string { return tagged(tenant, "tenant") }

// Settings holds the tenant's settings as JSON, with their revision (a
// counter each write increments in the same SET).
func Settings(tenant string) string { return tagged(tenant, "settings") }

// Approvers is the set of users assigned as the tenant's lockbox approvers.
func Approvers(tenant string) string { return tagged(tenant, "approvers") }

// Audit is the tenant's audit stream.
func Audit(tenant string) string { return tagged(tenant, "audit") }

// RequestIndex maps a request id to its tenant. It is written once, before
// the request itself, and never changes; request retention deletes it
// after the request. It is provider-wide (no hash tag):
// never part of a tenant's transaction.
func RequestIndex(id string) string { return prefix + "reqidx:" + id }

// AllRequests is a sorted set of "tenant/id" by creation time, for
// provider-wide listings. It is provider-wide (no hash tag): never part of
// a tenant's transaction.
func AllRequests() string { return prefix + "requests" }

// OperatorRequests is a sorted set of "tenant/id" by creation time, with
// the members and scores of AllRequests, of the requests filed by one
// operator: the subject exactly as the request records it (Requester), not
// case-folded, since an operator sees the requests whose requester is
// their subject spelt the same way. It serves an operator's listing of
// their own requests. It is provider-wide (no hash tag, a slot per
// operator): never part of a tenant's transaction.
func OperatorRequests(subject string) string { return prefix + "operator:" + subject + ":requests" }

// OperatorRequestsBuilt, when it exists, says that every request filed
// before it was written is in its operator's OperatorRequests: the repair
// job writes it once a pass over every request has back-filled them (the
// requests filed before the index existed are in none). Until then an
// operator's listing reads AllRequests. Its value is when that pass began.
func OperatorRequestsBuilt() string { return prefix + "operator-requests:built" }

// Tenants is the set of onboarded tenants (and, from before onboarding
// existed, of tenants Lockbox had seen). It lives outside every tenant's hash
// slot, so it is written after the tenant's own transaction; the registry
// entry (Tenant) is the truth and this set only an index of it.
func Tenants() string { return prefix + "tenants" }

// OnboardingOrganization is held, for the few seconds of an onboarding,
// by the tenant being onboarded with organization GUID id: two onboardings
// of one organization under two ids can't both pass the check that no
// tenant has it. The registry entries are the truth; this is only a lock.
func OnboardingOrganization(id string) string { return prefix + "onboarding-organization:" + id }

// Open holds the id of the operator's open (pending or approved) request
// for a service of the tenant: one at a time, so the grant key has one owner.
func Open(tenant, operator, service string) string {
	return tagged(tenant, "open:"+operator+":"+service)
}

// Filing holds, for IdempotencyWindow after a request was filed with an
// Idempotency-Key, the request id and a digest of what was filed, so a
// retry of the filing is answered with that request rather than filed
// again (grants.Store.CreateOnce). caller is a hex digest of the filer's
// subject and their key: an identifier of any shape, and the key of no
// other caller. It is written in the filing's own transaction, so no
// request is filed without it nor it kept without its request.
func Filing(tenant, caller string) string { return tagged(tenant, "filing:"+caller) }

// FilingClaim holds, for the same time, the tenant and digest a caller's
// Idempotency-Key was last sent with, so the key reused with another
// tenant's request is refused, not filed there. It is provider-wide (no
// hash tag, the tenant is not known from the key alone): written before
// the filing's transaction, never part of it, and never enough to answer
// a retry (Filing is).
func FilingClaim(caller string) string { return prefix + "filing:" + caller }

// TenantDeadlines is a sorted set of the tenant's request ids by the time
// each must next be settled (end of its decision window or of its grant).
func TenantDeadlines(tenant string) string { return tagged(tenant, "deadlines") }

// TenantPending is a sorted set of the tenant's pending request ids by
// deadline; TenantActive of its approved ones by grant expiry. They back
// the pending-requests and active-grants gauges.
func TenantPending(tenant string) string { return tagged(tenant, "pending") }

// TenantActive: see TenantPending.
func TenantActive(tenant string) string { return tagged(tenant, "active") }

// AuditHead holds the hash of the newest record of the tenant's audit chain.
func AuditHead(tenant string) string { return tagged(tenant, "audit:head") }

// AuditAnchor holds "<stream id> <hash>" of the last record retention
// removed: the point the remaining chain starts from.
func AuditAnchor(tenant string) string { return tagged(tenant, "audit:anchor") }

// AuditAnchorRecord holds what the anchor's hash is the SHA-1 of: the
// link of the last record retention removed, "\n", and the record. Set
// with the anchor, it dates the anchor by the record's CreationTime, which
// the hash binds, where the anchor's stream id is only a string.
func AuditAnchorRecord(tenant string) string { return tagged(tenant, "audit:anchor:record") }

// AuditSeal holds the newest seal of the tenant's audit chain:
// "<stream id> <seal>", the id of the entry the seal names (so that the
// script storing seals keeps only the newest without parsing them) and
// the seal itself, a JWS signed with the proxy's key (grantsig.SignSeal).
func AuditSeal(tenant string) string { return tagged(tenant, "audit:seal") }

// AuditSeals is the stream of the tenant's seals on their way to the SIEM:
// the script that stores a seal in AuditSeal appends it here too, in the
// same slot, and the SIEM forwarder deletes each once its sink took it.
func AuditSeals(tenant string) string { return tagged(tenant, "audit:seals") }

// TenantEntryPattern matches the registry entries of every tenant (SCAN
// MATCH), from which the tenant set is rebuilt; TenantOfEntry reads the
// tenant back from one.
const TenantEntryPattern = prefix + "{*}:tenant"

// TenantOfEntry returns the tenant whose registry entry key is, and false
// for any other key.
func TenantOfEntry(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix+"{")
	if !ok {
		return "", false
	}
	t, ok := strings.CutSuffix(rest, "}:tenant")
	if !ok || !IsTenant(t) {
		return "", false
	}
	return t, true
}

// Outbox is the tenant's notification outbox stream.
func Outbox(tenant string) string { return tagged(tenant, "outbox") }

// OutboxDead is the tenant's dead-letter stream: notifications given up
// on, for the recipients each entry lists, after a permanent failure or
// the maximum number of attempts, with the last error.
func OutboxDead(tenant string) string { return tagged(tenant, "outbox:dead") }

// OutboxRetry is a hash of outbox entry id -> retry state.
func OutboxRetry(tenant string) string { return tagged(tenant, "outbox:retry") }

// OutboxSent marks one recipient of one outbox entry as being sent, sent
// or dead.
func OutboxSent(tenant, id, recipient string) string {
	return tagged(tenant, "outbox:sent:"+id+":"+recipient)
}

// OutboxAsked is a hash recording whom a request's "awaits your decision"
// reached (by recipient), so that "no longer needs your decision" goes
// only to them.
func OutboxAsked(tenant, id string) string { return tagged(tenant, "outbox:asked:"+id) }

// OutboxWarned marks the request whose expiry warning was queued.
func OutboxWarned(tenant, id string) string { return tagged(tenant, "outbox:warned:"+id) }

// NotifyHold holds when a notification receiver, named by a hash of its
// address (a webhook's URL may hold its credential), may be called again,
// as it asked with Retry-After, for every tenant's messages.
func NotifyHold(hash string) string { return prefix + "notify:hold:" + hash }

// ConsoleSession holds one console session, by the SHA-256 of its cookie
// value (hex), so a copy of the database reveals no usable cookie.
func ConsoleSession(hash string) string { return prefix + "console:session:" + hash }

// ConsoleForm records that the console session named hash (as in
// ConsoleSession) sent the new-request form form: "" while its request is
// being filed, then the request's id, so that the form sent again leads to
// that request instead of filing another.
func ConsoleForm(hash, form string) string { return prefix + "console:form:" + hash + ":" + form }

// ConsoleReverify is the short lock one request of a console session holds
// while it redeems the session's refresh token (see console's reverify),
// by the same hash as ConsoleSession: the identity provider rotates refresh
// tokens, so two requests redeeming the same one would end the session.
func ConsoleReverify(hash string) string { return prefix + "console:reverify:" + hash }

// ConsoleLoginKey holds the key (32 random bytes, base64) that seals the
// OpenID Connect sign-ins in progress the console hands browsers in their
// sign-in cookie during period (a count of the console's key periods since
// the Unix epoch). The first replica that needs it creates it (SET NX) and
// every replica reads it back, so a sign-in started at one finishes at
// another; no key is written per sign-in. Each period has a key of its
// own, so one that leaked opens nothing two periods later; its TTL, two
// periods and more, is only cleanup.
func ConsoleLoginKey(period int64) string {
	return fmt.Sprintf("%sconsole:login-key:%d", prefix, period)
}

// Due is the provider-wide schedule of one background job: a sorted set of
// tenants by the time (Unix milliseconds) the job must next visit them. It
// lives outside every tenant's hash slot, so it is written after the
// tenant's own transaction, never inside it (see internal/due).
func Due(job string) string { return prefix + "due:" + job }

// SIEMConsumer is the hold of the live process forwarding to the SIEM as
// consumer name of the SIEM group (audit.Forwarder): two processes under
// one name would read each other's records in flight as their own and
// write them twice. It expires when its holder stops renewing it.
func SIEMConsumer(name string) string { return prefix + "siem:consumer:" + name }

// DueRescan is the lease of the replica that re-reads every tenant to
// repair the schedules (internal/due.Rescan); it expires after one
// rescan interval, so it also says when the last rescan began.
func DueRescan() string { return prefix + "due:rescan" }

// ReadyProbe is never written: /readyz appends to it only if it exists
// (XADD NOMKSTREAM, internal/health), and deletes it should it exist, to
// learn whether Redis takes writes. On a key that does not exist the
// append changes nothing and reaches neither replicas nor the AOF, yet
// Redis refuses it as it does the audit log's appends — READONLY on a
// replica, NOREPLICAS, MISCONF, and OOM under maxmemory with noeviction,
// which would let a delete through — and an ACL user limited to Lockbox's
// keys may run it.
func ReadyProbe() string { return prefix + "readyz" }

// ReadyProbeIn is ReadyProbe for one Redis Cluster hash slot: tag is
// the slot's hash tag (SlotTag), so /readyz can ask each master about a
// slot it owns. It begins "lockbox:readyz:", never "lockbox:{", so it
// is no tenant's key whatever the tag.
func ReadyProbeIn(tag string) string { return prefix + "readyz:{" + tag + "}" }

// Slots is the number of Redis Cluster hash slots.
const Slots = 16384

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash
// tag, the part between the first '{' and the next '}' when not empty,
// or of the whole key, modulo Slots.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % Slots
}

// slotTags holds, for each hash slot, the shortest decimal number whose
// hash is that slot: about 170,000 hashes of a few bytes, computed the
// first time a tag is asked for.
var slotTags = sync.OnceValue(func() *[Slots]string {
	var tags [Slots]string
	for n, left := 0, Slots; left > 0; n++ {
		tag := strconv.Itoa(n)
		if s := Slot(tag); tags[s] == "" {
			tags[s] = tag
			left--
		}
	}
	return &tags
})

// SlotTag returns a hash tag whose keys are in slot, which must be in
// [0, Slots).
func SlotTag(slot int) string { return slotTags()[slot] }
