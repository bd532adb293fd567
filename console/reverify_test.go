package console_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// reverify is how often the tests' sessions are verified again: the
// default of Config.Reverify.
const reverify = 15 * time.Minute

// mona manages support requests and files her own: taking the manager role
// away leaves her a session of an operator.
var mona = oidcUser{sub: "mona@provider.example", name: "Mona", roles: []string{"operator", "support-manager"}}

// idpLine is the console's way to the identity provider: it records the
// refresh tokens the console redeems and, while status is set, answers
// every token request with that status itself, as an identity provider in
// trouble (or a proxy in front of it) does.
type idpLine struct {
	next   http.RoundTripper
	status atomic.Int32

	mu       sync.Mutex
	redeemed []string
}

func (l *idpLine) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		if f, err := url.ParseQuery(string(b)); err == nil && f.Get("grant_type") == "refresh_token" {
			l.mu.Lock()
			l.redeemed = append(l.redeemed, f.Get("refresh_token"))
			l.mu.Unlock()
		}
		if s := int(l.status.Load()); s != 0 {
			return &http.Response{StatusCode: s, Status: http.StatusText(s), Request: r,
				Header: http.Header{"Content-Type": {"application/json"}},
				Body:   io.NopCloser(strings.NewReader(`{"error":"temporarily_unavailable"}`))}, nil
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		r.ContentLength = int64(len(b))
	}
	return l.next.RoundTrip(r)
}

// redemptions returns the refresh tokens the console redeemed, in order.
func (l *idpLine) redemptions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.redeemed)
}

// newReverifyEnv is the console signing in everyone through one identity
// provider started with pc; opts change its Config before New. The
// provider stamps its tokens with the console's clock, so tokens it issues
// after the clock moved are current.
func newReverifyEnv(t *testing.T, pc oidctest.Config, opts ...func(*console.Config)) (*env, *oidctest.Provider, *idpLine) {
	t.Helper()
	clk := clock.NewFake(start)
	pc.Now = clk.Now
	m := oidctest.Start(t, pc)
	e := newStores(t, clk)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	line := &idpLine{next: tr}
	oc := signinConfig(m, identity.SharedScope())
	oc.HTTPClient = &http.Client{Transport: line, Timeout: 10 * time.Second}
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{oc}
	for _, o := range opts {
		o(&cfg)
	}
	e.serve(cfg, false)
	return e, m, line
}

// rawSession is a browser's session as Redis holds it, with the fields
// re-verification keeps.
type rawSession struct {
	Principal    identity.Principal `json:"principal"`
	Name         string             `json:"name"`
	RefreshToken string             `json:"refresh_token"`
	VerifiedAt   time.Time          `json:"verified_at"`
	CreatedAt    time.Time          `json:"created_at"`
}

func (b *browser) raw() rawSession {
	b.t.Helper()
	_, s := b.stored()
	var r rawSession
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		b.t.Fatal(err)
	}
	return r
}

// canApprove reports whether b's page of request id offers to approve it,
// failing t unless the page loads.
func canApprove(t *testing.T, b *browser, id string) bool {
	t.Helper()
	r := b.get("/console/requests/" + id)
	if r.status != http.StatusOK {
		t.Fatalf("request page: %s", r)
	}
	return strings.Contains(r.body, `data-testid="action-approve"`)
}

// wantEnded checks that r is what a page answers a session that just ended
// (the redirect to sign-in, the cookie cleared) and that Redis has no
// session left.
func wantEnded(t *testing.T, e *env, r resp) {
	t.Helper()
	if !signedOut(r) {
		t.Errorf("want the redirect to sign-in, got %s", r)
	}
	if c := setCookie(t, r, sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("the ended session's cookie was not cleared: %v", r.header.Values("Set-Cookie"))
	}
	if ks := e.sessionKeys(); len(ks) != 0 {
		t.Errorf("sessions still in Redis: %v", ks)
	}
}

