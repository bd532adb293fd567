package siemcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/grantsig/grantsigtest"
)

// The attacks below are by whoever can write the SIEM's files: they edit,
// drop, add or renumber lines, and recompute every hash, but can't sign.

// chainOf places recs as entries ids, chained; it returns the lines and
// the hashes.
func chainOf(recs, ids []string) (lines, hashes []string) {
	prev := ""
	for i, r := range recs {
		h := Link(prev, []byte(r))
		lines = append(lines, string(Place([]byte(r), ids[i], prev, h)))
		hashes = append(hashes, h)
		prev = h
	}
	return lines, hashes
}

func entryID(i int) string { return fmt.Sprintf("%d-0", 1767225600000+10*i) }

func recordOf(i int, who string) string {
	return fmt.Sprintf(`{"Id":"rec-%d","Operation":"Get-Mailbox","LockboxTenant":"contoso","ProviderUserId":%q}`, i, who)
}

type sealKey struct {
	signer *grantsig.Signer
	keys   *grantsig.KeySet
}

func newSealKey(t *testing.T) sealKey {
	s, ks := grantsigtest.NewKey(t)
	return sealKey{s, ks}
}

// line is the seal line of tenant's chain through entry, with hash, issued
// by issuer.
func (k sealKey) line(t *testing.T, issuer, tenant, through, hash string) string {
	t.Helper()
	tok, err := k.signer.SignSeal(grantsig.SealClaims{Issuer: issuer, Tenant: tenant, Through: through, Hash: hash, IssuedAt: 1767225700})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"RecordType": SealRecordType, "LockboxTenant": tenant, "SealedThrough": through, "SealToken": tok})
	return string(b)
}

