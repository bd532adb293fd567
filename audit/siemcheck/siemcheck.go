// Package siemcheck checks a tenant's audit records as a SIEM received
// them, away from Lockbox and its Redis: that the lines are the tenant's
// hash chain, none edited, none missing between the first and the last,
// and up to the newest seal among them exactly what Lockbox sealed.
//
// Whoever can write to Redis can rewrite a tenant's chain and reseal it;
// the SIEM's copy, written within seconds of each record, is out of their
// reach, and this is what an auditor checks it with. It needs only the
// lines and the public keys Lockbox publishes (GET /v1/keys).
//
// Only the json format can be checked: its record line is the record as
// stored, the bytes the chain hashes, with the record's place in the chain
// appended (Place). An OCSF event is a translation, which no hash covers.
package siemcheck

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// The fields the json format appends to a record's line, in this order and
// last, so that the stored record is the line without them.
const (
	// EntryField is the record's stream entry id: its place in the chain.
	EntryField = "LockboxEntry"
	// PrevHashField is the chain hash of the entry before it ("" for a
	// tenant's first record).
	PrevHashField = "LockboxPrevHash"
	// HashField is its own chain hash, over PrevHash and the record.
	HashField = "LockboxHash"
)

// SealRecordType is the RecordType of a seal's line (audit.SealRecordType).
const SealRecordType = "LockboxAuditSeal"

// Place returns line, a stored record (a JSON object, as every record
// Lockbox writes is), with its place in the chain appended as the last
// fields: entry id, the previous entry's hash and its own. A line that is
// not one compact object is returned as it is: no check could recover the
// stored bytes from it. So is one whose place is not as Lockbox writes it
// (a stream id, and hashes of 40 hex digits, the previous one empty for a
// tenant's first record): values read from a Redis someone wrote to by
// hand are not put into the line, where they could add members.
func Place(line []byte, entry, prev, hash string) []byte {
	n := len(line)
	if n < 2 || line[0] != '{' || line[n-1] != '}' || bytes.ContainsAny(line, "\r\n") {
		return line
	}
	if _, ok := parseID(entry); !ok || !IsHash(hash) || (prev != "" && !IsHash(prev)) {
		return line
	}
	out := make([]byte, 0, n+len(entry)+len(prev)+len(hash)+64)
	out = append(out, line[:n-1]...)
	if n > 2 {
		out = append(out, ',')
	}
	out = append(out, `"`+EntryField+`":"`...)
	out = append(out, entry...)
	out = append(out, `","`+PrevHashField+`":"`...)
	out = append(out, prev...)
	out = append(out, `","`+HashField+`":"`...)
	out = append(out, hash...)
	return append(out, `"}`...)
}

// Split splits a line Place wrote into the stored record and its place:
// its entry id, the previous entry's hash and its own. It returns false
// for a line without a place.
//
// It reads the place from the line's end, as the fields Place appends
// must be: `,"LockboxEntry":"N-N","LockboxPrevHash":"H","LockboxHash":"H"}`
// (the comma absent only for an empty record), each N a 64-bit number and
// each H 40 lower-case hex digits, the previous one empty for a tenant's
// first record.
func Split(line []byte) (record []byte, entry, prev, hash string, ok bool) {
	head, ms, seq, p, h, ok := split(line)
	if !ok {
		return nil, "", "", "", false
	}
	return append(slices.Clip(head), '}'), string(ms) + "-" + string(seq), string(p), string(h), true
}

// split is Split without copies: every part is a slice of line, head the
// stored record but for its closing brace.
func split(line []byte) (head, ms, seq, prev, hash []byte, ok bool) {
	rest, h, ok := cutBack(line, `"}`, isHex, 1, `","`+HashField+`":"`)
	if !ok || len(h) != 2*sha1.Size {
		return nil, nil, nil, nil, nil, false
	}
	rest, p, ok := cutBack(rest, "", isHex, 0, `","`+PrevHashField+`":"`)
	if !ok || (len(p) != 0 && len(p) != 2*sha1.Size) {
		return nil, nil, nil, nil, nil, false
	}
	rest, sq, ok := cutBack(rest, "", isDigit, 1, "-")
	if !ok {
		return nil, nil, nil, nil, nil, false
	}
	head, ms, ok = cutBack(rest, "", isDigit, 1, `"`+EntryField+`":"`)
	if !ok {
		return nil, nil, nil, nil, nil, false
	}
	if _, ok := parseIDParts(ms, sq); !ok {
		// Digits past what a stream id holds.
		return nil, nil, nil, nil, nil, false
	}
	comma := len(head) > 0 && head[len(head)-1] == ','
	if comma {
		head = head[:len(head)-1]
	}
	switch {
	case len(head) == 0 || head[0] != '{' || bytes.ContainsAny(head, "\r\n"):
		// Not a line Place wrote: it places compact objects only.
		return nil, nil, nil, nil, nil, false
	case comma == (len(head) == 1):
		// A comma follows a field; only an empty record's place follows
		// "{" directly.
		return nil, nil, nil, nil, nil, false
	}
	return head, ms, sq, p, h, true
}

