package console_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// oidcUser is an account at a test identity provider, with the claims
// Lockbox maps: roles and the tenant id.
type oidcUser struct {
	sub, name, tid string
	roles          any // a list, or a space-separated string
	// extra are more claims of its tokens (see oidctest.User).
	extra map[string]any
}

func (u oidcUser) user() oidctest.User {
	c := map[string]any{}
	if u.name != "" {
		c["name"] = u.name
	}
	if u.tid != "" {
		c["tid"] = u.tid
	}
	if u.roles != nil {
		c["roles"] = u.roles
	}
	maps.Copy(c, u.extra)
	return oidctest.User{Subject: u.sub, Claims: c}
}

var ada = oidcUser{sub: "ada@contoso.example", name: "Ada Admin", tid: "contoso", roles: []string{"global-admin", "Directory.Read"}}

// signinConfig is the console's sign-in at p, for users of scope.
func signinConfig(p *oidctest.Provider, scope identity.Scope) console.OIDCConfig {
	return console.OIDCConfig{Issuer: p.Issuer(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(), Scope: scope}
}

// newOIDCEnv is the console signing in with OpenID Connect at one provider
// trusted for everyone (the LOCKBOX_OIDC_* configuration). The console's
// clock starts at the provider's time: ID tokens are stamped by the
// provider's clock and checked against ours.
func newOIDCEnv(t *testing.T) (*env, *oidctest.Provider) {
	t.Helper()
	m := oidctest.Start(t, oidctest.Config{})
	e := newStores(t, clock.NewFake(m.Now()))
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
	e.serve(cfg, false)
	return e, m
}

// login is one sign-in at the provider, up to the redirect back.
type login struct {
	authorize *url.URL // where the console sent the browser
	state     string
	cookie    string // the sealed sign-in in the browser's login cookie
	callback  string // where the provider sent it back
}

// startLogin follows b from "Sign in with your organization" through the
// provider's authorization endpoint, where u signs in.
func startLogin(t *testing.T, e *env, m *oidctest.Provider, b *browser, u oidcUser) login {
	t.Helper()
	return startLoginAt(t, m, b, "/console/signin/oidc", u)
}

// startLoginAt is startLogin from path.
func startLoginAt(t *testing.T, m *oidctest.Provider, b *browser, path string, u oidcUser) login {
	t.Helper()
	r := b.get(path)
	if r.status != http.StatusFound {
		t.Fatalf("sign-in start: %s", r)
	}
	az, err := url.Parse(r.location())
	if err != nil {
		t.Fatal(err)
	}
	l := login{authorize: az, state: az.Query().Get("state")}
	for _, name := range []string{"lockbox_login", "__Host-lockbox_login"} {
		if c := setCookie(t, r, name); c != nil {
			l.cookie = c.Value
		}
	}
	if l.cookie == "" {
		t.Fatalf("sign-in start set no login cookie: %s", r)
	}
	m.QueueUser(u.user())
	r = b.get(az.String())
	if r.status != http.StatusFound {
		t.Fatalf("provider's authorize: %s", r)
	}
	l.callback = r.location()
	return l
}

// sealedLogin is a sign-in in progress as the login cookie holds it.
type sealedLogin struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Tenant   string `json:"tenant,omitempty"`
	Expires  int64  `json:"exp"`
}

// loginAAD is what the console binds every sealed sign-in to.
const loginAAD = "lockbox console login v1"

// loginKeyPeriod is how long the console seals sign-ins with one key.
const loginKeyPeriod = 24 * time.Hour

// loginKeyName is the Redis key of the sign-in key of the period t falls in.
func loginKeyName(t time.Time) string {
	return keys.ConsoleLoginKey(t.Unix() / int64(loginKeyPeriod/time.Second))
}

// loginSealer is the AEAD of the sign-in key the console keeps in Redis
// for the current period of e's clock.
func loginSealer(t *testing.T, e *env) cipher.AEAD {
	t.Helper()
	v, err := e.rdb.Get(context.Background(), loginKeyName(e.clk.Now())).Result()
	if err != nil {
		t.Fatalf("the sign-in key in Redis: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(raw) != 32 {
		t.Fatalf("the sign-in key %q is not 32 bytes in base64", v)
	}
	return sealer(t, raw)
}

func sealer(t *testing.T, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// openLogin opens a login cookie as the console does: base64url of a
// random nonce and the AES-256-GCM sealed JSON.
func openLogin(t *testing.T, e *env, cookie string) sealedLogin {
	t.Helper()
	sealed, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		t.Fatalf("login cookie %q: %v", cookie, err)
	}
	b, err := loginSealer(t, e).Open(nil, nil, sealed, []byte(loginAAD))
	if err != nil {
		t.Fatalf("login cookie %q does not open: %v", cookie, err)
	}
	var l sealedLogin
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// sealLogin is the login cookie for l, sealed with aead.
func sealLogin(t *testing.T, aead cipher.AEAD, l sealedLogin) string {
	t.Helper()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nil, nil, b, []byte(loginAAD)))
}

