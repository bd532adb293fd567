package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

// The states of a chain's seal, as Verification.Seal reports them.
const (
	// SealVerified: the seal is the proxy's, by a published key, and the
	// records up to the entry it names are the ones it sealed.
	SealVerified = "verified"
	// SealNone: the chain has no seal (sealing is off, it was never
	// sealed, or the seal was deleted): the chain alone covers it.
	SealNone = "none"
	// SealUnverifiable: the seal's key is not published (a key retired
	// and no longer in LOCKBOX_PROXY_PUBLISHED_KEY_FILES), so the seal
	// can be neither trusted nor shown forged.
	SealUnverifiable = "unverifiable"
	// SealTrimmed: retention removed the sealed record and others after
	// it, so the seal covers none of the records left.
	SealTrimmed = "trimmed"
	// SealForged: the seal is not Lockbox's (a bad signature by a
	// published key, another type, tenant or issuer): the chain is broken.
	SealForged = "forged"
)

// SetSealKeys makes verification check the chains' seals: against the
// keys published (keys is called at each verification, so a reload that
// publishes other keys applies at once; nil or a nil set leaves seals
// unverifiable), issued by issuer. Call it before serving; without it
// every seal is unverifiable.
func (l *Log) SetSealKeys(issuer string, keys func() *grantsig.KeySet) {
	l.sealIssuer, l.sealKeys = issuer, keys
}

// The outcomes of checking the chain against a seal the caller kept
// (VerifySince), as Verification.SinceSeal reports them.
const (
	// SinceSealVerified: the chain holds the kept seal's entry with the
	// hash it sealed (or the anchor is that hash): the records up to it
	// are the ones sealed.
	SinceSealVerified = "verified"
	// SinceSealTrimmed: retention removed the kept seal's entry and
	// others after it, so nothing left can be checked against it.
	SinceSealTrimmed = "trimmed"
	// SinceSealBroken: the chain does not hold what the kept seal sealed
	// (records rewritten, or deleted, also as if by retention: an anchor
	// at or past its entry that the retention in force can't have left):
	// OK is false.
	SinceSealBroken = "broken"
	// SinceSealUnchecked: the verification found another problem before
	// it reached the kept seal's entry: OK is false.
	SinceSealUnchecked = "unchecked"
)

// chainSeal is a seal of a chain as verifyOnce checks it along the walk:
// the one stored beside the chain, or one the caller kept (since_seal).
// Both are checked by the same steps; only their problems' wording
// differs.
type chainSeal struct {
	// check is set when the seal verified and names an entry the walk
	// must meet with hash claims.Hash.
	check  bool
	id     streamID
	claims grantsig.SealClaims
	// kept is set for a seal the caller kept, not the stored one.
	kept bool
	// seen is set once the walk met the sealed entry (or the anchor was
	// it), records then being how many records up to it were verified.
	seen    bool
	records int
	// trimmed is set when retention removed the sealed entry before the
	// anchor's: the seal covers none of the records left.
	trimmed bool
	// broken is set when the chain does not hold what the seal sealed.
	broken bool
	// problem is why the stored seal is not Lockbox's: the chain is
	// broken.
	problem string
}

// readSeal judges the stored seal of v's tenant and fills v's seal
// fields.
func (l *Log) readSeal(v *Verification, stored string) chainSeal {
	if stored == "" {
		v.Seal = SealNone
		return chainSeal{}
	}
	id, tok, _ := strings.Cut(stored, " ")
	ks := l.publishedSealKeys()
	if ks == nil || l.sealIssuer == "" {
		v.Seal, v.SealToken = SealUnverifiable, tok
		return chainSeal{}
	}
	c, kid, err := grantsig.VerifySeal(ks, tok, l.sealIssuer, v.Tenant)
	v.SealKeyID = kid
	switch {
	case errors.Is(err, grantsig.ErrUnknownKey):
		// Still the caller's to keep: checked where the retired key is
		// published, or here once it is again.
		v.Seal, v.SealToken = SealUnverifiable, tok
		return chainSeal{}
	case err != nil:
		v.Seal = SealForged
		return chainSeal{problem: fmt.Sprintf("the chain's seal is not Lockbox's (%s): it was forged, or copied from another tenant's log", sealInvalidWhy(err))}
	}
	sid, err := parseID(c.Through)
	if err != nil || c.Through != id {
		v.Seal = SealForged
		return chainSeal{problem: fmt.Sprintf("the chain's seal names entry %q, but is stored as the seal of entry %q: it was moved", c.Through, id)}
	}
	v.Seal, v.SealedThrough, v.SealedAt = SealVerified, c.Through, c.SealedAt().Format(time.RFC3339)
	v.SealToken = tok
	return chainSeal{check: true, id: sid, claims: c}
}

