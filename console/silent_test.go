package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// navigation is what a browser sends with a page it navigates to; poll,
// what the pages' script sends with its polls.
var (
	navigation = []reqOpt{header("Sec-Fetch-Mode", "navigate"), header("Accept", "text/html,application/xhtml+xml")}
	poll       = []reqOpt{header("Sec-Fetch-Mode", "cors"), header("Accept", "text/html")}
)

// loginCookie is the login cookie's name over plain HTTP, reverifyCookie
// the one of a silent re-verification in progress.
const (
	loginCookie    = "lockbox_login"
	reverifyCookie = "lockbox_reverify"
)

// wantSilent checks that r sends the browser to m's authorization endpoint
// for a silent re-verification with the sign-in's protections, and returns
// that request.
func wantSilent(t *testing.T, m *oidctest.Provider, r resp) *url.URL {
	t.Helper()
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), m.AuthorizationEndpoint()+"?") {
		t.Fatalf("want a redirect to the identity provider, got %s", r)
	}
	az, err := url.Parse(r.location())
	if err != nil {
		t.Fatal(err)
	}
	q := az.Query()
	if q.Get("prompt") != "none" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge") == "" ||
		q.Get("code_challenge_method") != "S256" || q.Get("client_id") != m.ClientID() {
		t.Fatalf("the authorization request: %v", q)
	}
	if c := setCookie(t, r, reverifyCookie); c == nil || c.Value == "" {
		t.Fatalf("no re-verification cookie: %s", r)
	}
	if c := setCookie(t, r, loginCookie); c != nil {
		t.Fatalf("the re-verification set the login cookie, a sign-in's: %v", c)
	}
	return az
}

// answer takes b to the identity provider with az and back to the console
// with its answer: the callback's response.
func answer(t *testing.T, b *browser, az *url.URL) resp {
	t.Helper()
	r := b.get(az.String())
	if r.status != http.StatusFound {
		t.Fatalf("the identity provider: %s", r)
	}
	return b.get(r.location())
}

// wantBack checks that r is the continue page a re-verification's answer
// takes the browser to page with, and that the re-verification cookie is
// cleared.
func wantBack(t *testing.T, r resp, page string) {
	t.Helper()
	wantContinue(t, r, page, reverifyCookie)
}

// wantContinue checks that r is the continue page that takes the browser
// to page, and that the cookie that held its sign-in is cleared.
func wantContinue(t *testing.T, r resp, page, cookie string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want the continue page, got %s", r)
	}
	mustContain(t, "continue page", r, `data-testid="continue"`, `href="`+page+`"`)
	if c := setCookie(t, r, cookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("the %s cookie was not cleared: %v", cookie, r.header.Values("Set-Cookie"))
	}
}

// silently navigates b to page as a browser does: through the identity
// provider and back when the console sends it there.
func silently(t *testing.T, m *oidctest.Provider, b *browser, page string) resp {
	t.Helper()
	r := b.get(page, navigation...)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), m.AuthorizationEndpoint()) {
		return r
	}
	back := answer(t, b, wantSilent(t, m, r))
	if back.status != http.StatusOK {
		return back
	}
	wantBack(t, back, page)
	return b.get(page, navigation...)
}

var operatorMona = oidcUser{sub: mona.sub, name: mona.name, roles: []string{"operator"}}

