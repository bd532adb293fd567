package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// newLogoutEnv is the console signing in everyone through one identity
// provider started with pc, on the Redis of rdb (the package's when nil).
func newLogoutEnv(t *testing.T, pc oidctest.Config, rdb redis.UniversalClient) (*env, *oidctest.Provider) {
	t.Helper()
	m := oidctest.Start(t, pc)
	var e *env
	if rdb == nil {
		e = newStores(t, clock.NewFake(m.Now()))
	} else {
		e = newStoresOn(t, clock.NewFake(m.Now()), rdb)
	}
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
	e.serve(cfg, false)
	return e, m
}

// oidcSignIn returns a browser u signed in to through m.
func oidcSignIn(t *testing.T, e *env, m *oidctest.Provider, u oidcUser) *browser {
	t.Helper()
	b := e.browser()
	l := startLogin(t, e, m, b, u)
	if r := b.get(l.callback); r.status != http.StatusOK {
		t.Fatalf("callback for %s: %s", u.sub, r)
	}
	return b
}

// storedSession is the console's session of b as Redis holds it.
type storedSession struct {
	Principal struct{ Subject string }
	Logout    *struct {
		Endpoint string `json:"endpoint"`
		ClientID string `json:"client_id"`
		IDToken  string `json:"id_token"`
	} `json:"logout"`
}

func (b *browser) stored() (storedSession, string) {
	b.t.Helper()
	raw, err := b.e.rdb.Get(context.Background(), keys.ConsoleSession(sha256Hex(b.cookie(sessionCookie)))).Result()
	if err != nil {
		b.t.Fatalf("the browser's session in Redis: %v", err)
	}
	var s storedSession
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		b.t.Fatal(err)
	}
	return s, raw
}

// jwtClaims reads a JWT's claims without checking it (the identity provider
// does).
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is no JWT", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// formAction is the form-action directive of r's Content-Security-Policy.
func formAction(r resp) string {
	for d := range strings.SplitSeq(r.header.Get("Content-Security-Policy"), ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "form-action ") {
			return d
		}
	}
	return ""
}

var bob = oidcUser{sub: "bob@fabrikam.example", name: "Bob", tid: "fabrikam", roles: []string{"global-admin"}}

// TestSignoutAtIdentityProvider: signing out of a session whose identity
// provider names an end_session_endpoint ends the session at the
// provider too (OpenID Connect RP-Initiated Logout 1.0), so the next person
// at the workstation is not signed in as this user by its single sign-on.
// The redirect carries the ID token of that very session as
// id_token_hint, which never leaves Redis otherwise; and only the form
// post with the session's token gets there.
func TestSignoutAtIdentityProvider(t *testing.T) {
	parallel(t)
	e, m := newLogoutEnv(t, oidctest.Config{EndSession: true}, nil)
	signedOutURI := e.cfg.PublicURL + "/console/signin?signed_out=1"
	m.RegisterPostLogoutRedirectURIs(signedOutURI)

	// Two users at two browsers: each sign-out names its own session.
	adaB, bobB := oidcSignIn(t, e, m, ada), oidcSignIn(t, e, m, bob)
	adaS, _ := adaB.stored()
	bobS, _ := bobB.stored()
	for _, s := range []storedSession{adaS, bobS} {
		if s.Logout == nil || s.Logout.Endpoint != m.EndSessionEndpoint() || s.Logout.ClientID != m.ClientID() || s.Logout.IDToken == "" {
			t.Fatalf("session of %s keeps %+v", s.Principal.Subject, s.Logout)
		}
		if sub := jwtClaims(t, s.Logout.IDToken)["sub"]; sub != s.Principal.Subject {
			t.Errorf("the session of %s keeps the ID token of %v", s.Principal.Subject, sub)
		}
	}

	// The ID token is in no cookie and on no page; the pages let the
	// sign-out form end at the identity provider, and no other.
	page := adaB.get("/console/requests")
	mustNotContain(t, "requests page", page, adaS.Logout.IDToken)
	for _, c := range adaB.c.Jar.Cookies(mustParse(t, e.srv.URL)) {
		if strings.Contains(c.Value, adaS.Logout.IDToken) {
			t.Errorf("cookie %s holds the ID token", c.Name)
		}
	}
	if fa := formAction(page); fa != "form-action 'self' "+m.Issuer() {
		t.Errorf("the requests page's %q", fa)
	}
	if fa := formAction(e.browser().get("/console/signin")); fa != "form-action 'self'" {
		t.Errorf("the sign-in page's %q", fa)
	}

	// A sign-out without the form token, or from another site, ends
	// nothing and goes nowhere.
	for name, r := range map[string]resp{
		"no form token":    adaB.post("/console/signout", url.Values{}),
		"wrong form token": adaB.post("/console/signout", url.Values{"csrf_token": {"wrong"}}),
		"another site":     adaB.post("/console/signout", adaB.form(nil), header("Sec-Fetch-Site", "cross-site")),
	} {
		if r.status != http.StatusForbidden || r.location() != "" {
			t.Errorf("%s: %s", name, r)
		}
		mustNotContain(t, name, r, adaS.Logout.IDToken)
	}
	if r := adaB.get("/console/requests"); r.status != http.StatusOK {
		t.Fatalf("ada's session after the refused sign-outs: %s", r)
	}

	for _, c := range []struct {
		b *browser
		s storedSession
	}{{adaB, adaS}, {bobB, bobS}} {
		token := c.b.cookie(sessionCookie)
		r := c.b.post("/console/signout", c.b.form(nil))
		if r.status != http.StatusSeeOther {
			t.Fatalf("sign-out of %s: %s", c.s.Principal.Subject, r)
		}
		to := mustParse(t, r.location())
		if got := to.Scheme + "://" + to.Host + to.Path; got != m.EndSessionEndpoint() {
			t.Fatalf("sign-out of %s goes to %s", c.s.Principal.Subject, r.location())
		}
		q := to.Query()
		if q.Get("id_token_hint") != c.s.Logout.IDToken || q.Get("client_id") != m.ClientID() ||
			q.Get("post_logout_redirect_uri") != signedOutURI || len(q) != 3 {
			t.Errorf("sign-out of %s: end-session request %v", c.s.Principal.Subject, q)
		}
		if c := setCookie(t, r, sessionCookie); c == nil || c.MaxAge >= 0 {
			t.Errorf("the session cookie was not cleared: %v", r.header.Values("Set-Cookie"))
		}
		if r := e.withCookie(sessionCookie, token).get("/console/requests"); !signedOut(r) {
			t.Errorf("the session of %s after signing out: %s", c.s.Principal.Subject, r)
		}
		// The identity provider takes the request and sends the browser
		// back to the signed-out page.
		r = c.b.get(r.location())
		if r.status != http.StatusFound || r.location() != signedOutURI {
			t.Fatalf("the identity provider's end-session answer: %s", r)
		}
		r = c.b.get(r.location())
		if r.status != http.StatusOK {
			t.Fatalf("the signed-out page: %s", r)
		}
		mustContain(t, "signed-out page", r, `data-testid="signed-out"`, `href="/console/signin/oidc"`)
	}
	if r := bobB.get("/console/requests"); !signedOut(r) {
		t.Errorf("bob after signing out: %s", r)
	}
	logouts := m.Logouts()
	if len(logouts) != 2 || logouts[0].Subject != ada.sub || logouts[1].Subject != bob.sub {
		t.Errorf("the identity provider signed out %+v", logouts)
	}
}

