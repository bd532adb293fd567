package console_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// oidcLinkRE finds the sign-in page's link to the identity provider.
var oidcLinkRE = regexp.MustCompile(`href="(/console/signin/oidc[^"]*)"`)

// TestFailedSigninKeepsTheReturn: a sign-in that set out to come back to a
// page (the page of an ended session) and failed at the callback (it took
// longer than the sign-in may, the identity provider refused, the answer
// named another issuer) sends the browser to the sign-in page with the
// problem, and the sign-in tried again still comes back to that page. It
// went to the requests list: the page the user was on was forgotten at the
// first failure.
func TestFailedSigninKeepsTheReturn(t *testing.T) {
	parallel(t)
	const page = "/console/audit?tenant=contoso"
	cases := []struct {
		name    string
		problem string
		// fail turns the identity provider's answer l into one that
		// fails, as the browser brings it back.
		fail func(e *env, l login) string
	}{
		{"expired", "expired", func(e *env, l login) string {
			e.clk.Advance(10*time.Minute + time.Second)
			return l.callback
		}},
		{"denied", "denied", func(_ *env, l login) string {
			u := mustParse(t, l.callback)
			u.RawQuery = url.Values{"error": {"access_denied"}, "state": {l.state}}.Encode()
			return u.String()
		}},
		{"another issuer", "failed", func(_ *env, l login) string {
			u := mustParse(t, l.callback)
			q := u.Query()
			q.Set("iss", "https://other.example")
			u.RawQuery = q.Encode()
			return u.String()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			// The identity provider's clock is the console's: the first
			// sign-in's expiry must not expire the second's tokens.
			clk := newClock()
			m := oidctest.Start(t, oidctest.Config{Now: clk.Now})
			e := newStores(t, clk)
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
			e.serve(cfg, false)
			b := e.browser()
			r := b.get(page)
			if r.status != http.StatusSeeOther {
				t.Fatalf("a page without a session: %s", r)
			}
			signin := b.get(r.location())
			link := oidcLinkRE.FindStringSubmatch(signin.body)
			if link == nil {
				t.Fatalf("the sign-in page has no link to the identity provider: %s", signin)
			}
			l := startLoginAt(t, m, b, html.UnescapeString(link[1]), ada)
			r = b.get(tc.fail(e, l))
			to := mustParse(t, r.location())
			if r.status != http.StatusSeeOther || to.Path != "/console/signin" || to.Query().Get("problem") != tc.problem {
				t.Fatalf("the failed sign-in: %s; want the sign-in page with problem=%s", r, tc.problem)
			}
			if got := to.Query().Get("return"); got != page {
				t.Errorf("the failed sign-in goes to %s, which returns to %q; want %q", r.location(), got, page)
			}
			// The user tries again from the sign-in page it shows.
			signin = b.get(r.location())
			link = oidcLinkRE.FindStringSubmatch(signin.body)
			if link == nil {
				t.Fatalf("the sign-in page has no link to the identity provider: %s", signin)
			}
			l = startLoginAt(t, m, b, html.UnescapeString(link[1]), ada)
			r = b.get(l.callback)
			if r.status != http.StatusOK {
				t.Fatalf("the sign-in tried again: %s\n%s", r, e.logs)
			}
			mustContain(t, "continue page", r, `data-testid="continue"`, `href="`+html.EscapeString(page)+`"`)
		})
	}
}