// TestReverifyRoleRemoved: a manager whose role the identity provider took
// away keeps it in the console until the session is next verified, and no
// longer: the first request after the interval redeems the refresh token,
// maps the new ID token's roles, and the approval is refused.
func TestReverifyRoleRemoved(t *testing.T) {
	parallel(t)
	e, m, _ := newReverifyEnv(t, oidctest.Config{})
	req := e.file("contoso")
	b := oidcSignIn(t, e, m, mona)
	first := b.raw()
	if first.RefreshToken == "" || !first.VerifiedAt.Equal(e.clk.Now()) {
		t.Fatalf("after sign-in the session keeps refresh token %q, verified at %s (now %s)", first.RefreshToken, first.VerifiedAt, e.clk.Now())
	}
	if !canApprove(t, b, req.ID) {
		t.Fatal("the manager is not offered the approval")
	}

	m.UpdateUser(mona.sub, oidcUser{sub: mona.sub, name: mona.name, roles: []string{"operator"}}.user())
	e.clk.Advance(reverify - time.Second)
	if !canApprove(t, b, req.ID) {
		t.Fatal("the session lost the manager role before the interval")
	}

	e.clk.Advance(time.Second)
	csrf := b.csrf() // this page load verifies the session again
	// An operator sees her own requests only: alice's is not found.
	r := b.post("/console/requests/"+req.ID+"/approve", url.Values{"csrf_token": {csrf}})
	if r.status != http.StatusNotFound {
		t.Errorf("approval after the role was removed: %s", r)
	}
	if got := e.request(req.ID); got.State != grants.StatePendingManager || got.ManagerApprover != "" {
		t.Errorf("the request is %s, approved by %q", got.State, got.ManagerApprover)
	}
	if r := b.get("/console/requests/" + req.ID); r.status != http.StatusNotFound || strings.Contains(r.body, `data-testid="action-approve"`) {
		t.Errorf("the request's page after the role was removed: %s", r)
	}
	after := b.raw()
	if !slices.Equal(after.Principal.Roles, []identity.Role{identity.RoleOperator}) || after.Principal.Subject != mona.sub {
		t.Errorf("the session's principal is %+v", after.Principal)
	}
	if !after.VerifiedAt.Equal(e.clk.Now()) || after.RefreshToken == "" || after.RefreshToken == first.RefreshToken {
		t.Errorf("after re-verification: verified at %s (now %s), refresh token %q (was %q)", after.VerifiedAt, e.clk.Now(), after.RefreshToken, first.RefreshToken)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "level=INFO") || !strings.Contains(logs, "roles changed") ||
		!strings.Contains(logs, "old_roles=\"[operator support-manager]\"") || !strings.Contains(logs, "new_roles=[operator]") {
		t.Errorf("the log does not tell the roles changed:\n%s", logs)
	}
	for _, tok := range []string{first.RefreshToken, after.RefreshToken} {
		if strings.Contains(logs, tok) {
			t.Errorf("the log holds a refresh token:\n%s", logs)
		}
	}
}

// TestReverifyEnds: when the identity provider refuses the refresh or its
// answer can't be the same user's, the session ends at the first request
// after the interval: deleted in Redis, the browser sent to sign in, and a
// form it posts is not acted on.
func TestReverifyEnds(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name   string
		user   oidcUser
		change func(m *oidctest.Provider, u oidcUser)
		reason string
	}{
		{"refresh token revoked", mona, func(m *oidctest.Provider, u oidcUser) {
			if m.RevokeRefreshTokens(u.sub) == 0 {
				panic("no refresh token to revoke")
			}
		}, "invalid_grant"},
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
			e, m, _ := newReverifyEnv(t, oidctest.Config{})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, tc.user)
			tc.change(m, tc.user)
			e.clk.Advance(reverify - time.Second)
			csrf := b.csrf()
			e.clk.Advance(time.Second)

			// A form posted after the interval is not acted on.
			r := b.post("/console/requests/"+req.ID+"/cancel", url.Values{"csrf_token": {csrf}})
			wantEnded(t, e, r)
			if got := e.request(req.ID); got.State != grants.StatePendingManager || len(got.History) != 1 {
				t.Errorf("the request is %s with %d events", got.State, len(got.History))
			}
			if r := b.get("/console/requests"); !signedOut(r) {
				t.Errorf("a page after the session ended: %s", r)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "session ended") || !strings.Contains(logs, tc.reason) {
				t.Errorf("the log does not tell why the session ended (%s):\n%s", tc.reason, logs)
			}
		})
	}
}