// TestSignoutWithoutIdentityProviderLogout: wherever there is no
// end-session request to make, signing out is what it always was — the
// Lockbox session ends and the browser goes to the sign-in page. An
// end_session_endpoint that is plain http (and not on localhost) is
// ignored, with a warning: the ID token would travel in the clear, and
// refusing the issuer's discovery document for it would stop a sign-in
// that works. A session from before the console kept ID tokens has none
// to send.
func TestSignoutWithoutIdentityProviderLogout(t *testing.T) {
	parallel(t)
	for name, c := range map[string]struct {
		pc   oidctest.Config
		edit func(t *testing.T, b *browser) // the session before sign-out
		log  string
	}{
		"no end_session_endpoint":          {},
		"an http end_session_endpoint":     {pc: oidctest.Config{EndSessionEndpoint: "http://idp.example/logout"}, log: "end_session_endpoint ignored"},
		"an end_session_endpoint with ';'": {pc: oidctest.Config{EndSessionEndpoint: "https://idp.example;script-src*/logout"}, log: "end_session_endpoint ignored"},
		// A tenant's identity provider writes its own discovery document:
		// half a megabyte of end_session_endpoint would otherwise be
		// copied into the shared Redis with each of its users' sign-ins.
		// (A whole document past a megabyte is not read at all: see
		// TestIdentityProviderBodiesBounded.)
		"an end_session_endpoint too long to keep": {pc: oidctest.Config{EndSessionEndpoint: "https://idp.example/logout?pad=" + strings.Repeat("a", 1<<19)},
			log: "end_session_endpoint ignored"},
		"a session from before": {pc: oidctest.Config{EndSession: true}, edit: func(t *testing.T, b *browser) {
			s, raw := b.stored()
			if s.Logout == nil {
				t.Fatal("the session keeps no ID token to take away")
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				t.Fatal(err)
			}
			delete(v, "logout")
			nb, _ := json.Marshal(v)
			if err := b.e.rdb.Set(context.Background(), keys.ConsoleSession(sha256Hex(b.cookie(sessionCookie))), nb, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			parallel(t)
			e, m := newLogoutEnv(t, c.pc, nil)
			b := oidcSignIn(t, e, m, ada)
			if c.edit != nil {
				c.edit(t, b)
			} else if s, _ := b.stored(); s.Logout != nil {
				t.Errorf("the session keeps %+v", s.Logout)
			}
			page := b.get("/console/requests")
			if fa := formAction(page); fa != "form-action 'self'" {
				t.Errorf("the requests page's %q", fa)
			}
			token := b.cookie(sessionCookie)
			if r := b.post("/console/signout", b.form(nil)); !signedOut(r) {
				t.Errorf("sign-out: %s", r)
			}
			if r := e.withCookie(sessionCookie, token).get("/console/requests"); !signedOut(r) {
				t.Errorf("the session after signing out: %s", r)
			}
			if c.log != "" && !strings.Contains(e.logs.String(), c.log) {
				t.Errorf("the log does not say %q:\n%s", c.log, e.logs)
			}
			if l := m.Logouts(); len(l) != 0 {
				t.Errorf("the identity provider was asked to sign out %+v", l)
			}
		})
	}
	t.Run("dev sign-in", func(t *testing.T) {
		parallel(t)
		e := newEnv(t)
		b := e.signIn(contosoAdmin)
		if fa := formAction(b.get("/console/requests")); fa != "form-action 'self'" {
			t.Errorf("the requests page's %q", fa)
		}
		if r := b.post("/console/signout", b.form(nil)); !signedOut(r) {
			t.Errorf("sign-out: %s", r)
		}
	})
}

// TestSignoutAtIdentityProviderEndpointQuery: an end_session_endpoint with
// a query of its own (as some providers' name a policy or tenant) keeps it,
// and an https one on any host is taken.
func TestSignoutAtIdentityProviderEndpointQuery(t *testing.T) {
	parallel(t)
	const ep = "https://login.example.com/tfp/contoso/oauth2/v2.0/logout?p=B2C_1_signin"
	e, m := newLogoutEnv(t, oidctest.Config{EndSessionEndpoint: ep}, nil)
	b := oidcSignIn(t, e, m, ada)
	if fa := formAction(b.get("/console/requests")); fa != "form-action 'self' https://login.example.com" {
		t.Errorf("the requests page's %q", fa)
	}
	s, _ := b.stored()
	r := b.post("/console/signout", b.form(nil))
	to := mustParse(t, r.location())
	if r.status != http.StatusSeeOther || to.Host != "login.example.com" || to.Path != "/tfp/contoso/oauth2/v2.0/logout" {
		t.Fatalf("sign-out: %s", r)
	}
	if q := to.Query(); q.Get("p") != "B2C_1_signin" || q.Get("id_token_hint") != s.Logout.IDToken || q.Get("client_id") != m.ClientID() {
		t.Errorf("end-session request %v", q)
	}
}

// TestSignoutAtIdentityProviderLargeIDToken: an ID token too large to keep
// (a user in many groups) is not kept; sign-out still goes to the identity
// provider, without the hint, which then asks its user to confirm.
func TestSignoutAtIdentityProviderLargeIDToken(t *testing.T) {
	parallel(t)
	e, m := newLogoutEnv(t, oidctest.Config{EndSession: true}, nil)
	groups := make([]string, 400)
	for i := range groups {
		groups[i] = "00000000-0000-0000-0000-" + strings.Repeat("0", 8) + string(rune('a'+i%26)) + "123"
	}
	big := ada
	big.roles = append([]string{"global-admin"}, groups...)
	b := oidcSignIn(t, e, m, big)
	s, raw := b.stored()
	if s.Logout == nil || s.Logout.IDToken != "" || len(raw) > 2<<10 {
		t.Errorf("the session keeps %d bytes: %+v", len(raw), s.Logout)
	}
	r := b.post("/console/signout", b.form(nil))
	to := mustParse(t, r.location())
	if r.status != http.StatusSeeOther || to.Scheme+"://"+to.Host+to.Path != m.EndSessionEndpoint() {
		t.Fatalf("sign-out: %s", r)
	}
	if q := to.Query(); q.Has("id_token_hint") || q.Get("client_id") != m.ClientID() || q.Get("post_logout_redirect_uri") == "" {
		t.Errorf("end-session request %v", q)
	}
	if !strings.Contains(e.logs.String(), "too large to keep") {
		t.Errorf("the log does not say why:\n%s", e.logs)
	}
}

// TestSignoutAtIdentityProviderRedisDown: a sign-out that can't read the
// session answers 503 as any sign-out does, and goes nowhere: the session
// is not ended, so the identity provider's must not be either.
func TestSignoutAtIdentityProviderRedisDown(t *testing.T) {
	parallel(t)
	srv := redistest.StartServer(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// A frozen Redis answers nothing: give up on it fast, but not so fast
	// that a loaded machine's slow answer while the test sets up (at
	// 200 ms, onboarding a tenant timed out) counts as an outage.
	opts.MaxRetries, opts.ReadTimeout, opts.WriteTimeout = -1, time.Second, time.Second
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	e, m := newLogoutEnv(t, oidctest.Config{EndSession: true}, rdb)
	b := oidcSignIn(t, e, m, ada)
	csrf := b.csrf()

	thaw := srv.Freeze(t)
	r := b.post("/console/signout", url.Values{"csrf_token": {csrf}})
	thaw()
	if r.status != http.StatusServiceUnavailable || r.location() != "" || setCookie(t, r, sessionCookie) != nil {
		t.Errorf("sign-out with Redis down: %s", r)
	}
	r = b.post("/console/signout", url.Values{"csrf_token": {csrf}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), m.EndSessionEndpoint()+"?") {
		t.Errorf("sign-out with Redis back: %s", r)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