// wantProblem checks r is the redirect to the sign-in page with code, and
// that no session came of it. why, when given, is what the log must say.
func wantProblem(t *testing.T, e *env, r resp, code string, why ...string) {
	t.Helper()
	for _, w := range why {
		if !strings.Contains(e.logs.String(), w) {
			t.Errorf("the log does not say %q:\n%s", w, e.logs)
		}
	}
	if r.status != http.StatusSeeOther || r.location() != "/console/signin?problem="+code {
		t.Errorf("want problem=%s, got %s", code, r)
	}
	if c := setCookie(t, r, sessionCookie); c != nil && c.Value != "" {
		t.Errorf("a session cookie was set: %v", c)
	}
	if ks := e.sessionKeys(); len(ks) != 0 {
		t.Errorf("sessions in Redis: %v", ks)
	}
}

func TestOIDCSignin(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	b := e.browser()

	page := b.get("/console/signin")
	mustContain(t, "sign-in page", page, `href="/console/signin/oidc"`)
	mustNotContain(t, "sign-in page", page, "/console/signin/dev")

	r := b.get("/console/signin/oidc")
	if r.status != http.StatusFound {
		t.Fatalf("sign-in start: %s", r)
	}
	az, err := url.Parse(r.location())
	if err != nil {
		t.Fatal(err)
	}
	q := az.Query()
	if got := az.Scheme + "://" + az.Host + az.Path; got != m.AuthorizationEndpoint() {
		t.Errorf("sent to %s, want the provider's %s", got, m.AuthorizationEndpoint())
	}
	state := q.Get("state")
	want := map[string]string{
		"client_id": m.ClientID(), "response_type": "code", "scope": "openid offline_access",
		"redirect_uri": e.cfg.PublicURL + "/console/oidc/callback/provider", "code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("authorize %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(state) < 20 || len(q.Get("nonce")) < 20 || q.Get("nonce") == state {
		t.Errorf("state %q, nonce %q: want distinct random values", state, q.Get("nonce"))
	}
	if q.Has("code_verifier") || q.Has("client_secret") {
		t.Error("the authorize URL carries a secret")
	}
	// The browser's side of the sign-in: its state, for the callback only.
	lc := setCookie(t, r, "lockbox_login")
	if lc == nil || lc.Path != "/console/oidc/callback" || !lc.HttpOnly || lc.SameSite != http.SameSiteLaxMode || lc.MaxAge <= 0 || lc.MaxAge > 600 {
		t.Errorf("login cookie %+v", lc)
	}
	// Sealed in it, for the console only: the state, the nonce the ID
	// token must carry, the PKCE verifier whose S256 hash is the
	// challenge, and when the sign-in ends.
	if strings.Contains(lc.Value, state) {
		t.Errorf("the login cookie %q shows the state", lc.Value)
	}
	pl := openLogin(t, e, lc.Value)
	nonce, verifier := pl.Nonce, pl.Verifier
	if pl.State != state || pl.Tenant != "" {
		t.Errorf("sealed sign-in %+v, want state %q", pl, state)
	}
	sum := sha256.Sum256([]byte(verifier))
	if q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("code_challenge %q is not S256 of the stored verifier", q.Get("code_challenge"))
	}
	if q.Get("nonce") != nonce {
		t.Errorf("nonce %q, stored %q", q.Get("nonce"), nonce)
	}
	if exp := time.Unix(pl.Expires, 0); !exp.After(e.clk.Now()) || exp.After(e.clk.Now().Add(10*time.Minute)) {
		t.Errorf("sign-in in progress ends at %s, now is %s", exp, e.clk.Now())
	}
	for _, k := range e.keys("*") {
		if strings.HasPrefix(k, "lockbox:console:") && k != loginKeyName(e.clk.Now()) {
			t.Errorf("the sign-in in progress wrote %s", k)
		}
	}

	m.QueueUser(ada.user())
	r = b.get(az.String())
	if r.status != http.StatusFound || !strings.HasPrefix(r.location(), e.cfg.PublicURL+"/console/oidc/callback/provider?") {
		t.Fatalf("provider's answer: %s", r)
	}
	callback := r.location()

	r = b.get(callback)
	if r.status != http.StatusOK {
		t.Fatalf("callback: %s", r)
	}
	mustContain(t, "continue page", r, `data-testid="continue"`, `href="/console/requests"`)
	c := setCookie(t, r, sessionCookie)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", c)
	}
	if c := setCookie(t, r, "lockbox_login"); c == nil || c.MaxAge >= 0 {
		t.Errorf("the used login cookie was not cleared: %v", r.header.Values("Set-Cookie"))
	}

	r = b.get("/console/requests")
	if r.status != http.StatusOK {
		t.Fatalf("requests after sign-in: %s", r)
	}
	mustContain(t, "requests page", r, `data-testid="user">Ada Admin<`, "Global administrator · contoso", `href="/console/settings"`)
	r = b.get("/console/settings")
	mustContain(t, "settings page", r, `id="lockbox_enabled"`, `data-testid="save"`)

	// The session holds the known roles only, and the tenant from tid.
	var stored struct {
		Principal struct {
			Subject  string
			Roles    []string
			TenantID string
		}
		Via string `json:"via"`
	}
	if err := json.Unmarshal([]byte(e.dump()[keys.ConsoleSession(sha256Hex(c.Value))]), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Principal.Subject != "ada@contoso.example" || !slices.Equal(stored.Principal.Roles, []string{"global-admin"}) || stored.Principal.TenantID != "contoso" || stored.Via != "oidc" {
		t.Errorf("session %+v", stored)
	}

	// What she does is hers: switching lockbox off is audited under her.
	if r := b.post("/console/settings", b.form(nil)); r.status != http.StatusSeeOther {
		t.Fatalf("settings: %s", r)
	}
	if rec := e.records("contoso")[0]; rec.UserId != "ada@contoso.example" || fmt.Sprint(rec.ModifiedProperties) != "[{LockboxEnabled true false}]" {
		t.Errorf("audit record %+v", rec)
	}

	t.Run("replayed callback", func(t *testing.T) {
		// A cookie holding the bare state is no sign-in.
		thief := e.browser()
		u, _ := url.Parse(e.srv.URL + "/console/oidc/callback")
		thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: "lockbox_login", Value: state, Path: "/console/oidc/callback"}})
		before := e.sessionKeys()
		r := thief.get(callback)
		if r.status != http.StatusSeeOther || r.location() != "/console/signin?problem=expired" {
			t.Errorf("replay: %s", r)
		}
		if setCookie(t, r, sessionCookie) != nil || !slices.Equal(e.sessionKeys(), before) {
			t.Error("the replay made a session")
		}
		// A copy of the sealed sign-in still opens until it expires, but
		// the code it came back with is redeemed: the identity provider
		// takes a code once.
		r = e.browser().get(callback, header("Cookie", "lockbox_login="+lc.Value))
		if r.status != http.StatusSeeOther || r.location() != "/console/signin?problem=failed" {
			t.Errorf("replay with the sealed sign-in: %s", r)
		}
		if setCookie(t, r, sessionCookie) != nil || !slices.Equal(e.sessionKeys(), before) {
			t.Error("the replay made a session")
		}
	})
}

