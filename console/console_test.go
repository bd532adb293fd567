package console_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

const sessionCookie = "lockbox_session"

func TestSessionCookie(t *testing.T) {
	parallel(t)
	t.Run("http", func(t *testing.T) {
		parallel(t)
		e := newEnv(t)
		b := e.browser()
		r := b.post("/console/signin/dev", url.Values{"subject": {mia.Subject}})
		if r.status != http.StatusSeeOther || r.location() != "/console/requests" {
			t.Fatalf("sign-in: %s", r)
		}
		c := setCookie(t, r, sessionCookie)
		if c == nil {
			t.Fatalf("no %s cookie: %v", sessionCookie, r.header.Values("Set-Cookie"))
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.Domain != "" {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, host-only, not Secure over http", c)
		}
		if c.MaxAge != 0 || !c.Expires.IsZero() {
			t.Errorf("cookie %+v outlives the browser session", c)
		}
		page := b.get("/console/requests")
		if page.status != http.StatusOK {
			t.Fatalf("requests after sign-in: %s", page)
		}
		mustContain(t, "requests page", page, `data-testid="user">mia<`)
	})
	t.Run("https public URL", func(t *testing.T) {
		parallel(t)
		e := newEnv(t, func(c *console.Config) { c.PublicURL = "https://lockbox.example.com" })
		r := e.browser().post("/console/signin/dev", url.Values{"subject": {mia.Subject}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("sign-in: %s", r)
		}
		if c := setCookie(t, r, sessionCookie); c != nil {
			t.Errorf("plain %s cookie set under https: %+v", sessionCookie, c)
		}
		c := setCookie(t, r, "__Host-lockbox_session")
		if c == nil {
			t.Fatalf("no __Host-lockbox_session cookie: %v", r.header.Values("Set-Cookie"))
		}
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, host-only", c)
		}
		// The session is read under the same name it was set with.
		if r := e.withCookie("__Host-lockbox_session", c.Value).get("/console/requests"); r.status != http.StatusOK {
			t.Errorf("with __Host- cookie: %s", r)
		}
		if r := e.withCookie(sessionCookie, c.Value).get("/console/requests"); !signedOut(r) {
			t.Errorf("the unprefixed name was accepted under https: %s", r)
		}
	})
	t.Run("TLS request", func(t *testing.T) {
		parallel(t)
		e := newStores(t, newClock())
		cfg := e.consoleConfig()
		cfg.DevIdentities = []console.DevIdentity{{Principal: mia}}
		e.serve(cfg, true) // PublicURL is http://, but the request itself came over TLS
		r := e.browser().post("/console/signin/dev", url.Values{"subject": {mia.Subject}})
		c := setCookie(t, r, "__Host-lockbox_session")
		if c == nil || !c.Secure {
			t.Errorf("over TLS: want a Secure __Host- cookie, got %v", r.header.Values("Set-Cookie"))
		}
	})
}

// TestSessionCookieSchemeCase: URL schemes are case-insensitive, and the
// configuration takes LOCKBOX_CONSOLE_URL=HTTPS://lockbox.example.com as the
// https URL it is. The console's cookies and HSTS must follow it too: read
// as plain http, the session and login cookies went out without Secure and
// without the __Host- prefix (a sibling host could plant them), and no
// Strict-Transport-Security was sent.
func TestSessionCookieSchemeCase(t *testing.T) {
	parallel(t)
	e := newEnv(t, func(c *console.Config) { c.PublicURL = "HTTPS://lockbox.example.com" })
	b := e.browser()
	r := b.post("/console/signin/dev", url.Values{"subject": {mia.Subject}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %s", r)
	}
	if c := setCookie(t, r, sessionCookie); c != nil {
		t.Errorf("plain %s cookie set under an https public URL: %+v", sessionCookie, c)
	}
	if c := setCookie(t, r, "__Host-lockbox_session"); c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("want a Secure, HttpOnly, SameSite=Strict __Host-lockbox_session cookie, got %v", r.header.Values("Set-Cookie"))
	}
	if got := r.header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q under an https public URL", got)
	}
}

func TestDevSigninUnknownSubject(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	for _, subject := range []string{"mallory", "", "admin@contoso ", "MIA"} {
		r := e.browser().post("/console/signin/dev", url.Values{"subject": {subject}})
		if r.status != http.StatusForbidden {
			t.Errorf("subject %q: %s", subject, r)
		}
		if v := r.header.Values("Set-Cookie"); len(v) > 0 {
			t.Errorf("subject %q: cookies set: %v", subject, v)
		}
	}
	if ks := e.sessionKeys(); len(ks) != 0 {
		t.Errorf("sessions stored: %v", ks)
	}
	// A server without dev identities offers none, whatever is posted.
	prod := newStores(t, newClock())
	prod.serve(prod.consoleConfig(), false)
	if r := prod.browser().post("/console/signin/dev", url.Values{"subject": {mia.Subject}}); r.status != http.StatusForbidden || len(r.header.Values("Set-Cookie")) > 0 {
		t.Errorf("dev sign-in on a server without dev identities: %s", r)
	}
	if r := prod.browser().get("/console/signin"); r.status != http.StatusOK || strings.Contains(r.body, "/console/signin/dev") {
		t.Errorf("sign-in page without dev identities: %s", r)
	}
}

// The cookie value is a bearer secret: Redis keeps only its hash, so a
// copy of the database signs nobody in.
func TestSessionStoredByHash(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(contosoAdmin)
	token := b.cookie(sessionCookie)
	if len(token) < 20 {
		t.Fatalf("session token %q is too short to be a secret", token)
	}
	// Some activity, so there is more in Redis than the session.
	b.get("/console/requests")
	b.get("/console/audit")
	want := keys.ConsoleSession(sha256Hex(token))
	if ks := e.sessionKeys(); !slices.Equal(ks, []string{want}) {
		t.Errorf("session keys %v, want [%s]", ks, want)
	}
	for k, v := range e.dump() {
		if strings.Contains(k, token) || strings.Contains(v, token) {
			t.Errorf("the raw cookie value is stored in Redis at %s", k)
		}
	}
	// The stored session is the principal's, with its form token.
	var stored struct {
		Principal struct{ Subject, TenantID string }
		CSRF      string `json:"csrf"`
	}
	if err := json.Unmarshal([]byte(e.dump()[want]), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Principal.Subject != contosoAdmin.Subject || stored.Principal.TenantID != "contoso" || stored.CSRF != b.csrf() {
		t.Errorf("stored session %+v", stored)
	}
	// The hash presented as a cookie is no session.
	if r := e.withCookie(sessionCookie, sha256Hex(token)).get("/console/requests"); !signedOut(r) {
		t.Errorf("the hash works as a cookie: %s", r)
	}
}

func TestIdleTimeout(t *testing.T) {
	parallel(t)
	t.Run("inactive", func(t *testing.T) {
		parallel(t)
		e := newEnv(t)
		b := e.signIn(mia)
		e.clk.Advance(idle - time.Second)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("within the idle window: %s", r)
		}
		e.clk.Advance(idle)
		r := b.get("/console/requests")
		if !signedOut(r) {
			t.Fatalf("after %s idle: %s", idle, r)
		}
		if c := setCookie(t, r, sessionCookie); c == nil || c.MaxAge >= 0 {
			t.Errorf("the ended session's cookie was not cleared: %v", r.header.Values("Set-Cookie"))
		}
		if ks := e.sessionKeys(); len(ks) != 0 {
			t.Errorf("an idle session is still in Redis: %v", ks)
		}
	})
	t.Run("exactly idle", func(t *testing.T) {
		parallel(t)
		e := newEnv(t)
		b := e.signIn(mia)
		e.clk.Advance(idle)
		if r := b.get("/console/requests"); !signedOut(r) {
			t.Fatalf("at exactly the idle timeout: %s", r)
		}
	})
	t.Run("activity keeps it", func(t *testing.T) {
		parallel(t)
		e := newEnv(t)
		b := e.signIn(mia)
		// Six idle windows' worth of time, never idle for one.
		for i := range 9 {
			e.clk.Advance(20 * time.Minute)
			if r := b.get("/console/requests"); r.status != http.StatusOK {
				t.Fatalf("page %d, %s after sign-in: %s", i, 20*time.Minute*time.Duration(i+1), r)
			}
		}
	})
	t.Run("polling does not count", func(t *testing.T) {
		parallel(t)
		e := newEnv(t)
		e.managerApproved("contoso")
		b := e.signIn(contosoApprover)
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatal(r)
		}
		// A tab left open polls the live list every few seconds.
		for i := range 29 {
			e.clk.Advance(time.Minute)
			r := b.get("/console/requests/pending")
			if r.status != http.StatusOK || !strings.Contains(r.body, "SR-contoso") {
				t.Fatalf("poll %d: %s", i, r)
			}
		}
		e.clk.Advance(time.Minute) // idle since the last page view
		if r := b.get("/console/requests/pending"); r.status != http.StatusUnauthorized {
			t.Errorf("poll past the idle timeout: %s", r)
		}
		if r := b.get("/console/requests"); !signedOut(r) {
			t.Errorf("page past the idle timeout of the last page view: %s", r)
		}
	})
	t.Run("fragment without a session", func(t *testing.T) {
		parallel(t)
		e := newEnv(t)
		r := e.browser().get("/console/requests/pending")
		if r.status != http.StatusUnauthorized {
			t.Errorf("fragment without a cookie: %s", r)
		}
		if strings.Contains(r.body, "<table") {
			t.Errorf("fragment without a session shows a list: %s", r)
		}
		if r := e.withCookie(sessionCookie, "AAAAAAAAAAAAAAAAAAAAAAAAAA").get("/console/requests/pending"); r.status != http.StatusUnauthorized {
			t.Errorf("fragment with an unknown cookie: %s", r)
		}
	})
}

