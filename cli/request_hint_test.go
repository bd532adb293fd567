package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// requestHint is a line "get requests" prints on stderr after a table:
// which requests its cursor leads to, the cursor, and whether it offers
// --all instead.
var requestHint = regexp.MustCompile(`^(More|Newer|Older) requests: add --cursor (\S+)( \(or use --all\))?\.$`)

// getRequests runs "get requests" over contoso's requests as the
// operator who filed them and returns its exit code, stdout and stderr.
func getRequests(w *filterWorld, args ...string) (int, string, string) {
	w.t.Helper()
	env := map[string]string{EnvAddr: w.addr, EnvToken: w.tokens["operator"], EnvConfigDir: w.t.TempDir()}
	argv := append([]string{"get", "requests", "--tenant", "contoso"}, args...)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestGetRequestsTableHints: "get requests" says on stderr where each
// cursor of its page leads, each hint naming the cursor that leads
// there: the first page, which has nothing newer, only "More requests";
// a page reached by a next cursor "More requests" (older) and "Newer
// requests". A page reached by a prev cursor was read upwards, from the
// page the user came from: there the next cursor leads back down to that
// page, so it is "Older requests", and the prev cursor, on to the
// requests newer still, "Newer requests"; "More requests" naming the
// next one sent the user back to requests seen. Each cursor, passed
// back, shows the requests its hint promised, and with --all, offered
// beside the next cursor, those and every older one. -o json prints the
// API's cursors whichever way the page was read.
func TestGetRequestsTableHints(t *testing.T) {
	w := newFilterWorld(t)
	op, err := client.New(w.addr, w.tokens["operator"])
	if err != nil {
		t.Fatal(err)
	}
	every, err := op.ListRequestsPage(context.Background(), client.ListOptions{Tenant: "contoso", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range every.Requests {
		want = append(want, r.ID)
	}
	const s = 2
	size := strconv.Itoa(s)
	if len(want) <= 3*s {
		t.Fatalf("%d requests, want more than %d", len(want), 3*s)
	}
	// hints runs the listing as a table, checks it printed exactly the
	// hints named, each offering --all beside the next cursor only, and
	// returns their cursors by name.
	hints := func(name string, args []string, names ...string) map[string]string {
		t.Helper()
		code, _, errs := getRequests(w, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, errs)
		}
		return cursorHints(t, name, errs, requestHint, names)
	}
	// leads checks that cursor, passed back with args, prints the ids
	// want[from:to], one a line.
	leads := func(name, cursor string, from, to int, args ...string) {
		t.Helper()
		code, out, errs := getRequests(w, append([]string{"--cursor", cursor, "-o", "id"}, args...)...)
		if code != exitOK {
			t.Errorf("%s: exit %d: %s", name, code, errs)
			return
		}
		if got := strings.Fields(out); !slices.Equal(got, want[from:to]) {
			t.Errorf("%s: %s", name, diffIDs(got, want, from, to))
		}
	}

	// The first page: nothing is newer.
	h := hints("the first page", []string{"--limit", size}, "More")
	leads("the first page's More requests", h["More"], s, 2*s, "--limit", size)

	// Reached by a next cursor: older and newer.
	h = hints("the second page", []string{"--limit", size, "--cursor", h["More"]}, "More", "Newer")
	leads("the second page's Newer requests", h["Newer"], 0, s, "--limit", size)
	leads("the second page's More requests", h["More"], 2*s, 3*s, "--limit", size)
	h = hints("the third page", []string{"--limit", size, "--cursor", h["More"]}, "More", "Newer")
	leads("the third page's Newer requests", h["Newer"], s, 2*s, "--limit", size)
	prev := h["Newer"]

	// Reached by a prev cursor, upwards: the requests just newer than the
	// third page, with newer ones still above them.
	h = hints("from the third page's Newer requests", []string{"--limit", size, "--cursor", prev}, "Newer", "Older")
	leads("from a prev cursor, Newer requests", h["Newer"], 0, s, "--limit", size)
	leads("from a prev cursor, Older requests", h["Older"], 2*s, 3*s, "--limit", size)
	// --all, offered beside Older requests, reads the page and then down
	// to the oldest request, as it did before.
	leads("from a prev cursor, --all", prev, s, len(want), "--limit", size, "--all")

	// Up to the newest request: nothing newer left to name.
	h = hints("from the third page's Newer requests, to the newest", []string{"--limit", strconv.Itoa(2 * s), "--cursor", prev}, "Older")
	leads("from a prev cursor to the newest, Older requests", h["Older"], 2*s, 3*s, "--limit", size)

	// -o json prints the page's cursors as the API names them, and no
	// hint.
	code, out, errs := getRequests(w, "--limit", size, "--cursor", prev, "-o", "json")
	var l wire.RequestList
	if code != exitOK || errs != "" || json.Unmarshal([]byte(out), &l) != nil {
		t.Fatalf("-o json from a prev cursor: exit %d, stdout\n%s\nstderr %q", code, out, errs)
	}
	h = hints("from the third page's Newer requests, again", []string{"--limit", size, "--cursor", prev}, "Newer", "Older")
	if l.NextCursor != h["Older"] || l.PrevCursor != h["Newer"] {
		t.Errorf("-o json from a prev cursor: next %q, prev %q; the table's Older requests %q, Newer requests %q",
			l.NextCursor, l.PrevCursor, h["Older"], h["Newer"])
	}
}
