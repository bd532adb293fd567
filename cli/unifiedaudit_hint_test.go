package cli

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// psHint is a line Search-UnifiedAuditLog prints on stderr after a table
// it cut: which records its cursor leads to, the cursor, and whether it
// offers a larger -ResultSize instead.
var psHint = regexp.MustCompile(`^(More|Newer|Older) records: add --cursor (\S+)( \(or a larger -ResultSize, up to 5000\))?\.$`)

// psHints reads the hints of stderr, by the word they start with: the
// cursor each names and whether it offers a larger -ResultSize. A line
// that is no hint, or a hint named twice, fails the test.
func psHints(t *testing.T, stderr string) map[string]string {
	t.Helper()
	hints := map[string]string{}
	for line := range strings.Lines(stderr) {
		m := psHint.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			t.Fatalf("stderr line %q is no hint; stderr:\n%s", line, stderr)
		}
		if _, twice := hints[m[1]]; twice {
			t.Fatalf("two %q hints; stderr:\n%s", m[1], stderr)
		}
		if shellWord(m[2]) != m[2] {
			t.Errorf("%s records: cursor %q is not one shell word as printed", m[1], m[2])
		}
		hints[m[1]] = m[2]
		if m[3] != "" {
			hints[m[1]+" larger"] = "yes"
		}
	}
	return hints
}

// TestSearchUnifiedAuditLogTableHints: a table cut at -ResultSize says on
// stderr how to go on and how to go back, each hint naming the cursor
// that leads where it says, carrying the filters lockboxctl applies: the
// first page, which has nothing newer, only "More records"; a page
// continued with a next cursor "More records" (older) and "Newer
// records". A search continued from a prev cursor reads upwards: there
// the records not yet seen are the newer ones, so it says "Newer
// records" for the cursor that goes on and "Older records" for the one
// that leads back down to the page it came from; "More records" naming
// that one sent the user back to it. Each cursor, passed back, shows
// the records its hint promised.
func TestSearchUnifiedAuditLogTableHints(t *testing.T) {
	w := newFilterWorld(t)
	for _, c := range []struct {
		name string
		args []string
		size int
	}{
		{"no filter", nil, 2},
		{"-FreeText zebra", []string{"-FreeText", "zebra"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.size
			with := func(more ...string) []string {
				return append(slices.Clone(c.args), more...)
			}
			code, all, errs := w.search(with("-ResultSize", "5000")...)
			if code != exitOK {
				t.Fatalf("the whole search: exit %d: %s", code, errs)
			}
			want := recordIDs(all.Records)
			if len(want) <= 3*s {
				t.Fatalf("%d records, want more than %d", len(want), 3*s)
			}
			// hints runs the search as a table, checks it printed
			// exactly the hints named (with the larger -ResultSize on
			// the one that goes on), and returns them.
			hints := func(name string, args []string, names ...string) map[string]string {
				t.Helper()
				code, _, errs := table(w, args...)
				if code != exitOK {
					t.Fatalf("%s: exit %d: %s", name, code, errs)
				}
				h := psHints(t, errs)
				var got []string
				for k := range h {
					if !strings.HasSuffix(k, " larger") {
						got = append(got, k)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, names) {
					t.Fatalf("%s: hints %q, want %q; stderr:\n%s", name, got, names, errs)
				}
				return h
			}
			// leads checks that cursor, passed back, shows want[from:to].
			leads := func(name, cursor string, from, to int) {
				t.Helper()
				code, p, errs := w.search(with("-ResultSize", strconv.Itoa(to-from), "--cursor", cursor)...)
				if code != exitOK {
					t.Errorf("%s: exit %d: %s", name, code, errs)
					return
				}
				if got := recordIDs(p.Records); !slices.Equal(got, want[from:to]) {
					t.Errorf("%s: %s", name, diffIDs(got, want, from, to))
				}
			}
			size := strconv.Itoa(s)

			// The first page: nothing is newer.
			h := hints("the first page", with("-ResultSize", size), "More")
			if h["More larger"] == "" {
				t.Errorf("the first page: More records offers no larger -ResultSize")
			}
			leads("the first page's More records", h["More"], s, 2*s)

			// Continued with a next cursor: older and newer.
			h = hints("the second page", with("-ResultSize", size, "--cursor", h["More"]), "More", "Newer")
			if h["More larger"] == "" || h["Newer larger"] != "" {
				t.Errorf("the second page: %v; want More records to offer a larger -ResultSize, Newer records not", h)
			}
			leads("the second page's More records", h["More"], 2*s, 3*s)
			leads("the second page's Newer records", h["Newer"], 0, s)

			h = hints("the third page", with("-ResultSize", size, "--cursor", h["More"]), "More", "Newer")
			leads("the third page's Newer records", h["Newer"], s, 2*s)
			prev := h["Newer"]

			// From a prev cursor, upwards: the records just newer than
			// the third page, with newer ones still above them.
			h = hints("from the third page's Newer records", with("-ResultSize", size, "--cursor", prev), "Newer", "Older")
			if h["Newer larger"] == "" || h["Older larger"] != "" {
				t.Errorf("from a prev cursor: %v; want Newer records to offer a larger -ResultSize, Older records not", h)
			}
			leads("from a prev cursor, Newer records", h["Newer"], 0, s)
			leads("from a prev cursor, Older records", h["Older"], 2*s, 3*s)

			// Up to the newest record: nothing newer left to name.
			h = hints("from the third page's Newer records, to the newest", with("-ResultSize", strconv.Itoa(2*s), "--cursor", prev), "Older")
			leads("from a prev cursor to the newest, Older records", h["Older"], 2*s, 3*s)
		})
	}
}