func TestAbsoluteTimeout(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(mia)
	var elapsed time.Duration
	for elapsed+20*time.Minute < maxAge {
		e.clk.Advance(20 * time.Minute)
		elapsed += 20 * time.Minute
		if r := b.get("/console/requests"); r.status != http.StatusOK {
			t.Fatalf("%s after sign-in, active: %s", elapsed, r)
		}
	}
	e.clk.Advance(maxAge - elapsed - time.Second)
	if r := b.get("/console/requests"); r.status != http.StatusOK {
		t.Fatalf("a second before the absolute timeout: %s", r)
	}
	e.clk.Advance(time.Second)
	if r := b.get("/console/requests"); !signedOut(r) {
		t.Errorf("at the absolute timeout: %s", r)
	}
	if ks := e.sessionKeys(); len(ks) != 0 {
		t.Errorf("an expired session is still in Redis: %v", ks)
	}
}

func TestSignout(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(contosoAdmin)
	token := b.cookie(sessionCookie)
	stolen := e.withCookie(sessionCookie, token)
	if r := stolen.get("/console/requests"); r.status != http.StatusOK {
		t.Fatalf("the cookie on another client before sign-out: %s", r)
	}

	// Sign-out is a state change like any other: it needs the form token.
	if r := b.post("/console/signout", url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("sign-out without a form token: %s", r)
	}
	if r := b.post("/console/signout", url.Values{"csrf_token": {"wrong"}}); r.status != http.StatusForbidden {
		t.Errorf("sign-out with a wrong form token: %s", r)
	}
	if len(e.sessionKeys()) != 1 {
		t.Fatal("a refused sign-out ended the session")
	}

	r := b.post("/console/signout", b.form(nil))
	if !signedOut(r) {
		t.Fatalf("sign-out: %s", r)
	}
	if c := setCookie(t, r, sessionCookie); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("sign-out did not clear the cookie: %v", r.header.Values("Set-Cookie"))
	}
	if ks := e.sessionKeys(); len(ks) != 0 {
		t.Errorf("session still in Redis after sign-out: %v", ks)
	}
	if r := stolen.get("/console/requests"); !signedOut(r) {
		t.Errorf("the old cookie still works on another client: %s", r)
	}
	if r := b.get("/console/requests"); !signedOut(r) {
		t.Errorf("the signed-out browser still has a session: %s", r)
	}
}

// beforeCommand runs then, once armed, just before the first command when
// matches is sent to Redis: what another request does between a handler's
// read and its write.
type beforeCommand struct {
	when  func(redis.Cmder) bool
	then  func()
	armed atomic.Bool
}

func (h *beforeCommand) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *beforeCommand) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.when(cmd) && h.armed.CompareAndSwap(true, false) {
			h.then()
		}
		return next(ctx, cmd)
	}
}
func (h *beforeCommand) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestSignoutDuringAPageLoad: a page load that read the session just before
// the user signed out must not write it back when it records the activity.
// Here a stolen cookie's page load reads the session, the owner signs out,
// then the page load's idle-timeout bookkeeping writes the session again:
// the sign-out must still have ended it, for that client and every other.
func TestSignoutDuringAPageLoad(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(contosoAdmin)
	token, csrf := b.cookie(sessionCookie), b.csrf()
	stolen := e.withCookie(sessionCookie, token)
	// Past the few seconds within which a page load does not write the
	// session back.
	e.clk.Advance(time.Minute)

	var signout struct {
		status int
		err    error
	}
	// The write back is a script that writes only over the session it read.
	key := keys.ConsoleSession(sha256Hex(token))
	between := &beforeCommand{when: func(c redis.Cmder) bool {
		return redistest.Command("evalsha", key)(c) || redistest.Command("eval", key)(c)
	}}
	between.then = func() {
		// On this goroutine (the server's), not the test's: no t.Fatal.
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/signout", strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
		if err != nil {
			signout.err = err
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := b.c.Do(req)
		if err != nil {
			signout.err = err
			return
		}
		res.Body.Close()
		signout.status = res.StatusCode
	}
	between.armed.Store(true)
	e.rdb.AddHook(between)

	r := stolen.get("/console/requests")
	if between.armed.Load() {
		t.Fatalf("the page load wrote no session back (%s): the test did not race the sign-out", r)
	}
	if signout.err != nil || signout.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d %v", signout.status, signout.err)
	}
	if ks := e.sessionKeys(); len(ks) != 0 {
		t.Errorf("the session is back in Redis after the sign-out: %v", ks)
	}
	if r := stolen.get("/console/requests"); !signedOut(r) {
		t.Errorf("the stolen cookie works after the owner signed out: %s", r)
	}
}

