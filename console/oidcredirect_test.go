package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// The admin center fetches an issuer's discovery document, redeems codes
// and refresh tokens at its token endpoint and fetches its keys from its
// jwks_uri. Each of those requests follows redirects only within the
// origin (scheme, host and port) of the URL it started at: a redirect off
// https would carry the request in the clear, and a 307 or 308 from the
// token endpoint resends the form, code, PKCE verifier and client secret
// with it, to wherever the Location says. The identity providers here are
// real TLS servers (httptest's), and so is the other origin.

// hits counts the requests a server got, and keeps what they carried.
type hits struct {
	mu   sync.Mutex
	reqs []string // method, path, Authorization and body of each
}

func (h *hits) record(r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization")+" body="+string(body))
}

func (h *hits) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reqs...)
}

// elsewhere is a server at another origin than the identity provider's,
// over TLS (http when plain), that records every request and answers with
// serve (404 when nil).
func elsewhere(t *testing.T, plain bool, serve http.HandlerFunc) (*httptest.Server, *hits) {
	t.Helper()
	h := &hits{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.record(r)
		if serve == nil {
			http.NotFound(w, r)
			return
		}
		serve(w, r)
	})
	var srv *httptest.Server
	if plain {
		srv = httptest.NewServer(handler)
	} else {
		srv = httptest.NewTLSServer(handler)
	}
	t.Cleanup(srv.Close)
	return srv, h
}

// tlsIdP is an identity provider on https, written route by route by the
// test: its discovery document names it as issuer, its authorization
// endpoint, its token endpoint and, unless the test says otherwise, its
// own /jwks.
type tlsIdP struct {
	srv *httptest.Server
	mux *http.ServeMux
	// doc is the discovery document beyond the issuer's endpoints.
	doc map[string]any
}

func newTLSIdP(t *testing.T) *tlsIdP {
	t.Helper()
	p := &tlsIdP{mux: http.NewServeMux(), doc: map[string]any{}}
	p.srv = httptest.NewTLSServer(p.mux)
	t.Cleanup(p.srv.Close)
	return p
}

// document is p's discovery document, with the fields of p.doc.
func (p *tlsIdP) document() map[string]any {
	d := map[string]any{"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize",
		"token_endpoint": p.srv.URL + "/token", "jwks_uri": p.srv.URL + "/jwks", "response_types_supported": []string{"code"},
		"id_token_signing_alg_values_supported": []string{"ES256"}}
	for k, v := range p.doc {
		d[k] = v
	}
	return d
}

func (p *tlsIdP) serveDocument(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p.document())
}

// console serves a console that signs everyone in at p, over a client
// that trusts httptest's certificate (every httptest TLS server's),
// and returns it with a browser.
func (p *tlsIdP) console(t *testing.T, clk *clock.Fake) (*env, *browser) {
	t.Helper()
	e := newStores(t, clk)
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{{Issuer: p.srv.URL, ClientID: oidctest.DefaultClientID, ClientSecret: oidctest.DefaultClientSecret,
		Scope: identity.SharedScope(), HTTPClient: p.srv.Client()}}
	e.serve(cfg, false)
	return e, e.browser()
}

// answer follows b's sign-in through p's authorization endpoint, which
// answers with code at once, and returns the console's answer to it.
// nonce, when not nil, is told the sign-in's nonce before the answer
// arrives, for the ID token the token endpoint issues.
func (p *tlsIdP) answer(t *testing.T, b *browser, code string, nonce func(string)) resp {
	t.Helper()
	r := b.get("/console/signin/oidc")
	if r.status != http.StatusFound {
		t.Fatalf("sign-in start: %s", r)
	}
	az, err := url.Parse(r.location())
	if err != nil || !strings.HasPrefix(az.String(), p.srv.URL+"/authorize?") {
		t.Fatalf("sign-in start went to %q, %v", r.location(), err)
	}
	q := az.Query()
	if nonce != nil {
		nonce(q.Get("nonce"))
	}
	back := url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {p.srv.URL}}
	return b.get(q.Get("redirect_uri") + "?" + back.Encode())
}