func TestOIDCSigninProblems(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)

	t.Run("state cookie missing", func(t *testing.T) {
		l := startLogin(t, e, m, e.browser(), ada)
		// The callback reaches a browser that never started a sign-in:
		// someone else's link (login CSRF).
		wantProblem(t, e, e.browser().get(l.callback), "expired")
	})
	t.Run("state cookie of another sign-in", func(t *testing.T) {
		b := e.browser()
		first := startLogin(t, e, m, b, ada)
		second := startLogin(t, e, m, b, ada)
		if first.state == second.state {
			t.Fatal("two sign-ins share a state")
		}
		r := b.get(first.callback)
		wantProblem(t, e, r, "expired")
		// The browser's login cookie is the second sign-in's, the one
		// its user is finishing: it stays, and that sign-in goes on.
		if c := setCookie(t, r, "lockbox_login"); c != nil {
			t.Errorf("the second sign-in's login cookie was changed: %v", r.header.Values("Set-Cookie"))
		}
		if r := b.get(second.callback); r.status != http.StatusOK || setCookie(t, r, sessionCookie) == nil {
			t.Errorf("the second sign-in's callback: %s", r)
		}
		b.post("/console/signout", b.form(nil))
	})
	t.Run("state missing", func(t *testing.T) {
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		u, _ := url.Parse(l.callback)
		q := u.Query()
		q.Del("state")
		u.RawQuery = q.Encode()
		wantProblem(t, e, b.get(u.String()), "expired")
	})
	t.Run("sign-in expired", func(t *testing.T) {
		// The browser kept its cookie past its Max-Age: the sealed
		// expiry still ends the sign-in.
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		e.clk.Advance(10*time.Minute + time.Second)
		defer e.clk.Set(m.Now())
		wantProblem(t, e, b.get(l.callback, header("Cookie", "lockbox_login="+l.cookie)), "expired", "the sign-in expired")
	})
	t.Run("provider refused", func(t *testing.T) {
		b := e.browser()
		r := b.get("/console/signin/oidc")
		az, _ := url.Parse(r.location())
		wantProblem(t, e, b.get("/console/oidc/callback/provider?error=access_denied&error_description=%3Cb%3Enope&state="+az.Query().Get("state")), "denied")
		if p := b.get("/console/signin?problem=denied"); strings.Contains(p.body, "nope") {
			t.Error("the sign-in page echoes the provider's text")
		}
	})
	t.Run("no known roles", func(t *testing.T) {
		for _, roles := range []any{nil, []string{}, []string{"Directory.Read", "admin"}, "engineer", []any{42, true}} {
			b := e.browser()
			l := startLogin(t, e, m, b, oidcUser{sub: "bob@contoso", name: "Bob", tid: "contoso", roles: roles})
			wantProblem(t, e, b.get(l.callback), "no_roles")
		}
	})
	t.Run("roles as a string", func(t *testing.T) {
		b := e.browser()
		l := startLogin(t, e, m, b, oidcUser{sub: "sam", roles: "operator support-manager"})
		if r := b.get(l.callback); r.status != http.StatusOK {
			t.Fatalf("callback: %s", r)
		}
		r := b.get("/console/requests")
		mustContain(t, "requests page", r, `data-testid="user">sam<`, "Support engineer, Support manager", "· provider", `href="/console/requests/new"`)
		b.post("/console/signout", b.form(nil))
	})
	t.Run("invalid identity", func(t *testing.T) {
		for _, u := range []oidcUser{
			{sub: "ada lovelace", tid: "contoso", roles: []string{"global-admin"}},
			{sub: "ada/contoso", tid: "contoso", roles: []string{"global-admin"}},
			{sub: "ada:contoso", roles: []string{"operator"}},
			{sub: "ada@contoso", tid: "Contoso Corp", roles: []string{"global-admin"}},
			{sub: "ada@contoso", tid: "{contoso}", roles: []string{"global-admin"}},
		} {
			b := e.browser()
			l := startLogin(t, e, m, b, u)
			wantProblem(t, e, b.get(l.callback), "invalid")
		}
		r := e.browser().get("/console/signin?problem=invalid")
		mustContain(t, "sign-in page", r, "characters Lockbox does not accept")
	})
	t.Run("PKCE verifier checked by the provider", func(t *testing.T) {
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		pl := openLogin(t, e, l.cookie)
		pl.Verifier = strings.Repeat("A", 43)
		forged := sealLogin(t, loginSealer(t, e), pl)
		wantProblem(t, e, e.browser().get(l.callback, header("Cookie", "lockbox_login="+forged)), "failed", "code exchange", "code_verifier does not match the code_challenge")
	})
	t.Run("nonce checked", func(t *testing.T) {
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		pl := openLogin(t, e, l.cookie)
		pl.Nonce = "not-the-nonce"
		forged := sealLogin(t, loginSealer(t, e), pl)
		wantProblem(t, e, e.browser().get(l.callback, header("Cookie", "lockbox_login="+forged)), "failed", "id token nonce does not match")
	})
	t.Run("code redeemed once", func(t *testing.T) {
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		u, _ := url.Parse(l.callback)
		code := u.Query().Get("code")
		// A second sign-in in the same browser that comes back with the
		// first one's (already redeemed) code.
		if r := b.get(l.callback); r.status != http.StatusOK {
			t.Fatalf("first callback: %s", r)
		}
		b.post("/console/signout", b.form(nil))
		l2 := startLogin(t, e, m, b, ada)
		wantProblem(t, e, b.get("/console/oidc/callback/provider?"+url.Values{"code": {code}, "state": {l2.state}, "iss": {m.Issuer()}}.Encode()),
			"failed", "unknown, used or expired code")
	})
	t.Run("ID token for another client", func(t *testing.T) {
		// OpenID Connect Core 3.1.3.7: an ID token with several audiences
		// names the client it was issued to (azp), and one that names a
		// client is that client's: another client of the issuer may have
		// asked for it, and ours is only one of the audiences.
		for _, extra := range []map[string]any{
			{"aud": []string{"other-client"}},
			{"aud": []string{"other-client"}, "azp": "other-client"},
			{"azp": "other-client"},
		} {
			b := e.browser()
			u := ada
			u.extra = extra
			l := startLogin(t, e, m, b, u)
			wantProblem(t, e, b.get(l.callback), "failed", "authorized party")
		}
		b := e.browser()
		u := ada
		u.extra = map[string]any{"aud": []string{"other-client"}, "azp": m.ClientID()}
		l := startLogin(t, e, m, b, u)
		if r := b.get(l.callback); r.status != http.StatusOK {
			t.Fatalf("an ID token for several audiences, issued to the console: %s", r)
		}
		b.post("/console/signout", b.form(nil))
	})
	t.Run("expired ID token", func(t *testing.T) {
		// The provider's tokens live a minute by its clock; ours has
		// moved on, though not past the sign-in's own end.
		m := oidctest.Start(t, oidctest.Config{TTL: time.Minute})
		e := newStores(t, clock.NewFake(m.Now()))
		cfg := e.consoleConfig()
		cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
		e.serve(cfg, false)
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		e.clk.Advance(m.TTL() + 2*time.Minute)
		wantProblem(t, e, b.get(l.callback), "failed", "token is expired")
	})
	t.Run("tenant claim present but no tenant", func(t *testing.T) {
		// In the shared scope no tenant makes provider staff: a tid that
		// is there but null, empty or not a string must not, as the API's
		// verifier refuses such a token.
		for name, tid := range map[string]any{"null": nil, "empty": "", "number": 42, "list": []string{"contoso"}} {
			t.Run(name, func(t *testing.T) {
				b := e.browser()
				az, _ := url.Parse(b.get("/console/signin/oidc").location())
				m.QueueUser(oidctest.User{Subject: "eve@contoso.example", Claims: map[string]any{"tid": tid, "roles": []string{"audit-reader", "support-manager"}}})
				r := b.get(az.String())
				wantProblem(t, e, b.get(r.location()), "invalid")
			})
		}
	})
	t.Run("no iss from a provider that always sends it", func(t *testing.T) {
		// Its discovery document promises iss (RFC 9207), so an answer
		// without it is not its own.
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		u, _ := url.Parse(l.callback)
		q := u.Query()
		q.Del("iss")
		u.RawQuery = q.Encode()
		wantProblem(t, e, b.get(u.String()), "failed", "the answer names no issuer")
	})
	t.Run("no iss from a provider whose promise of it is malformed", func(t *testing.T) {
		// authorization_response_iss_parameter_supported is present but
		// not a boolean: read as a promise, so the check fails closed.
		for _, v := range []any{"true", "false", 1, map[string]any{}} {
			m := oidctest.Start(t, oidctest.Config{IssParameterSupported: v})
			e := newStores(t, clock.NewFake(m.Now()))
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
			e.serve(cfg, false)
			b := e.browser()
			l := startLogin(t, e, m, b, ada)
			u, _ := url.Parse(l.callback)
			q := u.Query()
			q.Del("iss")
			u.RawQuery = q.Encode()
			wantProblem(t, e, b.get(u.String()), "failed", "the answer names no issuer")
		}
	})
	t.Run("the redirect URI all issuers once shared", func(t *testing.T) {
		// It can't say whose code it carries: refused, and nothing is
		// redeemed, so the code still signs in at the issuer's own
		// redirect URI.
		b := e.browser()
		l := startLogin(t, e, m, b, ada)
		u, _ := url.Parse(l.callback)
		r := b.get("/console/oidc/callback?" + u.RawQuery)
		wantProblem(t, e, r, "redirect_uri", "no issuer uses any more")
		if p := b.get(r.location()); !strings.Contains(p.body, "redirect URI") {
			t.Errorf("the sign-in page does not explain: %s", p)
		}
		other := e.browser()
		if r := other.get(l.callback, header("Cookie", "lockbox_login="+l.cookie)); r.status != http.StatusOK {
			t.Fatalf("the code was used: %s", r)
		}
		other.post("/console/signout", other.form(nil))
	})
	// emptyAlert is a problem paragraph with nothing in it, whatever
	// attributes it has.
	emptyAlert := regexp.MustCompile(`role="alert"[^>]*><`)
	t.Run("messages by code only", func(t *testing.T) {
		r := e.browser().get("/console/signin?problem=%3Cscript%3Ealert(1)%3C/script%3E")
		if r.status != http.StatusOK || strings.Contains(r.body, "alert(1)") || emptyAlert.MatchString(r.body) {
			t.Errorf("unknown problem code: %s", r)
		}
	})
}

