package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Each tenant's records form a hash chain: every stream entry carries the
// hash of the entry before it ("p") and its own hash ("h") over p and the
// record's JSON, and the tenant's head key holds the newest hash. Editing a
// record breaks its hash, deleting one breaks the next entry's link, and
// deleting the newest ones breaks the head. The hashes do not cover the
// stream, so each record's own tenant is checked too (ownRecord).
//
// Every append is a script that reads the head and writes after it, so
// appends from any number of replicas are serialized by Redis itself and
// the chain can't fork. This one computes the link inside Redis, and runs
// inside the caller's MULTI with the change it records; the proxy's batches
// bring links computed from the head they expect, which their script uses
// only while that is the head (appendBatchScript). Redis's
// scripting offers SHA-1 only; the chain is tamper evidence against edits
// that don't also recompute every later hash, not a signature: the seals
// (seal.go) sign it.
var appendScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[2])
if not prev then prev = '' end
local h = redis.sha1hex(prev .. '\n' .. ARGV[1])
local id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[1], 'p', prev, 'h', h)
redis.call('SET', KEYS[2], h)
return id
`)

// chainHash is the Go side of the script's hash, the one the SIEM's copy
// is checked with too (siemcheck.Link).
func chainHash(prev, record string) string {
	return siemcheck.Link(prev, []byte(record))
}

// Verification is the result of re-computing a tenant's chain.
type Verification struct {
	Tenant  string `json:"tenant"`
	Records int    `json:"records"`
	OK      bool   `json:"ok"`
	// BrokenAt is the stream id of the first entry that does not verify,
	// or the first one added after the entry the head names (empty when
	// the chain is intact, or when the head is missing or names no entry:
	// the newest records were deleted).
	BrokenAt string `json:"broken_at,omitempty"`
	// RecordId is the audit record id at BrokenAt, when readable.
	RecordId string `json:"record_id,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// TrimmedThrough is the stream id of the newest record retention
	// removed (the chain's anchor): the chain is verified from the record
	// after it, and nothing tells whether the ones removed were intact.
	// Empty when retention never removed a record. Without it, OK over
	// the records left read as every record since the tenant's first.
	// An anchor the retention in force can't have left (SetRetention)
	// makes the chain broken.
	TrimmedThrough string `json:"trimmed_through,omitempty"`
	// TrimmedUnbound says the anchor came without the record retention
	// removed last (set by a Lockbox from before anchors kept it, or by
	// whoever deleted it): it was dated by the stream id it names, which
	// whoever can write to Redis chooses, so records deleted otherwise
	// may pass for trimmed. Retention's next trim of the tenant sets an
	// anchor with its record.
	TrimmedUnbound bool `json:"trimmed_unbound,omitempty"`
	// Seal is the state of the chain's seal (SealVerified, SealNone,
	// SealUnverifiable, SealTrimmed, SealForged).
	Seal string `json:"seal,omitempty"`
	// SealedThrough is the stream id of the entry the verified seal
	// names; SealedAt when the seal was made (RFC 3339, UTC).
	SealedThrough string `json:"sealed_through,omitempty"`
	SealedAt      string `json:"sealed_at,omitempty"`
	// SealKeyID is the kid of the seal's key, when the seal names one.
	SealKeyID string `json:"seal_key_id,omitempty"`
	// UnsealedRecords is how many of the records verified come after the
	// sealed one: covered by the chain alone. All of them without a
	// verified seal; absent when none.
	UnsealedRecords int `json:"unsealed_records,omitempty"`
	// SealToken is the stored seal itself (the compact JWS), when it is
	// Lockbox's or can't be checked here (unverifiable): for the caller to
	// keep outside Redis and pass to a later verification (VerifySince),
	// which then shows a rewrite made with the stored seal deleted.
	// Absent without a seal, and for a forged one.
	SealToken string `json:"seal_token,omitempty"`
	// SinceSeal is the outcome of checking the chain against the seal the
	// caller kept (SinceSealVerified, SinceSealTrimmed, SinceSealBroken,
	// SinceSealUnchecked); absent when the caller passed none.
	SinceSeal string `json:"since_seal,omitempty"`
	// SinceSealedThrough is the stream id of the entry the kept seal
	// names; SinceSealedAt when it was made (RFC 3339, UTC).
	SinceSealedThrough string `json:"since_sealed_through,omitempty"`
	SinceSealedAt      string `json:"since_sealed_at,omitempty"`
}