// Signing in always makes a new session and ends the one the browser had,
// so a session id planted before sign-in is worthless.
func TestSigninReplacesSession(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(alice)
	old := b.cookie(sessionCookie)
	oldCSRF := b.csrf()

	r := b.post("/console/signin/dev", url.Values{"subject": {mia.Subject}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("second sign-in: %s", r)
	}
	now := b.cookie(sessionCookie)
	if now == "" || now == old {
		t.Fatalf("sign-in kept the session token %q", old)
	}
	if r := e.withCookie(sessionCookie, old).get("/console/requests"); !signedOut(r) {
		t.Errorf("the session before sign-in still works: %s", r)
	}
	if ks := e.sessionKeys(); !slices.Equal(ks, []string{keys.ConsoleSession(sha256Hex(now))}) {
		t.Errorf("sessions in Redis: %v", ks)
	}
	page := b.get("/console/requests")
	mustContain(t, "page after the second sign-in", page, `data-testid="user">mia<`)
	if b.csrf() == oldCSRF {
		t.Error("the new session kept the old form token")
	}
}

func TestCSRF(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.managerApproved("contoso")
	admin := e.signIn(contosoAdmin)
	token := admin.csrf()
	approve := "/console/requests/" + req.ID + "/approve"

	refused := []struct {
		name string
		form url.Values
		opts []reqOpt
	}{
		{"no token", url.Values{"comment": {"ok"}}, nil},
		{"empty token", url.Values{"comment": {"ok"}, "csrf_token": {""}}, nil},
		{"wrong token", url.Values{"comment": {"ok"}, "csrf_token": {token + "x"}}, nil},
		{"another session's token", url.Values{"csrf_token": {e.signIn(contosoApprover).csrf()}}, nil},
		{"token in the query only", nil, nil},
		{"cross-site with the token", url.Values{"csrf_token": {token}}, []reqOpt{header("Sec-Fetch-Site", "cross-site")}},
		{"same-site with the token", url.Values{"csrf_token": {token}}, []reqOpt{header("Sec-Fetch-Site", "same-site")}},
		{"foreign Origin with the token", url.Values{"csrf_token": {token}}, []reqOpt{header("Origin", "http://evil.example")}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			path := approve
			if tc.form == nil {
				path += "?csrf_token=" + url.QueryEscape(token)
				tc.form = url.Values{}
			}
			if r := admin.post(path, tc.form, tc.opts...); r.status != http.StatusForbidden {
				t.Errorf("approve: %s", r)
			}
			if got := e.request(req.ID); got.State != grants.StatePendingCustomer || len(got.History) != len(req.History) {
				t.Errorf("refused approve changed the request: %s, %d events", got.State, len(got.History))
			}
			r := admin.post("/console/approvers", mergeForm(tc.form, url.Values{"user": {"eve@contoso.example"}}), tc.opts...)
			if r.status != http.StatusForbidden {
				t.Errorf("add approver: %s", r)
			}
			if ok, _ := e.ten.IsApprover(context.Background(), "contoso", "eve@contoso.example"); ok {
				t.Error("refused add approver added one")
			}
			if r := admin.post("/console/settings", mergeForm(tc.form, url.Values{}), tc.opts...); r.status != http.StatusForbidden {
				t.Errorf("settings: %s", r)
			}
			if st, _ := e.ten.Lookup(context.Background(), "contoso"); !st.LockboxEnabled {
				t.Error("refused settings post turned lockbox off")
			}
		})
	}

	t.Run("GET is never refused by origin", func(t *testing.T) {
		for _, opt := range []reqOpt{header("Sec-Fetch-Site", "cross-site"), header("Origin", "http://evil.example")} {
			for _, p := range []string{"/console/requests", "/console/requests/" + req.ID, approve, "/console/static/console.css"} {
				if r := admin.get(p, opt); r.status != http.StatusOK {
					t.Errorf("GET %s: %s", p, r)
				}
			}
			if r := e.browser().get("/console/signin", opt); r.status != http.StatusOK {
				t.Errorf("GET /console/signin: %s", r)
			}
		}
	})
	t.Run("cross-site sign-in", func(t *testing.T) {
		b := e.browser()
		r := b.post("/console/signin/dev", url.Values{"subject": {mia.Subject}}, header("Sec-Fetch-Site", "cross-site"))
		if r.status != http.StatusForbidden || len(r.header.Values("Set-Cookie")) > 0 {
			t.Errorf("login CSRF: %s", r)
		}
	})
	t.Run("same-origin with the token", func(t *testing.T) {
		same := header("Sec-Fetch-Site", "same-origin")
		r := admin.post("/console/approvers", url.Values{"csrf_token": {token}, "user": {"eve@contoso.example"}}, same)
		if r.status != http.StatusSeeOther || r.location() != "/console/approvers?done=approver_added" {
			t.Errorf("add approver: %s", r)
		}
		// Origin equal to the host is the same origin too.
		r = admin.post(approve, url.Values{"csrf_token": {token}, "comment": {"fine"}}, header("Origin", e.srv.URL))
		if r.status != http.StatusSeeOther {
			t.Errorf("approve: %s", r)
		}
		if got := e.request(req.ID); got.State != grants.StateApproved {
			t.Errorf("state after approve: %s", got.State)
		}
	})
}

func mergeForm(a, b url.Values) url.Values {
	out := url.Values{}
	for k, v := range a {
		out[k] = slices.Clone(v)
	}
	for k, v := range b {
		out[k] = slices.Clone(v)
	}
	return out
}

// Pages show only what the domain lets the principal read: another
// tenant's request is not found, anywhere.
func TestTenantIsolation(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	contoso := e.managerApproved("contoso")
	fabrikam := e.managerApproved("fabrikam")

	own := e.signIn(contosoApprover)
	if r := own.get("/console/requests/pending"); !strings.Contains(r.body, contoso.ID) {
		t.Fatalf("contoso's approver does not see its request: %s", r)
	}

	b := e.signIn(fabrikamApprover)
	for _, p := range []string{
		"/console/requests/" + contoso.ID,
		"/console/requests/" + contoso.ID + "/approve",
		"/console/requests/" + contoso.ID + "/deny",
	} {
		r := b.get(p)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s: %s", p, r)
		}
		mustNotContain(t, p, r, "SR-contoso", "Mailbox of contoso")
	}
	for _, action := range []string{"approve", "deny", "revoke", "cancel"} {
		r := b.post("/console/requests/"+contoso.ID+"/"+action, b.form(url.Values{"comment": {"x"}}))
		if r.status != http.StatusNotFound {
			t.Errorf("POST %s: %s", action, r)
		}
	}
	if got := e.request(contoso.ID); got.State != grants.StatePendingCustomer || len(got.History) != len(contoso.History) {
		t.Errorf("contoso's request changed: %s, %d events", got.State, len(got.History))
	}
	for _, p := range []string{"/console/requests", "/console/requests/pending", "/console/requests?state=approved"} {
		r := b.get(p)
		if r.status != http.StatusOK {
			t.Errorf("GET %s: %s", p, r)
		}
		mustNotContain(t, p, r, contoso.ID, "SR-contoso")
	}
	if r := b.get("/console/requests/pending"); !strings.Contains(r.body, fabrikam.ID) {
		t.Errorf("fabrikam's approver does not see its own request: %s", r)
	}
	// Another tenant's settings, approvers and audit log are not theirs to
	// read either; the tenant is the session's, not the URL's.
	for _, p := range []string{"/console/settings?tenant=contoso", "/console/approvers?tenant=contoso"} {
		r := b.get(p)
		mustNotContain(t, p, r, "contoso")
	}
}