// TestOIDCSigninReplacesSession: an OpenID Connect sign-in ends the
// session the browser had when it started, as the dev sign-in does
// (TestSigninReplacesSession). The identity provider's redirect back is
// cross-site, and browsers do not send the SameSite=Strict session cookie
// on it, so the callback can't find that session by its cookie: it was
// left live in Redis with its cookie overwritten, and outlived the user's
// sign-out of the new one.
// TestOIDCSigninEmail: the address a session keeps is shown to others (a
// request's requester, in e-mails and pages), so it passes the same check
// as a bearer token's: a plain address, without the format characters that
// would show one address as another.
func TestOIDCSigninEmail(t *testing.T) {
	parallel(t)
	for _, tt := range []struct{ name, email, want string }{
		{"plain", "sam@provider.example", "sam@provider.example"},
		{"non-ASCII letters", "sam@bücher.example", "sam@bücher.example"},
		{"right-to-left override", "sam@\u202eelpmaxe.redivorp", ""},
		{"zero-width joiner", "s\u200dam@provider.example", ""},
		{"display name", "Sam <sam@provider.example>", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, m := newOIDCEnv(t)
			b := e.browser()
			u := oidcUser{sub: "sam", roles: "operator", extra: map[string]any{"email": tt.email}}
			if r := b.get(startLogin(t, e, m, b, u).callback); r.status != http.StatusOK {
				t.Fatalf("sign-in: %s", r)
			}
			var stored struct{ Principal identity.Principal }
			if err := json.Unmarshal([]byte(e.dump()[keys.ConsoleSession(sha256Hex(b.cookie(sessionCookie)))]), &stored); err != nil {
				t.Fatal(err)
			}
			if stored.Principal.Email != tt.want {
				t.Errorf("session's e-mail %q, want %q", stored.Principal.Email, tt.want)
			}
		})
	}
}