// TestSilentReverify: a session without a refresh token, due to be
// verified again, is verified on the next page the browser navigates to
// by the identity provider's sign-in without a page (prompt=none), with
// the sign-in's redirect URI and scopes and a hint naming its user; the
// answer, checked as a sign-in's, updates the session in place and the
// browser lands on that page, with the roles the identity provider gives
// now: a manager's role removed, the approval is refused.
func TestSilentReverify(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		// endSession: the provider names an end-session endpoint, so the
		// session keeps the ID token, which is the hint.
		endSession bool
	}{{"id_token_hint", true}, {"login_hint", false}} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, line := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true, EndSession: tc.endSession})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			if rt := b.raw().RefreshToken; rt != "" {
				t.Fatalf("refresh token %q", rt)
			}
			if !canApprove(t, b, req.ID) {
				t.Fatal("the manager is not offered the approval")
			}
			st, _ := b.stored()
			m.UpdateUser(mona.sub, operatorMona.user())
			e.clk.Advance(reverify)

			page := "/console/requests/" + req.ID + "?from=list"
			az := wantSilent(t, m, b.get(page, navigation...))
			q := az.Query()
			if tc.endSession {
				if q.Get("id_token_hint") == "" || q.Get("id_token_hint") != st.Logout.IDToken || q.Has("login_hint") {
					t.Errorf("want the session's ID token as the hint: %v", q)
				}
			} else if q.Get("login_hint") != mona.sub || q.Has("id_token_hint") {
				t.Errorf("want the subject as the hint: %v", q)
			}
			if q.Get("redirect_uri") != e.cfg.PublicURL+"/console/oidc/callback/provider" || q.Get("scope") != "openid" {
				t.Errorf("the sign-in's redirect URI and scopes, want: %v", q)
			}
			wantBack(t, answer(t, b, az), page)

			after := b.raw()
			if !slices.Equal(after.Principal.Roles, []identity.Role{identity.RoleOperator}) || after.Principal.Subject != mona.sub ||
				!after.VerifiedAt.Equal(e.clk.Now()) || after.RefreshToken != "" {
				t.Errorf("after re-verification: %+v", after)
			}
			if st2, _ := b.stored(); tc.endSession && (st2.Logout == nil || st2.Logout.IDToken == st.Logout.IDToken || st2.Logout.IDToken == "") {
				t.Errorf("sign-out keeps the old ID token: %+v", st2.Logout)
			}
			// An operator sees her own requests only: alice's is not found.
			if r := b.get(page, navigation...); r.status != http.StatusNotFound {
				t.Errorf("the request's page after the role was removed: %s", r)
			}
			r := b.post("/console/requests/"+req.ID+"/approve", url.Values{"csrf_token": {b.csrf()}})
			if r.status != http.StatusNotFound {
				t.Errorf("approval after the role was removed: %s", r)
			}
			if got := e.request(req.ID); got.State != grants.StatePendingManager || got.ManagerApprover != "" {
				t.Errorf("the request is %s, approved by %q", got.State, got.ManagerApprover)
			}
			if ks := e.sessionKeys(); len(ks) != 1 {
				t.Errorf("sessions: %v", ks)
			}
			if got := line.redemptions(); len(got) != 0 {
				t.Errorf("refresh tokens redeemed: %q", got)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "roles changed") {
				t.Errorf("the log does not tell the roles changed:\n%s", logs)
			}
		})
	}
}

// TestSilentReverifyEnds: an identity provider that won't verify the user
// without a page (login_required and its kin) or refuses, or an answer
// that names another user or has no role left, ends the session: the
// browser goes to sign-in, and nobody is signed in instead.
func TestSilentReverifyEnds(t *testing.T) {
	parallel(t)
	fail := func(code string) func(m *oidctest.Provider, u oidcUser) {
		return func(m *oidctest.Provider, _ oidcUser) { m.FailPromptNone(code) }
	}
	for _, tc := range []struct {
		name   string
		user   oidcUser
		change func(m *oidctest.Provider, u oidcUser)
		reason string
	}{
		{"login_required", mona, func(m *oidctest.Provider, u oidcUser) { m.EndUserSession(u.sub) }, "login_required"},
		{"interaction_required", mona, fail("interaction_required"), "interaction_required"},
		{"consent_required", mona, fail("consent_required"), "consent_required"},
		{"account_selection_required", mona, fail("account_selection_required"), "account_selection_required"},
		{"access_denied", mona, fail("access_denied"), "access_denied"},
		{"another subject", mona, func(m *oidctest.Provider, u oidcUser) {
			m.UpdateUser(u.sub, oidcUser{sub: "eve@provider.example", roles: u.roles}.user())
		}, "another user"},
		{"another tenant", ada, func(m *oidctest.Provider, u oidcUser) {
			u.tid = "fabrikam"
			m.UpdateUser(u.sub, u.user())
		}, "another user"},
		{"no role left", mona, func(m *oidctest.Provider, u oidcUser) {
			m.UpdateUser(u.sub, oidcUser{sub: u.sub, roles: []string{"Directory.Read"}}.user())
		}, "no_roles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
			b := oidcSignIn(t, e, m, tc.user)
			tc.change(m, tc.user)
			e.clk.Advance(reverify)
			az := wantSilent(t, m, b.get("/console/requests", navigation...))
			wantEnded(t, e, answer(t, b, az))
			if r := b.get("/console/requests", navigation...); !signedOut(r) {
				t.Errorf("a page after the session ended: %s", r)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "session ended") || !strings.Contains(logs, tc.reason) {
				t.Errorf("the log does not tell why the session ended (%s):\n%s", tc.reason, logs)
			}
		})
	}
}