// TestForeignTokenWithTenantsTid: a session whose principal carries
// contoso's tid and global-admin (or audit-reader) but names no user of
// contoso's domains, as a shared issuer can sign mgr2@provider.example, or
// a user of them with a provider role beside, reads nothing of contoso's:
// its requests are not found, its audit log and settings are forbidden.
func TestForeignTokenWithTenantsTid(t *testing.T) {
	parallel(t)
	foreign := []identity.Principal{
		{Subject: "mgr2@provider.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"},
		{Subject: "aud2@provider.example", Roles: []identity.Role{identity.RoleAuditReader}, TenantID: "contoso"},
		{Subject: "gina@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin, identity.RoleOperator}, TenantID: "contoso"},
	}
	e := newEnv(t, func(cfg *console.Config) {
		for _, p := range foreign {
			cfg.DevIdentities = append(cfg.DevIdentities, console.DevIdentity{Principal: p, Description: "foreign"})
		}
	})
	req := e.managerApproved("contoso")
	for _, p := range foreign {
		b := e.signIn(p)
		for _, path := range []string{"/console/requests/" + req.ID, "/console/requests/" + req.ID + "/approve"} {
			r := b.get(path)
			if r.status != http.StatusNotFound {
				t.Errorf("%s: GET %s: %s", p.Subject, path, r)
			}
			mustNotContain(t, path, r, "SR-contoso")
		}
		for _, path := range []string{"/console/requests", "/console/requests/pending"} {
			r := b.get(path)
			if r.status != http.StatusOK {
				t.Errorf("%s: GET %s: %s", p.Subject, path, r)
			}
			mustNotContain(t, path, r, req.ID, "SR-contoso")
		}
		for _, path := range []string{"/console/audit", "/console/audit?tenant=contoso", "/console/audit/export.csv", "/console/audit?verify=1", "/console/settings", "/console/approvers"} {
			r := b.get(path)
			if r.status != http.StatusForbidden {
				t.Errorf("%s: GET %s: %s", p.Subject, path, r)
			}
			mustNotContain(t, path, r, "SR-contoso", "Microsoft Operator")
		}
		// The menu can tell a provider role from the session; the domain
		// only the registry knows.
		if p.HasProviderOnlyRole() {
			mustNotContain(t, "menu", b.get("/console/requests"), `href="/console/audit"`)
		}
	}
	// The tenant's own global admin reads all of it.
	b := e.signIn(contosoAdmin)
	for _, path := range []string{"/console/requests/" + req.ID, "/console/audit", "/console/settings", "/console/approvers"} {
		if r := b.get(path); r.status != http.StatusOK {
			t.Errorf("%s: GET %s: %s", contosoAdmin.Subject, path, r)
		}
	}
}

func TestApprovers(t *testing.T) {
	parallel(t)
	e := newEnv(t)

	t.Run("assigned approver reads only", func(t *testing.T) {
		b := e.signIn(contosoApprover)
		r := b.get("/console/approvers")
		if r.status != http.StatusOK {
			t.Fatalf("approvers page: %s", r)
		}
		mustContain(t, "approvers page", r, "approver@contoso.example", "Only global administrators add or remove approvers.")
		mustNotContain(t, "approvers page", r, `action="/console/approvers"`, `action="/console/approvers/remove"`, `data-testid="add-approver"`)
		if r := b.post("/console/approvers", b.form(url.Values{"user": {"eve@contoso.example"}})); r.status != http.StatusForbidden {
			t.Errorf("add approver: %s", r)
		}
		if r := b.post("/console/approvers/remove", b.form(url.Values{"user": {"approver@contoso.example"}})); r.status != http.StatusForbidden {
			t.Errorf("remove approver: %s", r)
		}
		list, err := e.ten.Approvers(context.Background(), contosoAdmin, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(list.Approvers, []string{"approver@contoso.example"}) || len(list.NotCounting) != 0 {
			t.Errorf("approvers changed: %+v", list)
		}
		// But, as in Microsoft 365, they configure Customer Lockbox.
		if r := b.get("/console/settings"); r.status != http.StatusOK || !strings.Contains(r.body, `id="lockbox_enabled"`) {
			t.Errorf("settings page withholds the switch from an approver: %s", r)
		}
		if r := b.post("/console/settings", b.form(nil)); r.status != http.StatusSeeOther {
			t.Errorf("settings: %s", r)
		}
		if st, _ := e.ten.Lookup(context.Background(), "contoso"); st.LockboxEnabled {
			t.Error("an assigned approver could not turn lockbox off")
		}
	})

	t.Run("global admin adds and removes", func(t *testing.T) {
		b := e.signIn(contosoAdmin)
		r := b.get("/console/approvers")
		mustContain(t, "approvers page", r, `data-testid="add-approver"`, `action="/console/approvers/remove"`)

		before := len(e.records("contoso"))
		r = b.post("/console/approvers", b.form(url.Values{"user": {"  eve@contoso.example "}}))
		if r.status != http.StatusSeeOther || r.location() != "/console/approvers?done=approver_added" {
			t.Fatalf("add: %s", r)
		}
		if ok, _ := e.ten.IsApprover(context.Background(), "contoso", "eve@contoso.example"); !ok {
			t.Fatal("eve was not added")
		}
		recs := e.records("contoso")
		if len(recs) != before+1 {
			t.Fatalf("%d new audit records, want 1", len(recs)-before)
		}
		if rec := recs[0]; rec.Operation != record.OpAddApprover || rec.UserId != contosoAdmin.Subject || rec.ObjectId != "eve@contoso.example" || rec.ClientIP != "127.0.0.1" {
			t.Errorf("audit record %+v", rec)
		}
		page := b.get(r.location())
		mustContain(t, "approvers page after adding", page, "Approver added.", "eve@contoso.example")

		// A bad user id comes back on the form with what was typed.
		r = b.post("/console/approvers", b.form(url.Values{"user": {"eve contoso"}}))
		if r.status != http.StatusBadRequest {
			t.Errorf("add a bad user id: %s", r)
		}
		mustContain(t, "refused add", r, `value="eve contoso"`, `role="alert"`)

		r = b.post("/console/approvers/remove", b.form(url.Values{"user": {"eve@contoso.example"}}))
		if r.status != http.StatusSeeOther || r.location() != "/console/approvers?done=approver_removed" {
			t.Fatalf("remove: %s", r)
		}
		if ok, _ := e.ten.IsApprover(context.Background(), "contoso", "eve@contoso.example"); ok {
			t.Fatal("eve was not removed")
		}
		if rec := e.records("contoso")[0]; rec.Operation != record.OpRemoveApprover || rec.ObjectId != "eve@contoso.example" || rec.UserId != contosoAdmin.Subject {
			t.Errorf("audit record %+v", rec)
		}
		// The same form sent again (a double click, or a page left open
		// after another administrator removed her): she is no approver,
		// which is what was asked, so it is answered as the removal, with
		// nothing written, rather than as an error.
		removed := len(e.records("contoso"))
		r = b.post("/console/approvers/remove", b.form(url.Values{"user": {"eve@contoso.example"}}))
		if r.status != http.StatusSeeOther || r.location() != "/console/approvers?done=approver_removed" {
			t.Fatalf("remove again: %s", r)
		}
		if n := len(e.records("contoso")); n != removed {
			t.Errorf("removing again wrote %d audit records", n-removed)
		}
		// Fabrikam's admin changes only fabrikam.
		if ok, _ := e.ten.IsApprover(context.Background(), "fabrikam", "eve@contoso.example"); ok {
			t.Error("added to fabrikam")
		}
	})
}

// TestApproversOfARemovedDomain: the page lists as approvers only the
// assignments that count; one whose domain was removed from the registry
// entry approves nothing, so it is listed apart, with why, and its global
// admins may still remove it.
func TestApproversOfARemovedDomain(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	setDomains := func(d ...string) {
		t.Helper()
		if _, err := e.ten.UpdateTenant(ctx, tenanttest.Admin, "", "contoso", tenants.TenantUpdate{Domains: &d}); err != nil {
			t.Fatal(err)
		}
	}
	setDomains("contoso.example", "contoso-old.example")
	for _, u := range []string{"zoe@contoso.example", "olly@contoso-old.example"} {
		if err := e.ten.AddApprover(ctx, contosoAdmin, "", "contoso", u); err != nil {
			t.Fatal(err)
		}
	}
	setDomains("contoso.example")

	b := e.signIn(contosoAdmin)
	r := b.get("/console/approvers")
	if r.status != http.StatusOK {
		t.Fatalf("approvers page: %s", r)
	}
	section := func(id string) string {
		i := strings.Index(r.body, `id="`+id+`"`)
		if i < 0 {
			return ""
		}
		return r.body[i : i+strings.Index(r.body[i:], "</ul>")]
	}
	if got := section("approvers"); !strings.Contains(got, "zoe@contoso.example") || strings.Contains(got, "olly@") {
		t.Errorf("approvers list = %q, want zoe and not olly", got)
	}
	if got := section("not-counting"); !strings.Contains(got, "olly@contoso-old.example") ||
		!strings.Contains(got, "contoso-old.example is not one of the") || !strings.Contains(got, `action="/console/approvers/remove"`) {
		t.Errorf("not-counting list = %q, want olly, why, and a way to remove it", got)
	}

	r = b.post("/console/approvers/remove", b.form(url.Values{"user": {"olly@contoso-old.example"}}))
	if r.status != http.StatusSeeOther {
		t.Fatalf("remove: %s", r)
	}
	r = b.get("/console/approvers")
	mustNotContain(t, "approvers page after removing", r, "olly@", `id="not-counting"`)
}

func TestSettingsSwitch(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(contosoAdmin)
	r := b.get("/console/settings")
	mustContain(t, "settings page", r, `id="lockbox_enabled" name="lockbox_enabled" checked`)

	before := len(e.records("contoso"))
	r = b.post("/console/settings", b.form(url.Values{"notification_addresses": {"sec@contoso.example\nops@contoso.example"}}))
	if r.status != http.StatusSeeOther || r.location() != "/console/settings?done=settings" {
		t.Fatalf("turn off: %s", r)
	}
	st, err := e.ten.Lookup(context.Background(), "contoso")
	if err != nil {
		t.Fatal(err)
	}
	if st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, []string{"sec@contoso.example", "ops@contoso.example"}) {
		t.Errorf("settings after turning off: %+v", st)
	}
	recs := e.records("contoso")
	if len(recs) != before+1 || recs[0].Operation != record.OpSetSettings || recs[0].UserId != contosoAdmin.Subject ||
		fmt.Sprint(recs[0].ModifiedProperties) != "[{LockboxEnabled true false} {NotificationAddresses  sec@contoso.example,ops@contoso.example}]" {
		t.Errorf("audit after turning off: %+v", recs[:min(len(recs), 2)])
	}
	r = b.get(r.location())
	mustContain(t, "settings page", r, "Settings saved.", `id="lockbox_enabled" name="lockbox_enabled" aria-describedby`)

	// With the switch off, the manager's approval is final.
	req := e.file("contoso")
	if got, err := e.reqs.Act(context.Background(), req.ID, grants.ActionApprove, grants.Actor{Principal: mia}, ""); err != nil || got.State != grants.StateApproved {
		t.Errorf("manager approval with lockbox off: %v %v", got.State, err)
	}

	r = b.post("/console/settings", b.form(url.Values{"lockbox_enabled": {"on"}}))
	if r.status != http.StatusSeeOther {
		t.Fatalf("turn on: %s", r)
	}
	if st, _ := e.ten.Lookup(context.Background(), "contoso"); !st.LockboxEnabled {
		t.Error("lockbox still off")
	}
	if fab, _ := e.ten.Lookup(context.Background(), "fabrikam"); !fab.LockboxEnabled {
		t.Error("fabrikam's switch changed")
	}

	// A bad address comes back on the form.
	r = b.post("/console/settings", b.form(url.Values{"lockbox_enabled": {"on"}, "notification_addresses": {"not an address"}}))
	if r.status != http.StatusBadRequest {
		t.Errorf("bad address: %s", r)
	}
	mustContain(t, "refused settings", r, "not an address", `role="alert"`)
}

var revisionRE = regexp.MustCompile(`name="revision" value="([^"]*)"`)

// formRevision returns the revision the settings form on r carries.
func formRevision(t *testing.T, r resp) string {
	t.Helper()
	m := revisionRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("the settings form carries no revision: %s", r)
	}
	return m[1]
}