// TestReverifyIdentityProviderDown: an identity provider that can't be
// reached, or answers 5xx, does not end sessions at once: they keep their
// roles, and try again on later requests, until four intervals passed
// since they were last verified. Then they end.
func TestReverifyIdentityProviderDown(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name    string
		breakIt func(m *oidctest.Provider, line *idpLine)
	}{
		{"unreachable", func(m *oidctest.Provider, _ *idpLine) { m.Close() }},
		{"503", func(_ *oidctest.Provider, line *idpLine) { line.status.Store(http.StatusServiceUnavailable) }},
		{"500", func(_ *oidctest.Provider, line *idpLine) { line.status.Store(http.StatusInternalServerError) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, line := newReverifyEnv(t, oidctest.Config{})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			signedIn := e.clk.Now()
			tc.breakIt(m, line)

			// Page loads every 10 minutes keep the session from idling out.
			tries := 0
			for e.clk.Advance(reverify); e.clk.Now().Before(signedIn.Add(4 * reverify)); e.clk.Advance(10 * time.Minute) {
				if !canApprove(t, b, req.ID) {
					t.Fatalf("%s after sign-in, the session lost its roles", e.clk.Now().Sub(signedIn))
				}
				tries++
			}
			if tc.name != "unreachable" {
				if got := len(line.redemptions()); got != tries {
					t.Errorf("%d page loads tried to verify the session %d times", tries, got)
				}
			}
			e.clk.Set(signedIn.Add(4*reverify - time.Second))
			if !canApprove(t, b, req.ID) {
				t.Fatal("just before four intervals, the session lost its roles")
			}
			e.clk.Set(signedIn.Add(4 * reverify))
			wantEnded(t, e, b.get("/console/requests"))
			if logs := e.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "session ended") {
				t.Errorf("the log does not tell the session ended:\n%s", logs)
			}
		})
	}
	// A console tab polls its live list every few seconds: while the
	// identity provider fails, the session asks it again once a minute,
	// not on every poll, and says so in the log as often.
	t.Run("retries spaced", func(t *testing.T) {
		parallel(t)
		e, m, line := newReverifyEnv(t, oidctest.Config{})
		b := oidcSignIn(t, e, m, mona)
		line.status.Store(http.StatusServiceUnavailable)
		e.clk.Advance(reverify)
		for range 6 { // a minute of polls
			if r := b.get("/console/requests"); r.status != http.StatusOK {
				t.Fatalf("with the identity provider down: %s", r)
			}
			e.clk.Advance(10 * time.Second)
		}
		if got := len(line.redemptions()); got != 1 {
			t.Errorf("a minute of polls asked the identity provider %d times, want once", got)
		}
		if n := strings.Count(e.logs.String(), "can't verify a session now"); n != 1 {
			t.Errorf("a minute of polls logged %d warnings, want one", n)
		}
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("a minute later: %s", r)
		}
		if got := len(line.redemptions()); got != 2 {
			t.Errorf("a minute later the identity provider was asked %d times in all, want twice", got)
		}
		line.status.Store(0)
		e.clk.Advance(time.Minute)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("with the identity provider back: %s", r)
		}
		if got := b.raw().VerifiedAt; !got.Equal(e.clk.Now()) {
			t.Errorf("verified at %s, want now (%s)", got, e.clk.Now())
		}
	})
	t.Run("back in time", func(t *testing.T) {
		parallel(t)
		e, m, line := newReverifyEnv(t, oidctest.Config{})
		b := oidcSignIn(t, e, m, mona)
		signedIn := e.clk.Now()
		line.status.Store(http.StatusServiceUnavailable)
		e.clk.Advance(reverify)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("with the identity provider down: %s", r)
		}
		line.status.Store(0)
		e.clk.Advance(10 * time.Minute)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("with the identity provider back: %s", r)
		}
		if got := b.raw().VerifiedAt; !got.Equal(e.clk.Now()) {
			t.Errorf("verified at %s, want now (%s)", got, e.clk.Now())
		}
		// Verified again, the session outlives four intervals from sign-in.
		for _, at := range []time.Duration{3 * reverify, 4*reverify + time.Minute} {
			e.clk.Set(signedIn.Add(at))
			if r := b.get("/console/requests"); r.status != http.StatusOK {
				t.Errorf("%s after sign-in, re-verified since: %s", at, r)
			}
		}
	})
}

