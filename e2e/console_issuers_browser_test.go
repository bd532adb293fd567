package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// startIssuersConsole runs Lockbox with an issuers file whose three
// identity providers (each changed by tweaks, as startIDPs does) sign users
// in to the admin center, on the real clock.
func startIssuersConsole(t *testing.T, tweaks ...func(name string, c *oidctest.Config)) (*consoleWorld, *idps) {
	t.Helper()
	return startIssuersConsoleWith(t, issuersConsole{}, tweaks...)
}

// issuersConsole is what startIssuersConsoleWith changes of the Lockbox
// startIssuersConsole runs; the zero value changes nothing.
type issuersConsole struct {
	// now is the clock of Lockbox, its demo services and the identity
	// providers; time.Now when nil.
	now func() time.Time
	// env are more settings (LOCKBOX_CONSOLE_REVERIFY, say).
	env map[string]string
	// refresh is the live lists' polling period (server.Options.ConsoleRefresh).
	refresh time.Duration
	// host is the name the browser reaches the console by, and its public
	// URL's; 127.0.0.1 when "". "localhost" makes the identity providers,
	// which serve at 127.0.0.1, another site than the console, as they
	// are in a deployment, so SameSite cookies don't cross their
	// redirects.
	host string
}

// startIssuersConsoleWith is startIssuersConsole, changed by o.
func startIssuersConsoleWith(t *testing.T, o issuersConsole, tweaks ...func(name string, c *oidctest.Config)) (*consoleWorld, *idps) {
	t.Helper()
	if o.now == nil {
		o.now = time.Now
	}
	p := startIDPs(t, o.now, true, tweaks...)
	dir := t.TempDir()
	grantKey, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := startDemo(t, context.Background(), grantKey, o.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	// The redirect URI names the console's address, so it is chosen first.
	api := freeAddr(t)
	public := "http://" + api
	if o.host != "" {
		_, port, _ := strings.Cut(api, "127.0.0.1:")
		public = "http://" + o.host + ":" + port
	}
	env := map[string]string{
		"LOCKBOX_UPSTREAMS":              "exchange=" + cluster.Upstreams()["exchange"],
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
		"LOCKBOX_REDIS_URL":              redistest.URL(t),
		"LOCKBOX_ISSUERS_FILE":           p.file,
		"LOCKBOX_CONSOLE_URL":            public,
		"LOCKBOX_API_ADDR":               api,
		"LOCKBOX_PROXY_ADDR":             "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":           "127.0.0.1:0",
		"LOCKBOX_SIEM_SINK":              "off",
	}
	maps.Copy(env, o.env)
	cfg, err := config.LoadFor(env, config.ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{
		Now:            o.now,
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		DevMailDir:     filepath.Join(dir, "mail"),
		ConsoleRefresh: o.refresh,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	tenanttest.Onboard(t, srv.Tenants, "contoso", "fabrikam")
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if t.Failed() {
			t.Logf("lockbox logs (warnings and errors):\n%s", logs.String())
		}
	})
	return &consoleWorld{srv: srv, base: public, logs: logs}, p
}

// signInThrough runs the navigation that starts a sign-in (a click, or
// opening a link), through the identity provider (which signs in the user
// queued there) back to the admin center, whose "Signed in" page moves on
// to the requests.
func (tb *tab) signInThrough(what, who string, start chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	// Several navigations in a row (the identity provider's redirects,
	// then the "Signed in" page's refresh): where they end is awaited.
	// The mark is gone once a new document has loaded: a sign-in started on
	// /console/signin must not count as ended there before it left.
	tb.step("mark the page the sign-in starts from", chromedp.Evaluate[chromedp.Void](`window.__signinStarted = true`))
	tb.step(what, start)
	tb.waitFor("the admin center after the identity provider",
		`window.__signinStarted !== true && (location.pathname === "/console/requests" || location.pathname === "/console/signin")`)
	tb.checkAccessible()
	tb.signedIn(who)
}

// TestConsoleSigninPerIssuer: in a real browser, a tenant's user names the
// organization on the sign-in page (or follows its sign-in link) and signs in
// at the tenant's own identity provider; provider staff sign in at the
// provider's. What each becomes is the issuer's scope, whatever the
// identity provider claims.
func TestConsoleSigninPerIssuer(t *testing.T) {
	path := chromium(t)
	w, p := startIssuersConsole(t)
	b := startBrowser(t, path, w.base)

	// contoso's administrator types the organization. Her identity
	// provider claims fabrikam and an operator role: neither counts.
	gina := b.newTab("gina")
	gina.open("/console/signin")
	gina.want("h1", "Sign in")
	gina.want(`label[for="tenant"]`, "organization")
	gina.shot("signin-organizations")
	p.contoso.QueueUser(oidctest.User{Subject: "gina@contoso.example", Claims: map[string]any{
		"name": "Gina Global", "tid": "fabrikam", "roles": []string{"global-admin", "operator"}}})
	gina.step("type the organization", chromedp.SendKeys(chromedp.CSS("#tenant"), "contoso"))
	gina.follow(`[data-testid="signin-org"]`)
	gina.want(`[data-testid="signin-org-continue"]`, "contoso")
	gina.shot("signin-contoso")
	gina.signInThrough("continue to contoso's sign-in", "Gina Global", chromedp.Click(chromedp.CSS(`[data-testid="signin-org-continue"]`)))
	gina.want(".who", "Global administrator", "contoso")
	if body := evalIn[string](gina, `document.body.innerText`); strings.Contains(body, "fabrikam") || strings.Contains(body, "New request") {
		t.Fatalf("contoso's administrator sees fabrikam or the engineers' tools:\n%s", body)
	}
	gina.open("/console/settings")
	gina.want("main", "contoso")
	gina.shot("signed-in-contoso")

	// fabrikam's administrator follows her organization's sign-in link.
	fay := b.newTab("fay")
	p.fabrikam.QueueUser(oidctest.User{Subject: "fay@fabrikam.example", Claims: map[string]any{"name": "Fay", "roles": []string{"global-admin"}}})
	fay.signInThrough("open fabrikam's sign-in link", "Fay", chromedp.Navigate(w.base+"/console/login?tenant=fabrikam"))
	fay.want(".who", "fabrikam")

	// The provider's support manager signs in as staff. The tid her
	// identity provider adds names no tenant.
	mary := b.newTab("mary")
	mary.open("/console/signin")
	p.provider.QueueUser(oidctest.User{Subject: "mary@provider.example", Claims: map[string]any{
		"name": "Mary Manager", "tid": "contoso", "roles": []string{"support-manager", "global-admin"}}})
	mary.signInThrough("sign in as staff", "Mary Manager", chromedp.Click(chromedp.CSS(`[data-testid="signin-oidc"]`)))
	mary.want(".who", "Support manager", "provider")
	mary.shot("signed-in-provider")

	// An organization without an identity provider of its own.
	nobody := b.newTab("nobody")
	nobody.open("/console/signin")
	nobody.step("type an organization", chromedp.SendKeys(chromedp.CSS("#tenant"), "northwind"))
	nobody.follow(`[data-testid="signin-org"]`)
	nobody.want(`[role="alert"]`, "No organization of that name signs in here")
	if nobody.exists(`[data-testid="signin-org-continue"]`) {
		t.Fatal("the sign-in page offers to continue to an organization nobody configured")
	}

	// A page of another site sends the browser to fabrikam's sign-in
	// link. Were fabrikam's identity provider in the wrong hands, it would
	// answer at once with a user of its choice, and the browser would come
	// back signed in as them, its own session ended (login CSRF). The
	// browser lands on the sign-in page instead (without its session
	// cookie, which is SameSite=Strict: another site started the
	// navigation), which names the organization and goes on only when its
	// user chooses to. Gina's session is untouched.
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, `<!doctype html><html lang="en"><title>Your documents</title>
<script>location.replace(%q)</script></html>`, w.base+"/console/login?tenant=fabrikam")
	}))
	t.Cleanup(evil.Close)
	_, evilPort, _ := strings.Cut(evil.URL, "127.0.0.1:")
	evilURL := "http://localhost:" + evilPort // another site than 127.0.0.1
	p.fabrikam.QueueUser(oidctest.User{Subject: "mallory@fabrikam.example", Claims: map[string]any{"name": "Mallory", "roles": []string{"global-admin"}}})
	gina.step("open a page of another site that starts a sign-in", chromedp.Navigate(evilURL))
	gina.waitFor("the sign-in page", fmt.Sprintf(`location.href === %q`, w.base+"/console/signin?tenant=fabrikam"))
	gina.want(`[data-testid="signin-org-continue"]`, "fabrikam")
	gina.open("/console/requests")
	gina.signedIn("Gina Global")
	gina.want(".who", "contoso")

	stranger := b.newTab("stranger")
	stranger.step("open a page of another site that starts a sign-in", chromedp.Navigate(evilURL))
	stranger.waitFor("the sign-in page", fmt.Sprintf(`location.href === %q`, w.base+"/console/signin?tenant=fabrikam"))
	stranger.want(`[data-testid="signin-org-continue"]`, "fabrikam")
	stranger.checkAccessible()
	stranger.shot("signin-from-another-site")
	// Continuing is the user's choice, from the console's own page.
	stranger.signInThrough("continue to fabrikam's sign-in", "Mallory", chromedp.Click(chromedp.CSS(`[data-testid="signin-org-continue"]`)))
}