// TestSettingsChangedSinceTheFormOpened: the settings form carries the
// revision it shows, and saving it after another administrator saved a
// change saves nothing: the page shows the settings as they are now, with
// a request to review them and save again, and saving that page applies.
func TestSettingsChangedSinceTheFormOpened(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	b := e.signIn(contosoAdmin)
	opened := formRevision(t, b.get("/console/settings"))

	// The approver adds an address while the admin's page is open.
	if _, err := e.ten.PutSettings(ctx, contosoApprover, "", "contoso", tenants.Settings{LockboxEnabled: true, NotificationAddresses: []string{"soc@contoso.example"}}); err != nil {
		t.Fatal(err)
	}
	before := len(e.records("contoso"))
	// The admin turns Customer Lockbox off on the page as opened, with no
	// addresses: saving it would take the approver's away.
	r := b.post("/console/settings", b.form(url.Values{"revision": {opened}, "notification_addresses": {""}}))
	if r.status != http.StatusPreconditionFailed {
		t.Fatalf("stale save: %s", r)
	}
	mustContain(t, "stale save", r, `role="alert"`, "The settings changed since you opened this page", "Review them below and save again",
		"soc@contoso.example", `id="lockbox_enabled" name="lockbox_enabled" checked`, `name="csrf_token"`)
	st, err := e.ten.Lookup(ctx, "contoso")
	if err != nil || !st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, []string{"soc@contoso.example"}) {
		t.Fatalf("after the stale save: %+v, %v; want the approver's change alone", st, err)
	}
	if n := len(e.records("contoso")); n != before {
		t.Fatalf("the stale save was audited: %d records, want %d", n, before)
	}

	// The page now carries the current revision: saving it applies.
	current := formRevision(t, r)
	if current == opened {
		t.Fatalf("the refreshed form still carries revision %s", opened)
	}
	r = b.post("/console/settings", b.form(url.Values{"revision": {current}, "notification_addresses": {"soc@contoso.example"}}))
	if r.status != http.StatusSeeOther {
		t.Fatalf("save after review: %s", r)
	}
	if st, _ := e.ten.Lookup(ctx, "contoso"); st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, []string{"soc@contoso.example"}) {
		t.Fatalf("after the reviewed save: %+v", st)
	}

	// A mistake keeps what was typed under the revision it was based on.
	r = b.post("/console/settings", b.form(url.Values{"revision": {opened}, "notification_addresses": {"not an address"}}))
	if r.status != http.StatusBadRequest || formRevision(t, r) != opened {
		t.Errorf("bad address keeps revision %s: %s", opened, r)
	}
	if r := b.post("/console/settings", b.form(url.Values{"revision": {"seven"}})); r.status != http.StatusBadRequest {
		t.Errorf("a revision that is not a number: %s", r)
	}
	if st, _ := e.ten.Lookup(ctx, "contoso"); st.LockboxEnabled || !slices.Equal(st.NotificationAddresses, []string{"soc@contoso.example"}) {
		t.Fatalf("a refused form changed the settings: %+v", st)
	}
}

// The two-person rule is the domain's: the console shows its refusal and
// the request stays as it was.
func TestSelfApproval(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(sam)
	r := b.post("/console/requests", b.form(url.Values{
		"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-77"},
		"reason": {"Calendar sync broken"}, "duration": {"1h"},
	}))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/console/requests/") || !strings.HasSuffix(r.location(), "?done=created") {
		t.Fatalf("file: %s", r)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(r.location(), "/console/requests/"), "?done=created")
	req := e.request(id)
	if req.Requester != sam.Subject || req.State != grants.StatePendingManager {
		t.Fatalf("filed %+v", req)
	}

	page := b.get("/console/requests/" + id)
	mustContain(t, "own request", page, "You filed this request", `data-testid="action-cancel"`)
	mustNotContain(t, "own request", page, `data-testid="action-approve"`)

	r = b.post("/console/requests/"+id+"/approve", b.form(url.Values{"comment": {"looks fine to me"}}))
	if r.status != http.StatusForbidden {
		t.Errorf("self-approval: %s", r)
	}
	mustContain(t, "self-approval", r, `data-testid="problem"`, "two-person rule", "looks fine to me")
	if got := e.request(id); got.State != grants.StatePendingManager || len(got.History) != 1 || got.ManagerApprover != "" {
		t.Errorf("after self-approval: %s, %d events, manager %q", got.State, len(got.History), got.ManagerApprover)
	}

	// Another manager may.
	m := e.signIn(mia)
	mustContain(t, "mia's view", m.get("/console/requests/"+id), `data-testid="action-approve"`)
	if r := m.post("/console/requests/"+id+"/approve", m.form(nil)); r.status != http.StatusSeeOther {
		t.Errorf("mia approves: %s", r)
	}
	if got := e.request(id); got.State != grants.StatePendingCustomer || got.ManagerApprover != mia.Subject {
		t.Errorf("after mia: %s by %q", got.State, got.ManagerApprover)
	}
}

// The two-person rule holds whatever the case of the id: SAM is sam to an
// identity provider whose user names are case-insensitive, so the page
// offers SAM no approval of sam's request, and the domain refuses one.
func TestSelfApprovalWhateverTheCase(t *testing.T) {
	parallel(t)
	samUpper := identity.Principal{Subject: "SAM", Roles: sam.Roles}
	e := newEnv(t, func(c *console.Config) {
		c.DevIdentities = append(c.DevIdentities, console.DevIdentity{Principal: samUpper, Description: "support-manager"})
	})
	req := e.fileAs(sam, "contoso")
	b := e.signIn(samUpper)
	page := b.get("/console/requests/" + req.ID)
	mustContain(t, "SAM's view", page, "You filed this request")
	mustNotContain(t, "SAM's view", page, `data-testid="action-approve"`)
	if r := b.post("/console/requests/"+req.ID+"/approve", b.form(nil)); r.status != http.StatusForbidden {
		t.Errorf("SAM approves sam's request: %s", r)
	}
	if got := e.request(req.ID); got.State != grants.StatePendingManager {
		t.Errorf("after SAM's approval: %s", got.State)
	}
}

