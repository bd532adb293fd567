package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestFormTooLargeSaysSo: a form larger than the admin center reads (a
// reason with a long log pasted in) was answered 403 "This form has
// expired or did not come from this page": the form token past the limit
// went unread, and the user was sent looking for a session problem. It
// is now answered 413 with a page that says the form was too large and
// what the limit is, and nothing is filed; a form of a size the console
// reads with a wrong or missing token is still refused as before.
func TestFormTooLargeSaysSo(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(alice)
	form := func(reason string) url.Values {
		return b.form(url.Values{
			"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-77"},
			"reason": {reason}, "duration": {"1h"},
		})
	}
	for _, tc := range []struct {
		name string
		body url.Values
	}{
		{"a long reason", form(strings.Repeat("stack trace line\n", 5000))},
		// The token after the limit, as a browser sends fields in the
		// form's order.
		{"the token past the limit", url.Values{"reason": {strings.Repeat("x", 70<<10)}, "csrf_token": {b.csrf()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/console/requests", tc.body)
			if r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413:\n%s", r.status, r)
			}
			mustContain(t, "too large", r, "<h1>Form too large</h1>", `data-testid="error"`, "too large", "64 KiB")
			mustNotContain(t, "too large", r, "expired")
		})
	}
	if n := len(e.keys(keys.Request("*", "*"))); n != 0 {
		t.Errorf("%d requests filed by forms too large", n)
	}
	// Signing out, whose form token is checked outside the pages.
	r := b.post("/console/signout", url.Values{"pad": {strings.Repeat("x", 70<<10)}, "csrf_token": {b.csrf()}})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("sign-out: status %d, want 413:\n%s", r.status, r)
	}
	mustContain(t, "sign-out too large", r, "too large", "64 KiB")
	if got := b.get("/console/requests"); got.status != http.StatusOK {
		t.Errorf("a sign-out too large to read signed out: %s", got)
	}

	// Under the limit, the form token is checked as ever.
	for name, token := range map[string][]string{"missing": nil, "wrong": {"not-the-token"}} {
		r := b.post("/console/requests", url.Values{"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-77"},
			"reason": {"mailbox will not open"}, "duration": {"1h"}, "csrf_token": token})
		if r.status != http.StatusForbidden {
			t.Errorf("%s token: %s", name, r)
		}
		mustContain(t, name+" token", r, "This form has expired or did not come from this page")
	}

	// A form of a usual size is filed.
	r = b.post("/console/requests", form("mailbox will not open"))
	if r.status != http.StatusSeeOther {
		t.Fatalf("a form of a usual size: %s", r)
	}
	if got := e.request(strings.TrimSuffix(strings.TrimPrefix(r.location(), "/console/requests/"), "?done=created")); got.State != grants.StatePendingManager {
		t.Errorf("filed %+v", got)
	}
	if n := len(e.keys(keys.Request("*", "*"))); n != 1 {
		t.Errorf("%d requests stored, want the one filed", n)
	}
}