// TestSilentReverifyBoundToSession: a re-verification's answer updates the
// session it was started for, and only that one: a browser with another
// session that brings it is refused, and leaves both sessions as they
// were; a browser with none gets none.
func TestSilentReverifyBoundToSession(t *testing.T) {
	parallel(t)
	e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
	b1 := oidcSignIn(t, e, m, mona)
	b2 := oidcSignIn(t, e, m, ada)
	signedIn := e.clk.Now()
	m.UpdateUser(mona.sub, operatorMona.user())
	e.clk.Advance(reverify)

	r := b1.get("/console/requests", navigation...)
	az := wantSilent(t, m, r)
	login := setCookie(t, r, reverifyCookie)
	r = b1.get(az.String())
	if r.status != http.StatusFound {
		t.Fatalf("the identity provider: %s", r)
	}
	callback := r.location()
	cb, _ := url.Parse(callback)
	carry := func(b *browser) {
		b.c.Jar.SetCookies(cb, []*http.Cookie{{Name: login.Name, Value: login.Value, Path: login.Path}})
	}

	carry(b2)
	if r := b2.get(callback); r.status != http.StatusSeeOther || r.location() != "/console/signin?problem=failed" {
		t.Errorf("another session's browser with the answer: %s", r)
	}
	s1, s2 := b1.raw(), b2.raw()
	if !s1.VerifiedAt.Equal(signedIn) || !slices.Equal(s1.Principal.Roles, []identity.Role{identity.RoleOperator, identity.RoleSupportManager}) {
		t.Errorf("the session the answer is for changed: %+v", s1)
	}
	if !s2.VerifiedAt.Equal(signedIn) || s2.Principal.Subject != ada.sub {
		t.Errorf("the other session changed: %+v", s2)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "another session") {
		t.Errorf("the log does not tell why the answer was refused:\n%s", logs)
	}

	// A browser without a session gets none; the answer is still the
	// session's it was started for.
	b3 := e.browser()
	carry(b3)
	r = b3.get(callback)
	wantBack(t, r, "/console/requests")
	if c := setCookie(t, r, sessionCookie); c != nil {
		t.Errorf("the answer made a session cookie: %v", c)
	}
	if ks := e.sessionKeys(); len(ks) != 2 {
		t.Errorf("sessions: %v", ks)
	}
	if s1 := b1.raw(); !s1.VerifiedAt.Equal(e.clk.Now()) || !slices.Equal(s1.Principal.Roles, []identity.Role{identity.RoleOperator}) {
		t.Errorf("the session the answer is for: %+v", s1)
	}
}

// TestSilentReverifyForm: a form posted by a session due to be verified
// again, which has no refresh token, is not acted on: the browser goes to
// the identity provider, and comes back to the page the form was on (one
// of the console's own, else the requests), which tells its user to send
// it again. The pages of such a session let a form's redirect go to the
// authorization endpoint.
func TestSilentReverifyForm(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name, referer, back string
	}{
		{"from the confirm page", "/console/requests/{id}/deny", "/console/requests/{id}/deny?done=resubmit"},
		{"from another site", "http://attacker.example/console/requests/{id}/deny", "/console/requests?done=resubmit"},
		{"no referer", "", "/console/requests?done=resubmit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			page := b.get("/console/requests")
			if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+m.Issuer()+";") {
				t.Errorf("the page's forms can't be redirected to the authorization endpoint: %s", csp)
			}
			csrf := b.csrf()
			e.clk.Advance(reverify)

			var opts []reqOpt
			if tc.referer != "" {
				ref := strings.ReplaceAll(tc.referer, "{id}", req.ID)
				if strings.HasPrefix(ref, "/") {
					ref = e.srv.URL + ref
				}
				opts = append(opts, header("Referer", ref))
			}
			r := b.post("/console/requests/"+req.ID+"/deny", url.Values{"csrf_token": {csrf}, "comment": {"no"}}, opts...)
			az := wantSilent(t, m, r)
			if got := e.request(req.ID); got.State != grants.StatePendingManager || len(got.History) != 1 {
				t.Errorf("the request is %s with %d events", got.State, len(got.History))
			}
			wantBack(t, answer(t, b, az), strings.ReplaceAll(tc.back, "{id}", req.ID))
			if got := e.request(req.ID); got.State != grants.StatePendingManager {
				t.Errorf("the request is %s", got.State)
			}
		})
	}
}