// TestReverifyWithoutRefreshToken: a session the identity provider gave no
// refresh token is verified again, once the interval passed, by the
// identity provider's sign-in without a page (prompt=none; silent_test.go
// follows it through); so is one stored before sessions kept one, counted
// from its sign-in. Without offline_access in the provider's
// scopes_supported, the console does not ask for it.
func TestReverifyWithoutRefreshToken(t *testing.T) {
	parallel(t)
	t.Run("none issued", func(t *testing.T) {
		parallel(t)
		e, m, line := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
		b := e.browser()
		l := startLogin(t, e, m, b, mona)
		if s := l.authorize.Query().Get("scope"); s != "openid" {
			t.Errorf("scope %q, want openid alone from a provider without offline_access", s)
		}
		if r := b.get(l.callback); r.status != http.StatusOK {
			t.Fatalf("callback: %s", r)
		}
		if rt := b.raw().RefreshToken; rt != "" {
			t.Fatalf("refresh token %q", rt)
		}
		e.clk.Advance(reverify - time.Second)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("within the interval: %s", r)
		}
		e.clk.Advance(time.Second)
		wantSilent(t, m, b.get("/console/requests", navigation...))
		if got := line.redemptions(); len(got) != 0 {
			t.Errorf("redeemed %q", got)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "without a refresh token") {
			t.Errorf("the log does not tell why the browser went to the identity provider:\n%s", logs)
		}
	})
	t.Run("stored before", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{})
		b := oidcSignIn(t, e, m, mona)
		// The session as it was stored before Lockbox re-verified.
		key := keys.ConsoleSession(sha256Hex(b.cookie(sessionCookie)))
		_, raw := b.stored()
		var s map[string]any
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			t.Fatal(err)
		}
		delete(s, "refresh_token")
		delete(s, "verified_at")
		old, _ := json.Marshal(s)
		if err := e.rdb.Set(context.Background(), key, old, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(reverify - time.Second)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("within the interval from sign-in: %s", r)
		}
		e.clk.Advance(time.Second)
		wantSilent(t, m, b.get("/console/requests", navigation...))
	})
}

// TestReverifyNotForDevSessions: the dev identities of "lockbox dev" have
// no identity provider to ask, and keep their sessions.
func TestReverifyNotForDevSessions(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.file("contoso")
	b := e.signIn(mia)
	for range 6 {
		e.clk.Advance(reverify + time.Minute)
		if !canApprove(t, b, req.ID) {
			t.Fatalf("%s after sign-in, the dev manager can't approve", e.clk.Now().Sub(start))
		}
	}
}

