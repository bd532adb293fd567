package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// auditHint is a line "audit search" prints on stderr after a table:
// which records its cursor leads to, the cursor, and whether it offers
// --all instead.
var auditHint = regexp.MustCompile(`^(More|Newer|Older) records: add --cursor (\S+)( \(or use --all\))?\.$`)

// auditSearch runs "audit search" over contoso's log as the provider's
// audit reader and returns its exit code, stdout and stderr.
func auditSearch(w *filterWorld, args ...string) (int, string, string) {
	w.t.Helper()
	env := map[string]string{EnvAddr: w.addr, EnvToken: w.tokens["auditor"], EnvConfigDir: w.t.TempDir()}
	argv := append([]string{"audit", "search", "--tenant", "contoso"}, args...)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestAuditSearchTableHints: "audit search" says on stderr where each
// cursor of its page leads, each hint naming the cursor that leads
// there: the first page, which has nothing newer, only "More records";
// a page reached by a next cursor "More records" (older) and "Newer
// records". A page reached by a prev cursor was read upwards, from the
// page the user came from: there the next cursor leads back down to that
// page, so it is "Older records", and the prev cursor, on to the records
// newer still, "Newer records"; "More records" naming the next one sent
// the user back to records seen. Each cursor, passed back, shows the
// records its hint promised, and with --all, offered beside the next
// cursor, those and every older one. -o json prints the API's cursors
// whichever way the page was read.
func TestAuditSearchTableHints(t *testing.T) {
	w := newFilterWorld(t)
	want := recordIDs(w.all)
	const s = 3
	size := strconv.Itoa(s)
	if len(want) <= 4*s {
		t.Fatalf("%d records, want more than %d", len(want), 4*s)
	}
	// hints runs the search as a table, checks it printed exactly the
	// hints named, each offering --all beside the next cursor only, and
	// returns their cursors by name.
	hints := func(name string, args []string, names ...string) map[string]string {
		t.Helper()
		code, _, errs := auditSearch(w, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, errs)
		}
		return cursorHints(t, name, errs, auditHint, names)
	}
	// leads checks that cursor, passed back with args, shows
	// want[from:to].
	leads := func(name, cursor string, from, to int, args ...string) {
		t.Helper()
		code, out, errs := auditSearch(w, append([]string{"--cursor", cursor, "-o", "json"}, args...)...)
		if code != exitOK {
			t.Errorf("%s: exit %d: %s", name, code, errs)
			return
		}
		var p wire.RecordPage
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("%s: output is not a page: %v\n%s", name, err, out)
		}
		if got := recordIDs(p.Records); !slices.Equal(got, want[from:to]) {
			t.Errorf("%s: %s", name, diffIDs(got, want, from, to))
		}
	}

	// The first page: nothing is newer.
	h := hints("the first page", []string{"--limit", size}, "More")
	leads("the first page's More records", h["More"], s, 2*s, "--limit", size)

	// Reached by a next cursor: older and newer.
	h = hints("the second page", []string{"--limit", size, "--cursor", h["More"]}, "More", "Newer")
	leads("the second page's Newer records", h["Newer"], 0, s, "--limit", size)
	leads("the second page's More records", h["More"], 2*s, 3*s, "--limit", size)
	h = hints("the third page", []string{"--limit", size, "--cursor", h["More"]}, "More", "Newer")
	leads("the third page's Newer records", h["Newer"], s, 2*s, "--limit", size)
	prev := h["Newer"]

	// Reached by a prev cursor, upwards: the records just newer than the
	// third page, with newer ones still above them.
	h = hints("from the third page's Newer records", []string{"--limit", size, "--cursor", prev}, "Newer", "Older")
	leads("from a prev cursor, Newer records", h["Newer"], 0, s, "--limit", size)
	leads("from a prev cursor, Older records", h["Older"], 2*s, 3*s, "--limit", size)
	// --all, offered beside Older records, reads the page and then down
	// to the oldest record, as it did before.
	leads("from a prev cursor, --all", prev, s, len(want), "--limit", size, "--all")

	// Up to the newest record: nothing newer left to name.
	h = hints("from the third page's Newer records, to the newest", []string{"--limit", strconv.Itoa(2 * s), "--cursor", prev}, "Older")
	leads("from a prev cursor to the newest, Older records", h["Older"], 2*s, 3*s, "--limit", size)

	// -o json prints the page's cursors as the API names them.
	code, out, errs := auditSearch(w, "--limit", size, "--cursor", prev, "-o", "json")
	var p wire.RecordPage
	if code != exitOK || errs != "" || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("-o json from a prev cursor: exit %d, stdout\n%s\nstderr %q", code, out, errs)
	}
	h = hints("from the third page's Newer records, again", []string{"--limit", size, "--cursor", prev}, "Newer", "Older")
	if p.NextCursor != h["Older"] || p.PrevCursor != h["Newer"] {
		t.Errorf("-o json from a prev cursor: next %q, prev %q; the table's Older records %q, Newer records %q",
			p.NextCursor, p.PrevCursor, h["Older"], h["Newer"])
	}
}

// cursorHints reads stderr errs of a listing printed as a table, which
// must hold exactly the hints names (sorted) matching hint, each offering
// --all beside the next cursor only, and returns their cursors by name.
func cursorHints(t *testing.T, name, errs string, hint *regexp.Regexp, names []string) map[string]string {
	t.Helper()
	h := map[string]string{}
	for line := range strings.Lines(errs) {
		m := hint.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			t.Fatalf("%s: stderr line %q is no hint; stderr:\n%s", name, line, errs)
		}
		if _, twice := h[m[1]]; twice {
			t.Fatalf("%s: two %q hints; stderr:\n%s", name, m[1], errs)
		}
		if all := m[3] != ""; all != (m[1] != "Newer") {
			t.Errorf("%s: %q offers --all: %v, want it beside the next cursor only", name, line, all)
		}
		h[m[1]] = m[2]
	}
	if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, names) {
		t.Fatalf("%s: hints %q, want %q; stderr:\n%s", name, got, names, errs)
	}
	return h
}
