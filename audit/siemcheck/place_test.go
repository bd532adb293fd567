package siemcheck

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestPlaceSplit: Split gives back the stored record and the place Place
// appended, whatever the record holds; a line Place leaves alone (no
// compact object) has no place.
func TestPlaceSplit(t *testing.T) {
	for _, rec := range []string{
		`{}`,
		`{"Id":"a"}`,
		// A value that looks like a place: escaped inside a string, never the line's end.
		`{"Comment":"\"LockboxEntry\":\"1-0\",\"LockboxPrevHash\":\"\",\"LockboxHash\":\"ab\"}"}`,
		`{"Parameters":[{"Name":"x","Value":"}"}]}`,
	} {
		line := Place([]byte(rec), "1796635019127-3", "c5cfe0634b3d67e39c14d6e6ffcae93eb9236fec", "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7")
		got, entry, prev, hash, ok := Split(line)
		if !ok || string(got) != rec || entry != "1796635019127-3" || prev != "c5cfe0634b3d67e39c14d6e6ffcae93eb9236fec" || hash != "8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7" {
			t.Errorf("Split(Place(%s)) = %s, %q, %q, %q, %v", rec, got, entry, prev, hash, ok)
		}
		first := Place([]byte(rec), "1-0", "", "ab")
		if got, _, prev, _, ok := Split(first); !ok || string(got) != rec || prev != "" {
			t.Errorf("a first record: Split(%s) = %s, %q, %v", first, got, prev, ok)
		}
	}
	for _, rec := range []string{`"not an object"`, "{\"Id\":\n\"a\"}", `{"Id":"a"} `, `[1]`, `{`} {
		if line := Place([]byte(rec), "1-0", "", "ab"); !bytes.Equal(line, []byte(rec)) {
			t.Errorf("Place(%q) = %q, want it unchanged", rec, line)
		}
	}
	for _, line := range []string{
		`{"Id":"a"}`,
		`{"Id":"a""LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"ab"}`, // no comma after a field
		`{"Id":"a","LockboxEntry":"x-0","LockboxPrevHash":"","LockboxHash":"ab"}`,
	} {
		if rec, _, _, _, ok := Split([]byte(line)); ok {
			t.Errorf("Split(%s) = %s, want no place", line, rec)
		}
	}
}

// FuzzSplit: a line from the SIEM is untrusted input. Split never panics,
// and a line it splits is exactly what Place makes of the parts, so that
// no two lines split to one record; a compact object Place changes splits
// back to it. Read and Check take any bytes without panicking.
func FuzzSplit(f *testing.F) {
	f.Add([]byte(`{"Id":"a","LockboxTenant":"contoso","LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"ab"}`))
	f.Add([]byte(`{"LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"ab"}`))
	f.Add([]byte(`{"RecordType":"LockboxAuditSeal","LockboxTenant":"contoso","SealedThrough":"1-0","SealToken":"a.b.c"}`))
	f.Add([]byte(`{"Id":"a","LockboxTenant":"contoso"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if rec, entry, prev, hash, ok := Split(line); ok {
			if again := Place(rec, entry, prev, hash); !bytes.Equal(again, line) {
				t.Fatalf("Split(%q) = %q, %q, %q, %q; Place of them is %q", line, rec, entry, prev, hash, again)
			}
		}
		if placed := Place(line, "7-1", "", "ab"); !bytes.Equal(placed, line) {
			if rec, entry, prev, hash, ok := Split(placed); !ok || !bytes.Equal(rec, line) || entry != "7-1" || prev != "" || hash != "ab" {
				t.Fatalf("Split(Place(%q)) = %q, %q, %q, %q, %v", line, rec, entry, prev, hash, ok)
			}
		}
		c := New("contoso")
		if err := c.Read(bytes.NewReader(append(append([]byte{}, line...), '\n'))); err != nil {
			return
		}
		_, _ = c.Check(nil, "lockbox")
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
	c := New("contoso")
	if err := c.Read(strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		t.Fatal(err)
	}
	r, err := c.Check(nil, "lockbox")
	if err != nil || r.OK || r.BrokenAt != "200-0" || r.Records != 2 || !strings.Contains(r.Problem, "starts the tenant's chain again after entry 100-1") {
		t.Fatalf("got %+v, %v; want broken where the chain starts again", r, err)
	}
}