// TestReverifyRotatesRefreshToken: each re-verification stores the refresh
// token the identity provider rotated to, and redeems that one next time;
// a refresh token is redeemed once, even by requests that arrive together
// (the provider would refuse the second, and end the session).
func TestReverifyRotatesRefreshToken(t *testing.T) {
	parallel(t)
	e, m, line := newReverifyEnv(t, oidctest.Config{})
	b := oidcSignIn(t, e, m, mona)
	want := []string{b.raw().RefreshToken}
	for i := range 2 {
		e.clk.Advance(reverify)
		r := b.get("/console/requests")
		if r.status != http.StatusOK {
			t.Fatalf("re-verification %d: %s", i, r)
		}
		s := b.raw()
		if got := line.redemptions(); !slices.Equal(got, want) {
			t.Fatalf("re-verification %d redeemed %q, want %q", i, got, want)
		}
		if slices.Contains(want, s.RefreshToken) || s.RefreshToken == "" || !s.VerifiedAt.Equal(e.clk.Now()) {
			t.Fatalf("re-verification %d stored refresh token %q (redeemed so far %q), verified at %s", i, s.RefreshToken, want, s.VerifiedAt)
		}
		if strings.Contains(r.body, s.RefreshToken) || strings.Contains(strings.Join(r.header.Values("Set-Cookie"), " "), s.RefreshToken) {
			t.Errorf("the page hands out the refresh token: %s", r)
		}
		want = append(want, s.RefreshToken)
	}

	// Requests that arrive together redeem the token once between them.
	e.clk.Advance(reverify)
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/console/requests", nil)
			if err != nil {
				statuses <- 0
				return
			}
			res, err := b.c.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a request of the burst answered %d", s)
		}
	}
	if got := line.redemptions(); !slices.Equal(got, want) {
		t.Errorf("with the burst, the refresh tokens redeemed are %q, want %q", got, want)
	}
	s := b.raw()
	if slices.Contains(want, s.RefreshToken) || !s.VerifiedAt.Equal(e.clk.Now()) {
		t.Errorf("after the burst: refresh token %q, verified at %s", s.RefreshToken, s.VerifiedAt)
	}
}

// TestReverifyKeysUnavailable: a token endpoint that answers while the
// issuer's keys can't be fetched (the JWKS endpoint down or answering
// 5xx, when the new ID token is signed with a key the console has not
// cached) is an identity provider that can't verify the session now, not
// a refusal: the session keeps its roles until four intervals passed since
// it was last verified, and is verified again once the keys can be read.
// The refresh token the token endpoint rotated to is kept meanwhile: the
// one redeemed is spent.
func TestReverifyKeysUnavailable(t *testing.T) {
	parallel(t)
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			parallel(t)
			e, m, line := newReverifyEnv(t, oidctest.Config{})
			req := e.file("contoso")
			b := oidcSignIn(t, e, m, mona)
			signedIn := e.clk.Now()
			if _, err := m.RotateKey(); err != nil {
				t.Fatal(err)
			}
			m.FailJWKS(status)

			// Page loads every 10 minutes keep the session from idling out.
			tries := 0
			for e.clk.Advance(reverify); e.clk.Now().Before(signedIn.Add(4 * reverify)); e.clk.Advance(10 * time.Minute) {
				if !canApprove(t, b, req.ID) {
					t.Fatalf("%s after sign-in, with the keys unavailable, the session lost its roles:\n%s", e.clk.Now().Sub(signedIn), e.logs.String())
				}
				tries++
			}
			// Each try redeems the refresh token the one before rotated to.
			if got := line.redemptions(); len(got) != tries || len(slices.Compact(slices.Sorted(slices.Values(got)))) != tries {
				t.Errorf("%d page loads redeemed %q", tries, got)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "can't verify a session now") || strings.Contains(logs, "session ended") {
				t.Errorf("the log does not tell the identity provider could not verify the session:\n%s", logs)
			}
			e.clk.Set(signedIn.Add(4*reverify - time.Second))
			if !canApprove(t, b, req.ID) {
				t.Fatal("just before four intervals, the session lost its roles")
			}
			e.clk.Set(signedIn.Add(4 * reverify))
			wantEnded(t, e, b.get("/console/requests"))
		})
	}
	t.Run("keys back", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{})
		b := oidcSignIn(t, e, m, mona)
		if _, err := m.RotateKey(); err != nil {
			t.Fatal(err)
		}
		m.FailJWKS(http.StatusServiceUnavailable)
		e.clk.Advance(reverify)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("with the keys unavailable: %s", r)
		}
		m.FailJWKS(0)
		e.clk.Advance(time.Minute)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("with the keys back: %s", r)
		}
		if got := b.raw().VerifiedAt; !got.Equal(e.clk.Now()) {
			t.Errorf("verified at %s, want now (%s)", got, e.clk.Now())
		}
	})
}