// cutBack cuts from b's end the suffix end, then the longest run (at least
// min bytes) of bytes in, then the literal before; it returns what is left,
// the run, and whether b had that shape.
func cutBack(b []byte, end string, in func(byte) bool, min int, before string) (rest, run []byte, ok bool) {
	b, ok = bytes.CutSuffix(b, []byte(end))
	if !ok {
		return nil, nil, false
	}
	i := len(b)
	for i > 0 && in(b[i-1]) {
		i--
	}
	if len(b)-i < min {
		return nil, nil, false
	}
	rest, ok = bytes.CutSuffix(b[:i], []byte(before))
	return rest, b[i:], ok
}

var closeBrace = []byte{'}'}

// IsHash reports whether s is a chain hash as Lockbox writes it: SHA-1 in
// 40 lower-case hex digits.
func IsHash(s string) bool {
	return len(s) == 2*sha1.Size && !strings.ContainsFunc(s, func(r rune) bool { return r > 0x7f || !isHex(byte(r)) })
}

func isHex(c byte) bool   { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Link is the chain's hash of record after the entry whose hash is prev,
// as Lockbox's append scripts compute it: SHA-1 over prev, a line break
// and the record, in hex.
func Link(prev string, record []byte) string {
	sum := link([]byte(prev), record)
	return hex.EncodeToString(sum[:])
}

// link is Link's hash over prev, a line break and the record, the record
// given in parts: split's head and the closing brace it leaves off.
func link(prev []byte, record ...[]byte) [sha1.Size]byte {
	h := sha1.New()
	h.Write(prev)
	h.Write([]byte{'\n'})
	for _, b := range record {
		h.Write(b)
	}
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	return sum
}

// digest is a chain hash as a line or a seal gives it, in 21 bytes instead
// of a 40-byte string, so that a year of a tenant's records fits in
// memory: SHA-1's 40 lower-case hex digits, as Lockbox writes hashes, kept
// as the 20 bytes they spell. Any other text (a line edited to hold
// something else) is kept as its own SHA-1 and marked so: it equals no hash
// Lockbox wrote or Check computes, and two such texts compare as the texts
// do.
type digest struct {
	sum  [sha1.Size]byte
	kind uint8
}

const (
	digestEmpty uint8 = iota // "": a tenant's first record has no previous hash
	digestHex                // a hash as Lockbox writes it
	digestOther              // anything else, as its SHA-1
)

func digestOf(text []byte) digest {
	switch {
	case len(text) == 0:
		return digest{}
	case len(text) == 2*sha1.Size && !slices.ContainsFunc(text, func(c byte) bool { return !isHex(c) }):
		d := digest{kind: digestHex}
		if _, err := hex.Decode(d.sum[:], text); err == nil {
			return d
		}
	}
	return digest{sum: sha1.Sum(text), kind: digestOther}
}

func computed(sum [sha1.Size]byte) digest { return digest{sum: sum, kind: digestHex} }

// maxLine bounds one line: a record is a few kilobytes at most.
const maxLine = 16 << 20

// maxRecordID bounds the record Id kept for the report: Lockbox's are
// UUIDs, and a line edited to hold a longer one must not fill memory.
const maxRecordID = 128

// Checker gathers one tenant's lines from one or more files (Read), then
// checks them (Check). Lines of other tenants are passed over. Seal lines
// are checked as they are read, so that only what they say is kept.
type Checker struct {
	tenant string
	keys   *grantsig.KeySet
	issuer string
	// entries are the record lines read: sorted by id, one per id, up to
	// sorted; compact sorts them all and drops the lines read again.
	entries []entry
	sorted  int
	// recordIDs holds the records' Ids that are not canonical UUIDs, by
	// entry, as the first line read for the entry gave it.
	recordIDs map[id]string
	// seals are the seals Lockbox signed (verified), by the entry and
	// hash they name; unknownKeys the entries named by seals of keys the
	// key set does not hold, with the key.
	seals       map[sealed]sealInfo
	unknownKeys map[id]string
	// forged is the earliest seal line that is not a seal Lockbox made of
	// the tenant's log.
	forged *problem
	// otherIssuer is the issuer of seals signed by a key of the set but
	// issued under another name than issuer: most likely the wrong
	// --issuer, since only Lockbox holds the keys.
	otherIssuer string
	// setup is why seals could not be checked at all (no key set or no
	// issuer).
	setup error
	// contradiction is the earliest entry read twice in two versions.
	contradiction *problem
	// uncovered is the first of the tenant's record lines no chain hash
	// covers (lines.unplaced and lines.ambiguous count them).
	uncovered string
	lines     stats
}

type stats struct {
	// unplaced counts the tenant's record lines without a place: written
	// before Lockbox placed records in their lines, or not Lockbox's.
	unplaced int
	// ambiguous counts lines that name the tenant and repeat a member the
	// check routes lines by (LockboxTenant, RecordType, ...): Lockbox
	// writes none, and readers differ on which one counts.
	ambiguous int
	// ocsf counts OCSF events, which can't be checked.
	ocsf int
	// unreadable counts lines that are not JSON objects.
	unreadable int
	// duplicates counts lines read again: the SIEM gets each at least
	// once.
	duplicates int
}

// problem is a reason the records are not intact, at an entry when it
// names one.
type problem struct {
	at    id
	hasAt bool
	text  string
}

// before reports whether p is reported rather than q: the earlier entry
// wins, and a problem at an entry over one at none, so that nothing a
// line says where no entry is can displace a break found in the chain.
func (p *problem) before(q *problem) bool {
	switch {
	case q == nil:
		return true
	case p.hasAt != q.hasAt:
		return p.hasAt
	}
	return p.hasAt && compareIDs(p.at, q.at) < 0
}

func earliest(p, q *problem) *problem {
	if q != nil && q.before(p) {
		return q
	}
	if p == nil {
		return q
	}
	return p
}

type id struct{ ms, seq uint64 }

func (i id) String() string {
	return strconv.FormatUint(i.ms, 10) + "-" + strconv.FormatUint(i.seq, 10)
}

func parseID(s string) (id, bool) {
	a, z, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(z, 10, 64)
	return id{ms, seq}, ok && err1 == nil && err2 == nil
}

// parseIDParts is parseID of ms + "-" + seq, both digits.
func parseIDParts(ms, seq []byte) (id, bool) {
	a, err1 := strconv.ParseUint(string(ms), 10, 64)
	z, err2 := strconv.ParseUint(string(seq), 10, 64)
	return id{a, z}, err1 == nil && err2 == nil
}

func compareIDs(a, b id) int { return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.seq, b.seq)) }

