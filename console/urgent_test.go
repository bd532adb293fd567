package console_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUrgentTimeLeftIsInWords: a pending request with under an hour left
// to decide says so in words, not only in red (WCAG 1.4.1: colour is not
// the only carrier of a state), in the page and in the list it refreshes
// itself with; one with more time left does not.
func TestUrgentTimeLeftIsInWords(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.file("contoso")
	mgr := e.signIn(mia)
	row := regexp.MustCompile(`(?s)<tr data-request="` + req.ID + `">.*?<td data-label="Time left">(.*?)</td>`)
	tags := regexp.MustCompile(`<[^>]*>`)
	// left is the time-left cell's text, as a reader sees it.
	left := func(path string) string {
		t.Helper()
		m := row.FindStringSubmatch(mgr.get(path).body)
		if m == nil {
			t.Fatalf("%s: no pending row of %s", path, req.ID)
		}
		return strings.Join(strings.Fields(tags.ReplaceAllString(m[1], " ")), " ")
	}
	for _, path := range []string{"/console/requests", "/console/requests/pending"} {
		if got := left(path); got != "12h" {
			t.Errorf("%s: a request just filed shows %q left; want %q", path, got, "12h")
		}
	}
	e.clk.Advance(11*time.Hour + 30*time.Minute)
	// Her session would not last the half day: she signs in again.
	mgr = e.signIn(mia)
	for _, path := range []string{"/console/requests", "/console/requests/pending"} {
		if got := left(path); got != "30m (urgent)" {
			t.Errorf("%s: a request with 30 minutes left shows %q; want %q", path, got, "30m (urgent)")
		}
	}
}