// TestSilentReverifyFormRoleGone: a manager's Approve form posted once her
// session is due, and after the identity provider took her role away (she
// keeps one that reads requests), is not acted on; the browser comes back
// from the identity provider to the form's page, which no longer offers
// the approval she can't give, and says so.
func TestSilentReverifyFormRoleGone(t *testing.T) {
	parallel(t)
	e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
	req := e.file("contoso")
	b := oidcSignIn(t, e, m, mona)
	form := "/console/requests/" + req.ID + "/approve"
	r := b.get(form, navigation...)
	mustContain(t, "the Approve form", r, `action="`+form+`"`, `data-testid="confirm"`)
	csrf := b.csrf()
	m.UpdateUser(mona.sub, oidcUser{sub: mona.sub, name: mona.name, roles: []string{"audit-reader"}}.user())
	e.clk.Advance(reverify)

	r = b.post(form, url.Values{"csrf_token": {csrf}, "comment": {"ok"}}, header("Referer", e.srv.URL+form))
	wantBack(t, answer(t, b, wantSilent(t, m, r)), form+"?done=resubmit")
	if got := e.request(req.ID); got.State != grants.StatePendingManager || got.ManagerApprover != "" {
		t.Errorf("the request is %s, approved by %q", got.State, got.ManagerApprover)
	}
	r = b.get(form, navigation...)
	if r.status != http.StatusOK {
		t.Fatalf("the form's page after the role was removed: %s", r)
	}
	mustNotContain(t, "the form's page after the role was removed", r, `action="`+form+`"`, `data-testid="confirm"`)
	mustContain(t, "the form's page after the role was removed", r, `data-testid="problem"`, "Approve is not open to you")
}

// TestSilentReverifyPoll: a page's poll of a session due to be verified
// again, without a refresh token, gets 401, which makes the page reload
// (a navigation, which goes to the identity provider), and starts nothing
// itself. While that is under way the polls wait, other pages of the
// session show a notice and don't start another, a form is sent back to
// its page; once verified, the polls go on. A page left open whose
// identity provider can't answer tries once a minute, no more.
func TestSilentReverifyPoll(t *testing.T) {
	parallel(t)
	t.Run("verified", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
		b := oidcSignIn(t, e, m, mona)
		csrf := b.csrf()
		e.clk.Advance(reverify)
		r := b.get("/console/requests/pending", poll...)
		if r.status != http.StatusUnauthorized || setCookie(t, r, reverifyCookie) != nil {
			t.Fatalf("the poll of a session to verify: %s", r)
		}
		if ks := e.sessionKeys(); len(ks) != 1 {
			t.Fatalf("the poll ended the session: %v", ks)
		}
		az := wantSilent(t, m, b.get("/console/requests", navigation...))

		e.clk.Advance(5 * time.Second)
		if r := b.get("/console/requests/pending", poll...); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("a poll while the identity provider answers: %s", r)
		}
		r = b.get("/console/audit", navigation...)
		if r.status != http.StatusOK || setCookie(t, r, reverifyCookie) != nil {
			t.Errorf("another page while the identity provider answers: %s", r)
		}
		mustContain(t, "notice", r, `data-testid="reverifying"`, `href="/console/audit" data-testid="continue"`)
		r = b.post("/console/settings", url.Values{"csrf_token": {csrf}}, header("Referer", e.srv.URL+"/console/settings"))
		if r.status != http.StatusSeeOther || r.location() != "/console/settings?done=resubmit" {
			t.Errorf("a form while the identity provider answers: %s", r)
		}

		wantBack(t, answer(t, b, az), "/console/requests")
		if r := b.get("/console/requests/pending", poll...); r.status != http.StatusOK {
			t.Errorf("a poll once verified: %s", r)
		}
	})
	// The page's script: poll every 5 seconds, reload on a 401.
	page := func(t *testing.T, e *env, m *oidctest.Provider, b *browser, d time.Duration, follow bool) (tries int) {
		t.Helper()
		for end := e.clk.Now().Add(d); e.clk.Now().Before(end); e.clk.Advance(5 * time.Second) {
			r := b.get("/console/requests/pending", poll...)
			switch r.status {
			case http.StatusOK, http.StatusServiceUnavailable:
				continue
			case http.StatusUnauthorized:
			default:
				t.Fatalf("%s: a poll: %s", e.clk.Now(), r)
			}
			r = b.get("/console/requests", navigation...)
			if r.status == http.StatusOK {
				continue // the notice
			}
			az := wantSilent(t, m, r)
			tries++
			if follow {
				wantBack(t, answer(t, b, az), "/console/requests")
			}
		}
		return tries
	}
	t.Run("identity provider down", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
		b := oidcSignIn(t, e, m, mona)
		m.FailPromptNone("temporarily_unavailable")
		e.clk.Advance(reverify)
		if tries := page(t, e, m, b, 5*time.Minute, true); tries != 5 {
			t.Errorf("five minutes of a page left open tried %d times, want 5", tries)
		}
	})
	t.Run("never back", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
		b := oidcSignIn(t, e, m, mona)
		e.clk.Advance(reverify)
		if tries := page(t, e, m, b, 5*time.Minute, false); tries != 5 {
			t.Errorf("five minutes of a page left open tried %d times, want 5", tries)
		}
	})
}

