package siemcheck

import (
	"bytes"
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