// keptSeal checks token, a seal of tenant's chain the caller kept outside
// Redis, before the chain is read: it must be a seal Lockbox made of
// tenant's chain, signed by a published key. A seal that can't be checked
// (its key is not published) is refused like a bad one, never passed
// over: the caller asked for that check. An empty token is no seal (nil).
func (l *Log) keptSeal(tenant, token string) (*chainSeal, error) {
	if token == "" {
		return nil, nil
	}
	token, err := keptSealToken(tenant, token)
	if err != nil {
		return nil, err
	}
	ks := l.publishedSealKeys()
	if ks == nil || l.sealIssuer == "" {
		return nil, fault.New(fault.ErrInvalid, "invalid_since_seal",
			"the kept seal can't be checked: this server publishes no keys to check seals against (LOCKBOX_PROXY_SIGNING_KEY_FILE, LOCKBOX_PROXY_PUBLISHED_KEY_FILES)")
	}
	c, kid, err := grantsig.VerifySeal(ks, token, l.sealIssuer, tenant)
	switch {
	case errors.Is(err, grantsig.ErrUnknownKey):
		return nil, fault.New(fault.ErrInvalid, "invalid_since_seal",
			"the kept seal was signed by key %q, which this server does not publish, so it can't be checked: publish the retired key's public half again (LOCKBOX_PROXY_PUBLISHED_KEY_FILES)", kid)
	case err != nil:
		return nil, fault.New(fault.ErrInvalid, "invalid_since_seal",
			"since_seal is not a seal Lockbox made of tenant %s's audit log (%s)", tenant, sealInvalidWhy(err))
	}
	id, err := parseID(c.Through)
	if err != nil {
		return nil, fault.New(fault.ErrInvalid, "invalid_since_seal", "since_seal names no stream entry (%q)", c.Through)
	}
	return &chainSeal{check: true, id: id, claims: c, kept: true}, nil
}

// keptSealToken returns the seal token in kept: kept itself, or the
// SealToken of a seal line as the SIEM received it, in either format (the
// json line, or the OCSF event carrying that line under unmapped). An
// auditor so keeps, or pastes, the line the SIEM holds as it is.
func keptSealToken(tenant, kept string) (string, error) {
	if !strings.HasPrefix(kept, "{") {
		return kept, nil
	}
	// RecordType is a number in a record's line: any, to say so rather
	// than fail to decode it.
	type line struct {
		RecordType    any    `json:"RecordType"`
		LockboxTenant string `json:"LockboxTenant"`
		SealToken     string `json:"SealToken"`
	}
	var in struct {
		line
		Unmapped *line `json:"unmapped"`
	}
	if err := json.Unmarshal([]byte(kept), &in); err != nil {
		return "", fault.New(fault.ErrInvalid, "invalid_since_seal",
			"since_seal starts as a JSON object but is not one (%v): give a seal token, or a seal line as the SIEM holds it", err)
	}
	l := in.line
	if l.RecordType != SealRecordType && in.Unmapped != nil {
		l = *in.Unmapped
	}
	switch {
	case l.RecordType != SealRecordType:
		return "", fault.New(fault.ErrInvalid, "invalid_since_seal",
			"since_seal is a JSON object but not a seal line (its RecordType is not %q): a record's line holds no seal", SealRecordType)
	case l.LockboxTenant != tenant:
		return "", fault.New(fault.ErrInvalid, "invalid_since_seal",
			"since_seal is a seal line of tenant %q's audit log, not of tenant %s's", l.LockboxTenant, tenant)
	case l.SealToken == "":
		return "", fault.New(fault.ErrInvalid, "invalid_since_seal", "since_seal is a seal line without a SealToken")
	}
	return l.SealToken, nil
}

// publishedSealKeys are the keys seals are checked against; nil without
// any.
func (l *Log) publishedSealKeys() *grantsig.KeySet {
	if l.sealKeys == nil {
		return nil
	}
	return l.sealKeys()
}

// sealInvalidWhy is why grantsig refused a seal, without its prefix.
func sealInvalidWhy(err error) string {
	return strings.TrimPrefix(err.Error(), grantsig.ErrInvalid.Error()+": ")
}

// sinceState is Verification.SinceSeal for the kept seal s.
func (s *chainSeal) sinceState() string {
	switch {
	case s.seen:
		return SinceSealVerified
	case s.trimmed:
		return SinceSealTrimmed
	case s.broken:
		return SinceSealBroken
	}
	return SinceSealUnchecked
}

// atAnchor checks s against the chain's anchor: trimmed, the entry
// retention removed last, and hash, its hash. A seal of that entry is
// checked against the hash; one of an older entry covers nothing left.
// It returns the problem, if any.
func (s *chainSeal) atAnchor(trimmed, hash string) string {
	at, err := parseID(trimmed)
	if !s.check || trimmed == "" || err != nil {
		return ""
	}
	switch c := compareIDs(s.id, at); {
	case c < 0:
		s.check, s.trimmed = false, true
	case c == 0 && hash != s.claims.Hash:
		s.broken = true
		if s.kept {
			return s.noLonger(fmt.Sprintf("the chain's anchor (the hash of entry %s, the last record retention removed) is not the sealed hash: the records were changed and their hashes recomputed, or the anchor was", trimmed))
		}
		return fmt.Sprintf("the chain's anchor (the hash of entry %s, the last record retention removed) is not the hash Lockbox sealed at %s: the records were changed and their hashes recomputed, or the anchor was", trimmed, s.sealedAt())
	case c == 0:
		s.check, s.seen = false, true
	}
	return ""
}