// TestSilentReverifyOutageTheBrowserReports: an authorization answer of
// temporarily_unavailable or server_error comes back through the browser,
// so its user may have written it (the state is in the authorization
// request they were sent with): a manager whose role was removed would
// keep it for four intervals by answering so. The session is not ended
// for it, but neither are its roles used: its pages wait for the next
// attempt, a minute later; an answer that verifies it gives the roles the
// identity provider gives now, and past four intervals it ends.
func TestSilentReverifyOutageTheBrowserReports(t *testing.T) {
	parallel(t)
	for _, code := range []string{"temporarily_unavailable", "server_error"} {
		t.Run(code, func(t *testing.T) {
			parallel(t)
			e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			signedIn := e.clk.Now()
			csrf := b.csrf()
			m.UpdateUser(mona.sub, operatorMona.user())
			m.FailPromptNone(code)
			reqPage := "/console/requests/" + req.ID
			for e.clk.Advance(reverify); e.clk.Now().Before(signedIn.Add(4 * reverify)); e.clk.Advance(10 * time.Minute) {
				r := silently(t, m, b, reqPage)
				if r.status != http.StatusOK || strings.Contains(r.body, `data-testid="action-approve"`) ||
					!strings.Contains(r.body, `data-testid="reverifying"`) {
					t.Fatalf("%s after sign-in, with the identity provider answering %s: %s", e.clk.Now().Sub(signedIn), code, r)
				}
				if r := b.post("/console/requests/"+req.ID+"/approve", url.Values{"csrf_token": {csrf}}); r.status != http.StatusSeeOther ||
					strings.HasPrefix(r.location(), m.AuthorizationEndpoint()) {
					t.Fatalf("an approval posted while the session waits: %s", r)
				}
				if got := e.request(req.ID); got.State != grants.StatePendingManager || got.ManagerApprover != "" {
					t.Fatalf("the request is %s, approved by %q", got.State, got.ManagerApprover)
				}
			}
			if logs := e.logs.String(); !strings.Contains(logs, code) {
				t.Errorf("the log does not tell what the identity provider answered:\n%s", logs)
			}
			m.FailPromptNone("")
			e.clk.Advance(time.Minute)
			// An operator sees her own requests only: alice's is not found.
			if r := silently(t, m, b, reqPage); r.status != http.StatusNotFound {
				t.Fatalf("verified again, the page: %s", r)
			}
			if got := b.raw().Principal.Roles; !slices.Equal(got, []identity.Role{identity.RoleOperator}) {
				t.Errorf("roles after the identity provider answered again: %v", got)
			}

			// Answered so from then on, the session ends four intervals
			// after it was last verified.
			m.FailPromptNone(code)
			verified := e.clk.Now()
			for e.clk.Advance(reverify); e.clk.Now().Before(verified.Add(4 * reverify)); e.clk.Advance(10 * time.Minute) {
				if r := silently(t, m, b, reqPage); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="reverifying"`) {
					t.Fatalf("%s after verified, with the identity provider answering %s: %s", e.clk.Now().Sub(verified), code, r)
				}
			}
			e.clk.Set(verified.Add(4 * reverify))
			az := wantSilent(t, m, b.get(reqPage, navigation...))
			wantEnded(t, e, answer(t, b, az))
		})
	}
}

// TestSilentReverifyIdentityProviderDown: an identity provider whose
// token endpoint or keys can't be had, as the console finds when it
// redeems the answer's code, does not end a session without a refresh token at
// once: it keeps its roles until four intervals passed since it was last
// verified, then ends.
func TestSilentReverifyIdentityProviderDown(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name    string
		breakIt func(m *oidctest.Provider, line *idpLine)
	}{
		{"token endpoint 503", func(_ *oidctest.Provider, line *idpLine) { line.status.Store(http.StatusServiceUnavailable) }},
		{"keys unavailable", func(m *oidctest.Provider, _ *idpLine) {
			if _, err := m.RotateKey(); err != nil {
				panic(err)
			}
			m.FailJWKS(http.StatusServiceUnavailable)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, line := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			signedIn := e.clk.Now()
			tc.breakIt(m, line)
			reqPage := "/console/requests/" + req.ID
			for e.clk.Advance(reverify); e.clk.Now().Before(signedIn.Add(4 * reverify)); e.clk.Advance(10 * time.Minute) {
				r := silently(t, m, b, reqPage)
				if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="action-approve"`) {
					t.Fatalf("%s after sign-in, the session lost its roles: %s", e.clk.Now().Sub(signedIn), r)
				}
			}
			if got := b.raw().VerifiedAt; !got.Equal(signedIn) {
				t.Errorf("verified at %s", got)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "can't verify a session now") {
				t.Errorf("the log does not tell the identity provider could not verify the session:\n%s", logs)
			}
			e.clk.Set(signedIn.Add(4 * reverify))
			az := wantSilent(t, m, b.get(reqPage, navigation...))
			wantEnded(t, e, answer(t, b, az))
		})
	}
}