// TestReverifyRefreshWithoutIDToken: OpenID Connect Core 1.0 section 12.2
// lets a token endpoint answer a refresh without an ID token. The refresh
// having succeeded, the grant is still good at the identity provider: the
// session stays, verified now, with the principal and name it was last
// verified with and the refresh token rotated to. A refresh the provider
// refuses still ends it, and so does an ID token, once one comes again,
// that names another user.
func TestReverifyRefreshWithoutIDToken(t *testing.T) {
	parallel(t)
	t.Run("kept", func(t *testing.T) {
		parallel(t)
		e, m, line := newReverifyEnv(t, oidctest.Config{})
		req := e.file("contoso")
		b := oidcSignIn(t, e, m, mona)
		first := b.raw()
		m.OmitRefreshIDToken(true)
		want := []string{first.RefreshToken}
		for i := range 2 {
			e.clk.Advance(reverify)
			if !canApprove(t, b, req.ID) {
				t.Fatalf("re-verification %d without an ID token: the manager is not offered the approval:\n%s", i, e.logs.String())
			}
			s := b.raw()
			if got := line.redemptions(); !slices.Equal(got, want) {
				t.Fatalf("re-verification %d redeemed %q, want %q", i, got, want)
			}
			if s.Principal.Subject != first.Principal.Subject || !slices.Equal(s.Principal.Roles, first.Principal.Roles) || s.Name != first.Name {
				t.Errorf("re-verification %d: the session holds %+v %q, was %+v %q", i, s.Principal, s.Name, first.Principal, first.Name)
			}
			if !s.VerifiedAt.Equal(e.clk.Now()) || s.RefreshToken == "" || slices.Contains(want, s.RefreshToken) {
				t.Errorf("re-verification %d: verified at %s (now %s), refresh token %q (redeemed %q)", i, s.VerifiedAt, e.clk.Now(), s.RefreshToken, want)
			}
			want = append(want, s.RefreshToken)
		}
		if logs := e.logs.String(); strings.Contains(logs, "session ended") {
			t.Errorf("the log tells of a session ended:\n%s", logs)
		}
	})
	t.Run("refresh refused", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{})
		b := oidcSignIn(t, e, m, mona)
		m.OmitRefreshIDToken(true)
		if m.RevokeRefreshTokens(mona.sub) == 0 {
			t.Fatal("no refresh token to revoke")
		}
		e.clk.Advance(reverify)
		wantEnded(t, e, b.get("/console/requests"))
		if logs := e.logs.String(); !strings.Contains(logs, "session ended") || !strings.Contains(logs, "invalid_grant") {
			t.Errorf("the log does not tell why the session ended:\n%s", logs)
		}
	})
	t.Run("ID token again, of another user", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{})
		b := oidcSignIn(t, e, m, mona)
		m.OmitRefreshIDToken(true)
		e.clk.Advance(reverify)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("re-verification without an ID token: %s", r)
		}
		m.OmitRefreshIDToken(false)
		m.UpdateUser(mona.sub, oidcUser{sub: "eve@provider.example", roles: mona.roles}.user())
		e.clk.Advance(reverify)
		wantEnded(t, e, b.get("/console/requests"))
		if logs := e.logs.String(); !strings.Contains(logs, "another user") {
			t.Errorf("the log does not tell why the session ended:\n%s", logs)
		}
	})
}

// TestReverifyWithoutIDTokenLogged: a session refreshed without an ID token
// keeps roles nobody read again, and says so at info, once per refresh,
// naming the user, the tenant, the issuer and the roles it kept: the
// production log levels show it to a security team.
func TestReverifyWithoutIDTokenLogged(t *testing.T) {
	parallel(t)
	e, m, _ := newReverifyEnv(t, oidctest.Config{})
	b := oidcSignIn(t, e, m, mona)
	m.OmitRefreshIDToken(true)
	const msg = "refreshed a session without an ID token"
	for i := 1; i <= 2; i++ {
		e.clk.Advance(reverify)
		// Several page loads within the interval: one refresh, one line.
		for range 3 {
			if r := b.get("/console/requests"); r.status != http.StatusOK {
				t.Fatalf("refresh %d: %s", i, r)
			}
		}
		var lines []string
		for l := range strings.Lines(e.logs.String()) {
			if strings.Contains(l, msg) {
				lines = append(lines, l)
			}
		}
		if len(lines) != i {
			t.Fatalf("after %d refreshes without an ID token the log has %d such lines:\n%s", i, len(lines), e.logs.String())
		}
		l := lines[i-1]
		for _, want := range []string{"level=INFO", "user=" + mona.sub, "issuer=" + m.Issuer(), `roles="[operator support-manager]"`} {
			if !strings.Contains(l, want) {
				t.Errorf("refresh %d: the line lacks %s: %s", i, want, l)
			}
		}
	}
}