// entry is a record line read: its place, and the hash its record gives
// (computed), not the record, so that a year of a tenant's records fits
// in memory (about 100 bytes each, BenchmarkCheck).
type entry struct {
	id                   id
	prev, hash, computed digest
	// uuid is the record's Id when it is a UUID in its canonical text, as
	// Lockbox makes them; Checker.recordIDs keeps any other.
	uuid     uuid.UUID
	isUUID   bool
	verified bool
}

// sealed is what a seal vouches for: the chain through entry at has hash.
type sealed struct {
	at   id
	hash digest
}

type sealInfo struct {
	sealedAt int64 // unix seconds
	kid      string
}

// New returns a Checker of tenant's lines, whose seals it checks against
// keys (the JWKS Lockbox publishes, GET /v1/keys) and issuer
// (LOCKBOX_PROXY_ASSERTION_ISSUER).
func New(tenant string, keys *grantsig.KeySet, issuer string) *Checker {
	return &Checker{tenant: tenant, keys: keys, issuer: issuer, recordIDs: map[id]string{},
		seals: map[sealed]sealInfo{}, unknownKeys: map[id]string{}}
}

// Read takes the lines of r, a file the SIEM sink wrote (json format).
func (c *Checker) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		c.line(bytes.TrimSpace(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a line longer than %d bytes: not a file of SIEM lines", maxLine)
		}
		return err
	}
	return nil
}