func TestNewRequestForm(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(alice)
	r := b.get("/console/requests")
	mustContain(t, "operator's requests page", r, `href="/console/requests/new"`)
	r = b.get("/console/requests/new")
	if r.status != http.StatusOK {
		t.Fatalf("form: %s", r)
	}
	mustContain(t, "new request form", r, `id="new-request"`, `value="exchange"`, `value="exchange/Get-Mailbox"`, `<option value="4h"`)
	mustNotContain(t, "new request form", r, `<option value="5h"`)

	typed := url.Values{
		"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-4242"},
		"reason":   {`Repair <b>mailbox</b> & "folders"`},
		"activity": {"exchange/Get-Mailbox", "exchange/New-MailboxRepairRequest", "sharepoint/Get-SPOSite"},
	}
	bad := []struct {
		name    string
		change  url.Values
		problem string
		echoed  []string
	}{
		{"duration over 4h", url.Values{"duration": {"5h"}}, "Choose a duration", []string{`value="contoso"`}},
		{"duration not a duration", url.Values{"duration": {"soon"}}, "Choose a duration", []string{`value="contoso"`}},
		{"duration not offered", url.Values{"duration": {"90m"}}, "Choose a duration", []string{`value="contoso"`}},
		{"tenant not a tenant id", url.Values{"duration": {"2h"}, "tenant": {"Contoso Ltd"}}, "tenant", []string{`value="Contoso Ltd"`, `<option value="2h" selected>`}},
		{"unknown service", url.Values{"duration": {"1h"}, "service": {"telnet"}}, "telnet", []string{`value="contoso"`}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/console/requests", b.form(mergeForm(typed, tc.change)))
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s", r)
			}
			mustContain(t, "refused form", r, append([]string{
				`id="new-request"`, `data-testid="problem"`, tc.problem, `value="SR-4242"`,
				// What was typed comes back escaped, never as markup.
				"Repair &lt;b&gt;mailbox&lt;/b&gt; &amp; &#34;folders&#34;",
			}, tc.echoed...)...)
			mustNotContain(t, "refused form", r, "<b>mailbox</b>")
		})
	}
	t.Run("ticked activities come back", func(t *testing.T) {
		r := b.post("/console/requests", b.form(mergeForm(typed, url.Values{"duration": {"8h"}})))
		for _, want := range []string{`value="exchange/Get-Mailbox" checked`, `value="exchange/New-MailboxRepairRequest" checked`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("lacks %s", want)
			}
		}
		if strings.Contains(r.body, `value="sharepoint/Get-SPOSite" checked`) {
			t.Error("another service's activity came back ticked")
		}
	})
	if reqs, err := e.reqs.List(context.Background(), mia, grants.Filter{}); err != nil || len(reqs) != 0 {
		t.Fatalf("refused forms filed %d requests (%v)", len(reqs), err)
	}

	r = b.post("/console/requests", b.form(mergeForm(typed, url.Values{"duration": {"2h"}})))
	if r.status != http.StatusSeeOther {
		t.Fatalf("file: %s", r)
	}
	reqs, err := e.reqs.List(context.Background(), mia, grants.Filter{})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("%d requests (%v)", len(reqs), err)
	}
	got := reqs[0]
	if got.Requester != alice.Subject || got.Duration.Std() != 2*time.Hour || !slices.Equal(got.Activities, []string{"Get-Mailbox", "New-MailboxRepairRequest"}) ||
		got.History[0].ClientIP != "127.0.0.1" {
		t.Errorf("filed %+v", got)
	}
	page := b.get(r.location())
	mustContain(t, "request page", page, "The request was filed.", "SR-4242", "Awaiting manager")

	// Only operators file; a tenant admin's post is refused by the domain.
	admin := e.signIn(contosoAdmin)
	mustNotContain(t, "admin's requests page", admin.get("/console/requests"), `href="/console/requests/new"`)
	if r := admin.post("/console/requests", admin.form(mergeForm(typed, url.Values{"duration": {"1h"}, "service_request": {"SR-9"}}))); r.status != http.StatusForbidden {
		t.Errorf("tenant admin files: %s", r)
	}
}

func TestTenantApproval(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.managerApproved("contoso")
	b := e.signIn(contosoApprover)

	r := b.get("/console/requests")
	mustContain(t, "requests page", r, req.ID, "Your decision")
	r = b.get("/console/requests/" + req.ID)
	mustContain(t, "request page", r, `data-testid="action-approve"`, `data-testid="action-deny"`, "Microsoft Operator")
	mustNotContain(t, "request page", r, ">alice<", ">mia<", "192.0.2.1")
	r = b.get("/console/requests/" + req.ID + "/approve")
	if r.status != http.StatusOK {
		t.Fatalf("confirm page: %s", r)
	}
	mustContain(t, "confirm page", r, `action="/console/requests/`+req.ID+`/approve"`, `name="comment"`)

	e.clk.Advance(3 * time.Minute)
	at := e.clk.Now()
	const comment = "Checked with the mailbox owner"
	r = b.post("/console/requests/"+req.ID+"/approve", b.form(url.Values{"comment": {"  " + comment + "\n"}}))
	if r.status != http.StatusSeeOther || r.location() != "/console/requests/"+req.ID+"?done=approve" {
		t.Fatalf("approve: %s", r)
	}
	got := e.request(req.ID)
	if got.State != grants.StateApproved || got.Approver != contosoApprover.Subject || got.ExpiresAt == nil || !got.ExpiresAt.Equal(at.Add(2*time.Hour)) {
		t.Errorf("after approval: %+v", got)
	}
	last := got.History[len(got.History)-1]
	if last.Actor != contosoApprover.Subject || last.Comment != comment || last.ClientIP != "127.0.0.1" || last.Action != grants.ActionApprove {
		t.Errorf("history event %+v", last)
	}
	var rec *record.Record
	for _, r := range e.records("contoso") {
		if r.Operation == record.OpTenantDecision && r.LockboxRequestId == req.ID {
			rec = &r
			break
		}
	}
	if rec == nil {
		t.Fatal("no Set-AccessToCustomerDataRequest record")
	}
	if rec.ApprovalDecision != record.ApprovalApprove || rec.UserId != contosoApprover.Subject || rec.Comment != comment || rec.ClientIP != "127.0.0.1" || !rec.CreationTime.Equal(at) {
		t.Errorf("audit record %+v", rec)
	}

	page := b.get(r.location())
	mustContain(t, "request page after approval", page, "The request was approved.", comment, `data-testid="state">Approved<`, "(2h left)", `data-testid="action-revoke"`)

	// Approving again is a harmless retry; denying now is refused and
	// shown on the form.
	r = b.post("/console/requests/"+req.ID+"/deny", b.form(url.Values{"comment": {"changed my mind"}}))
	if r.status != http.StatusConflict {
		t.Errorf("deny an approved request: %s", r)
	}
	mustContain(t, "refused deny", r, `data-testid="problem"`, "changed my mind")
	if e.request(req.ID).State != grants.StateApproved {
		t.Error("deny changed an approved request")
	}
}