func checkLines(t *testing.T, keys *grantsig.KeySet, lines []string) (Result, error) {
	t.Helper()
	c := New("contoso", keys, "lockbox")
	if err := c.Read(strings.NewReader(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	return c.Check()
}

func mustCheck(t *testing.T, keys *grantsig.KeySet, lines []string) Result {
	t.Helper()
	r, err := checkLines(t, keys, lines)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// six records, sealed through entries 2 and 4.
func sealedSix(t *testing.T, k sealKey) (recs, ids, seals []string) {
	for i := range 6 {
		recs = append(recs, recordOf(i, "alice"))
		ids = append(ids, entryID(i))
	}
	_, hs := chainOf(recs, ids)
	return recs, ids, []string{k.line(t, "lockbox", "contoso", ids[2], hs[2]), k.line(t, "lockbox", "contoso", ids[4], hs[4])}
}

// TestSealedEntryMissing: a seal is evidence for the entry it names. The
// records rewritten and rehashed, and the sealed entry's line dropped or
// given another id, leave that seal with no line to match; between the
// first and the last entry the lines hold, or before a first that starts
// the chain, that is no seal made later or earlier than the files, and
// the records are not intact.
func TestSealedEntryMissing(t *testing.T) {
	k := newSealKey(t)
	recs, ids, seals := sealedSix(t, k)
	honest, _ := chainOf(recs, ids)
	if r := mustCheck(t, k.keys, append(honest, seals...)); !r.OK || r.Seal != SealVerified || r.SealedThrough != ids[4] || r.SealsChecked != 2 {
		t.Fatalf("honest lines: %+v", r)
	}

	rewritten := append([]string{}, recs...)
	rewritten[3] = recordOf(3, "mallory")
	for _, c := range []struct {
		name string
		recs []string
		ids  []string
		at   string
		want string
	}{
		{"the sealed line renumbered", rewritten, []string{ids[0], ids[1], ids[2], ids[3], "1767225600040-1", ids[5]}, ids[4], "no line holds it"},
		{"the sealed line dropped", append(append([]string{}, rewritten[:4]...), rewritten[5]), append(append([]string{}, ids[:4]...), ids[5]), ids[4], "no line holds it"},
		{"every entry renumbered after the seals", []string{recordOf(0, "mallory"), recs[1], recs[2], recs[3], recs[4], recs[5]},
			[]string{entryID(100), entryID(101), entryID(102), entryID(103), entryID(104), entryID(105)}, ids[2], "renumbered"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines, _ := chainOf(c.recs, c.ids)
			r := mustCheck(t, k.keys, append(lines, seals...))
			if r.OK || r.BrokenAt != c.at || !strings.Contains(r.Problem, c.want) {
				t.Fatalf("got %+v; want broken at the sealed %s: %s", r, c.at, c.want)
			}
		})
	}

	t.Run("seals outside the files", func(t *testing.T) {
		// Files from entry 3 on (an earlier file not given) and a seal
		// made after the last line: both honest.
		lines, hs := chainOf(recs, ids)
		later := k.line(t, "lockbox", "contoso", entryID(9), hs[5])
		r := mustCheck(t, k.keys, append(append([]string{}, lines[3:]...), seals[0], later))
		if !r.OK || r.SealsBeyond != 2 || r.Seal != SealNone || r.FromStart {
			t.Fatalf("got %+v; want intact, 2 seals beyond the files", r)
		}
	})
}

// TestLinesOnlyOtherReadersSee: lines are routed by their members' exact
// names, as jq, Python and SIEMs read them; a record line of the tenant
// that no hash covers (no place, or a member given twice) means the
// records are not intact, however it is spelled.
func TestLinesOnlyOtherReadersSee(t *testing.T) {
	k := newSealKey(t)
	recs, ids, seals := sealedSix(t, k)
	honest, _ := chainOf(recs, ids)
	for _, c := range []struct{ name, line string }{
		{"a record slipped in, no place", `{"Id":"rec-x","Operation":"New-InboxRule","LockboxTenant":"contoso"}`},
		{"a second tenant member in lower case", `{"Id":"rec-x","LockboxTenant":"contoso","lockboxtenant":""}`},
		{"the tenant member spelled with an escape", `{"Id":"rec-x","Lockbox\u0054enant":"contoso"}`},
		{"the tenant member twice", `{"Id":"rec-x","LockboxTenant":"contoso","LockboxTenant":"fabrikam"}`},
		{"the tenant member twice, the other way", `{"Id":"rec-x","LockboxTenant":"fabrikam","LockboxTenant":"contoso"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mustCheck(t, k.keys, append(append([]string{}, honest...), append(seals, c.line)...))
			if r.OK || !strings.Contains(r.Problem, "a record line of the tenant (record rec-x) carries no place") || r.Unplaced+r.Ambiguous != 1 {
				t.Fatalf("got %+v; want not intact, the line rec-x uncovered", r)
			}
			if r.Records != 6 || r.Seal != SealVerified {
				t.Fatalf("got %+v; the chain itself is intact and sealed", r)
			}
		})
	}
	two := mustCheck(t, k.keys, append(append([]string{}, honest...), `{"Id":"rec-x","LockboxTenant":"contoso"}`, `{"Id":"rec-y","LockboxTenant":"contoso"}`))
	if two.OK || !strings.Contains(two.Problem, "2 of the tenant's record lines (the first: record rec-x) carry no place") || two.Unplaced != 2 {
		t.Fatalf("two lines slipped in: got %+v", two)
	}
	// Another tenant's line, and one whose member differs only in case
	// from the tenant's name, are not the tenant's.
	r := mustCheck(t, k.keys, append(append([]string{}, honest...), append(seals,
		`{"Id":"f","LockboxTenant":"fabrikam"}`, `{"Id":"g","LockboxTenant":"Contoso"}`, `{"Id":"h","lockboxtenant":"contoso"}`)...))
	if !r.OK || r.Unplaced != 0 {
		t.Fatalf("got %+v; want intact", r)
	}
}

// TestSealLineCannotMoveTheBreak: a seal line that is not Lockbox's is
// reported, but never displaces a break the chain shows at an earlier
// entry, nor one at any entry when it names none; and Records counts only
// what comes before the break reported.
func TestSealLineCannotMoveTheBreak(t *testing.T) {
	k := newSealKey(t)
	recs, ids, seals := sealedSix(t, k)
	lines, _ := chainOf(recs, ids)
	lines[1] = strings.Replace(lines[1], "alice", "mallory", 1)
	junk := `{"RecordType":"LockboxAuditSeal","LockboxTenant":"contoso","SealedThrough":"see ticket 42: all fine","SealToken":"x.y.z"}`
	later := strings.Replace(junk, "see ticket 42: all fine", ids[3], 1)
	for _, extra := range []string{junk, later} {
		r := mustCheck(t, k.keys, append(append([]string{}, lines...), append(seals, extra)...))
		if r.OK || r.BrokenAt != ids[1] || r.RecordId != "rec-1" || !strings.Contains(r.Problem, "altered") || r.Records != 1 || r.Seal != SealForged {
			t.Fatalf("with %s: got %+v; want broken at %s, altered, 1 record, seal forged", extra, r, ids[1])
		}
	}

	// A forged seal line at an earlier entry than the chain's break is
	// where the records stop being intact.
	lines, _ = chainOf(recs, ids)
	lines[4] = strings.Replace(lines[4], "alice", "mallory", 1)
	early := strings.Replace(junk, "see ticket 42: all fine", ids[2], 1)
	r := mustCheck(t, k.keys, append(append([]string{}, lines...), append(seals, early)...))
	if r.OK || r.BrokenAt != ids[2] || !strings.Contains(r.Problem, "not a seal Lockbox made") || r.Records != 2 || r.UnsealedRecords != 2 {
		t.Fatalf("got %+v; want broken at the forged seal's %s, 2 records before it", r, ids[2])
	}
}

// TestHostileLinesKeepLittle: what a line makes the Checker keep is
// bounded, however long the line: seals are checked as read and only what
// they say kept, and a record's Id is cut.
func TestHostileLinesKeepLittle(t *testing.T) {
	k := newSealKey(t)
	c := New("contoso", k.keys, "lockbox")
	var in bytes.Buffer
	big := strings.Repeat("A", 1<<20)
	for i := range 8 {
		fmt.Fprintf(&in, `{"RecordType":"LockboxAuditSeal","LockboxTenant":"contoso","SealedThrough":"%d-0","SealToken":"%s"}`+"\n", i, big)
	}
	rec := fmt.Sprintf(`{"Id":%q,"LockboxTenant":"contoso"}`, big)
	in.Write(Place([]byte(rec), "1-0", "", Link("", []byte(rec))))
	in.WriteByte('\n')
	if err := c.Read(&in); err != nil {
		t.Fatal(err)
	}
	if len(c.seals) != 0 || len(c.unknownKeys) != 0 || c.forged == nil || len(c.forged.text) > 1024 {
		t.Fatalf("kept %d seals, %d unknown, forged %v", len(c.seals), len(c.unknownKeys), c.forged)
	}
	if id := c.recordIDs[id{1, 0}]; len(id) > maxRecordID+len("…") {
		t.Fatalf("kept a record Id of %d bytes", len(id))
	}
}

// TestLegacyRecordsChecked: records written before Lockbox followed the
// common schema name their tenant by OrganizationId alone; forwarded with
// their place, they are the tenant's chain like any other.
func TestLegacyRecordsChecked(t *testing.T) {
	k := newSealKey(t)
	legacy := func(i int, who string) string {
		return fmt.Sprintf(`{"Id":"old-%d","Operation":"Get-Mailbox","OrganizationId":"contoso","UserId":%q,"Method":"GET","Path":"/mailbox"}`, i, who)
	}
	recs := []string{legacy(0, "alice"), legacy(1, "alice"), recordOf(2, "alice"), recordOf(3, "alice")}
	ids := []string{entryID(0), entryID(1), entryID(2), entryID(3)}
	lines, hs := chainOf(recs, ids)
	seal := k.line(t, "lockbox", "contoso", ids[3], hs[3])
	other := string(Place([]byte(`{"Id":"old-f","OrganizationId":"fabrikam"}`), "5-0", "", "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"))
	if r := mustCheck(t, k.keys, append(append([]string{}, lines...), seal, other)); !r.OK || r.Records != 4 || !r.FromStart || r.Seal != SealVerified {
		t.Fatalf("got %+v; want 4 records intact from the start, sealed", r)
	}
	lines[0] = strings.Replace(lines[0], "alice", "mallory", 1)
	if r := mustCheck(t, k.keys, append(lines, seal)); r.OK || r.BrokenAt != ids[0] || r.RecordId != "old-0" {
		t.Fatalf("got %+v; want broken at the edited legacy record", r)
	}
}

// TestSealsThatCantBeJudged: seals signed by the keys given but issued
// under another name are most likely checked with the wrong --issuer, and
// no seal is judged without a key set: nothing can be said, rather than
// "forged".
func TestSealsThatCantBeJudged(t *testing.T) {
	k := newSealKey(t)
	recs, ids, _ := sealedSix(t, k)
	lines, hs := chainOf(recs, ids)
	prod := k.line(t, "lockbox-prod", "contoso", ids[5], hs[5])
	if _, err := checkLines(t, k.keys, append(lines, prod)); err == nil || !strings.Contains(err.Error(), `issued by "lockbox-prod"`) || errors.Is(err, ErrNothing) {
		t.Fatalf("got %v; want an error naming the issuer", err)
	}
	// One of the deployment's seals among them: judged by it, the other
	// counted as unverifiable.
	r := mustCheck(t, k.keys, append(append([]string{}, lines...), prod, k.line(t, "lockbox", "contoso", ids[4], hs[4])))
	if !r.OK || r.Seal != SealVerified || r.SealsUnverifiable != 1 {
		t.Fatalf("got %+v; want intact, sealed, 1 seal unverifiable", r)
	}
	c := New("contoso", nil, "lockbox")
	if err := c.Read(strings.NewReader(strings.Join(append(lines, prod), "\n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(); err == nil || !strings.Contains(err.Error(), "can't check seals") {
		t.Fatalf("no key set: got %v", err)
	}
}

// routedBy is readRouting as encoding/json's Decoder reads the same line,
// member by member with exact names: each routing member's values, last
// one last.
func routedBy(line []byte) (map[string][]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	got := map[string][]string{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		switch name := k.(string); name {
		case "RecordType", "Id", "LockboxTenant", "OrganizationId", "SealedThrough", "SealToken", "class_uid":
			got[name] = append(got[name], string(v))
		}
	}
	return got, true
}

// FuzzReadRouting: readRouting, which scans a line itself, finds for every
// valid JSON object the members the standard library's decoder finds
// (exact names, escapes decoded, the last of a repeated one), says when
// one repeats, and never panics on any bytes.
func FuzzReadRouting(f *testing.F) {
	f.Add([]byte(`{"Id":"a","LockboxTenant":"contoso","RecordType":104}`))
	f.Add([]byte(`{"Lockbox\u0054enant":"contoso","lockboxtenant":"x","N":[1,{"LockboxTenant":"no"}],"S":"}\"{"}`))
	f.Add([]byte(`{ "LockboxTenant" : "a" , "LockboxTenant" : "b" }`))
	f.Add([]byte(`{"class_uid":6003,"unmapped":{"LockboxTenant":"contoso"}}`))
	f.Add([]byte(`{"RecordType":"LockboxAuditSeal","SealToken":"a.b.c","SealedThrough":"1-0","x":null,"y":true,"z":-1.5e3}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, ok := readRouting(line)
		want, wantOK := routedBy(line)
		if !json.Valid(line) || len(line) == 0 || line[0] != '{' {
			wantOK = false
		}
		if ok != wantOK {
			t.Fatalf("readRouting(%q) ok = %v, the decoder %v", line, ok, wantOK)
		}
		if !ok {
			return
		}
		repeated := false
		for name, slot := range map[string][]byte{"RecordType": r.recordType, "Id": r.id, "LockboxTenant": r.tenant,
			"OrganizationId": r.orgID, "SealedThrough": r.sealedThrough, "SealToken": r.sealToken, "class_uid": r.classUID} {
			vs := want[name]
			repeated = repeated || len(vs) > 1
			switch {
			case len(vs) == 0 && slot != nil:
				t.Fatalf("readRouting(%q) found %s = %s, the decoder none", line, name, slot)
			case len(vs) > 0 && string(slot) != vs[len(vs)-1]:
				t.Fatalf("readRouting(%q) found %s = %s, the decoder %s", line, name, slot, vs[len(vs)-1])
			}
		}
		if r.repeated != repeated {
			t.Fatalf("readRouting(%q) repeated = %v, want %v", line, r.repeated, repeated)
		}
	})
}