func (c *Checker) line(b []byte) {
	if len(b) == 0 {
		return
	}
	f, ok := readRouting(b)
	if !ok {
		c.lines.unreadable++
		return
	}
	if f.classUID != nil && f.tenant == nil && f.recordType == nil && f.orgID == nil {
		// An OCSF event: Lockbox keeps its own fields under "unmapped".
		// A line with class_uid that names a tenant or a record type at
		// the top is no event Lockbox writes, and is routed as a record:
		// passed over as an event, a forged record line of the tenant
		// that carried "class_uid": null left the check intact.
		c.lines.ocsf++
		return
	}
	tenant := text(f.tenant)
	if f.tenant == nil && f.recordType == nil {
		// Written before Lockbox followed the common schema: the tenant
		// was the OrganizationId.
		tenant = text(f.orgID)
	}
	if f.repeated {
		if tenant == c.tenant || bytes.Contains(b, []byte(strconv.Quote(c.tenant))) {
			c.lines.ambiguous++
			c.uncover(f)
		}
		return
	}
	if tenant != c.tenant {
		return
	}
	if text(f.recordType) == SealRecordType {
		c.seal(text(f.sealedThrough), text(f.sealToken))
		return
	}
	head, ms, seq, prev, hash, ok := split(b)
	eid, idOK := parseIDParts(ms, seq)
	if !ok || !idOK {
		c.lines.unplaced++
		c.uncover(f)
		return
	}
	e := entry{id: eid, prev: digestOf(prev), hash: digestOf(hash), computed: computed(link(prev, head, closeBrace))}
	rid := text(f.id)
	if u, err := uuid.Parse(rid); err == nil && u.String() == rid {
		e.uuid, e.isUUID = u, true
	} else if _, seen := c.recordIDs[eid]; !seen {
		c.recordIDs[eid] = capText(rid, maxRecordID)
	}
	n := len(c.entries)
	if n == cap(c.entries) && n >= 1<<12 {
		// Drop the lines read again before the slice grows: a file read
		// twice costs time, not memory.
		c.compact()
		n = len(c.entries)
	}
	if c.sorted == n && (n == 0 || compareIDs(c.entries[n-1].id, eid) < 0) {
		// Lines in the chain's order, as a SIEM file mostly is, need no
		// sorting.
		c.sorted++
	}
	c.entries = append(c.entries, e)
}

// uncover notes a record line of the tenant that no chain hash covers.
func (c *Checker) uncover(f routing) {
	if c.uncovered == "" {
		c.uncovered = capText(text(f.id), maxRecordID)
		if c.uncovered == "" {
			c.uncovered = "-"
		}
	}
}

// capText is s cut to at most n bytes, marked when cut.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// seal checks the seal line of entry through (as the line says) carrying
// token, and keeps what it says: the entry and hash Lockbox sealed, the
// entry a seal of an unknown key names, or that the line is no seal of
// Lockbox's.
func (c *Checker) seal(through, token string) {
	cl, kid, err := grantsig.VerifySeal(c.keys, token, c.issuer, c.tenant)
	// The line's SealedThrough is only where a forged line is reported:
	// the token is the evidence, and says which entry it seals.
	sid, ok := parseID(cl.Through)
	switch {
	case errors.Is(err, grantsig.ErrUnknownKey):
		if ok {
			c.unknownKeys[sid] = capText(kid, maxRecordID)
		} else {
			c.unknownKeys[id{}] = capText(kid, maxRecordID)
		}
		return
	case err != nil && !errors.Is(err, grantsig.ErrInvalid):
		c.setup = err
		return
	case err != nil && cl.Issuer != "" && cl.Issuer != c.issuer:
		// Claims come back only from a token a key of the set signed.
		c.otherIssuer = capText(cl.Issuer, maxRecordID)
		return
	case err == nil && !ok:
		err = fmt.Errorf("it names no stream entry (%q)", capText(cl.Through, maxRecordID))
	}
	if err != nil {
		why := strings.TrimPrefix(err.Error(), grantsig.ErrInvalid.Error()+": ")
		p := &problem{}
		if at, ok := parseID(through); ok {
			p.at, p.hasAt = at, true
			p.text = fmt.Sprintf("the seal line of entry %s is not a seal Lockbox made of tenant %s's log (%s): it was forged, or copied from another tenant's log", at, c.tenant, why)
		} else {
			p.text = fmt.Sprintf("a seal line (SealedThrough %q) is not a seal Lockbox made of tenant %s's log (%s): it was forged, or copied from another tenant's log", capText(through, 64), c.tenant, why)
		}
		c.forged = earliest(c.forged, p)
		return
	}
	k := sealed{at: sid, hash: digestOf([]byte(cl.Hash))}
	if old, seen := c.seals[k]; !seen || old.sealedAt < cl.IssuedAt {
		c.seals[k] = sealInfo{sealedAt: cl.IssuedAt, kid: kid}
	}
}