// TrimmedAt is when the newest record retention removed was appended,
// read from TrimmedThrough (a stream id starts with its Unix
// milliseconds); zero when retention removed none, or the id holds no
// time.
func (v Verification) TrimmedAt() time.Time {
	ms, _, ok := strings.Cut(v.TrimmedThrough, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// Verify re-computes tenant's chain for p (who may search the tenant's log)
// and reports the first broken or missing record. An empty tenant means a
// tenant user's own; a chain is one tenant's, so provider callers must name
// it.
func (l *Log) Verify(ctx context.Context, p identity.Principal, tenant string) (Verification, error) {
	return l.VerifySince(ctx, p, tenant, "")
}

// VerifySince is Verify that also checks the chain against since, a seal
// of it the caller kept outside Redis (the SealToken of an earlier
// verification; empty for none). The stored seal is within reach of
// whoever can write to Redis: deleted, the next one is made over the
// chain as it then is, rewritten or not. A kept seal is not: the chain
// must still hold its entry with the hash it sealed, as for the stored
// seal, or the verification is broken. A kept seal that is not Lockbox's
// seal of tenant's chain, or whose key is not published, is refused with
// a fault.ErrInvalid (invalid_since_seal) before the chain is read.
func (l *Log) VerifySince(ctx context.Context, p identity.Principal, tenant, since string) (Verification, error) {
	tenant, err := l.verifyTenant(ctx, p, tenant)
	if err != nil {
		return Verification{}, err
	}
	kept, err := l.keptSeal(tenant, since)
	if err != nil {
		return Verification{}, err
	}
	return l.verifySince(ctx, tenant, kept)
}

// verifyTenant is the tenant whose chain p asks to verify, or the error
// Verify returns before reading it.
func (l *Log) verifyTenant(ctx context.Context, p identity.Principal, tenant string) (string, error) {
	// The same rule as searching the tenant's log, and the same default.
	q := Query{Tenant: tenant}
	if err := l.check(ctx, p, &q); err != nil {
		return "", err
	}
	if q.Tenant == "" {
		return "", fault.New(fault.ErrInvalid, "invalid_query", "the tenant is required: each tenant's log is its own chain")
	}
	return q.Tenant, nil
}

// CheckVerify returns the error Verify would return for tenant without
// reading the chain (p may not read the log, the tenant is missing or
// invalid, a tenant with no log at all is not onboarded), and nil when
// Verify would go on to read it. A caller that only needs the answer's
// status (an HTTP HEAD) does not pay for reading and hashing the whole
// log, which no deadline bounds.
func (l *Log) CheckVerify(ctx context.Context, p identity.Principal, tenant string) error {
	return l.CheckVerifySince(ctx, p, tenant, "")
}

// CheckVerifySince is CheckVerify for VerifySince: it also returns the
// error of a kept seal VerifySince would refuse.
func (l *Log) CheckVerifySince(ctx context.Context, p identity.Principal, tenant, since string) error {
	tenant, err := l.verifyTenant(ctx, p, tenant)
	if err != nil {
		return err
	}
	if _, err := l.keptSeal(tenant, since); err != nil {
		return err
	}
	// Verify judges a chain without records, head or anchor by the
	// tenant directory (verifyEmpty); one with any of them it reads.
	n, err := l.rdb.Exists(ctx, keys.Audit(tenant), keys.AuditHead(tenant), keys.AuditAnchor(tenant)).Result()
	if err != nil {
		return fault.Unavailable("audit: verify", err)
	}
	if n > 0 {
		return nil
	}
	_, err = l.verifyEmpty(ctx, Verification{Tenant: tenant})
	return err
}

// verifyAttempts bounds how often verify starts again because retention
// trimmed the chain while it read (see verify).
const verifyAttempts = 3

// verifyBatch is how many stream entries verify reads per command.
const verifyBatch = 1000

// verify re-computes tenant's chain as it stood at one instant, while
// writers may append to it and retention may trim it. Streams can only be
// read in batches, so the head, the anchor, the first batch and the id of
// the last entry are read in one MULTI (one tenant's keys, one hash slot):
// that snapshot is consistent, and later batches are read up to that last
// entry, whose hash must be the snapshot's head. Entries after it were
// appended after the snapshot and are left to the next verification; had
// the newest records been deleted, the snapshot's head is never reached,
// and that is reported. (Reading up to the entry carrying the head instead
// left unread an entry added after it behind the chain's back, once the
// log was longer than one batch.)
//
// Retention only removes the oldest entries, which a later batch may then
// miss if a trim overtakes the reader. A link broken at the start of a
// later batch is therefore checked against the anchor as it is then
// (trimmedBetween), and the walk goes on past the entries retention
// removed: starting again was no help while retention worked through a
// large backlog, overtaking every attempt, and the intact chain was
// reported broken. Any other problem found while the anchor moved is
// checked again from a new snapshot, a bounded number of times, rather
// than reported.
func (l *Log) verify(ctx context.Context, tenant string) (Verification, error) {
	return l.verifySince(ctx, tenant, nil)
}

// verifySince is verify that also checks the chain against kept, when not
// nil, a seal the caller kept (keptSeal), as it checks the stored one.
func (l *Log) verifySince(ctx context.Context, tenant string, kept *chainSeal) (Verification, error) {
	for attempt := 1; ; attempt++ {
		v, anchor, err := l.verifyOnceSince(ctx, tenant, kept)
		if err == nil && v.OK && v.Records == 0 && anchor == "" {
			return l.verifyEmpty(ctx, v)
		}
		if err != nil || v.OK || attempt == verifyAttempts {
			return v, err
		}
		now, err := l.rdb.Get(ctx, keys.AuditAnchor(tenant)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return v, fault.Unavailable("audit: verify", err)
		}
		if now == anchor {
			return v, nil // not retention's doing
		}
	}
}

// verifyEmpty judges a chain with no record, no head and no anchor: no
// record was ever written, or all of them were deleted with the keys that
// would tell. Onboarding writes the tenant's first record (so does the
// adoption of a tenant from before onboarding), so the chain of an
// onboarded tenant is never empty, and an empty one is reported as
// broken, not as an intact chain of nothing; a tenant that is not
// onboarded has no log to verify.
func (l *Log) verifyEmpty(ctx context.Context, v Verification) (Verification, error) {
	if l.dir == nil {
		return v, errors.New("audit: no tenant directory (Log.SetTenantDirectory): an empty chain can't be judged")
	}
	if err := l.dir.Onboarded(ctx, v.Tenant); err != nil {
		return Verification{}, err
	}
	v.OK = false
	v.Problem = "the log is empty, but the tenant is onboarded: every record, its onboarding record first, is missing"
	return v, nil
}

// verifyOnce is one verification from one snapshot; it also returns the
// anchor key's value in that snapshot.
func (l *Log) verifyOnce(ctx context.Context, tenant string) (Verification, string, error) {
	return l.verifyOnceSince(ctx, tenant, nil)
}

// verifyOnceSince is verifyOnce that also checks the chain against kept,
// when not nil: the stored seal and the kept one go through the same
// steps (chainSeal), at the anchor, against the snapshot's last entry,
// along the walk and at its end.
func (l *Log) verifyOnceSince(ctx context.Context, tenant string, kept *chainSeal) (res Verification, _ string, _ error) {
	v := Verification{Tenant: tenant}
	stream := keys.Audit(tenant)
	var headC, sealC *redis.StringCmd
	var anchorR func() anchorRead
	var firstC, lastC *redis.XMessageSliceCmd
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		headC = p.Get(ctx, keys.AuditHead(tenant))
		anchorR = readAnchor(ctx, p, tenant)
		sealC = p.Get(ctx, keys.AuditSeal(tenant))
		firstC = p.XRangeN(ctx, stream, "-", "+", verifyBatch)
		lastC = p.XRevRangeN(ctx, stream, "+", "-", 1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return v, "", fault.Unavailable("audit: verify", err)
	}
	a := anchorR()
	head, anchor := headC.Val(), a.value
	msgs, err := firstC.Result()
	if err != nil {
		return v, anchor, fault.Unavailable("audit: verify", err)
	}
	lastMsgs, err := lastC.Result()
	if err != nil {
		return v, anchor, fault.Unavailable("audit: verify", err)
	}
	// The snapshot's last entry: the reading ends there.
	last := "+"
	if len(lastMsgs) > 0 {
		last = lastMsgs[0].ID
	}
	// After retention trimmed the oldest records, the chain starts from the
	// hash of the last one removed.
	trimmed, prev, _ := strings.Cut(anchor, " ")
	v.TrimmedThrough, v.TrimmedUnbound = trimmed, a.unbound()
	// The stored seal, read in the same snapshot, names an entry the walk
	// must meet with the hash it sealed; so does a kept one (a copy: an
	// attempt's walk marks it).
	stored := l.readSeal(&v, sealC.Val())
	seals := []*chainSeal{&stored}
	if kept != nil {
		k := *kept
		seals = append(seals, &k)
		v.SinceSealedThrough, v.SinceSealedAt = k.claims.Through, k.claims.SealedAt().Format(time.RFC3339)
	}
	defer func() {
		if stored.trimmed {
			res.Seal = SealTrimmed
		}
		if res.Seal != "" {
			res.UnsealedRecords = res.Records - stored.records
		}
		if kept != nil {
			res.SinceSeal = seals[1].sinceState()
		}
	}()
	// An anchor retention, as it is set, can't have left: the records
	// before it were deleted otherwise, so the seals, which cover them
	// (the one the auditor kept above all), are broken, not trimmed.
	first := ""
	if len(msgs) > 0 {
		first = msgs[0].ID
	}
	problem := l.anchorProblem(a, first)
	// An anchor without its record passes for one set before anchors
	// kept it, unless a seal made since they do saw another anchor.
	for _, s := range seals {
		if problem == "" {
			problem = s.anchorSince(a)
		}
	}
	if problem != "" {
		for _, s := range seals {
			s.anchorNotRetentions()
		}
		v.Problem = problem
		return v, anchor, nil
	}
	for _, s := range seals {
		// Retention removed the sealed record, or it is the anchor's.
		if p := s.atAnchor(trimmed, prev); p != "" {
			v.Problem = p
			return v, anchor, nil
		}
	}
	for _, s := range seals {
		if p := s.pastEnd(last); p != "" {
			v.Problem = p
			return v, anchor, nil
		}
	}
	// behind is the first entry after the one whose hash the head names,
	// and added how many entries follow it: entries appended without
	// moving the head, when the walk ends past the head's entry.
	headSeen := head != "" && head == prev
	var behind redis.XMessage
	added := 0
	// readTo is the last entry of the batches before this one: "" while
	// the snapshot's own batch is read.
	readTo := ""
	for {
		for i, m := range msgs {
			r, _ := m.Values[field].(string)
			p, _ := m.Values["p"].(string)
			h, _ := m.Values["h"].(string)
			broken := func(problem string) (Verification, string, error) {
				v.BrokenAt, v.Problem = m.ID, problem
				var rec struct{ Id string }
				if jsonUnmarshal(r, &rec) == nil {
					v.RecordId = rec.Id
				}
				return v, anchor, nil
			}
			linked := p == prev
			if !linked && h != "" && i == 0 && readTo != "" {
				if linked, err = l.trimmedBetween(ctx, tenant, readTo, m.ID, p); err != nil {
					return v, anchor, err
				}
			}
			switch {
			case h == "":
				return broken("entry carries no chain hash")
			case !linked:
				return broken("link to the previous record does not match: a record before this one is missing or was changed")
			case chainHash(p, r) != h:
				return broken("record does not match its hash: it was edited")
			case !ownRecord(tenant, r):
				// The other tenant is not named: this tenant's readers
				// may not learn of it.
				return broken("the record is another tenant's: it was moved here from another tenant's log")
			}
			for _, s := range seals {
				if p := s.meet(m.ID, h, v.Records+1); p != "" {
					return broken(p)
				}
			}
			prev = h
			v.Records++
			switch {
			case h == head:
				headSeen, behind, added = true, redis.XMessage{}, 0
			case headSeen && behind.ID == "":
				behind, added = m, 1
			case behind.ID != "":
				added++
			}
		}
		if len(msgs) < verifyBatch || msgs[len(msgs)-1].ID == last {
			// The snapshot's last entry was read, or the stream ended
			// before it (it was deleted meanwhile).
			break
		}
		readTo = msgs[len(msgs)-1].ID
		start := "(" + readTo
		if msgs, err = l.rdb.XRangeN(ctx, stream, start, last, verifyBatch).Result(); err != nil {
			return v, anchor, fault.Unavailable("audit: verify", err)
		}
	}
	if head != prev {
		// Which of three it is decides what an auditor looks for, and
		// where: records deleted, or records slipped in.
		switch {
		case behind.ID != "":
			// The snapshot's head and last entry are read together, so
			// entries after the head's entry were not appended by the
			// script, which moves the head with each.
			v.BrokenAt = behind.ID
			if r, _ := behind.Values[field].(string); r != "" {
				var rec struct{ Id string }
				if jsonUnmarshal(r, &rec) == nil {
					v.RecordId = rec.Id
				}
			}
			v.Problem = fmt.Sprintf("the chain's head does not match the last record: it names the record before this one, so this record and the %d after it were added without moving the head (behind the chain's back), or the head was set back", added-1)
		case head == "":
			v.Problem = "the chain's head does not match the last record: the head is missing (deleted), and the newest records may have been deleted with it"
		default:
			v.Problem = fmt.Sprintf("the newest %s missing: the chain's head does not match the last record", "records are")
		}
		return v, anchor, nil
	}
	for _, s := range seals {
		if p := s.unmet(); p != "" {
			v.Problem = p
			return v, anchor, nil
		}
	}
	if stored.problem != "" {
		v.Problem = stored.problem
		return v, anchor, nil
	}
	v.OK = true
	return v, anchor, nil
}

// mustParseID is parseID for the ids Redis returned, which always parse;
// one that did not would sort first.
func mustParseID(id string) streamID {
	s, _ := parseID(id)
	return s
}

// trimmedBetween reports whether retention explains the broken link p of
// entry id, the first of a batch read after the entry readTo: the entries
// between them are gone, and a trim removes a prefix of the stream and
// moves the anchor with it, in one script. When the anchor now lies at or
// past readTo, the entries between were retention's: past id too, the
// link was to one it removed; before id, it names the last one removed,
// whose hash the link must be. An anchor before readTo did not remove
// them: they were deleted. Nor did one retention, as it is set, can't
// have left (anchorProblem): verify starts again, and reports it.
func (l *Log) trimmedBetween(ctx context.Context, tenant, readTo, id, p string) (bool, error) {
	// In one transaction: a trim sets the anchor and its record together.
	pipe := l.rdb.TxPipeline()
	read := readAnchor(ctx, pipe, tenant)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, fault.Unavailable("audit: verify", err)
	}
	a := read()
	if !a.set {
		return false, nil
	}
	aid, hash, ok := strings.Cut(a.value, " ")
	at, aerr := parseID(aid)
	readID, rerr := parseID(readTo)
	next, nerr := parseID(id)
	switch {
	case !ok || aerr != nil || rerr != nil || nerr != nil, compareIDs(at, readID) < 0, l.anchorProblem(a, "") != "":
		return false, nil
	case compareIDs(at, next) < 0:
		return hash == p, nil
	}
	return true, nil
}

// ownRecord reports whether the stored record r may be in tenant's chain.
// The hashes cover a record's bytes, not the stream holding them, so
// another tenant's records, carried over with their links and hashes (a
// whole log swapped, or records moved onto the end of a chain), re-compute
// as a chain: only the tenant each record names tells them apart. Every
// writer appends a record to the stream of the tenant it names
// (LockboxTenant; a legacy record's is upgraded from its OrganizationId).
// A record that can't be read, or names no tenant, is not judged here: its
// hash is.
func ownRecord(tenant, r string) bool {
	rec, err := record.Unmarshal(r)
	return err != nil || rec.LockboxTenant == "" || rec.LockboxTenant == tenant
}
