package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestIssuerURLCredentialsNotLogged: an issuer's URLs are the operator's
// or a tenant's to write (the issuer) or the identity provider's (the
// endpoints its discovery document names), and a credential can ride in
// their query or user info. A sign-in that can't start logs the issuer
// and why; the line shows the URLs without user info and with their
// query's values redacted, as the JWKS URLs' lines do.
func TestIssuerURLCredentialsNotLogged(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name string
		// issuer is the configured issuer, given the identity provider's
		// URL; token is the token_endpoint its discovery document names.
		issuer func(idp string) string
		token  string
	}{
		{"issuer with a query and a password",
			func(idp string) string {
				return strings.Replace(idp, "http://", "http://lockbox:pw-s3cr3t@", 1) + "/?secret=s3cr3t"
			}, ""},
		{"token endpoint with a query, in the clear",
			func(idp string) string { return idp }, "http://idp.example/token?secret=s3cr3t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			mux := http.NewServeMux()
			idp := httptest.NewServer(mux)
			t.Cleanup(idp.Close)
			mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.URL, "authorization_endpoint": idp.URL + "/authorize",
					"token_endpoint": tc.token, "jwks_uri": idp.URL + "/jwks", "response_types_supported": []string{"code"},
					"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"}})
			})
			e := newStores(t, newClock())
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{{Issuer: tc.issuer(idp.URL), ClientID: "lockbox", ClientSecret: "s", Scope: identity.TenantScope("fabrikam")}}
			e.serve(cfg, false)

			if r := e.browser().get("/console/signin/oidc?tenant=fabrikam"); r.status != http.StatusServiceUnavailable {
				t.Fatalf("sign-in started: %s", r)
			}
			logged := e.logs.String()
			if !strings.Contains(logged, "sign-in unavailable") {
				t.Fatalf("the failure was not logged:\n%.2000s", logged)
			}
			if strings.Contains(logged, "s3cr3t") {
				t.Errorf("a credential in an issuer's URL is logged:\n%.2000s", logged)
			}
			if !strings.Contains(logged, "secret=REDACTED") {
				t.Errorf("the URL's query names are not logged:\n%.2000s", logged)
			}
		})
	}
}
