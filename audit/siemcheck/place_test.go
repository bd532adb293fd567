package siemcheck

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPlaceSplit: Split gives back the stored record and the place Place
// appended, whatever the record holds; a line Place leaves alone (no
// compact object) has no place.
func TestPlaceSplit(t *testing.T) {
	const H = "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"
	for _, rec := range []string{
		`{}`,
		`{"Id":"a"}`,
		// A value that looks like a place: escaped inside a string, never the line's end.
		`{"Comment":"\"LockboxEntry\":\"1-0\",\"LockboxPrevHash\":\"\",\"LockboxHash\":\"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7\"}"}`,
		`{"Parameters":[{"Name":"x","Value":"}"}]}`,
	} {
		line := Place([]byte(rec), "1796635019127-3", "c5cfe0634b3d67e39c14d6e6ffcae93eb9236fec", "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7")
		got, entry, prev, hash, ok := Split(line)
		if !ok || string(got) != rec || entry != "1796635019127-3" || prev != "c5cfe0634b3d67e39c14d6e6ffcae93eb9236fec" || hash != "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7" {
			t.Errorf("Split(Place(%s)) = %s, %q, %q, %q, %v", rec, got, entry, prev, hash, ok)
		}
		first := Place([]byte(rec), "1-0", "", "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7")
		if got, _, prev, _, ok := Split(first); !ok || string(got) != rec || prev != "" {
			t.Errorf("a first record: Split(%s) = %s, %q, %v", first, got, prev, ok)
		}
	}
	// A place not as Lockbox writes it (from a Redis edited by hand) is
	// not put into the line, where it could add members.
	for _, p := range [][3]string{
		{"1-0", "", H[:39]}, {"1-0", H + `","x":"`, H}, {"x-0", "", H}, {"1-0", "", ""}, {"", "", H}, {"1-0", strings.ToUpper(H), H},
	} {
		if line := Place([]byte(`{"Id":"a"}`), p[0], p[1], p[2]); string(line) != `{"Id":"a"}` {
			t.Errorf("Place(%q) = %s, want the line unchanged", p, line)
		}
	}
	for _, rec := range []string{`"not an object"`, "{\"Id\":\n\"a\"}", `{"Id":"a"} `, `[1]`, `{`} {
		if line := Place([]byte(rec), "1-0", "", "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"); !bytes.Equal(line, []byte(rec)) {
			t.Errorf("Place(%q) = %q, want it unchanged", rec, line)
		}
	}
	for _, line := range []string{
		`{"Id":"a"}`,
		`{"Id":"a""LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`, // no comma after a field
		`{"Id":"a","LockboxEntry":"x-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
	} {
		if rec, _, _, _, ok := Split([]byte(line)); ok {
			t.Errorf("Split(%s) = %s, want no place", line, rec)
		}
	}
}

// placedRE is the place's grammar as a regular expression: Split reads
// it by hand from the line's end, and must find what this finds.
var placedRE = regexp.MustCompile(`(,?)"` + EntryField + `":"([0-9]+)-([0-9]+)","` + PrevHashField + `":"((?:[0-9a-f]{40})?)","` + HashField + `":"([0-9a-f]{40})"\}$`)

// splitRE is Split as the regular expression reads a line.
func splitRE(line []byte) (record []byte, entry, prev, hash string, ok bool) {
	m := placedRE.FindSubmatchIndex(line)
	if m == nil {
		return nil, "", "", "", false
	}
	head, comma := line[:m[0]], m[3] > m[2]
	if len(head) == 0 || head[0] != '{' || bytes.ContainsAny(head, "\r\n") || comma == (len(head) == 1) {
		return nil, "", "", "", false
	}
	_, err1 := strconv.ParseUint(string(line[m[4]:m[5]]), 10, 64)
	_, err2 := strconv.ParseUint(string(line[m[6]:m[7]]), 10, 64)
	if err1 != nil || err2 != nil {
		// Digits past what a stream id holds.
		return nil, "", "", "", false
	}
	entry = string(line[m[4]:m[5]]) + "-" + string(line[m[6]:m[7]])
	return append(slices.Clip(head), '}'), entry, string(line[m[8]:m[9]]), string(line[m[10]:m[11]]), true
}

// FuzzSplit: a line from the SIEM is untrusted input. Split never panics,
// finds the place the grammar's regular expression finds, and a line it
// splits is exactly what Place makes of the parts, so that no two lines
// split to one record; a compact object Place changes splits back to it.
// Read and Check take any bytes without panicking.
func FuzzSplit(f *testing.F) {
	f.Add([]byte(`{"Id":"a","LockboxTenant":"contoso","LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`))
	f.Add([]byte(`{"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`))
	f.Add([]byte(`{"RecordType":"LockboxAuditSeal","LockboxTenant":"contoso","SealedThrough":"1-0","SealToken":"a.b.c"}`))
	f.Add([]byte(`{"Id":"a","LockboxTenant":"contoso"}`))
	f.Add([]byte(`{"a":1,"LockboxEntry":"12-3","LockboxPrevHash":"c5cfe0634b3d67e39c14d6e6ffcae93eb9236fec","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`))
	f.Add([]byte(`{,"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`))
	f.Add([]byte(`{"a":1"LockboxEntry":"1-0","LockboxPrevHash":"x","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`))
	// Near misses: each breaks one rule of the grammar.
	for _, place := range []string{
		`"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":""}`,
		`"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"C5CFE0634B3D67E39C14D6E6FFCAE93EB9236FEC"}`,
		`"LockboxEntry":"1-0","LockboxPrevHash":"C5CFE0634B3D67E39C14D6E6FFCAE93EB9236FEC","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
		`"LockboxEntry":"-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
		`"LockboxEntry":"1-","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
		`"LockboxEntry":"10","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
		`"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"} `,
		`"LockboxEntry":"1-0", "LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
		`"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"`,
		`"LockboxEntry":"18446744073709551616-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
		`"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf"}`,
		`"LockboxEntry":"1-0","LockboxPrevHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}`,
		`"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf70"}`,
	} {
		f.Add([]byte(`{"a":1,` + place))
		f.Add([]byte(`{` + place))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r1, e1, p1, h1, ok1 := Split(line)
		r2, e2, p2, h2, ok2 := splitRE(line)
		if ok1 != ok2 || !bytes.Equal(r1, r2) || e1 != e2 || p1 != p2 || h1 != h2 {
			t.Fatalf("Split(%q) = %q, %q, %q, %q, %v; the grammar gives %q, %q, %q, %q, %v", line, r1, e1, p1, h1, ok1, r2, e2, p2, h2, ok2)
		}
		if rec, entry, prev, hash, ok := Split(line); ok {
			if again := Place(rec, entry, prev, hash); !bytes.Equal(again, line) {
				t.Fatalf("Split(%q) = %q, %q, %q, %q; Place of them is %q", line, rec, entry, prev, hash, again)
			}
		}
		if placed := Place(line, "7-1", "", "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"); !bytes.Equal(placed, line) {
			if rec, entry, prev, hash, ok := Split(placed); !ok || !bytes.Equal(rec, line) || entry != "7-1" || prev != "" || hash != "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7" {
				t.Fatalf("Split(Place(%q)) = %q, %q, %q, %q, %v", line, rec, entry, prev, hash, ok)
			}
		}
		c := New("contoso", nil, "lockbox")
		if err := c.Read(bytes.NewReader(append(append([]byte{}, line...), '\n'))); err != nil {
			return
		}
		_, _ = c.Check()
	})
}