// strictJar is a browser's cookie jar as a cross-site navigation sees it:
// the identity provider's redirect back to the callback does not carry
// the SameSite=Strict session cookie, though the answer's Set-Cookie
// lands in the jar as ever.
type strictJar struct{ http.CookieJar }

func (j strictJar) Cookies(u *url.URL) []*http.Cookie {
	return slices.DeleteFunc(j.CookieJar.Cookies(u), func(c *http.Cookie) bool { return c.Name == sessionCookie })
}

// fromIdentityProvider is b arriving at u by the identity provider's
// redirect, as a browser does: without its session cookie.
func fromIdentityProvider(b *browser, u string) resp {
	b.t.Helper()
	c := *b.c
	c.Jar = strictJar{b.c.Jar}
	return (&browser{t: b.t, e: b.e, c: &c}).get(u)
}

// TestSilentAnswerAfterSigninAgain: the answer to a silent re-verification
// of a session that comes back late, once its user started signing in
// again or did, acts on the session it was started for only. The browser's
// newer sign-in, in progress or done, and its session are left as they
// were: the answer neither clears the new sign-in's login cookie nor the
// new session's cookie, which the callback can't see (SameSite=Strict).
func TestSilentAnswerAfterSigninAgain(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		// again signs b in again, returning whom; the late answer comes
		// back between its start and its callback (nil when it has
		// none, or the answer comes after it).
		again func(t *testing.T, e *env, m *oidctest.Provider, b *browser) (string, func())
	}{
		{"during the new sign-in", func(t *testing.T, e *env, m *oidctest.Provider, b *browser) (string, func()) {
			l := startLogin(t, e, m, b, mona)
			return mona.sub, func() { wantContinue(t, fromIdentityProvider(b, l.callback), "/console/requests", loginCookie) }
		}},
		{"after the new sign-in", func(t *testing.T, e *env, m *oidctest.Provider, b *browser) (string, func()) {
			l := startLogin(t, e, m, b, mona)
			wantContinue(t, fromIdentityProvider(b, l.callback), "/console/requests", loginCookie)
			return mona.sub, nil
		}},
		// "lockbox dev" with an identity provider offers both.
		{"after a dev sign-in", func(t *testing.T, e *env, m *oidctest.Provider, b *browser) (string, func()) {
			if r := b.post("/console/signin/dev", url.Values{"subject": {alice.Subject}}); r.status != http.StatusSeeOther || r.location() != "/console/requests" {
				t.Fatalf("dev sign-in: %s", r)
			}
			return alice.Subject, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true}, func(cfg *console.Config) {
				cfg.DevIdentities = []console.DevIdentity{{Principal: alice, Description: "operator"}}
			})
			b := oidcSignIn(t, e, m, mona)
			s1 := b.cookie(sessionCookie)
			e.clk.Advance(reverify)

			// The silent re-verification goes to the identity provider,
			// whose answer is slow to come back.
			az := wantSilent(t, m, b.get("/console/requests", navigation...))
			r := b.get(az.String())
			if r.status != http.StatusFound {
				t.Fatalf("the identity provider: %s", r)
			}
			late := r.location()

			// Meanwhile the user signs in again in another tab.
			who, finish := tc.again(t, e, m, b)
			r = fromIdentityProvider(b, late)
			if c := setCookie(t, r, sessionCookie); c != nil {
				t.Errorf("the late answer set the session cookie: %v", c)
			}
			if c := setCookie(t, r, loginCookie); finish != nil && c != nil {
				t.Errorf("the late answer changed the new sign-in's login cookie: %v", c)
			}
			if finish != nil {
				finish()
			}

			s2 := b.cookie(sessionCookie)
			if s2 == "" || s2 == s1 {
				t.Fatalf("the browser's session after signing in again: %q (was %q)", s2, s1)
			}
			if ks := e.sessionKeys(); !slices.Equal(ks, []string{keys.ConsoleSession(sha256Hex(s2))}) {
				t.Errorf("sessions: %v, want the new one only", ks)
			}
			if got := b.raw(); got.Principal.Subject != who || !got.CreatedAt.Equal(e.clk.Now()) {
				t.Errorf("the new session: %+v", got)
			}
			if r := b.get("/console/requests", navigation...); r.status != http.StatusOK {
				t.Errorf("a page of the new session: %s", r)
			}
		})
	}
}

