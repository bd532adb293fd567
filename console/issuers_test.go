package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// issuersEnv is the console with the provider's identity provider for its
// staff and contoso's and fabrikam's for their users.
type issuersEnv struct {
	*env
	provider, contoso, fabrikam *oidctest.Provider
}

func newIssuersEnv(t *testing.T) *issuersEnv {
	t.Helper()
	ie := &issuersEnv{
		provider: oidctest.Start(t, oidctest.Config{}),
		contoso:  oidctest.Start(t, oidctest.Config{ClientID: "lockbox-at-contoso"}),
		fabrikam: oidctest.Start(t, oidctest.Config{}),
	}
	ie.env = newStores(t, clock.NewFake(ie.provider.Now()))
	cfg := ie.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{
		signinConfig(ie.provider, identity.ProviderScope()),
		signinConfig(ie.contoso, identity.TenantScope("contoso")),
		signinConfig(ie.fabrikam, identity.TenantScope("fabrikam")),
	}
	ie.serve(cfg, false)
	return ie
}

// signIn signs b in through path at m as u and returns the principal its
// session holds.
func (ie *issuersEnv) signIn(t *testing.T, b *browser, m *oidctest.Provider, path string, u oidcUser) identity.Principal {
	t.Helper()
	l := startLoginAt(t, m, b, path, u)
	if got := l.authorize.Scheme + "://" + l.authorize.Host + l.authorize.Path; got != m.AuthorizationEndpoint() {
		t.Fatalf("%s sent the browser to %s, want %s", path, got, m.AuthorizationEndpoint())
	}
	r := b.get(l.callback)
	if r.status != http.StatusOK {
		t.Fatalf("callback: %s", r)
	}
	c := setCookie(t, r, sessionCookie)
	if c == nil {
		t.Fatalf("no session cookie: %s", r)
	}
	var stored struct{ Principal identity.Principal }
	if err := json.Unmarshal([]byte(ie.dump()[keys.ConsoleSession(sha256Hex(c.Value))]), &stored); err != nil {
		t.Fatal(err)
	}
	return stored.Principal
}

