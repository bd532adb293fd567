package audit_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/grantsig"
)

// siemFile is what a SIEM received from the real forwarder: contoso's
// and fabrikam's records and seals, contoso's five records sealed and two
// after the seal, in the json format. ids are contoso's entry ids.
type siemFile struct {
	lines []string
	ids   []string
	keys  *grantsig.KeySet
}

func newSIEMFile(t *testing.T, format audit.Format) siemFile {
	t.Helper()
	e := newSealEnv(t, newKey(t))
	sink := &memSink{}
	fw := e.sealForwarder(t, "r1", sink, nil, format)
	e.write(t, "contoso", 5)
	e.write(t, "fabrikam", 3)
	if n := e.sealAll(t); n != 2 {
		t.Fatalf("sealed %d chains, want 2", n)
	}
	poll(t, fw)
	e.write(t, "contoso", 2)
	poll(t, fw)
	return siemFile{lines: sink.got(), ids: e.ids(t, "contoso"), keys: e.published.Load()}
}

// check runs siemcheck over lines as one file, as contoso's.
func check(t *testing.T, lines []string, ks *grantsig.KeySet) (siemcheck.Result, error) {
	t.Helper()
	c := siemcheck.New("contoso", ks, "lockbox")
	if err := c.Read(strings.NewReader(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	return c.Check()
}

// edit returns lines with the i-th record line of contoso's (in stream
// order) replaced by f of it.
func edit(t *testing.T, lines []string, i int, f func(string) string) []string {
	t.Helper()
	out := slices.Clone(lines)
	n := 0
	for j, l := range out {
		if strings.Contains(l, `"LockboxTenant":"contoso"`) && strings.Contains(l, `"`+siemcheck.EntryField+`"`) {
			if n == i {
				out[j] = f(l)
				return out
			}
			n++
		}
	}
	t.Fatalf("no record line %d of contoso's", i)
	return nil
}

// TestSIEMCopyChecksOffline: the lines the forwarder wrote are checked
// with nothing but them and the published keys: intact and sealed as
// written, in any order and read twice; an edited line, a missing one, a
// rewrite with every later hash recomputed, two versions of one entry
// and a seal copied from another tenant are each caught where they are.
func TestSIEMCopyChecksOffline(t *testing.T) {
	f := newSIEMFile(t, audit.FormatJSON)
	ids := f.ids
	if len(ids) != 7 {
		t.Fatalf("contoso has %d records, want 7", len(ids))
	}
	intact := func(t *testing.T, r siemcheck.Result, err error) {
		t.Helper()
		if err != nil || !r.OK || r.Records != 7 || r.Entries != 7 || r.First != ids[0] || r.Last != ids[6] || !r.FromStart ||
			r.Seal != siemcheck.SealVerified || r.SealedThrough != ids[4] || r.UnsealedRecords != 2 || r.SealsChecked != 1 {
			t.Fatalf("got %+v, %v; want 7 records intact, sealed through %s, 2 after it", r, err, ids[4])
		}
	}

	t.Run("as written", func(t *testing.T) {
		r, err := check(t, f.lines, f.keys)
		intact(t, r, err)
	})
	t.Run("out of order and read twice", func(t *testing.T) {
		// Lines taken over from a dead replica arrive late, and a line
		// the sink took before a crash comes again.
		lines := append(slices.Clone(f.lines), f.lines[1], f.lines[3])
		rand.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
		r, err := check(t, lines, f.keys)
		intact(t, r, err)
		if r.Duplicates != 2 {
			t.Errorf("duplicates %d, want 2", r.Duplicates)
		}
	})
	t.Run("over several files", func(t *testing.T) {
		c := siemcheck.New("contoso", f.keys, "lockbox")
		half := len(f.lines) / 2
		for _, part := range [][]string{f.lines[half:], f.lines[:half]} {
			// The last line of a file without its line break.
			if err := c.Read(strings.NewReader(strings.Join(part, "\n"))); err != nil {
				t.Fatal(err)
			}
		}
		r, err := c.Check()
		intact(t, r, err)
	})
	t.Run("a record edited", func(t *testing.T) {
		lines := edit(t, f.lines, 1, func(l string) string {
			return strings.Replace(l, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
		})
		r, err := check(t, lines, f.keys)
		if err != nil || r.OK || r.BrokenAt != ids[1] || r.Records != 1 || !strings.Contains(r.Problem, "altered") || r.RecordId == "" {
			t.Fatalf("got %+v, %v; want broken at %s", r, err, ids[1])
		}
	})
	t.Run("a record left out", func(t *testing.T) {
		lines := edit(t, f.lines, 2, func(string) string { return "" })
		r, err := check(t, lines, f.keys)
		if err != nil || r.OK || r.BrokenAt != ids[3] || r.Records != 2 || !strings.Contains(r.Problem, "missing") {
			t.Fatalf("got %+v, %v; want broken at %s, after the one left out", r, err, ids[3])
		}
	})
	t.Run("a rewrite with the hashes recomputed", func(t *testing.T) {
		// Whoever can write the SIEM's file edits a sealed record and
		// recomputes every later hash: the links hold, the seal does not.
		lines := slices.Clone(f.lines)
		prev := ""
		for i := range 7 {
			lines = edit(t, lines, i, func(l string) string {
				rec, entry, _, _, ok := siemcheck.Split([]byte(l))
				if !ok {
					t.Fatalf("line %s has no place", l)
				}
				s := string(rec)
				if i == 1 {
					s = strings.Replace(s, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
				}
				h := audit.ChainHash(prev, s)
				out := string(siemcheck.Place([]byte(s), entry, prev, h))
				prev = h
				return out
			})
		}
		r, err := check(t, lines, f.keys)
		if err != nil || r.OK || r.BrokenAt != ids[4] || !strings.Contains(r.Problem, "not what Lockbox sealed") {
			t.Fatalf("got %+v, %v; want broken at the sealed %s", r, err, ids[4])
		}
	})
	t.Run("two versions of a record", func(t *testing.T) {
		edited := edit(t, f.lines, 3, func(l string) string {
			return strings.Replace(l, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
		})
		lines := append(slices.Clone(f.lines), edited...)
		r, err := check(t, lines, f.keys)
		if err != nil || r.OK || r.BrokenAt != ids[3] || !strings.Contains(r.Problem, "two different lines") {
			t.Fatalf("got %+v, %v; want broken at %s", r, err, ids[3])
		}
	})
	t.Run("another tenant's seal", func(t *testing.T) {
		lines := slices.Clone(f.lines)
		for i, l := range lines {
			if strings.Contains(l, audit.SealRecordType) && strings.Contains(l, `"LockboxTenant":"fabrikam"`) {
				lines[i] = strings.Replace(l, `"LockboxTenant":"fabrikam"`, `"LockboxTenant":"contoso"`, 1)
			}
		}
		r, err := check(t, lines, f.keys)
		if err != nil || r.OK || r.Seal != siemcheck.SealForged || !strings.Contains(r.Problem, `sealed for tenant "fabrikam"`) {
			t.Fatalf("got %+v, %v; want a forged seal", r, err)
		}
	})
	t.Run("a key not published", func(t *testing.T) {
		other, err := grantsig.NewKeySet(newKey(t).Public())
		if err != nil {
			t.Fatal(err)
		}
		r, err := check(t, f.lines, other)
		if err != nil || !r.OK || r.Seal != siemcheck.SealUnverifiable || r.SealsUnverifiable != 1 || r.UnsealedRecords != 7 {
			t.Fatalf("got %+v, %v; want the chain intact and its seal unverifiable", r, err)
		}
	})
	t.Run("from the middle of the chain", func(t *testing.T) {
		// A SIEM keeps the lines since it started taking them, or one
		// day's file: the check starts at the first entry it holds.
		var lines []string
		for _, l := range f.lines {
			if rec, entry, _, _, ok := siemcheck.Split([]byte(l)); ok && strings.Contains(string(rec), `"contoso"`) &&
				(entry == ids[0] || entry == ids[1] || entry == ids[2]) {
				continue
			}
			lines = append(lines, l)
		}
		r, err := check(t, lines, f.keys)
		if err != nil || !r.OK || r.FromStart || r.First != ids[3] || r.Records != 4 || r.Seal != siemcheck.SealVerified || r.SealedThrough != ids[4] {
			t.Fatalf("got %+v, %v; want 4 records from %s, sealed through %s", r, err, ids[3], ids[4])
		}
	})
	t.Run("lines without a place", func(t *testing.T) {
		var lines []string
		for _, l := range f.lines {
			if rec, _, _, _, ok := siemcheck.Split([]byte(l)); ok {
				l = string(rec)
			}
			lines = append(lines, l)
		}
		if _, err := check(t, lines, f.keys); !errors.Is(err, siemcheck.ErrNothing) || !strings.Contains(err.Error(), siemcheck.EntryField) {
			t.Fatalf("got %v, want ErrNothing naming %s", err, siemcheck.EntryField)
		}
	})
}

// TestSIEMCopyOCSFIsNotChecked: OCSF events are a translation no hash
// covers, and the check says so rather than reporting nothing found.
func TestSIEMCopyOCSFIsNotChecked(t *testing.T) {
	f := newSIEMFile(t, audit.FormatOCSF)
	if _, err := check(t, f.lines, f.keys); !errors.Is(err, siemcheck.ErrNothing) || !strings.Contains(err.Error(), "OCSF") {
		t.Fatalf("got %v, want ErrNothing naming OCSF", err)
	}
}
