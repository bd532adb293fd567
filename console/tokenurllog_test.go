package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestTokenEndpointURLNotLogged: the token endpoint a discovery document
// names is the identity provider's to write, and a credential can ride in
// its query. A code exchange that fails is logged with its error, and an
// exchange that got no answer fails with Go's *url.Error, which quotes the
// URL it posted to with only a password redacted. The line shows the URL
// as every other line of the admin center does: each query value
// REDACTED, the names kept.
func TestTokenEndpointURLNotLogged(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		// answer is the token endpoint's.
		// quoted: the error's text names the URL (Go's does when there
		// was no answer; a refusal's names only the OAuth error).
		quoted bool
		answer func(w http.ResponseWriter)
	}{
		{"refused", false, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		}},
		{"hung up without an answer", true, func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			mux := http.NewServeMux()
			idp := httptest.NewServer(mux)
			t.Cleanup(idp.Close)
			mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.URL, "authorization_endpoint": idp.URL + "/authorize",
					"token_endpoint": idp.URL + "/token?secret=s3cr3t", "jwks_uri": idp.URL + "/jwks", "response_types_supported": []string{"code"},
					"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"}})
			})
			mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) { tc.answer(w) })
			e := newStores(t, newClock())
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{{Issuer: idp.URL, ClientID: "lockbox", ClientSecret: "s", Scope: identity.TenantScope("fabrikam")}}
			e.serve(cfg, false)

			b := e.browser()
			r := b.get("/console/signin/oidc?tenant=fabrikam")
			az, err := url.Parse(r.location())
			if r.status != http.StatusFound || err != nil {
				t.Fatalf("sign-in start: %s", r)
			}
			r = b.get(az.Query().Get("redirect_uri") + "?" + url.Values{"code": {"c"}, "state": {az.Query().Get("state")}}.Encode())
			if !strings.HasPrefix(r.location(), "/console/signin?problem=") {
				t.Fatalf("the sign-in did not fail: %s", r)
			}
			logged := e.logs.String()
			if !strings.Contains(logged, "OIDC sign-in failed") {
				t.Fatalf("the failure was not logged:\n%.2000s", logged)
			}
			if strings.Contains(logged, "s3cr3t") {
				t.Errorf("a credential in the token endpoint's URL is logged:\n%.2000s", logged)
			}
			if tc.quoted && !strings.Contains(logged, "/token?secret=REDACTED") {
				t.Errorf("the token endpoint's URL is not logged as logurl shows it:\n%.2000s", logged)
			}
		})
	}
}
