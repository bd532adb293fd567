package console_test

import (
	"net/http"
	"testing"
)

// TestPageWithoutCookieKeepsTheSession: a link to the console followed
// from another site (a chat, a ticket) arrives without the session cookie,
// which is SameSite=Strict. Its answer, the redirect to sign-in, must not
// delete the cookie the browser still holds: that signed the user out of
// every tab, whenever any site linked or redirected to a console page.
func TestPageWithoutCookieKeepsTheSession(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(mia)
	// The same browser, as a cross-site navigation: without its cookie.
	r := e.browser().get("/console/requests", append(navigation, header("Sec-Fetch-Site", "cross-site"))...)
	if !signedOut(r) {
		t.Fatalf("a page without the session cookie: %s", r)
	}
	if c := setCookie(t, r, sessionCookie); c != nil {
		t.Fatalf("a request without the session cookie deletes it: %v", r.header.Values("Set-Cookie"))
	}
	if r := b.get("/console/requests"); r.status != http.StatusOK {
		t.Fatalf("the session after a link from another site: %s", r)
	}
}