func TestOIDCSigninReplacesSession(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	b := e.browser()
	l := startLogin(t, e, m, b, ada)
	if r := b.get(l.callback); r.status != http.StatusOK {
		t.Fatalf("first sign-in: %s", r)
	}
	old := b.cookie(sessionCookie)
	if old == "" {
		t.Fatal("no session after the first sign-in")
	}

	// The same browser signs in again, as another user: it starts from
	// the console (its session cookie goes along), and comes back from
	// the identity provider with its login cookie only (a client of its
	// own, whose jar holds no session cookie to add).
	l = startLogin(t, e, m, b, oidcUser{sub: "sam", roles: "operator support-manager"})
	r := e.browser().get(l.callback, header("Cookie", "lockbox_login="+l.cookie))
	if r.status != http.StatusOK {
		t.Fatalf("second sign-in: %s", r)
	}
	c := setCookie(t, r, sessionCookie)
	if c == nil || c.Value == "" || c.Value == old {
		t.Fatalf("second sign-in set session cookie %v", c)
	}
	if ks := e.sessionKeys(); !slices.Equal(ks, []string{keys.ConsoleSession(sha256Hex(c.Value))}) {
		t.Errorf("sessions in Redis: %v, want only the new one", ks)
	}
	if r := e.withCookie(sessionCookie, old).get("/console/requests"); !signedOut(r) {
		t.Errorf("the session before the sign-in still works: %s", r)
	}
}