// TestSilentReverifyFormResubmit: a form posted by a session due to be
// verified by the identity provider's sign-in is not acted on, and its
// user is told so: once the session is verified, the browser lands on the
// form's page saying the sign-in was confirmed and the form is to be sent
// again; sent again, it is acted on. So is a form posted while another
// request's re-verification is under way.
func TestSilentReverifyFormResubmit(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		// underWay: a page started the re-verification before the form
		// was posted.
		underWay bool
	}{{"the form starts it", false}, {"under way", true}} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			form := "/console/requests/" + req.ID + "/deny"
			mustContain(t, "the Deny form", b.get(form, navigation...), `action="`+form+`"`)
			csrf := b.csrf()
			e.clk.Advance(reverify)

			var az *url.URL
			if tc.underWay {
				az = wantSilent(t, m, b.get("/console/requests", navigation...))
			}
			deny := url.Values{"csrf_token": {csrf}, "comment": {"not now"}}
			r := b.post(form, deny, header("Referer", e.srv.URL+form))
			back := form + "?done=resubmit"
			if tc.underWay {
				if r.status != http.StatusSeeOther || r.location() != back {
					t.Fatalf("a form posted while the re-verification is under way: %s", r)
				}
				r = b.get(back, navigation...)
				mustContain(t, "the page while the re-verification is under way", r, `data-testid="reverifying"`, `href="`+back+`" data-testid="continue"`)
				wantBack(t, answer(t, b, az), "/console/requests")
			} else {
				wantBack(t, answer(t, b, wantSilent(t, m, r)), back)
			}
			if got := e.request(req.ID); got.State != grants.StatePendingManager || len(got.History) != 1 {
				t.Fatalf("the request is %s with %d events", got.State, len(got.History))
			}

			r = b.get(back, navigation...)
			if r.status != http.StatusOK {
				t.Fatalf("the form's page once verified: %s", r)
			}
			mustContain(t, "the form's page once verified", r, `data-testid="flash"`, "sign-in was confirmed", "submit it again", `action="`+form+`"`)
			if r := b.post(form, deny, header("Referer", e.srv.URL+back)); r.status != http.StatusSeeOther ||
				r.location() != "/console/requests/"+req.ID+"?done=deny" {
				t.Errorf("the form sent again: %s", r)
			}
			if got := e.request(req.ID); got.State != grants.StateDenied {
				t.Errorf("the request is %s", got.State)
			}
		})
	}
}