func TestAuditPage(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.managerApproved("contoso")
	if _, err := e.reqs.Act(context.Background(), req.ID, grants.ActionApprove, grants.Actor{Principal: contosoApprover, ClientIP: "198.51.100.7"}, "fine, go ahead"); err != nil {
		t.Fatal(err)
	}

	admin := e.signIn(contosoAdmin)
	r := admin.get("/console/audit")
	if r.status != http.StatusOK {
		t.Fatalf("audit page: %s", r)
	}
	// Verifying reads the whole log: only on request.
	mustContain(t, "audit page", r, record.OpTenantDecision, record.OpManagerDecision, "fine, go ahead", `href="/console/audit?tenant=contoso&amp;verify=1"`, `href="/console/audit/export.csv?tenant=contoso"`)
	mustNotContain(t, "audit page", r, `data-testid="verification"`)
	r = admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "verified audit page", r, record.OpTenantDecision, `data-testid="verification"`, "Hash chain intact")
	mustNotContain(t, "verified audit page", r, `data-testid="verify"`)
	// Tenants see the provider's staff as "Microsoft Operator", never who.
	mustNotContain(t, "audit page", r, ">alice<", ">mia<", "192.0.2.10")

	r = admin.get("/console/audit?operation=" + record.OpTenantDecision)
	mustContain(t, "filtered audit page", r, record.OpTenantDecision)
	mustNotContain(t, "filtered audit page", r, record.OpNewRequest)
	r = admin.get("/console/audit?from=2025-03-31&to=2025-03-01")
	if r.status != http.StatusBadRequest {
		t.Errorf("reversed range: %s", r)
	}
	mustContain(t, "reversed range", r, "The end date is before the start date.")
	// The export of a range the page refuses would be refused too: no
	// link to it.
	mustNotContain(t, "reversed range", r, `data-testid="export"`)
	mustContain(t, "audit page without filters", admin.get("/console/audit"), `data-testid="export"`)

	t.Run("export", func(t *testing.T) {
		r := admin.get("/console/audit/export.csv")
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("export: %s", r)
		}
		if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="audit-contoso.csv"` {
			t.Errorf("Content-Disposition %q", cd)
		}
		rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 || !slices.Equal(rows[0], []string{"CreationDate", "UserIds", "Operations", "AuditData"}) {
			t.Fatalf("header row: %v", rows)
		}
		var found bool
		for _, row := range rows[1:] {
			if row[2] != record.OpTenantDecision {
				continue
			}
			var rec record.Record
			if err := json.Unmarshal([]byte(row[3]), &rec); err != nil {
				t.Fatal(err)
			}
			found = rec.LockboxRequestId == req.ID && rec.ApprovalDecision == record.ApprovalApprove &&
				row[1] == contosoApprover.Subject && rec.Comment == "fine, go ahead"
		}
		if !found {
			t.Errorf("no decision row in %v", rows)
		}
		if strings.Contains(r.body, `"ProviderUserId"`) {
			t.Error("the tenant's export names the provider's staff")
		}
	})

	t.Run("plain approver", func(t *testing.T) {
		b := e.signIn(contosoApprover)
		if r := b.get("/console/requests"); strings.Contains(r.body, `href="/console/audit"`) {
			t.Error("menu offers the audit log to a plain approver")
		}
		for _, p := range []string{"/console/audit", "/console/audit/export.csv"} {
			r := b.get(p)
			if r.status != http.StatusForbidden {
				t.Errorf("GET %s: %s", p, r)
			}
			mustNotContain(t, p, r, record.OpTenantDecision, "fine, go ahead")
		}
	})

	// Provider staff without the audit role are refused outright, tenant
	// or not: asked to name a tenant (400), they named one only to be
	// refused then.
	t.Run("provider staff without the audit role", func(t *testing.T) {
		for _, who := range []identity.Principal{alice, mia, lara} {
			b := e.signIn(who)
			for _, p := range []string{"/console/audit", "/console/audit/export.csv", "/console/audit?tenant=contoso"} {
				r := b.get(p)
				if r.status != http.StatusForbidden {
					t.Errorf("GET %s as %s: %s", p, who.Subject, r)
				}
				mustNotContain(t, p, r, "tenant is required", record.OpTenantDecision)
			}
		}
	})

	t.Run("provider auditor", func(t *testing.T) {
		b := e.signIn(auditor)
		r := b.get("/console/audit?tenant=contoso&user=mia&verify=1")
		mustContain(t, "auditor's page", r, record.OpManagerDecision, ">mia<", `data-testid="verification"`)
		mustNotContain(t, "auditor's page", r, record.OpNewRequest)
		// The export link carries the page's filters: this tenant, this
		// user, nothing else.
		export := link(t, r, "export")
		r = b.get(export)
		if r.status != http.StatusOK || r.header.Get("Content-Disposition") != `attachment; filename="audit-contoso.csv"` {
			t.Fatalf("export from %s: %s", export, r)
		}
		rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[1][2] != record.OpManagerDecision || !strings.Contains(rows[1][3], `"ProviderUserId":"mia"`) {
			t.Errorf("export of contoso's records by mia: %v", rows)
		}
		r = b.get("/console/audit/export.csv")
		if r.status != http.StatusOK || r.header.Get("Content-Disposition") != `attachment; filename="audit-all_tenants.csv"` || !strings.Contains(r.body, "approver@fabrikam") {
			t.Errorf("all-tenant export: %s", r)
		}
	})
}

// hrefRE finds the link a test follows, by its data-testid.
var hrefRE = regexp.MustCompile(`<a [^>]*href="([^"]*)"[^>]*>`)

// link returns the href of the link in r marked data-testid=id, or of the
// link whose text is id, as a browser would resolve it.
func link(t *testing.T, r resp, id string) string {
	t.Helper()
	for _, m := range hrefRE.FindAllStringSubmatchIndex(r.body, -1) {
		tag := r.body[m[0]:m[1]]
		rest := r.body[m[1]:]
		if strings.Contains(tag, `data-testid="`+id+`"`) || strings.HasPrefix(rest, id+"</a>") {
			return html.UnescapeString(r.body[m[2]:m[3]])
		}
	}
	t.Fatalf("no link %q in %s", id, r)
	return ""
}

// The audit log pages by a cursor the "Older records" link carries.
func TestAuditPaging(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	// The page shows each record's client IP, which tells them apart.
	ip := func(i int) string { return fmt.Sprintf(`<td data-label="Client IP" class="mono">10.0.0.%d</td>`, i) }
	for i := range 60 {
		e.clk.Advance(time.Second)
		if err := e.ten.AddApprover(ctx, contosoAdmin, fmt.Sprintf("10.0.0.%d", i), "contoso", fmt.Sprintf("user%02d@contoso.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	b := e.signIn(contosoAdmin)
	first := b.get("/console/audit?operation=" + record.OpAddApprover)
	mustContain(t, "first page", first, ip(59), ip(10))
	mustNotContain(t, "first page", first, ip(9))
	older := link(t, first, "Older records")
	second := b.get(older)
	if second.status != http.StatusOK {
		t.Fatalf("GET %s: %s", older, second)
	}
	// The second page keeps the filter and goes on from the cursor.
	mustContain(t, "second page", second, ip(9), ip(0), `value="`+record.OpAddApprover+`"`)
	mustNotContain(t, "second page", second, ip(10), ip(59), "Older records")
}

func TestSecurityHeaders(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.managerApproved("contoso")
	anon := e.browser()
	admin := e.signIn(contosoAdmin)
	fab := e.signIn(fabrikamApprover)
	op := e.signIn(alice)

	cases := []struct {
		name   string
		b      *browser
		method string
		path   string
		form   url.Values
		status int
	}{
		{"sign-in page", anon, "GET", "/console/signin", nil, http.StatusOK},
		{"home", anon, "GET", "/console/", nil, http.StatusSeeOther},
		{"page without session", anon, "GET", "/console/requests", nil, http.StatusSeeOther},
		{"fragment without session", anon, "GET", "/console/requests/pending", nil, http.StatusUnauthorized},
		{"unknown dev identity", anon, "POST", "/console/signin/dev", url.Values{"subject": {"x"}}, http.StatusForbidden},
		{"requests", admin, "GET", "/console/requests", nil, http.StatusOK},
		{"fragment", admin, "GET", "/console/requests/pending", nil, http.StatusOK},
		{"request", admin, "GET", "/console/requests/" + req.ID, nil, http.StatusOK},
		{"confirm", admin, "GET", "/console/requests/" + req.ID + "/deny", nil, http.StatusOK},
		{"settings", admin, "GET", "/console/settings", nil, http.StatusOK},
		{"approvers", admin, "GET", "/console/approvers", nil, http.StatusOK},
		{"audit", admin, "GET", "/console/audit", nil, http.StatusOK},
		{"export", admin, "GET", "/console/audit/export.csv", nil, http.StatusOK},
		{"new request", op, "GET", "/console/requests/new", nil, http.StatusOK},
		{"new request refused", admin, "GET", "/console/requests/new", nil, http.StatusForbidden},
		{"not found request", fab, "GET", "/console/requests/" + req.ID, nil, http.StatusNotFound},
		{"bad request id", admin, "GET", "/console/requests/not-an-id", nil, http.StatusBadRequest},
		{"no such action", admin, "GET", "/console/requests/" + req.ID + "/delete", nil, http.StatusNotFound},
		{"no such page", admin, "GET", "/console/nothing", nil, http.StatusNotFound},
		{"missing form token", admin, "POST", "/console/settings", url.Values{}, http.StatusForbidden},
		{"static", anon, "GET", "/console/static/console.css", nil, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r resp
			if tc.method == "POST" {
				r = tc.b.post(tc.path, tc.form)
			} else {
				r = tc.b.get(tc.path)
			}
			if r.status != tc.status {
				t.Errorf("status %d, want %d: %s", r.status, tc.status, r)
			}
			h := r.header
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"frame-ancestors 'none'", "default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %s", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "*") {
				t.Errorf("CSP %q allows too much", csp)
			}
			if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Frame-Options %q, X-Content-Type-Options %q", h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
			}
			if h.Get("Referrer-Policy") == "" {
				t.Error("no Referrer-Policy")
			}
			if h.Get("Cross-Origin-Opener-Policy") != "same-origin" || h.Get("Cross-Origin-Resource-Policy") != "same-origin" {
				t.Errorf("Cross-Origin-Opener-Policy %q, Cross-Origin-Resource-Policy %q",
					h.Get("Cross-Origin-Opener-Policy"), h.Get("Cross-Origin-Resource-Policy"))
			}
			// Over plain http a Strict-Transport-Security header is
			// ignored by browsers, and it would say nothing true.
			if v := h.Get("Strict-Transport-Security"); v != "" {
				t.Errorf("Strict-Transport-Security %q over http", v)
			}
			if tc.name != "static" && h.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
			}
			// The CSP forbids inline script and style: a page that has
			// some is broken in every browser.
			if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				body := strings.ToLower(r.body)
				for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", " onsubmit=", " onchange=", "javascript:"} {
					if strings.Contains(body, bad) {
						t.Errorf("page has inline %q", bad)
					}
				}
			}
		})
	}
}