// TestChainStartedAgain: a record whose previous hash is empty after
// others is a chain started over, and said to be, not a record missing.
func TestChainStartedAgain(t *testing.T) {
	var lines []string
	for run, ms := range []int{100, 200} {
		prev := ""
		for i := range 2 {
			rec := fmt.Sprintf(`{"Id":"r%d-%d","LockboxTenant":"contoso"}`, run, i)
			h := Link(prev, []byte(rec))
			lines = append(lines, string(Place([]byte(rec), fmt.Sprintf("%d-%d", ms, i), prev, h)))
			prev = h
		}
	}
	c := New("contoso", nil, "lockbox")
	if err := c.Read(strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		t.Fatal(err)
	}
	r, err := c.Check()
	if err != nil || r.OK || r.BrokenAt != "200-0" || r.Records != 2 || !strings.Contains(r.Problem, "starts the tenant's chain again after entry 100-1") {
		t.Fatalf("got %+v, %v; want broken where the chain starts again", r, err)
	}
}

// TestManyLinesOutOfOrder: lines enough for the Checker to compact while
// reading (it drops lines read again before its memory grows), shuffled
// and partly read twice, check as the chain they are; a second line of one
// entry that differs from the first is found wherever it falls, and the
// entry's record is named, by its Id whether or not that is a UUID.
func TestManyLinesOutOfOrder(t *testing.T) {
	const n = 20_000
	var lines []string
	prev := ""
	for i := range n {
		id := fmt.Sprintf("%08x-7d3c-4b0e-9a51-%012x", i, i)
		if i%7 == 0 {
			id = fmt.Sprintf("rec-%d", i)
		}
		rec := fmt.Sprintf(`{"Id":%q,"LockboxTenant":"contoso","N":%d}`, id, i)
		h := Link(prev, []byte(rec))
		lines = append(lines, string(Place([]byte(rec), fmt.Sprintf("1796637708000-%d", i), prev, h)))
		prev = h
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := func(extra ...string) string {
		all := append(slices.Clone(lines), lines[:n/3]...)
		all = append(all, extra...)
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		return strings.Join(all, "\n")
	}
	check := func(t *testing.T, text string) Result {
		t.Helper()
		c := New("contoso", nil, "lockbox")
		if err := c.Read(strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
		r, err := c.Check()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	r := check(t, shuffled())
	if !r.OK || r.Records != n || r.Entries != n || r.Duplicates != n/3 || !r.FromStart || r.Last != fmt.Sprintf("1796637708000-%d", n-1) {
		t.Fatalf("got %+v; want %d records intact, %d lines read again", r, n, n/3)
	}

	// Entry 13 001 again, its record edited and its hash recomputed: the
	// line is consistent in itself, and only the first line tells.
	at := 13_001
	rec, entry, p, _, _ := Split([]byte(lines[at]))
	forged := strings.Replace(string(rec), `"N":13001`, `"N":-1`, 1)
	second := string(Place([]byte(forged), entry, p, Link(p, []byte(forged))))
	for range 3 {
		r = check(t, shuffled(second))
		if r.OK || r.BrokenAt != entry || r.Records != at || !strings.Contains(r.Problem, "two different lines") {
			t.Fatalf("got %+v; want broken at %s, two different lines", r, entry)
		}
		// Which of the two lines came first in the file decides the
		// record named; both are entry 13 001's, a UUID.
		if !strings.HasPrefix(r.RecordId, fmt.Sprintf("%08x-", at)) {
			t.Fatalf("record %q named, want entry %s's", r.RecordId, entry)
		}
	}

	// A record with an Id that is no UUID is named by it.
	at = 7 * 2000
	edited := strings.Replace(lines[at], fmt.Sprintf(`"N":%d`, at), `"N":-1`, 1)
	all := slices.Clone(lines)
	all[at] = edited
	r = check(t, strings.Join(all, "\n"))
	if r.OK || r.RecordId != fmt.Sprintf("rec-%d", at) || !strings.Contains(r.Problem, "altered") {
		t.Fatalf("got %+v; want broken at record rec-%d, altered", r, at)
	}
}