// TestSigninPerIssuer: tenant users sign in through their tenant's identity
// provider, which makes them users of that tenant whatever their tokens
// claim; provider staff through the provider's, which makes them staff.
func TestSigninPerIssuer(t *testing.T) {
	t.Parallel()
	ie := newIssuersEnv(t)

	page := ie.browser().get("/console/signin")
	mustContain(t, "sign-in page", page, `action="/console/signin"`, `name="tenant"`, `data-testid="signin-org"`,
		`href="/console/signin/oidc"`, "Sign in as provider staff")
	// The organization form comes back to the sign-in page, which links to
	// the organization's identity provider.
	if p := ie.browser().get("/console/signin?tenant=Contoso"); !strings.Contains(p.body, `href="/console/signin/oidc?tenant=contoso"`) {
		t.Errorf("the sign-in page does not lead to the organization the URL names: %s", p)
	}
	for _, org := range []string{"northwind", `"><script>`} {
		p := ie.browser().get("/console/signin?tenant=" + url.QueryEscape(org))
		mustContain(t, "sign-in page for "+org, p, "No organization of that name signs in here", `data-testid="signin-org"`)
		mustNotContain(t, "sign-in page for "+org, p, "<script>", "signin-org-continue")
	}

	t.Run("contoso's user, as the sign-in page sends them", func(t *testing.T) {
		b := ie.browser()
		p := ie.signIn(t, b, ie.contoso, "/console/signin/oidc?tenant=contoso", ada)
		want := identity.Principal{Subject: "ada@contoso.example", TenantID: "contoso", Roles: []identity.Role{identity.RoleGlobalAdmin}}
		if p.Subject != want.Subject || p.TenantID != want.TenantID || !slices.Equal(p.Roles, want.Roles) {
			t.Fatalf("session principal %+v, want %+v", p, want)
		}
		mustContain(t, "requests page", b.get("/console/requests"), "Global administrator · contoso")
		b.post("/console/signout", b.form(nil))
	})
	t.Run("contoso's user claiming fabrikam and provider roles", func(t *testing.T) {
		b := ie.browser()
		p := ie.signIn(t, b, ie.contoso, "/console/signin/oidc?tenant=contoso",
			oidcUser{sub: "mallory@contoso", tid: "fabrikam", roles: []string{"global-admin", "operator", "support-manager", "lockbox-admin"}})
		if p.TenantID != "contoso" || !slices.Equal(p.Roles, []identity.Role{identity.RoleGlobalAdmin}) {
			t.Fatalf("session principal %+v: want contoso's global admin and nothing more", p)
		}
		r := b.get("/console/settings")
		mustContain(t, "settings", r, "contoso")
		mustNotContain(t, "settings", r, "fabrikam")
		// No engineer's tools: those are provider roles.
		mustNotContain(t, "requests page", b.get("/console/requests"), `href="/console/requests/new"`, `href="/console/tenants"`)
		mustNotContain(t, "tenants", b.get("/console/tenants"), "fabrikam")
		b.post("/console/signout", b.form(nil))
	})
	t.Run("contoso's user with provider roles only", func(t *testing.T) {
		b := ie.browser()
		l := startLoginAt(t, ie.contoso, b, "/console/signin/oidc?tenant=contoso", oidcUser{sub: "eve@contoso", roles: []string{"operator", "support-manager"}})
		wantProblem(t, ie.env, b.get(l.callback), "no_roles")
	})
	t.Run("fabrikam's user through the sign-in link", func(t *testing.T) {
		b := ie.browser()
		r := b.get("/console/login?tenant=fabrikam")
		if r.status != http.StatusSeeOther || r.location() != "/console/signin/oidc?tenant=fabrikam" {
			t.Fatalf("sign-in link: %s", r)
		}
		p := ie.signIn(t, b, ie.fabrikam, r.location(), oidcUser{sub: "fay@fabrikam.example", tid: "contoso", roles: []string{"global-admin"}})
		if p.TenantID != "fabrikam" {
			t.Fatalf("session principal %+v, want a user of fabrikam", p)
		}
		b.post("/console/signout", b.form(nil))
	})
	t.Run("provider staff", func(t *testing.T) {
		b := ie.browser()
		p := ie.signIn(t, b, ie.provider, "/console/signin/oidc",
			oidcUser{sub: "alice", tid: "contoso", roles: []string{"operator", "global-admin", "lockbox-approver"}})
		if p.TenantID != "" || !slices.Equal(p.Roles, []identity.Role{identity.RoleOperator}) {
			t.Fatalf("session principal %+v, want provider staff with the operator role", p)
		}
		mustContain(t, "requests page", b.get("/console/requests"), `href="/console/requests/new"`)
		b.post("/console/signout", b.form(nil))
	})
	t.Run("organizations without an issuer", func(t *testing.T) {
		for _, org := range []string{"northwind", "Contoso Ltd", "../contoso", strings.Repeat("a", 64)} {
			r := ie.browser().get("/console/signin/oidc?tenant=" + url.QueryEscape(org))
			if r.status != http.StatusSeeOther || r.location() != "/console/signin?problem=unknown_org" {
				t.Errorf("%q: %s", org, r)
			}
		}
		mustContain(t, "sign-in page", ie.browser().get("/console/signin?problem=unknown_org"), "No organization of that name signs in here")
		if r := ie.browser().get("/console/login?tenant=..%2Fcontoso"); r.location() != "/console/signin" {
			t.Errorf("sign-in link with a bad name: %s", r)
		}
		// A link naming an organization without an issuer says so at once.
		if r := ie.browser().get("/console/login?tenant=northwind"); r.status != http.StatusSeeOther || r.location() != "/console/signin?problem=unknown_org" {
			t.Errorf("sign-in link of an organization without an issuer: %s", r)
		}
	})
	t.Run("answer from another provider than the sign-in went to", func(t *testing.T) {
		// RFC 9207 mix-up: the sign-in went to fabrikam's provider, the
		// answer says it comes from contoso's.
		b := ie.browser()
		l := startLoginAt(t, ie.fabrikam, b, "/console/signin/oidc?tenant=fabrikam", ada)
		u, _ := url.Parse(l.callback)
		q := u.Query()
		q.Set("iss", ie.contoso.Issuer())
		u.RawQuery = q.Encode()
		wantProblem(t, ie.env, b.get(u.String()), "failed", "the answer names issuer")
	})
	t.Run("code of another provider", func(t *testing.T) {
		// A code contoso's provider issued, brought back to a sign-in that
		// went to fabrikam's: it is redeemed at fabrikam's, which knows it
		// not.
		b := ie.browser()
		fab := startLoginAt(t, ie.fabrikam, b, "/console/signin/oidc?tenant=fabrikam", ada)
		con := startLoginAt(t, ie.contoso, ie.browser(), "/console/signin/oidc?tenant=contoso", ada)
		cu, _ := url.Parse(con.callback)
		wantProblem(t, ie.env, b.get("/console/oidc/callback/tenant/fabrikam?"+
			url.Values{"code": {cu.Query().Get("code")}, "state": {fab.state}, "iss": {ie.fabrikam.Issuer()}}.Encode()),
			"failed", "unknown, used or expired code")
	})
}