// TestLoginCookiePlanted: under HTTPS the cookie that binds a sign-in in
// progress to its browser is one a sibling subdomain can't plant. Someone
// who controls another host of the site (evil.example.com next to
// lockbox.example.com) can set a cookie of a plain name for the whole
// domain; planting the state of a sign-in they started themselves, then
// sending the browser to their callback URL, would sign it in as them
// (login CSRF by cookie tossing). The __Host- prefix, as the session cookie
// has, keeps such cookies out.
func TestLoginCookiePlanted(t *testing.T) {
	parallel(t)
	m := oidctest.Start(t, oidctest.Config{})
	e := newStores(t, clock.NewFake(m.Now()))
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
	cfg.PublicURL = "https://lockbox.example.com"
	e.serve(cfg, false)
	const hostSession, hostLogin = "__Host-lockbox_session", "__Host-lockbox_login"

	mallory := oidcUser{sub: "mallory@contoso.example", name: "Mallory", tid: "contoso", roles: []string{"global-admin"}}
	attacker := e.browser()
	r := attacker.get("/console/signin/oidc")
	if r.status != http.StatusFound {
		t.Fatalf("sign-in start: %s", r)
	}
	if c := setCookie(t, r, "lockbox_login"); c != nil {
		t.Errorf("a login cookie of a plain name under https: %+v", c)
	}
	lc := setCookie(t, r, hostLogin)
	if lc == nil || !lc.Secure || !lc.HttpOnly || lc.Path != "/" || lc.Domain != "" || lc.SameSite != http.SameSiteLaxMode || lc.MaxAge <= 0 {
		t.Errorf("login cookie %+v: want %s, Secure, HttpOnly, Path=/, host-only, SameSite=Lax", lc, hostLogin)
	}
	az, _ := url.Parse(r.location())
	state := az.Query().Get("state")
	m.QueueUser(mallory.user())
	r = attacker.get(az.String())
	cb, err := url.Parse(r.location())
	if r.status != http.StatusFound || err != nil || cb.Host != "lockbox.example.com" {
		t.Fatalf("provider's answer: %s", r)
	}

	// The victim's browser carries the attacker's state in the cookie a
	// sibling subdomain planted, and follows the attacker's link.
	victim := e.browser()
	r = victim.get(cb.RequestURI(), header("Cookie", "lockbox_login="+state))
	wantProblem(t, e, r, "expired")
	if c := setCookie(t, r, hostSession); c != nil && c.Value != "" {
		t.Errorf("the planted sign-in signed the victim in: %+v", c)
	}

	// The browser that started a sign-in finishes it with the cookie the
	// console gave it.
	b := e.browser()
	r = b.get("/console/signin/oidc")
	lc = setCookie(t, r, hostLogin)
	if lc == nil {
		t.Fatalf("no %s cookie: %s", hostLogin, r)
	}
	az, _ = url.Parse(r.location())
	m.QueueUser(ada.user())
	cb, _ = url.Parse(b.get(az.String()).location())
	r = b.get(cb.RequestURI(), header("Cookie", hostLogin+"="+lc.Value))
	if r.status != http.StatusOK {
		t.Fatalf("callback with the console's own login cookie: %s", r)
	}
	if c := setCookie(t, r, hostSession); c == nil || !c.Secure {
		t.Errorf("no Secure %s after sign-in: %v", hostSession, r.header.Values("Set-Cookie"))
	}
	if c := setCookie(t, r, hostLogin); c == nil || c.MaxAge >= 0 || c.Path != "/" {
		t.Errorf("the used login cookie was not cleared: %v", r.header.Values("Set-Cookie"))
	}
}