// TestStrictTransportSecurity: a console served over HTTPS, by its public
// URL or by the request's own TLS, tells browsers to keep to HTTPS, on
// every answer including refusals.
func TestStrictTransportSecurity(t *testing.T) {
	parallel(t)
	const want = "max-age=31536000"
	check := func(t *testing.T, b *browser) {
		t.Helper()
		for _, path := range []string{"/console/signin", "/console/requests", "/console/nothing", "/console/static/console.css"} {
			r := b.get(path)
			if got := r.header.Get("Strict-Transport-Security"); got != want {
				t.Errorf("GET %s (%d): Strict-Transport-Security %q, want %q", path, r.status, got, want)
			}
		}
		r := b.post("/console/settings", url.Values{})
		if got := r.header.Get("Strict-Transport-Security"); got != want {
			t.Errorf("refused POST (%d): Strict-Transport-Security %q, want %q", r.status, got, want)
		}
	}
	t.Run("https public URL", func(t *testing.T) {
		parallel(t)
		e := newEnv(t, func(c *console.Config) { c.PublicURL = "https://lockbox.example.com" })
		check(t, e.browser())
	})
	t.Run("TLS request", func(t *testing.T) {
		parallel(t)
		e := newStores(t, newClock())
		e.serve(e.consoleConfig(), true)
		check(t, e.browser())
	})
}

func TestStatic(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.browser()
	for file, ctype := range map[string]string{"console.css": "text/css", "console.js": "text/javascript", "favicon.svg": "image/svg+xml"} {
		r := b.get("/console/static/" + file)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), ctype) || len(r.body) == 0 {
			t.Errorf("%s: %d %q (%d bytes)", file, r.status, r.header.Get("Content-Type"), len(r.body))
		}
	}
	for _, p := range []string{"/console/static/", "/console/static", "/console/static/?C=M;O=D", "/console/static/nothing.css", "/console/static/../templates/layout.html"} {
		r := b.get(p)
		if r.status == http.StatusOK || strings.Contains(r.body, "console.css") || strings.Contains(r.body, "{{") {
			t.Errorf("GET %s: %s", p, r)
		}
	}
	if r := b.do("POST", "/console/static/console.css", strings.NewReader("")); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST to a static file: %s", r)
	}
}

// The console answers the live list with rows only for the pending
// requests the viewer may see, and what waits for them first.
func TestPendingFragment(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	waiting := e.managerApproved("contoso")
	e.clk.Advance(time.Hour)
	fresh := e.fileAs(sam, "contoso")

	b := e.signIn(mia)
	r := b.get("/console/requests/pending")
	if r.status != http.StatusOK || strings.Contains(r.body, "<html") {
		t.Fatalf("fragment: %s", r)
	}
	mustContain(t, "mia's fragment", r, waiting.ID, fresh.ID, "Your decision")
	if i, j := strings.Index(r.body, fresh.ID), strings.Index(r.body, waiting.ID); i > j {
		t.Error("the request that waits for mia's decision is not first")
	}

	op := e.signIn(alice)
	r = op.get("/console/requests/pending")
	mustContain(t, "alice's fragment", r, waiting.ID)
	mustNotContain(t, "alice's fragment", r, fresh.ID, "Your decision")
}

func TestRequestsFilter(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.managerApproved("contoso")
	if _, err := e.reqs.Act(context.Background(), req.ID, grants.ActionDeny, grants.Actor{Principal: contosoAdmin}, "no"); err != nil {
		t.Fatal(err)
	}
	b := e.signIn(contosoAdmin)
	for q, want := range map[string]bool{
		"state=denied": true, "state=approved": false, "from=2025-03-01": true, "from=2025-03-02": false, "to=2025-02-28": false,
	} {
		r := b.get("/console/requests?" + q)
		if r.status != http.StatusOK {
			t.Errorf("%s: %s", q, r)
			continue
		}
		if got := strings.Contains(r.body, `<tr data-request="`+req.ID+`"`); got != want {
			t.Errorf("%s: listed %v, want %v", q, got, want)
		}
	}
	for _, q := range []string{"state=bogus", "from=yesterday", "from=2025-03-02&to=2025-03-01"} {
		if r := b.get("/console/requests?" + q); r.status != http.StatusBadRequest {
			t.Errorf("%s: %s", q, r)
		}
	}
}

// With Redis gone, pages answer 503 at once: nobody is signed out by an
// outage, and nothing is shown that was not read.
func TestRedisDown(t *testing.T) {
	parallel(t)
	srv := redistest.StartServer(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Retrying a refused connection only slows the test down.
	opts.MaxRetries, opts.DialerRetries, opts.DialerRetryTimeout = -1, 1, time.Millisecond
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	e := newStoresOn(t, newClock(), rdb)
	cfg := e.consoleConfig()
	cfg.DevIdentities = []console.DevIdentity{{Principal: contosoAdmin}}
	e.serve(cfg, false)
	b := e.signIn(contosoAdmin)
	token := b.csrf()

	srv.Stop()
	for _, p := range []string{"/console/", "/console/requests", "/console/requests/pending", "/console/settings", "/console/audit", "/console/audit/export.csv"} {
		r := b.get(p)
		if p == "/console/" {
			// Home only routes: without a readable session it sends
			// the browser to sign in.
			if r.status != http.StatusSeeOther {
				t.Errorf("GET %s: %s", p, r)
			}
			continue
		}
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %s", p, r)
		}
		if c := setCookie(t, r, sessionCookie); c != nil {
			t.Errorf("GET %s with Redis down touched the cookie: %v", p, c)
		}
	}
	if r := b.post("/console/settings", url.Values{"csrf_token": {token}}); r.status != http.StatusServiceUnavailable {
		t.Errorf("POST settings: %s", r)
	}
	if r := e.browser().post("/console/signin/dev", url.Values{"subject": {contosoAdmin.Subject}}); r.status != http.StatusServiceUnavailable || setCookie(t, r, sessionCookie) != nil {
		t.Errorf("sign-in: %s", r)
	}
	if !strings.Contains(e.logs.String(), "console request failed") {
		t.Errorf("the outage was not logged: %s", e.logs)
	}
}

// TestSignoutWithRedisDown: a sign-out that can't end the session says so.
// Told "signed out" while Redis could not be read, the user would leave a
// session that works again for anyone holding its cookie as soon as Redis
// answers. The browser keeps its cookie, so signing out again ends it.
func TestSignoutWithRedisDown(t *testing.T) {
	parallel(t)
	srv := redistest.StartServer(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// A frozen Redis answers nothing: give up on it fast, but not so fast
	// that a loaded machine's slow answer while the test sets up (under
	// -race, at 200 ms it happened) counts as an outage.
	opts.MaxRetries, opts.ReadTimeout, opts.WriteTimeout = -1, time.Second, time.Second
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	e := newStoresOn(t, newClock(), rdb)
	cfg := e.consoleConfig()
	cfg.DevIdentities = []console.DevIdentity{{Principal: contosoAdmin}}
	e.serve(cfg, false)
	b := e.signIn(contosoAdmin)
	token, csrf := b.cookie(sessionCookie), b.csrf()

	thaw := srv.Freeze(t)
	r := b.post("/console/signout", url.Values{"csrf_token": {csrf}})
	thaw()
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("sign-out with Redis down: %s", r)
	}
	if c := setCookie(t, r, sessionCookie); c != nil {
		t.Errorf("the failed sign-out cleared the cookie: %v", c)
	}
	// Redis is back: the session was not ended, and the browser can end it.
	if r := e.withCookie(sessionCookie, token).get("/console/requests"); r.status != http.StatusOK {
		t.Fatalf("the session after the failed sign-out: %s", r)
	}
	if r := b.post("/console/signout", url.Values{"csrf_token": {csrf}}); !signedOut(r) {
		t.Fatalf("sign-out with Redis back: %s", r)
	}
	if r := e.withCookie(sessionCookie, token).get("/console/requests"); !signedOut(r) {
		t.Errorf("the session after signing out again: %s", r)
	}
}
