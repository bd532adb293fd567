package console_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// returnFieldRE finds the page to go back to that a sign-in form carries.
var returnFieldRE = regexp.MustCompile(`name="return" value="([^"]*)"`)

// signInAgain follows r, a page's redirect to sign-in, and signs in again
// as subject with the dev sign-in form of the page it leads to, as a user
// does; it returns the sign-in page and where the sign-in sent the browser.
func signInAgain(t *testing.T, b *browser, r resp, subject string) (page resp, to string) {
	t.Helper()
	if r.status != http.StatusSeeOther || mustParse(t, r.location()).Path != "/console/signin" {
		t.Fatalf("a page of an ended session: %s", r)
	}
	page = b.get(r.location())
	if page.status != http.StatusOK {
		t.Fatalf("the sign-in page %s: %s", r.location(), page)
	}
	form := url.Values{"subject": {subject}}
	if m := returnFieldRE.FindStringSubmatch(page.body); m != nil {
		form.Set("return", html.UnescapeString(m[1]))
	}
	in := b.post("/console/signin/dev", form)
	if in.status != http.StatusSeeOther {
		t.Fatalf("signing in again as %s: %s", subject, in)
	}
	return page, in.location()
}

// TestSessionEndedComesBackToThePage: a session that ended (signed out in
// another tab, or idle too long) sends its user through the sign-in and
// back to the page they were on. A form posted by it is not acted on after
// the sign-in either: the sign-in page says it was not sent, and the page
// it comes back to asks for it again.
func TestSessionEndedComesBackToThePage(t *testing.T) {
	parallel(t)
	t.Run("a form posted after signing out in another tab", func(t *testing.T) {
		e := newEnv(t)
		req := e.managerApproved("contoso")
		b := e.signIn(contosoApprover)
		confirm := "/console/requests/" + req.ID + "/approve"
		if r := b.get(confirm); r.status != http.StatusOK {
			t.Fatalf("the confirm page: %s", r)
		}
		csrf := b.csrf()
		// The other tab signs out: the same browser, so the same cookie.
		if r := b.post("/console/signout", url.Values{"csrf_token": {csrf}}); r.status != http.StatusSeeOther {
			t.Fatalf("sign-out: %s", r)
		}
		r := b.post(confirm, url.Values{"csrf_token": {csrf}, "comment": {"looks fine"}}, header("Referer", e.srv.URL+confirm))
		page, to := signInAgain(t, b, r, contosoApprover.Subject)
		mustContain(t, "the sign-in page after a form of an ended session", page, "was not sent")
		back := mustParse(t, to)
		if back.Path != confirm || back.Query().Get("done") != "signed_in_again" {
			t.Fatalf("after signing in again the browser goes to %s; want %s with the notice that the form was not sent", to, confirm)
		}
		if got := e.request(req.ID).State; got != grants.StatePendingCustomer {
			t.Fatalf("the form posted by the ended session was acted on: the request is %s", got)
		}
		r = b.get(to)
		if r.status != http.StatusOK {
			t.Fatalf("the page after signing in again: %s", r)
		}
		mustContain(t, "the confirm page after signing in again", r, `data-testid="flash"`, "was not sent", `data-testid="confirm"`)
		if got := e.request(req.ID).State; got != grants.StatePendingCustomer {
			t.Fatalf("signing in again acted on the form: the request is %s", got)
		}
	})
	t.Run("a page visited after the session went idle", func(t *testing.T) {
		e := newEnv(t)
		req := e.managerApproved("contoso")
		b := e.signIn(contosoApprover)
		page := "/console/requests/" + req.ID
		if r := b.get(page); r.status != http.StatusOK {
			t.Fatalf("the request page: %s", r)
		}
		e.clk.Advance(idle + 1)
		_, to := signInAgain(t, b, b.get(page), contosoApprover.Subject)
		if to != page {
			t.Fatalf("after signing in again the browser goes to %s; want %s", to, page)
		}
	})
	t.Run("through the identity provider", func(t *testing.T) {
		e, m := newOIDCEnv(t)
		b := e.browser()
		const page = "/console/audit?tenant=contoso"
		r := b.get(page)
		if r.status != http.StatusSeeOther {
			t.Fatalf("a page without a session: %s", r)
		}
		signin := b.get(r.location())
		m2 := regexp.MustCompile(`href="(/console/signin/oidc[^"]*)"`).FindStringSubmatch(signin.body)
		if m2 == nil {
			t.Fatalf("the sign-in page has no link to the identity provider: %s", signin)
		}
		l := startLoginAt(t, m, b, html.UnescapeString(m2[1]), ada)
		r = b.get(l.callback)
		if r.status != http.StatusOK {
			t.Fatalf("the callback: %s", r)
		}
		mustContain(t, "continue page", r, `data-testid="continue"`, `href="`+html.EscapeString(page)+`"`)
	})
	t.Run("the way back is a page of the console's own", func(t *testing.T) {
		e := newEnv(t)
		for _, ret := range []string{"https://evil.example/console/requests", "//evil.example/console/requests", "/elsewhere", `/console/\evil`} {
			r := e.browser().post("/console/signin/dev", url.Values{"subject": {mia.Subject}, "return": {ret}})
			if r.status != http.StatusSeeOther || r.location() != "/console/requests" {
				t.Errorf("a sign-in to return to %q: %s", ret, r)
			}
		}
	})
}