// An identity provider that is down when Lockbox starts stops sign-in, not
// the server: New does not contact it, sign-in answers 503 until it is back,
// then works without a restart.
func TestOIDCProviderDown(t *testing.T) {
	parallel(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	e := newStores(t, clock.NewFake(time.Now()))
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{{Issuer: "http://" + addr, ClientID: oidctest.DefaultClientID, ClientSecret: oidctest.DefaultClientSecret, Scope: identity.SharedScope()}}
	e.serve(cfg, false) // fails the test if New needed the provider

	b := e.browser()
	if r := b.get("/console/signin"); r.status != http.StatusOK || !strings.Contains(r.body, `href="/console/signin/oidc"`) {
		t.Errorf("sign-in page: %s", r)
	}
	r := b.get("/console/signin/oidc")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("sign-in with the provider down: %s", r)
	}
	mustContain(t, "503 page", r, "be reached; sign-in is unavailable")
	if setCookie(t, r, "lockbox_login") != nil {
		t.Error("a sign-in was started with the provider down")
	}
	if ks := e.keys("lockbox:console:*"); len(ks) != 0 {
		t.Errorf("sign-ins stored: %v", ks)
	}

	// The provider comes up at its address.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the provider's port was taken meanwhile: %v", err)
	}
	m := oidctest.Start(t, oidctest.Config{Listener: ln})
	l := startLogin(t, e, m, b, ada)
	if r := b.get(l.callback); r.status != http.StatusOK {
		t.Fatalf("callback once the provider is up: %s", r)
	}
	if r := b.get("/console/requests"); r.status != http.StatusOK || !strings.Contains(r.body, "Ada Admin") {
		t.Errorf("requests: %s", r)
	}
}

