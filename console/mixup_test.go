package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// mixUpIdP is a tenant's identity provider in an attacker's hands (RFC 9700
// section 4.4): it sends a browser on to the provider's identity provider
// with Lockbox's client there, and keeps whatever code Lockbox then
// redeems at its token endpoint.
type mixUpIdP struct {
	srv *httptest.Server

	mu sync.Mutex
	// bounceTo is where /authorize sends the browser: the honest
	// provider's authorization endpoint and the query to send, taken from
	// the attacker's own staff sign-in (its client id, PKCE challenge and
	// nonce) with redirectURI(the victim's) as the redirect URI.
	honestAuthz string
	attacker    url.Values
	redirectURI func(victims string) string
	stolen      []string // codes redeemed here
}

func startMixUpIdP(t *testing.T) *mixUpIdP {
	t.Helper()
	m := &mixUpIdP{}
	mux := http.NewServeMux()
	m.srv = httptest.NewServer(mux)
	t.Cleanup(m.srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		// No authorization_response_iss_parameter_supported, as many
		// providers: its answers carry no iss to catch the mix-up by.
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": m.srv.URL, "authorization_endpoint": m.srv.URL + "/authorize",
			"token_endpoint": m.srv.URL + "/token", "jwks_uri": m.srv.URL + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		v := url.Values{"client_id": {m.attacker.Get("client_id")}, "response_type": {"code"}, "scope": {"openid"},
			"redirect_uri": {m.redirectURI(r.URL.Query().Get("redirect_uri"))}, "state": {r.URL.Query().Get("state")},
			"code_challenge": {m.attacker.Get("code_challenge")}, "code_challenge_method": {"S256"}, "nonce": {m.attacker.Get("nonce")}}
		http.Redirect(w, r, m.honestAuthz+"?"+v.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		m.mu.Lock()
		m.stolen = append(m.stolen, r.PostForm.Get("code"))
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
	})
	return m
}

func (m *mixUpIdP) codes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stolen
}

// TestOIDCMixUp: a code the provider's identity provider issued never
// reaches a tenant's. The attacker controls fabrikam's identity provider,
// starts a staff sign-in of its own, and gets a provider support manager to
// follow fabrikam's sign-in link; fabrikam's provider sends the manager's
// browser on to the provider's, which signs the manager in without asking
// (single sign-on). Were the code redeemed at fabrikam's token endpoint, the
// attacker would finish its own staff sign-in with it. Each issuer has its
// own redirect URI, registered at that issuer only, so the provider's
// identity provider either refuses fabrikam's redirect URI or sends the code
// to its own, where fabrikam's sign-in is refused unredeemed. Neither
// provider sends iss, so RFC 9207 can't catch it.
func TestOIDCMixUp(t *testing.T) {
	t.Parallel()
	for name, redirectURI := range map[string]func(victims, staff string) string{
		"the tenant's redirect URI":   func(victims, _ string) string { return victims },
		"the provider's redirect URI": func(_, staff string) string { return staff },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			honest := oidctest.Start(t, oidctest.Config{NoIssParameter: true})
			evil := startMixUpIdP(t)
			e := newStores(t, clock.NewFake(honest.Now()))
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{
				signinConfig(honest, identity.ProviderScope()),
				{Issuer: evil.srv.URL, ClientID: "lockbox-at-fabrikam", ClientSecret: "s", Scope: identity.TenantScope("fabrikam")},
			}
			e.serve(cfg, false)

			// The attacker's own staff sign-in, stopped before the
			// provider's identity provider.
			attacker := e.browser()
			az, err := url.Parse(attacker.get("/console/signin/oidc").location())
			if err != nil {
				t.Fatal(err)
			}
			// Lockbox's client at the provider's identity provider is
			// registered with the redirect URI Lockbox uses there.
			staffURI := az.Query().Get("redirect_uri")
			honest.RegisterRedirectURIs(staffURI)
			evil.mu.Lock()
			evil.honestAuthz, evil.attacker = honest.AuthorizationEndpoint(), az.Query()
			evil.redirectURI = func(victims string) string { return redirectURI(victims, staffURI) }
			evil.mu.Unlock()

			victim := e.browser()
			r := victim.get("/console/login?tenant=fabrikam")
			r = victim.get(r.location()) // the console → fabrikam's authorize
			r = victim.get(r.location()) // fabrikam's → the provider's authorize
			honest.QueueUser(oidctest.User{Subject: "sally@provider.example", Claims: map[string]any{"roles": []string{"support-manager"}}})
			r = victim.get(r.location()) // the provider's signs sally in
			if r.status == http.StatusFound {
				r = victim.get(r.location()) // back at the console
				if r.status != http.StatusSeeOther || r.location() != "/console/signin?problem=failed" {
					t.Errorf("the victim's callback: %s", r)
				}
			}
			stolen := evil.codes()
			if len(stolen) == 0 {
				return
			}
			t.Errorf("fabrikam's identity provider was sent the provider's code %q", stolen[0])
			r = attacker.get("/console/oidc/callback/provider?" + url.Values{"code": {stolen[0]}, "state": {az.Query().Get("state")}}.Encode())
			if setCookie(t, r, sessionCookie) != nil {
				t.Errorf("the attacker signed in as the victim with the stolen code")
			}
		})
	}
}