// mustNotLeak fails t when the console's log holds any of secrets.
func mustNotLeak(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	l := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(l, s) {
			t.Errorf("the log holds %q:\n%s", s, l)
		}
	}
}

// TestOIDCDiscoveryRedirectStaysInOrigin: the issuer's discovery document
// is read only from the issuer's origin. A redirect from https to plain
// http, or to another https origin, is not followed, whatever the document
// there says, and sign-in through the issuer is unavailable; the log says
// why, without the password a Location may carry (a URL with one is
// refused wherever it points, as configuration refuses it). A redirect
// within the origin is followed.
func TestOIDCDiscoveryRedirectStaysInOrigin(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name     string
		plain    bool // the other server speaks http
		same     bool // the redirect stays at the issuer
		password bool // the Location carries one
	}{
		{"https to http", true, false, false},
		{"another https origin", false, false, false},
		{"another origin, with a password", false, false, true},
		{"within the origin", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			p := newTLSIdP(t)
			other, got := elsewhere(t, tc.plain, p.serveDocument)
			to, err := url.Parse(other.URL + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			if tc.same {
				to, _ = url.Parse(p.srv.URL + "/discovery")
				p.mux.HandleFunc("GET /discovery", p.serveDocument)
			}
			if tc.password {
				to.User = url.UserPassword("idp-user", "location-password")
			}
			p.mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, to.String(), http.StatusFound)
			})
			e, b := p.console(t, clock.NewFake(time.Now()))
			r := b.get("/console/signin/oidc")
			if tc.same {
				if r.status != http.StatusFound || !strings.HasPrefix(r.location(), p.srv.URL+"/authorize?") {
					t.Fatalf("sign-in start with discovery redirected within the issuer's origin: %s", r)
				}
				return
			}
			if r.status != http.StatusServiceUnavailable {
				t.Errorf("sign-in start with discovery redirected to %s: %s", other.URL, r)
			}
			if g := got.got(); len(g) != 0 {
				t.Errorf("discovery followed the redirect to %s: %q", other.URL, g)
			}
			if l := e.logs.String(); !strings.Contains(l, "redirect") || !strings.Contains(l, "refused") {
				t.Errorf("the log does not say the redirect was refused:\n%s", l)
			}
			mustNotLeak(t, e, "location-password")
		})
	}
}

// TestOIDCTokenRedirectStaysInOrigin: a token endpoint that redirects the
// code's redemption to another origin is not followed. Go's client sends a
// 307 or 308 on with the form again (code, PKCE verifier and, with
// client_secret_post, the client secret), and with it the Authorization
// header of client_secret_basic to the same host name on another port; a
// 302 turns it into a GET, still to a server the operator never named.
// The sign-in fails and the other server hears nothing.
func TestOIDCTokenRedirectStaysInOrigin(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name     string
		status   int
		method   string // token_endpoint_auth_methods_supported
		password bool   // the Location carries one
	}{
		{"307 client_secret_post", http.StatusTemporaryRedirect, "client_secret_post", false},
		{"308 client_secret_post", http.StatusPermanentRedirect, "client_secret_post", false},
		{"307 client_secret_basic", http.StatusTemporaryRedirect, "client_secret_basic", false},
		{"302 client_secret_post", http.StatusFound, "client_secret_post", false},
		{"307 with a password in the Location", http.StatusTemporaryRedirect, "client_secret_post", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			p := newTLSIdP(t)
			p.doc["token_endpoint_auth_methods_supported"] = []string{tc.method}
			p.mux.HandleFunc("GET /.well-known/openid-configuration", p.serveDocument)
			other, got := elsewhere(t, false, nil)
			to, err := url.Parse(other.URL + "/token")
			if err != nil {
				t.Fatal(err)
			}
			if tc.password {
				to.User = url.UserPassword("idp-user", "location-password")
			}
			p.mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, to.String(), tc.status)
			})
			e, b := p.console(t, clock.NewFake(time.Now()))
			r := p.answer(t, b, "the-code", nil)
			wantProblem(t, e, r, "failed")
			if g := got.got(); len(g) != 0 {
				t.Errorf("the code's redemption followed the redirect to %s: %q", other.URL, g)
			}
			if l := e.logs.String(); !strings.Contains(l, "redirect") || !strings.Contains(l, "refused") {
				t.Errorf("the log does not say the redirect was refused:\n%s", l)
			}
			mustNotLeak(t, e, "location-password", oidctest.DefaultClientSecret, "the-code")
		})
	}
}