// TestReverifyRefreshOfAnotherAuthentication: OpenID Connect Core 1.0
// section 12.2 has an ID token a refresh returns repeat the sub, aud and
// azp of the authentication it stems from, with its auth_time when it has
// one; a nonce in it can only be that authentication request's. One that
// does not ends the session, as another user does, even where the user id
// is read from another claim that did not change; one that repeats them
// (a provider that copies the nonce, as many do) keeps it.
func TestReverifyRefreshOfAnotherAuthentication(t *testing.T) {
	parallel(t)
	with := func(u oidcUser, extra map[string]any) oidcUser {
		u.extra = maps.Clone(u.extra)
		if u.extra == nil {
			u.extra = map[string]any{}
		}
		maps.Copy(u.extra, extra)
		return u
	}
	for _, tc := range []struct {
		name string
		// subjectClaim is the console's; "sub" when empty.
		subjectClaim string
		signin       oidcUser
		// refreshed is the account as the refresh's ID token names it;
		// nonce is the sign-in's authentication request's.
		refreshed func(m *oidctest.Provider, nonce string) oidcUser
		// ended names the claim the log says differs; "" when the
		// session is kept.
		ended string
	}{
		{"a nonce of another authentication", "", mona, func(*oidctest.Provider, string) oidcUser {
			return with(mona, map[string]any{"nonce": "a-nonce-of-another-sign-in"})
		}, "nonce"},
		{"the sign-in's nonce again", "", mona, func(_ *oidctest.Provider, nonce string) oidcUser {
			return with(mona, map[string]any{"nonce": nonce})
		}, ""},
		{"another auth_time", "", with(mona, map[string]any{"auth_time": 1_700_000_000}), func(*oidctest.Provider, string) oidcUser {
			return with(mona, map[string]any{"auth_time": 1_700_000_900})
		}, "auth_time"},
		{"the sign-in's auth_time again", "", with(mona, map[string]any{"auth_time": 1_700_000_000}), func(*oidctest.Provider, string) oidcUser {
			return with(mona, map[string]any{"auth_time": 1_700_000_000})
		}, ""},
		{"an azp where the sign-in had none", "", mona, func(m *oidctest.Provider, _ string) oidcUser {
			return with(mona, map[string]any{"azp": m.ClientID()})
		}, "azp"},
		{"another audience", "", with(mona, map[string]any{"azp": oidctest.DefaultClientID}), func(m *oidctest.Provider, _ string) oidcUser {
			return with(mona, map[string]any{"azp": m.ClientID(), "aud": []string{"reports"}})
		}, "aud"},
		{"another sub, the same user id", "oid", with(mona, map[string]any{"oid": "mona-oid"}), func(*oidctest.Provider, string) oidcUser {
			u := with(mona, map[string]any{"oid": "mona-oid"})
			u.sub = "mallory@provider.example"
			return u
		}, "sub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, m, _ := newReverifyEnv(t, oidctest.Config{}, func(c *console.Config) { c.OIDC[0].SubjectClaim = tc.subjectClaim })
			req := e.file("contoso")
			b := e.browser()
			l := startLogin(t, e, m, b, tc.signin)
			if r := b.get(l.callback); r.status != http.StatusOK {
				t.Fatalf("callback: %s", r)
			}
			if !canApprove(t, b, req.ID) {
				t.Fatal("the manager is not offered the approval after sign-in")
			}
			m.UpdateUser(tc.signin.sub, tc.refreshed(m, l.authorize.Query().Get("nonce")).user())
			e.clk.Advance(reverify)
			if tc.ended == "" {
				if !canApprove(t, b, req.ID) {
					t.Fatalf("the refreshed ID token repeats the sign-in's claims, and the session lost its roles:\n%s", e.logs.String())
				}
				if got := b.raw().VerifiedAt; !got.Equal(e.clk.Now()) {
					t.Errorf("verified at %s, want now (%s)", got, e.clk.Now())
				}
				return
			}
			wantEnded(t, e, b.get("/console/requests"))
			logs := e.logs.String()
			if !strings.Contains(logs, "session ended") || !strings.Contains(logs, "not of the session's authentication: its "+tc.ended) {
				t.Errorf("the log does not tell the session ended for its %s:\n%s", tc.ended, logs)
			}
			if nonce := l.authorize.Query().Get("nonce"); strings.Contains(logs, nonce) {
				t.Errorf("the log holds the sign-in's nonce:\n%s", logs)
			}
		})
	}
}

