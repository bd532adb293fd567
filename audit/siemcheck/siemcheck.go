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
	"encoding/json"
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
// stored bytes from it.
func Place(line []byte, entry, prev, hash string) []byte {
	n := len(line)
	if n < 2 || line[0] != '{' || line[n-1] != '}' || bytes.ContainsAny(line, "\r\n") || entry == "" || hash == "" {
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
// must be: `,"LockboxEntry":"N-N","LockboxPrevHash":"HEX*","LockboxHash":"HEX+"}`
// (the comma absent only for an empty record), hex in lower case.
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
	if !ok {
		return nil, nil, nil, nil, nil, false
	}
	rest, p, ok := cutBack(rest, "", isHex, 0, `","`+PrevHashField+`":"`)
	if !ok {
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

// Checker gathers one tenant's lines from one or more files (Read), then
// checks them (Check). Lines of other tenants are passed over.
type Checker struct {
	tenant string
	// entries are the record lines read: sorted by id, one per id, up to
	// sorted; compact sorts them all and drops the lines read again.
	entries []entry
	sorted  int
	// recordIDs holds the records' Ids that are not canonical UUIDs, by
	// entry, as the first line read for the entry gave it.
	recordIDs map[id]string
	seals     map[string]seal
	// problem is the first contradiction found while reading (two lines
	// for one entry that differ), at entry at.
	problem string
	at      id
	lines   stats
}

type stats struct {
	// unplaced counts the tenant's record lines without a place: written
	// before Lockbox placed records in their lines, or not Lockbox's.
	unplaced int
	// ocsf counts OCSF events, which can't be checked.
	ocsf int
	// unreadable counts lines that are not JSON objects.
	unreadable int
	// duplicates counts lines read again: the SIEM gets each at least
	// once.
	duplicates int
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

type seal struct {
	through string
	token   string
}

// New returns a Checker of tenant's lines.
func New(tenant string) *Checker {
	return &Checker{tenant: tenant, recordIDs: map[id]string{}, seals: map[string]seal{}}
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
	var l struct {
		RecordType    json.RawMessage `json:"RecordType"`
		Id            string          `json:"Id"`
		LockboxTenant string          `json:"LockboxTenant"`
		SealedThrough string          `json:"SealedThrough"`
		SealToken     string          `json:"SealToken"`
		ClassUID      *int            `json:"class_uid"`
	}
	if b[0] != '{' || json.Unmarshal(b, &l) != nil {
		c.lines.unreadable++
		return
	}
	if l.ClassUID != nil {
		c.lines.ocsf++
		return
	}
	if l.LockboxTenant != c.tenant {
		return
	}
	if string(l.RecordType) == strconv.Quote(SealRecordType) {
		if l.SealToken != "" {
			c.seals[l.SealToken] = seal{through: l.SealedThrough, token: l.SealToken}
		}
		return
	}
	head, ms, seq, prev, hash, ok := split(b)
	eid, idOK := parseIDParts(ms, seq)
	if !ok || !idOK {
		c.lines.unplaced++
		return
	}
	e := entry{id: eid, prev: digestOf(prev), hash: digestOf(hash), computed: computed(link(prev, head, closeBrace))}
	if u, err := uuid.Parse(l.Id); err == nil && u.String() == l.Id {
		e.uuid, e.isUUID = u, true
	} else if _, seen := c.recordIDs[eid]; !seen {
		c.recordIDs[eid] = l.Id
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
				c.contradict(e.id, fmt.Sprintf("two different lines for entry %s: the record was altered, in the lines or in Lockbox's log after the SIEM received it", e.id))
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

func (c *Checker) contradict(at id, problem string) {
	if c.problem == "" || compareIDs(at, c.at) < 0 {
		c.problem, c.at = problem, at
	}
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
	Records  int    `json:"records"`
	Entries  int    `json:"entries"`
	OK       bool   `json:"ok"`
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
	// entry they hold; SealedThrough, SealedAt and SealKeyID describe it
	// when verified. UnsealedRecords is how many records after it the
	// chain alone covers (all of them without a verified seal).
	Seal            string `json:"seal"`
	SealedThrough   string `json:"sealed_through,omitempty"`
	SealedAt        string `json:"sealed_at,omitempty"`
	SealKeyID       string `json:"seal_key_id,omitempty"`
	UnsealedRecords int    `json:"unsealed_records"`
	// SealsChecked is how many seal lines were checked against the
	// records; SealsBeyond how many name an entry the lines do not hold
	// (made after the last record in them, or before the first).
	SealsChecked int `json:"seals_checked"`
	SealsBeyond  int `json:"seals_beyond"`
	// SealsUnverifiable is how many seals name a key not in the key set.
	SealsUnverifiable int `json:"seals_unverifiable"`
	// Unplaced, OCSF, Unreadable and Duplicates count the lines passed
	// over (see stats).
	Unplaced   int `json:"lines_unplaced"`
	OCSF       int `json:"lines_ocsf"`
	Unreadable int `json:"lines_unreadable"`
	Duplicates int `json:"lines_read_again"`
}

// ErrNothing is returned by Check when the lines hold none of the
// tenant's records in a form it can check.
var ErrNothing = errors.New("siemcheck: no record of the tenant to check")

// Check checks the lines read: every entry's hash over its record, every
// entry's link to the one before it, and every seal of the tenant among
// them against the records, with keys (the JWKS Lockbox publishes) and
// issuer (LOCKBOX_PROXY_ASSERTION_ISSUER).
func (c *Checker) Check(keys *grantsig.KeySet, issuer string) (Result, error) {
	c.compact()
	r := Result{Tenant: c.tenant, Unplaced: c.lines.unplaced, OCSF: c.lines.ocsf,
		Unreadable: c.lines.unreadable, Duplicates: c.lines.duplicates}
	if len(c.entries) == 0 {
		switch {
		case c.lines.ocsf > 0:
			return r, fmt.Errorf("%w: the lines are OCSF events, which no hash covers: only the json format (LOCKBOX_SIEM_FORMAT=json) can be checked", ErrNothing)
		case c.lines.unplaced > 0:
			return r, fmt.Errorf("%w: its %d record lines carry no %s (written by a Lockbox from before records were placed in their lines)", ErrNothing, c.lines.unplaced, EntryField)
		}
		return r, fmt.Errorf("%w: no line names tenant %q", ErrNothing, c.tenant)
	}
	es := c.entries
	r.Entries, r.First, r.Last = len(es), es[0].id.String(), es[len(es)-1].id.String()
	r.FromStart = es[0].prev.kind == digestEmpty
	r.OK = true
	for i := range es {
		e := &es[i]
		problem := ""
		switch {
		case c.problem != "" && c.at == e.id:
			problem = c.problem
		case e.computed != e.hash:
			problem = fmt.Sprintf("the record of entry %s is not the one Lockbox hashed: it was altered", e.id)
		case i > 0 && e.prev.kind == digestEmpty:
			problem = fmt.Sprintf("entry %s starts the tenant's chain again after entry %s (its previous hash is empty): the tenant's log in Lockbox's Redis was emptied and started over (a store that lost its data), or rewritten from scratch", e.id, es[i-1].id)
		case i > 0 && e.prev != es[i-1].computed:
			// Missing here, or the chain rewritten in Redis before
			// this record was appended after it.
			problem = fmt.Sprintf("entry %s does not follow entry %s: a record between them is missing from the lines, or a record before it was altered, in the lines or in Lockbox's log before this one was written", e.id, es[i-1].id)
			if c.lines.unplaced > 0 {
				problem += fmt.Sprintf(" (%d of the tenant's record lines carry no place in the chain, as a forwarder from before this version wrote them: the record missing may be among them)", c.lines.unplaced)
			}
		}
		if problem != "" {
			r.OK, r.BrokenAt, r.RecordId, r.Problem = false, e.id.String(), c.recordID(e), problem
			break
		}
		e.verified = true
		r.Records++
	}
	c.checkSeals(&r, keys, issuer)
	return r, nil
}

// checkSeals checks every seal line against the records: a seal Lockbox
// signed whose entry the lines hold must name that entry's hash as
// computed from the lines. r.Seal is the state of the newest seal Lockbox
// signed among those naming an entry the lines hold; without one, of the
// newest whose key keys does not hold.
func (c *Checker) checkSeals(r *Result, keys *grantsig.KeySet, issuer string) {
	var newest, newestUnknown *entry
	var newestAt time.Time
	newestKid, unknownKid, forged := "", "", false
	for _, s := range sortedSeals(c.seals) {
		cl, kid, err := grantsig.VerifySeal(keys, s.token, issuer, c.tenant)
		// The line's SealedThrough only orders seals: the token is the
		// evidence, and says which entry it seals.
		sid, ok := parseID(cl.Through)
		var e *entry
		if ok {
			e = c.find(sid)
		}
		switch {
		case errors.Is(err, grantsig.ErrUnknownKey):
			r.SealsUnverifiable++
			if e != nil && (newestUnknown == nil || compareIDs(e.id, newestUnknown.id) > 0) {
				newestUnknown, unknownKid = e, kid
			}
			continue
		case err == nil && !ok:
			err = fmt.Errorf("it names no stream entry (%q)", cl.Through)
		}
		if err != nil {
			why := strings.TrimPrefix(err.Error(), grantsig.ErrInvalid.Error()+": ")
			forged, r.SealKeyID = true, kid
			c.fail(r, s.through, fmt.Sprintf("the seal line of entry %s is not a seal Lockbox made of tenant %s's log (%s): it was forged, or copied from another tenant's log", s.through, c.tenant, why))
			continue
		}
		if e == nil {
			r.SealsBeyond++
			continue
		}
		r.SealsChecked++
		if !e.verified || e.computed != digestOf([]byte(cl.Hash)) {
			c.fail(r, e.id.String(), fmt.Sprintf("the records up to entry %s are not what Lockbox sealed at %s: one of them was altered, left out or slipped in", e.id, cl.SealedAt().Format(time.RFC3339)))
			continue
		}
		if newest == nil || compareIDs(e.id, newest.id) > 0 {
			newest, newestAt, newestKid = e, cl.SealedAt(), kid
		}
	}
	switch {
	case forged:
		r.Seal = SealForged
		return
	case newest != nil:
		r.Seal, r.SealedThrough, r.SealedAt, r.SealKeyID = SealVerified, newest.id.String(), newestAt.Format(time.RFC3339), newestKid
	case newestUnknown != nil:
		r.Seal, r.SealKeyID = SealUnverifiable, unknownKid
	default:
		r.Seal = SealNone
	}
	for _, e := range c.entries {
		if e.verified && (newest == nil || compareIDs(e.id, newest.id) > 0) {
			r.UnsealedRecords++
		}
	}
}

// fail marks r broken at entry at, unless it already is at an earlier one.
func (c *Checker) fail(r *Result, at, problem string) {
	if !r.OK {
		if a, ok1 := parseID(at); ok1 {
			if b, ok2 := parseID(r.BrokenAt); ok2 && compareIDs(b, a) <= 0 {
				return
			}
		}
	}
	r.OK, r.BrokenAt, r.Problem = false, at, problem
	r.RecordId = ""
	if a, ok := parseID(at); ok {
		if e := c.find(a); e != nil {
			r.RecordId = c.recordID(e)
		}
	}
}

// sortedSeals orders the seals by the entry their line names, so that
// what Check reports does not depend on the order of the lines.
func sortedSeals(m map[string]seal) []seal {
	out := make([]seal, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b seal) int {
		x, _ := parseID(a.through)
		y, _ := parseID(b.through)
		return cmp.Or(compareIDs(x, y), strings.Compare(a.token, b.token))
	})
	return out
}