// TestOIDCKeysRedirectStaysInOrigin: the discovery document's jwks_uri
// may name another host than the issuer (some providers serve their keys
// from one), and sign-in works with the keys from there; but a jwks_uri
// that redirects to another origin is not followed, or whoever controls a
// path on the issuer's host would choose the keys that decide who signs
// in. A redirect within the origin is followed.
func TestOIDCKeysRedirectStaysInOrigin(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		// jwks is where the document's jwks_uri points, given the
		// issuer's URL and the key server's.
		jwks func(issuer, keys string) string
		// redirect: the issuer's /jwks redirects to this, given the same.
		redirect func(issuer, keys string) string
		password bool // the redirect's Location carries one
		signsIn  bool
	}{
		{"jwks_uri on another host", func(_, keys string) string { return keys + "/jwks" }, nil, false, true},
		{"redirect to another origin", func(issuer, _ string) string { return issuer + "/jwks" },
			func(_, keys string) string { return keys + "/jwks" }, false, false},
		{"redirect to another origin, with a password", func(issuer, _ string) string { return issuer + "/jwks" },
			func(_, keys string) string { return keys + "/jwks" }, true, false},
		{"redirect within the origin", func(issuer, _ string) string { return issuer + "/jwks" },
			func(issuer, _ string) string { return issuer + "/keys" }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			now := time.Now()
			signer := oidctest.Start(t, oidctest.Config{Now: func() time.Time { return now }})
			serveKeys := func(w http.ResponseWriter, r *http.Request) {
				res, err := http.Get(signer.JWKSURL())
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer res.Body.Close()
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.Copy(w, res.Body)
			}
			keys, got := elsewhere(t, false, serveKeys)
			p := newTLSIdP(t)
			p.doc["jwks_uri"] = tc.jwks(p.srv.URL, keys.URL)
			p.mux.HandleFunc("GET /.well-known/openid-configuration", p.serveDocument)
			p.mux.HandleFunc("GET /keys", serveKeys)
			if tc.redirect != nil {
				to, err := url.Parse(tc.redirect(p.srv.URL, keys.URL))
				if err != nil {
					t.Fatal(err)
				}
				if tc.password {
					to.User = url.UserPassword("idp-user", "location-password")
				}
				p.mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, to.String(), http.StatusFound)
				})
			}
			var nonce atomic.Value // the sign-in's, set before the token endpoint is called
			p.mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
				idt, err := signer.Sign(map[string]any{"iss": p.srv.URL, "aud": oidctest.DefaultClientID, "sub": ada.sub,
					"name": ada.name, "tid": ada.tid, "roles": ada.roles, "nonce": nonce.Load(),
					"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 600, "id_token": idt})
			})
			e, b := p.console(t, clock.NewFake(now))
			r := p.answer(t, b, "the-code", func(n string) { nonce.Store(n) })
			if !tc.signsIn {
				wantProblem(t, e, r, "failed")
				if g := got.got(); len(g) != 0 {
					t.Errorf("the keys were fetched from %s by the redirect: %q", keys.URL, g)
				}
				if l := e.logs.String(); !strings.Contains(l, "redirect") || !strings.Contains(l, "refused") {
					t.Errorf("the log does not say the redirect was refused:\n%s", l)
				}
				mustNotLeak(t, e, "location-password")
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("callback: %s\nlog:\n%s", r, e.logs.String())
			}
			if r := b.get("/console/requests"); r.status != http.StatusOK || !strings.Contains(r.body, "Ada Admin") {
				t.Errorf("requests after signing in: %s", r)
			}
		})
	}
}