// Without OIDC configured the OIDC routes do not exist.
func TestOIDCNotConfigured(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.browser()
	for _, p := range []string{"/console/signin/oidc", "/console/oidc/callback?code=x&state=y"} {
		if r := b.get(p); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %s", p, r)
		}
	}
	if r := b.get("/console/signin"); strings.Contains(r.body, "/console/signin/oidc") {
		t.Error("sign-in page offers OIDC")
	}
}

// An organization's sign-in link (README, "Signing in") where no identity
// provider is set up lands on the sign-in page with the reason. It was sent
// on to /console/signin/oidc, a bare text/plain 404 there.
func TestSigninLinkWithoutOIDC(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		dev  bool
		want string // on the sign-in page besides the problem
	}{
		{"lockbox dev", true, `data-testid="dev-alice"`},
		{"serve without console issuers", false, "Sign-in is not configured on this server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *console.Config) {
				if !tc.dev {
					cfg.DevIdentities = nil
				}
			})
			b := e.browser()
			r := b.get("/console/login?tenant=contoso")
			wantProblem(t, e, r, "no_oidc")
			page := b.get(r.location())
			if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
				t.Fatalf("sign-in page: %s", page)
			}
			mustContain(t, "sign-in page", page, "Organization sign-in links don&#39;t work on this server", tc.want)
		})
	}
}

// OIDC sign-in needs the public URL: it makes the redirect URI.
func TestOIDCConfigChecked(t *testing.T) {
	parallel(t)
	e := newStores(t, newClock())
	for _, tc := range []struct {
		name string
		oidc console.OIDCConfig
		pub  string
	}{
		{"no issuer", console.OIDCConfig{ClientID: "lockbox", Scope: identity.ProviderScope()}, "https://lockbox.example.com"},
		{"no client id", console.OIDCConfig{Issuer: "https://idp.example.com", Scope: identity.ProviderScope()}, "https://lockbox.example.com"},
		{"no public URL", console.OIDCConfig{Issuer: "https://idp.example.com", ClientID: "lockbox", Scope: identity.ProviderScope()}, ""},
		{"no scope", console.OIDCConfig{Issuer: "https://idp.example.com", ClientID: "lockbox"}, "https://lockbox.example.com"},
		{"bad tenant scope", console.OIDCConfig{Issuer: "https://idp.example.com", ClientID: "lockbox", Scope: identity.TenantScope("Contoso")}, "https://lockbox.example.com"},
	} {
		cfg := e.consoleConfig()
		cfg.OIDC, cfg.PublicURL = []console.OIDCConfig{tc.oidc}, tc.pub
		if _, err := console.New(cfg); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
	for _, pub := range []string{"lockbox.example.com", "ftp://lockbox.example.com", "https://"} {
		cfg := e.consoleConfig()
		cfg.PublicURL = pub
		if _, err := console.New(cfg); err == nil {
			t.Errorf("public URL %q accepted", pub)
		}
	}
}

// TestOIDCDiscoveryInTheClear: a discovery document that names a token
// endpoint or a JWKS URI in plain http off the machine stops sign-in
// through that issuer: the code and client secret, or the keys that verify
// ID tokens, would travel in the clear.
func TestOIDCDiscoveryInTheClear(t *testing.T) {
	parallel(t)
	for _, field := range []string{"token_endpoint", "jwks_uri"} {
		t.Run(field, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				doc := map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
					"token_endpoint": srv.URL + "/token", "jwks_uri": srv.URL + "/jwks", "response_types_supported": []string{"code"}}
				doc[field] = "http://idp.example/" + field
				_ = json.NewEncoder(w).Encode(doc)
			}))
			t.Cleanup(srv.Close)
			e := newStores(t, newClock())
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{{Issuer: srv.URL, ClientID: "c", ClientSecret: "s", Scope: identity.SharedScope()}}
			e.serve(cfg, false)
			r := e.browser().get("/console/signin/oidc")
			if r.status != http.StatusServiceUnavailable {
				t.Errorf("sign-in start: %s", r)
			}
			if l := e.logs.String(); !strings.Contains(l, "http://idp.example/"+field) || !strings.Contains(l, "must be https") {
				t.Errorf("the log does not say the %s must be https:\n%s", field, l)
			}
		})
	}
}