// TestSigninIssuersChecked: one issuer signs in each kind of user.
func TestSigninIssuersChecked(t *testing.T) {
	t.Parallel()
	e := newStores(t, newClock())
	oc := func(iss string, s identity.Scope) console.OIDCConfig {
		return console.OIDCConfig{Issuer: iss, ClientID: "lockbox", Scope: s}
	}
	for _, tc := range []struct {
		name string
		oidc []console.OIDCConfig
		want string
	}{
		{"two for contoso", []console.OIDCConfig{oc("https://a.example", identity.TenantScope("contoso")), oc("https://b.example", identity.TenantScope("contoso"))}, "two OIDC issuers sign in tenant contoso"},
		{"two for staff", []console.OIDCConfig{oc("https://a.example", identity.ProviderScope()), oc("https://b.example", identity.ProviderScope())}, "provider's staff"},
		{"shared next to a tenant's", []console.OIDCConfig{oc("https://a.example", identity.SharedScope()), oc("https://b.example", identity.TenantScope("contoso"))}, "shared scope"},
	} {
		cfg := e.consoleConfig()
		cfg.OIDC, cfg.PublicURL = tc.oidc, "https://lockbox.example.com"
		if _, err := console.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// Tenants' issuers alone: no staff button, and /console/signin/oidc
// without an organization is not a way in.
func TestSigninTenantIssuersOnly(t *testing.T) {
	t.Parallel()
	m := oidctest.Start(t, oidctest.Config{})
	e := newStores(t, clock.NewFake(m.Now()))
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.TenantScope("contoso"))}
	e.serve(cfg, false)
	page := e.browser().get("/console/signin")
	mustContain(t, "sign-in page", page, `data-testid="signin-org"`)
	mustNotContain(t, "sign-in page", page, `data-testid="signin-oidc"`)
	if r := e.browser().get("/console/signin/oidc"); r.status != http.StatusSeeOther || r.location() != "/console/signin?problem=unknown_org" {
		t.Errorf("staff sign-in without a staff issuer: %s", r)
	}
}