// compact sorts the entries by id and keeps the first line read of each,
// counting the others, and noting a contradiction where two differ.
func (c *Checker) compact() {
	if c.sorted == len(c.entries) {
		return
	}
	// Stable: of two lines for one entry, the first read is kept.
	slices.SortStableFunc(c.entries, func(a, b entry) int { return compareIDs(a.id, b.id) })
	kept := c.entries[:0]
	for _, e := range c.entries {
		if n := len(kept); n > 0 && kept[n-1].id == e.id {
			c.lines.duplicates++
			if old := kept[n-1]; old.computed != e.computed || old.prev != e.prev || old.hash != e.hash {
				c.contradiction = earliest(c.contradiction, &problem{at: e.id, hasAt: true,
					text: fmt.Sprintf("two different lines for entry %s: the record was altered, in the lines or in Lockbox's log after the SIEM received it", e.id)})
			}
			continue
		}
		kept = append(kept, e)
	}
	clear(c.entries[len(kept):])
	c.entries, c.sorted = kept, len(kept)
}

// find returns the entry of id, or nil; the entries are compacted.
func (c *Checker) find(i id) *entry {
	if n, ok := slices.BinarySearchFunc(c.entries, i, func(e entry, i id) int { return compareIDs(e.id, i) }); ok {
		return &c.entries[n]
	}
	return nil
}

// recordID is the Id of e's record.
func (c *Checker) recordID(e *entry) string {
	if e.isUUID {
		return e.uuid.String()
	}
	return c.recordIDs[e.id]
}

// Seal states, as the API's verification names them.
const (
	SealVerified     = "verified"
	SealNone         = "none"
	SealUnverifiable = "unverifiable"
	SealForged       = "forged"
)