// TestSilentReverifyDuringSigninAgain: a silent re-verification of a
// session, started while its user is signing in again in another tab (at
// the identity provider's login page), does not end that sign-in: each
// keeps its own sign-in in progress, and both finish.
func TestSilentReverifyDuringSigninAgain(t *testing.T) {
	parallel(t)
	e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
	b := oidcSignIn(t, e, m, mona)
	s1 := b.cookie(sessionCookie)
	m.UpdateUser(mona.sub, operatorMona.user())
	e.clk.Advance(reverify)

	// The new sign-in waits at the identity provider for its user...
	l := startLogin(t, e, m, b, mona)
	// ...while the other tab's page is verified without a page.
	if r := silently(t, m, b, "/console/requests"); r.status != http.StatusOK {
		t.Fatalf("the page verified again: %s", r)
	}
	if got := b.raw(); !got.VerifiedAt.Equal(e.clk.Now()) || !slices.Equal(got.Principal.Roles, []identity.Role{identity.RoleOperator}) {
		t.Errorf("the session verified again: %+v", got)
	}

	wantContinue(t, fromIdentityProvider(b, l.callback), "/console/requests", loginCookie)
	s2 := b.cookie(sessionCookie)
	if s2 == "" || s2 == s1 {
		t.Fatalf("the browser's session after signing in again: %q (was %q)", s2, s1)
	}
	if ks := e.sessionKeys(); !slices.Equal(ks, []string{keys.ConsoleSession(sha256Hex(s2))}) {
		t.Errorf("sessions: %v, want the new one only", ks)
	}
	if r := b.get("/console/requests", navigation...); r.status != http.StatusOK {
		t.Errorf("a page of the new session: %s", r)
	}
}

// TestSilentReverifyCookieUnderHTTPS: under HTTPS a silent
// re-verification in progress is kept in a __Host- cookie, as a sign-in's
// is (TestLoginCookiePlanted): Secure, host-only, for the whole path, so a
// sibling host can't plant one.
func TestSilentReverifyCookieUnderHTTPS(t *testing.T) {
	parallel(t)
	e, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true}, func(cfg *console.Config) {
		cfg.PublicURL = "https://lockbox.example.com"
	})
	const hostSession, hostLogin, hostReverify = "__Host-lockbox_session", "__Host-lockbox_login", "__Host-lockbox_reverify"
	b := e.browser()
	r := b.get("/console/signin/oidc")
	lc := setCookie(t, r, hostLogin)
	if r.status != http.StatusFound || lc == nil {
		t.Fatalf("sign-in start: %s", r)
	}
	m.QueueUser(mona.user())
	cb, _ := url.Parse(b.get(r.location()).location())
	r = b.get(cb.RequestURI(), header("Cookie", hostLogin+"="+lc.Value))
	sc := setCookie(t, r, hostSession)
	if r.status != http.StatusOK || sc == nil {
		t.Fatalf("callback: %s", r)
	}
	e.clk.Advance(reverify)

	r = b.get("/console/requests", append(navigation, header("Cookie", hostSession+"="+sc.Value))...)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), m.AuthorizationEndpoint()+"?") {
		t.Fatalf("want a redirect to the identity provider, got %s", r)
	}
	for _, plain := range []string{reverifyCookie, loginCookie, hostLogin} {
		if c := setCookie(t, r, plain); c != nil {
			t.Errorf("the re-verification set %s: %+v", plain, c)
		}
	}
	c := setCookie(t, r, hostReverify)
	if c == nil || c.Value == "" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 {
		t.Errorf("re-verification cookie %+v: want %s, Secure, HttpOnly, Path=/, host-only, SameSite=Lax", c, hostReverify)
	}
}