// anchorNotRetentions marks s broken, once the chain's anchor is found not
// to be retention's (anchorProblem): the records before the anchor were
// deleted otherwise, and every seal's hash covers the chain from its
// first record, those included, so nothing tells what s sealed is intact.
func (s *chainSeal) anchorNotRetentions() {
	if s.check {
		s.check, s.broken = false, true
	}
}

// anchorSince returns the problem of anchor a, without its record (dated
// by its stream id alone, as anchors set before they kept one), when it
// was set after s was made by a sealer whose anchors keep it
// (AnchorsBound): the anchor s saw is not a's, so a was set since, and
// retention would have set it with its record.
func (s *chainSeal) anchorSince(a anchorRead) string {
	if !s.check || !s.claims.AnchorsBound || !a.unbound() || a.value == s.claims.Anchor {
		return ""
	}
	why := fmt.Sprintf("the chain's anchor (entry %s) comes without the record retention removed last, and was set after this seal, when retention kept that record with every anchor it set: records were deleted by other means than retention and the anchor set", a.trimmed())
	if s.kept {
		return s.noLonger(why)
	}
	return fmt.Sprintf("%s (the seal Lockbox made at %s)", why, s.sealedAt())
}

// pastEnd returns the problem of a seal naming an entry after last, the
// snapshot's last entry ("+" for none): a seal is made of an entry in the
// stream, and only retention removes entries, the oldest: the newest were
// deleted.
func (s *chainSeal) pastEnd(last string) string {
	if !s.check || (last != "+" && compareIDs(s.id, mustParseID(last)) <= 0) {
		return ""
	}
	s.broken = true
	if s.kept {
		return s.noLonger(fmt.Sprintf("it sealed the log through entry %s, after the last record there is now: records were deleted and the head set back", s.claims.Through))
	}
	return fmt.Sprintf("the newest records are missing: Lockbox sealed the log through entry %s at %s, after the last record there is now: records were deleted and the head set back", s.claims.Through, s.sealedAt())
}

// meet checks the walk's entry id, with hash h, the records-th verified,
// against s, and returns the problem, if any.
func (s *chainSeal) meet(id, h string, records int) string {
	if !s.check || s.seen {
		return ""
	}
	switch c := compareIDs(mustParseID(id), s.id); {
	case c == 0 && h != s.claims.Hash:
		s.broken = true
		if s.kept {
			return s.noLonger("the records up to this one were changed and their hashes recomputed")
		}
		return fmt.Sprintf("the records up to this one are not those Lockbox sealed at %s: they were changed and their hashes recomputed", s.sealedAt())
	case c == 0:
		s.seen, s.records = true, records
	case c > 0:
		s.broken = true
		if s.kept {
			return s.noLonger(fmt.Sprintf("the sealed record (entry %s) is missing before this one: records were deleted and the hashes after them recomputed", s.claims.Through))
		}
		return fmt.Sprintf("the record Lockbox sealed at %s (entry %s) is missing before this one: records were deleted and the hashes after them recomputed", s.sealedAt(), s.claims.Through)
	}
	return ""
}

// unmet returns the problem of a walk that ended without meeting s's
// entry: the stream ended before the snapshot's last entry, entries were
// deleted while it was read, the sealed one with them.
func (s *chainSeal) unmet() string {
	if !s.check || s.seen {
		return ""
	}
	s.broken = true
	if s.kept {
		return s.noLonger(fmt.Sprintf("the sealed record (entry %s) is missing", s.claims.Through))
	}
	return fmt.Sprintf("the record Lockbox sealed at %s (entry %s) is missing", s.sealedAt(), s.claims.Through)
}

// noLonger words a kept seal's problem: that seal was kept out of reach
// of whoever can write to Redis, so it tells what the log held when it
// was made, whatever the log and its stored seal say now.
func (s *chainSeal) noLonger(why string) string {
	return fmt.Sprintf("the log no longer holds what Lockbox sealed at %s in the seal you kept (since_seal): %s", s.sealedAt(), why)
}

// SealedTime is SealedAt as a time; zero without a verified seal.
func (v Verification) SealedTime() time.Time {
	t, err := time.Parse(time.RFC3339, v.SealedAt)
	if err != nil {
		return time.Time{}
	}
	return t
}

// sealedAt words when a seal was made, for problems.
func (s *chainSeal) sealedAt() string { return s.claims.SealedAt().Format(time.RFC3339) }