// Result is what Check found.
type Result struct {
	Tenant string `json:"tenant"`
	// Records is how many of the tenant's records verify, from the first
	// the lines hold up to the one before BrokenAt; Entries how many they
	// hold (distinct entries, a line read twice counted once).
	Records int  `json:"records"`
	Entries int  `json:"entries"`
	OK      bool `json:"ok"`
	// BrokenAt is the entry where the records stop being intact, when
	// the problem is at one; RecordId is its record's Id.
	BrokenAt string `json:"broken_at,omitempty"`
	RecordId string `json:"record_id,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// First and Last are the first and the last entry the lines hold;
	// FromStart says the first is the tenant's first record ever (its
	// previous hash is empty): otherwise the records before it are not
	// in the lines, and the check starts from it.
	First     string `json:"first_entry"`
	Last      string `json:"last_entry"`
	FromStart bool   `json:"from_start"`
	// Seal is the state of the newest seal among the lines that names an
	// entry they hold before BrokenAt (forged when a seal line is not
	// Lockbox's); SealedThrough, SealedAt and SealKeyID describe the
	// newest verified one. UnsealedRecords is how many of the Records
	// after it the chain alone covers (all of them without one).
	Seal            string `json:"seal"`
	SealedThrough   string `json:"sealed_through,omitempty"`
	SealedAt        string `json:"sealed_at,omitempty"`
	SealKeyID       string `json:"seal_key_id,omitempty"`
	UnsealedRecords int    `json:"unsealed_records"`
	// SealsChecked is how many seals were checked against the records;
	// SealsBeyond how many name an entry after the last the lines hold,
	// or before the first when the lines do not start at the tenant's
	// first record: outside what the files hold.
	SealsChecked int `json:"seals_checked"`
	SealsBeyond  int `json:"seals_beyond"`
	// SealsUnverifiable is how many seals name a key not in the key set.
	SealsUnverifiable int `json:"seals_unverifiable"`
	// Unplaced and Ambiguous count the tenant's record lines no chain
	// hash covers (see stats): any of them makes the records not intact.
	// OCSF, Unreadable and Duplicates count the lines passed over.
	Unplaced   int `json:"lines_unplaced"`
	Ambiguous  int `json:"lines_ambiguous"`
	OCSF       int `json:"lines_ocsf"`
	Unreadable int `json:"lines_unreadable"`
	Duplicates int `json:"lines_read_again"`
}

// ErrNothing is returned by Check when the lines hold none of the
// tenant's records in a form it can check.
var ErrNothing = errors.New("siemcheck: no record of the tenant to check")

// Check checks the lines read: every entry's hash over its record, every
// entry's link to the one before it, and every seal of the tenant among
// them against the records. It returns an error when nothing could be
// checked: no record of the tenant, or seals that could not be judged
// (no key set or issuer, or seals of Lockbox's keys issued under another
// name than the issuer given, and none under it).
func (c *Checker) Check() (Result, error) {
	c.compact()
	r := Result{Tenant: c.tenant, Unplaced: c.lines.unplaced, Ambiguous: c.lines.ambiguous, OCSF: c.lines.ocsf,
		Unreadable: c.lines.unreadable, Duplicates: c.lines.duplicates}
	if c.setup != nil {
		return r, fmt.Errorf("siemcheck: can't check seals: %w", c.setup)
	}
	if len(c.entries) == 0 {
		switch {
		case c.lines.ocsf > 0:
			return r, fmt.Errorf("%w: the lines are OCSF events, which no hash covers: only the json format (LOCKBOX_SIEM_FORMAT=json) can be checked", ErrNothing)
		case c.lines.unplaced > 0:
			return r, fmt.Errorf("%w: its %d record lines carry no %s (written by a Lockbox from before records were placed in their lines)", ErrNothing, c.lines.unplaced, EntryField)
		}
		return r, fmt.Errorf("%w: no line names tenant %q", ErrNothing, c.tenant)
	}
	if c.otherIssuer != "" && len(c.seals) == 0 {
		return r, fmt.Errorf("siemcheck: the seals are signed by the keys given but issued by %q, not %q: give the deployment's LOCKBOX_PROXY_ASSERTION_ISSUER (--issuer %s)", c.otherIssuer, c.issuer, c.otherIssuer)
	}
	es := c.entries
	r.Entries, r.First, r.Last = len(es), es[0].id.String(), es[len(es)-1].id.String()
	r.FromStart = es[0].prev.kind == digestEmpty

	broken := earliest(c.contradiction, c.chainBreak())
	broken = earliest(broken, c.sealsBreak(&r))
	broken = earliest(broken, c.forged)
	if c.uncovered != "" {
		n := c.lines.unplaced + c.lines.ambiguous
		const why = "slipped into the files, or written by a Lockbox from before records were placed in their lines (check only the files written since every replica runs a version that places them)"
		text := fmt.Sprintf("%d of the tenant's record lines (the first: record %s) carry no place in the chain that the check can trust, so no hash covers them: %s", n, c.uncovered, why)
		if n == 1 {
			text = fmt.Sprintf("a record line of the tenant (record %s) carries no place in the chain that the check can trust, so no hash covers it: %s", c.uncovered, why)
		}
		broken = earliest(broken, &problem{text: text})
	}
	r.OK = broken == nil
	if !r.OK {
		r.Problem = broken.text
		if broken.hasAt {
			r.BrokenAt = broken.at.String()
			if e := c.find(broken.at); e != nil {
				r.RecordId = c.recordID(e)
			}
		}
	}
	// What is verified ends where the records stop being intact.
	good := func(e *entry) bool {
		return e.verified && (broken == nil || !broken.hasAt || compareIDs(e.id, broken.at) < 0)
	}
	var newest *sealed
	var newestInfo sealInfo
	for k, info := range c.seals {
		e := c.find(k.at)
		if e == nil || !good(e) || e.computed != k.hash {
			continue
		}
		if newest == nil || compareIDs(k.at, newest.at) > 0 || (k.at == newest.at && info.sealedAt > newestInfo.sealedAt) {
			newest, newestInfo = &k, info
		}
	}
	newestUnknown, unknownKid := id{}, ""
	for at, kid := range c.unknownKeys {
		if e := c.find(at); e != nil && good(e) && (unknownKid == "" || compareIDs(at, newestUnknown) > 0) {
			newestUnknown, unknownKid = at, kid
		}
	}
	r.SealsUnverifiable = len(c.unknownKeys)
	if c.otherIssuer != "" {
		r.SealsUnverifiable++
	}
	switch {
	case c.forged != nil:
		r.Seal = SealForged
	case newest != nil:
		r.Seal = SealVerified
	case unknownKid != "":
		r.Seal, r.SealKeyID = SealUnverifiable, unknownKid
	default:
		r.Seal = SealNone
	}
	if newest != nil {
		r.SealedThrough, r.SealedAt, r.SealKeyID = newest.at.String(), time.Unix(newestInfo.sealedAt, 0).UTC().Format(time.RFC3339), newestInfo.kid
	}
	for i := range es {
		if good(&es[i]) {
			r.Records++
			if newest == nil || compareIDs(es[i].id, newest.at) > 0 {
				r.UnsealedRecords++
			}
		}
	}
	return r, nil
}

// chainBreak walks the entries in order, marks those that verify, and
// returns where the chain breaks, if it does.
func (c *Checker) chainBreak() *problem {
	es := c.entries
	for i := range es {
		e := &es[i]
		text := ""
		switch {
		case e.computed != e.hash:
			text = fmt.Sprintf("the record of entry %s is not the one Lockbox hashed: it was altered", e.id)
		case i > 0 && e.prev.kind == digestEmpty:
			text = fmt.Sprintf("entry %s starts the tenant's chain again after entry %s (its previous hash is empty): the tenant's log in Lockbox's Redis was emptied and started over (a store that lost its data), or rewritten from scratch", e.id, es[i-1].id)
		case i > 0 && e.prev != es[i-1].computed:
			// Missing here, or the chain rewritten in Redis before
			// this record was appended after it.
			text = fmt.Sprintf("entry %s does not follow entry %s: a record between them is missing from the lines, or a record before it was altered, in the lines or in Lockbox's log before this one was written", e.id, es[i-1].id)
			if c.lines.unplaced > 0 {
				text += fmt.Sprintf(" (%d of the tenant's record lines carry no place in the chain, as a forwarder from before this version wrote them: the record missing may be among them)", c.lines.unplaced)
			}
		}
		if text != "" {
			return &problem{at: e.id, hasAt: true, text: text}
		}
		e.verified = true
	}
	return nil
}

// sealsBreak checks every seal Lockbox signed against the records, counts
// them in r, and returns the earliest that the records contradict. A seal
// whose entry the lines hold must name the hash computed from the lines;
// a seal of an entry the lines do not hold, between the first and the
// last they do, or before the first when that one starts the tenant's
// chain, shows the lines' entries were left out or renumbered.
func (c *Checker) sealsBreak(r *Result) *problem {
	var broken *problem
	first, last := c.entries[0], c.entries[len(c.entries)-1]
	for k, info := range c.seals {
		at := time.Unix(info.sealedAt, 0).UTC().Format(time.RFC3339)
		e := c.find(k.at)
		var p *problem
		switch {
		case e != nil:
			r.SealsChecked++
			if e.computed != k.hash {
				p = &problem{text: fmt.Sprintf("the records up to entry %s are not what Lockbox sealed at %s: one of them was altered, left out or slipped in", k.at, at)}
			} else if !e.verified {
				// Sealed after the chain breaks: the break is reported.
				continue
			}
		case compareIDs(k.at, last.id) > 0, compareIDs(k.at, first.id) < 0 && first.prev.kind != digestEmpty:
			r.SealsBeyond++
		case compareIDs(k.at, first.id) < 0:
			r.SealsChecked++
			p = &problem{text: fmt.Sprintf("Lockbox sealed entry %s at %s, before entry %s, which the lines give as the tenant's first record: the entries were renumbered", k.at, at, first.id)}
		default:
			r.SealsChecked++
			p = &problem{text: fmt.Sprintf("Lockbox sealed entry %s at %s, and no line holds it, though the lines hold entries before and after it: the record was left out of the lines, or the lines' entries renumbered", k.at, at)}
		}
		if p != nil {
			p.at, p.hasAt = k.at, true
			broken = earliest(broken, p)
		}
	}
	return broken
}