// TestSessionEndsWithItsIssuer: a session lasts only while the issuer that
// made it still signs its user in here. Taking a (compromised) tenant's
// issuer out of the configuration, or giving the tenant another, ends its
// users' sessions at once, not up to LOCKBOX_CONSOLE_SESSION_MAX later;
// the other issuers' sessions go on.
func TestSessionEndsWithItsIssuer(t *testing.T) {
	t.Parallel()
	ie := newIssuersEnv(t)
	signInContoso := func() *browser {
		con := ie.browser()
		ie.signIn(t, con, ie.contoso, "/console/signin/oidc?tenant=contoso", ada)
		return con
	}
	staff := ie.browser()
	ie.signIn(t, staff, ie.provider, "/console/signin/oidc", oidcUser{sub: "sam", roles: []string{"support-manager"}})
	fab := ie.browser()
	ie.signIn(t, fab, ie.fabrikam, "/console/signin/oidc?tenant=fabrikam", oidcUser{sub: "fay@fabrikam.example", roles: []string{"global-admin"}})

	// The same deployment after a restart with another configuration:
	// the sessions are in the same Redis.
	restarted := func(oidc ...console.OIDCConfig) *env {
		after := *ie.env
		cfg := ie.consoleConfig()
		cfg.OIDC = oidc
		after.serve(cfg, false)
		return &after
	}
	other := oidctest.Start(t, oidctest.Config{})
	for _, tc := range []struct {
		name string
		oidc []console.OIDCConfig
		// contosoOn: whether contoso's user is still signed in.
		contosoOn bool
	}{
		{"unchanged", []console.OIDCConfig{signinConfig(ie.provider, identity.ProviderScope()), signinConfig(ie.contoso, identity.TenantScope("contoso")),
			signinConfig(ie.fabrikam, identity.TenantScope("fabrikam"))}, true},
		{"contoso's issuer removed", []console.OIDCConfig{signinConfig(ie.provider, identity.ProviderScope()),
			signinConfig(ie.fabrikam, identity.TenantScope("fabrikam"))}, false},
		{"contoso signs in through another issuer", []console.OIDCConfig{signinConfig(ie.provider, identity.ProviderScope()),
			signinConfig(other, identity.TenantScope("contoso")), signinConfig(ie.fabrikam, identity.TenantScope("fabrikam"))}, false},
		// Contoso's issuer, now the provider's: it never signed in staff.
		{"contoso's issuer signs in staff", []console.OIDCConfig{signinConfig(ie.contoso, identity.ProviderScope()),
			signinConfig(ie.fabrikam, identity.TenantScope("fabrikam"))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			con := signInContoso()
			after := restarted(tc.oidc...)
			r := after.withCookie(sessionCookie, con.cookie(sessionCookie)).get("/console/settings")
			if on := r.status == http.StatusOK; on != tc.contosoOn {
				t.Errorf("contoso's user: %s", r)
			}
			if !tc.contosoOn && !signedOut(r) {
				t.Errorf("contoso's user is not sent to sign in: %s", r)
			}
			if r := after.withCookie(sessionCookie, fab.cookie(sessionCookie)).get("/console/settings"); r.status != http.StatusOK {
				t.Errorf("fabrikam's user: %s", r)
			}
		})
	}
	// Ended means gone from Redis: bringing the issuer back does not
	// revive the session.
	con := signInContoso()
	restarted(signinConfig(ie.provider, identity.ProviderScope())).withCookie(sessionCookie, con.cookie(sessionCookie)).get("/console/settings")
	after := restarted(signinConfig(ie.provider, identity.ProviderScope()), signinConfig(ie.contoso, identity.TenantScope("contoso")))
	if r := after.withCookie(sessionCookie, con.cookie(sessionCookie)).get("/console/settings"); !signedOut(r) {
		t.Errorf("contoso's user after the issuer came back: %s", r)
	}
	if r := after.withCookie(sessionCookie, staff.cookie(sessionCookie)).get("/console/requests"); r.status != http.StatusOK {
		t.Errorf("the provider's staff: %s", r)
	}
	after = restarted(signinConfig(ie.contoso, identity.TenantScope("contoso")))
	if r := after.withCookie(sessionCookie, staff.cookie(sessionCookie)).get("/console/requests"); !signedOut(r) {
		t.Errorf("the provider's staff without the provider's issuer: %s", r)
	}
}

// TestDevSessionNeedsDevSignin: a dev sign-in's session works where the dev
// sign-in is offered ("lockbox dev"), and nowhere else.
func TestDevSessionNeedsDevSignin(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	tok := e.signIn(contosoAdmin).cookie(sessionCookie)
	if r := e.withCookie(sessionCookie, tok).get("/console/settings"); r.status != http.StatusOK {
		t.Fatalf("with the dev sign-in: %s", r)
	}
	m := oidctest.Start(t, oidctest.Config{})
	after := *e
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
	after.serve(cfg, false)
	if r := after.withCookie(sessionCookie, tok).get("/console/settings"); !signedOut(r) {
		t.Errorf("without the dev sign-in: %s", r)
	}
}

// TestSigninStartedFromAnotherSite: another site can't start a sign-in.
// An identity provider in the wrong hands (a tenant's, here fabrikam's)
// signs in whoever it likes without asking anyone, so a page that sent the
// browser straight into a sign-in through it would come back signed in as
// the attacker's choice, the browser's own session ended (login CSRF). A
// sign-in that another site started lands on the sign-in page, where the
// user chooses to continue; from the console's own pages, a bookmark or a
// typed address it goes straight on.
// userRE finds who the page header says is signed in, and as what.
var userRE = regexp.MustCompile(`data-testid="user">([^<]*)<[^>]*>\s*<span class="who-role">([^<]*)<`)