// TestReverifyRetiredKey: a key the identity provider took out of its
// JWKS stops verifying the admin center's ID tokens once the keys fetched
// with it are older than the refresh interval (Config's KeysRefresh,
// LOCKBOX_JWT_JWKS_REFRESH): they are fetched again before the next check,
// and a session whose refreshed ID token is signed with the retired key
// ends. Until then, and while the JWKS can't be fetched again (for up to
// KeysMaxAge), the keys fetched before verify.
func TestReverifyRetiredKey(t *testing.T) {
	parallel(t)
	t.Run("retired", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{})
		req := e.file("contoso")
		b := oidcSignIn(t, e, m, mona)
		old := m.KeyID()
		if _, err := m.RotateKey(); err != nil {
			t.Fatal(err)
		}
		m.RetireKeys()
		if err := m.SignWithKey(old); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(reverify)
		wantEnded(t, e, b.get("/console/requests/"+req.ID))
		if logs := e.logs.String(); !strings.Contains(logs, "session ended") || !strings.Contains(logs, "id token") {
			t.Errorf("the log does not tell the session ended over its ID token:\n%s", logs)
		}
	})
	t.Run("still listed", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{})
		req := e.file("contoso")
		b := oidcSignIn(t, e, m, mona)
		old := m.KeyID()
		if _, err := m.RotateKey(); err != nil {
			t.Fatal(err)
		}
		if err := m.SignWithKey(old); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(reverify)
		if !canApprove(t, b, req.ID) {
			t.Fatalf("a key the identity provider still lists no longer verifies:\n%s", e.logs.String())
		}
	})
	t.Run("keys unavailable", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{})
		req := e.file("contoso")
		b := oidcSignIn(t, e, m, mona)
		m.FailJWKS(http.StatusServiceUnavailable)
		for range 3 {
			e.clk.Advance(reverify)
			if !canApprove(t, b, req.ID) {
				t.Fatalf("with the JWKS unavailable, the keys fetched before no longer verify:\n%s", e.logs.String())
			}
			if got := b.raw().VerifiedAt; !got.Equal(e.clk.Now()) {
				t.Fatalf("verified at %s, want now (%s)", got, e.clk.Now())
			}
		}
	})
	t.Run("keys unavailable past their maximum age", func(t *testing.T) {
		parallel(t)
		e, m, _ := newReverifyEnv(t, oidctest.Config{}, func(c *console.Config) { c.OIDC[0].KeysMaxAge = reverify + time.Minute })
		b := oidcSignIn(t, e, m, mona)
		m.FailJWKS(http.StatusServiceUnavailable)
		e.clk.Advance(reverify)
		if r := b.get("/console/requests"); r.status != http.StatusOK || !b.raw().VerifiedAt.Equal(e.clk.Now()) {
			t.Fatalf("within the keys' maximum age: %s\n%s", r, e.logs.String())
		}
		e.clk.Advance(reverify)
		// The keys are too old to verify, and can't be fetched: the
		// identity provider is down, as far as the session can tell.
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("past the keys' maximum age, within the grace: %s", r)
		}
		if got := b.raw().VerifiedAt; got.Equal(e.clk.Now()) {
			t.Errorf("verified at %s with keys past their maximum age", got)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "can't verify a session now") {
			t.Errorf("the log does not tell the session could not be verified:\n%s", logs)
		}
	})
}