// TestConsoleSignoutAtIdentityProvider: in a real browser, signing out of a
// session whose identity provider names an end_session_endpoint goes on to
// it with the ID token of the sign-in, and the identity provider sends the
// browser back to the sign-in page, which says so; the page's
// Content-Security-Policy lets the sign-out form's redirect go there.
// Through an identity provider without one, signing out is what it was.
func TestConsoleSignoutAtIdentityProvider(t *testing.T) {
	path := chromium(t)
	w, p := startIssuersConsole(t, func(name string, c *oidctest.Config) { c.EndSession = name == "provider" })
	b := startBrowser(t, path, w.base)
	signedOut := w.base + "/console/signin?signed_out=1"
	p.provider.RegisterPostLogoutRedirectURIs(signedOut)

	mary := b.newTab("mary")
	mary.open("/console/signin")
	p.provider.QueueUser(oidctest.User{Subject: "mary@provider.example", Claims: map[string]any{"name": "Mary Manager", "roles": []string{"support-manager"}}})
	mary.signInThrough("sign in as staff", "Mary Manager", chromedp.Click(chromedp.CSS(`[data-testid="signin-oidc"]`)))
	// A page without a live list, whose poll could notice the ended
	// session and move on to sign-in itself while the sign-out's
	// redirects are under way.
	mary.open("/console/tenants")
	mary.step("click Sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)))
	mary.waitFor("the signed-out page", fmt.Sprintf(`location.href === %q`, signedOut))
	mary.want(`[data-testid="signed-out"]`, "signed out")
	mary.checkAccessible()
	mary.shot("signed-out-at-identity-provider")
	if l := p.provider.Logouts(); len(l) != 1 || l[0].Subject != "mary@provider.example" || l[0].ClientID != p.provider.ClientID() {
		t.Fatalf("the identity provider signed out %+v", l)
	}
	mary.open("/console/requests")
	if loc := mary.location(); loc != w.base+"/console/signin" {
		t.Fatalf("a page after signing out: at %s", loc)
	}

	fay := b.newTab("fay")
	p.fabrikam.QueueUser(oidctest.User{Subject: "fay@fabrikam.example", Claims: map[string]any{"name": "Fay", "roles": []string{"global-admin"}}})
	fay.signInThrough("open fabrikam's sign-in link", "Fay", chromedp.Navigate(w.base+"/console/login?tenant=fabrikam"))
	fay.open("/console/settings")
	fay.step("click Sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)))
	fay.waitFor("the sign-in page", fmt.Sprintf(`location.href === %q`, w.base+"/console/signin"))
	if fay.exists(`[data-testid="signed-out"]`) {
		t.Error("the sign-in page says fabrikam's identity provider signed fay out")
	}
	if l := p.provider.Logouts(); len(l) != 1 {
		t.Errorf("the provider's identity provider was asked to sign out %+v", l)
	}
}