// TestSessionEndedAtTheIdentityProviderComesBack: a session without a
// refresh token that its identity provider no longer verifies (its user
// signed out there, in another tab) ends at its next page or form, as
// one signed out here does: the browser goes through the sign-in and back
// to the page, and a form posted then is not acted on.
func TestSessionEndedAtTheIdentityProviderComesBack(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		form bool
	}{{"a page", false}, {"a form", true}} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			form := "/console/requests/" + req.ID + "/deny"
			if r := b.get(form, navigation...); r.status != http.StatusOK {
				t.Fatalf("the Deny form: %s", r)
			}
			csrf := b.csrf()
			m.EndUserSession(mona.sub)
			e.clk.Advance(reverify)
			var r resp
			if tc.form {
				r = b.post(form, url.Values{"csrf_token": {csrf}, "comment": {"not now"}}, header("Referer", e.srv.URL+form))
			} else {
				r = b.get(form, navigation...)
			}
			r = answer(t, b, wantSilent(t, m, r))
			if !signedOut(r) {
				t.Fatalf("the answer that ends the session: %s", r)
			}
			signin := b.get(r.location())
			back := form
			if tc.form {
				mustContain(t, "the sign-in page after a form of an ended session", signin, "was not sent")
				back += "?done=signed_in_again"
			}
			link := regexp.MustCompile(`href="(/console/signin/oidc[^"]*)"`).FindStringSubmatch(signin.body)
			if link == nil {
				t.Fatalf("the sign-in page has no link to the identity provider: %s", signin)
			}
			l := startLoginAt(t, m, b, html.UnescapeString(link[1]), mona)
			wantContinue(t, b.get(l.callback), back, loginCookie)
			if got := e.request(req.ID); got.State != grants.StatePendingManager || len(got.History) != 1 {
				t.Fatalf("the request is %s with %d events", got.State, len(got.History))
			}
		})
	}
}

// TestReturnIsNoSigninStep: the page a sign-in goes on to (return) is a
// page of the admin center, never a step of a sign-in or sign-out. Before,
// any path under /console/ was, so a link to the sign-in page with
// return=/console/signin/oidc?tenant=evil (or /console/login?tenant=evil)
// sent the browser, once its user had signed in, on to evil's identity
// provider by the console's own navigation, which oidcStart takes for
// the user's choice: the login CSRF that startedElsewhere refuses when
// another site starts it. An identity provider in the wrong hands then
// signs the browser in as whomever it likes, the user's session ended.
func TestReturnIsNoSigninStep(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	for _, ret := range []string{"/console/signin/oidc?tenant=fabrikam", "/console/login?tenant=fabrikam", "/console/signin?tenant=fabrikam",
		"/console/oidc/callback/provider?code=c&state=s", "/console/signout", "/console/%73ignin/oidc?tenant=fabrikam",
		"/console/requests/../signin/oidc", "/console/%2e%2e/console/login?tenant=fabrikam"} {
		b := e.browser()
		if page := b.get("/console/signin?return=" + url.QueryEscape(ret)); returnFieldRE.MatchString(page.body) {
			t.Errorf("the sign-in page hands on return %q: %s", ret, page)
		}
		r := b.post("/console/signin/dev", url.Values{"subject": {mia.Subject}, "return": {ret}})
		if r.status != http.StatusSeeOther || r.location() != "/console/requests" {
			t.Errorf("a sign-in to return to %q: %s", ret, r)
		}
		// Signed in, the sign-in page goes on to the way back at once.
		if r := b.get("/console/signin?return=" + url.QueryEscape(ret)); r.status != http.StatusSeeOther || r.location() != "/console/requests" {
			t.Errorf("the sign-in page, signed in, with return %q: %s", ret, r)
		}
	}
	// A page of the admin center is still one to go back to.
	const page = "/console/requests?state=approved"
	if r := e.browser().post("/console/signin/dev", url.Values{"subject": {mia.Subject}, "return": {page}}); r.location() != page {
		t.Errorf("a sign-in to return to %q: %s", page, r)
	}
}