func TestSigninStartedFromAnotherSite(t *testing.T) {
	t.Parallel()
	ie := newIssuersEnv(t)
	mallory := oidcUser{sub: "mallory@fabrikam.example", name: "Ada Admin", roles: []string{"global-admin"}}

	victim := ie.browser()
	ie.signIn(t, victim, ie.contoso, "/console/signin/oidc?tenant=contoso", ada)
	session := victim.cookie(sessionCookie)
	for _, site := range []string{"cross-site", "same-site"} {
		for _, link := range []struct{ path, start, page string }{
			{"/console/login?tenant=fabrikam", "/console/signin/oidc?tenant=fabrikam", "/console/signin?tenant=fabrikam"},
			{"/console/signin/oidc?tenant=fabrikam", "/console/signin/oidc?tenant=fabrikam", "/console/signin?tenant=fabrikam"},
			{"/console/signin/oidc", "/console/signin/oidc", "/console/signin"},
		} {
			t.Run(site+" "+link.path, func(t *testing.T) {
				from := header("Sec-Fetch-Site", site)
				before := len(ie.keys("*"))
				r := victim.get(link.path, from)
				if link.path != link.start {
					if r.status != http.StatusSeeOther || r.location() != link.start {
						t.Fatalf("sign-in link: %s", r)
					}
					// The browser follows the redirect; the navigation is
					// still the other site's.
					r = victim.get(r.location(), from)
				}
				if r.status == http.StatusFound {
					// The identity provider answers at once, and its
					// redirect back is a navigation from another site too.
					ie.fabrikam.QueueUser(mallory.user())
					ie.provider.QueueUser(mallory.user())
					back := victim.get(r.location(), from)
					cb := victim.get(back.location(), from)
					var who []string
					if m := userRE.FindStringSubmatch(victim.get("/console/requests").body); m != nil {
						who = m[1:]
					}
					t.Fatalf("a sign-in another site started went on to the identity provider; its callback answered %d, "+
						"and the browser is signed in as %q (session cookie changed: %v)", cb.status, who, victim.cookie(sessionCookie) != session)
				}
				if r.status != http.StatusSeeOther || r.location() != link.page {
					t.Fatalf("want the sign-in page %s, got %s", link.page, r)
				}
				if c := setCookie(t, r, "lockbox_login"); c != nil {
					t.Errorf("a login cookie was set: %+v", c)
				}
				if n := len(ie.keys("*")); n != before {
					t.Errorf("a sign-in was stored: %d keys, were %d", n, before)
				}
				// The browser's session is untouched: the sign-in page
				// (which a browser, sending no SameSite=Strict cookie on
				// another site's navigation, shows with the organization's
				// continue link) sends its user to their requests, still
				// as themselves.
				if r := victim.get(link.page); r.status != http.StatusSeeOther || r.location() != "/console/requests" {
					t.Errorf("the sign-in page for a signed-in user: %s", r)
				}
				if victim.cookie(sessionCookie) != session {
					t.Error("the browser's session cookie changed")
				}
				mustContain(t, "requests page", victim.get("/console/requests"), `data-testid="user">Ada Admin<`, "Global administrator · contoso")
			})
		}
	}

	// Signed out, the user continues from the sign-in page, a navigation of
	// the console's own, and goes on to the identity provider.
	b := ie.browser()
	r := b.get("/console/login?tenant=fabrikam", header("Sec-Fetch-Site", "cross-site"))
	r = b.get(r.location(), header("Sec-Fetch-Site", "cross-site"))
	if r.status != http.StatusSeeOther || r.location() != "/console/signin?tenant=fabrikam" {
		t.Fatalf("sign-in link from another site: %s", r)
	}
	page := b.get(r.location(), header("Sec-Fetch-Site", "cross-site"))
	next := link(t, page, "signin-org-continue")
	if next != "/console/signin/oidc?tenant=fabrikam" {
		t.Fatalf("the sign-in page continues to %q", next)
	}
	fay := oidcUser{sub: "fay@fabrikam.example", name: "Fay", roles: []string{"global-admin"}}
	if p := ie.signIn(t, b, ie.fabrikam, next, fay); p.Subject != fay.sub {
		t.Errorf("signed in as %+v", p)
	}
	// So do a bookmark or a typed address (none), a link on the console's
	// pages (same-origin), and clients that send no Sec-Fetch-Site (as
	// http.CrossOriginProtection, they are let through: every browser since
	// 2023 sends it).
	for _, site := range []string{"none", "same-origin", ""} {
		var opts []reqOpt
		if site != "" {
			opts = append(opts, header("Sec-Fetch-Site", site))
		}
		if r := ie.browser().get("/console/signin/oidc?tenant=fabrikam", opts...); r.status != http.StatusFound ||
			!strings.HasPrefix(r.location(), ie.fabrikam.AuthorizationEndpoint()) {
			t.Errorf("Sec-Fetch-Site %q: %s", site, r)
		}
	}
}
