package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
)

// maxCallerLogLine bounds the log a refused request from anyone may cost.
// The caller's values it repeats are cut to a few hundred bytes each; the
// line itself is well under this.
const maxCallerLogLine = 4 << 10

// TestRefusalLogsBoundCallerValues: the console logs some refusals of
// requests nobody signed (a cross-origin form post, an identity provider's
// error brought back by the browser), repeating values the caller chose.
// Those values must be cut short in the log: a header or query of up to a
// megabyte, of bytes each logged as a four-byte escape, made every such
// request from anyone a multi-megabyte log line, a flood of them a flood
// of log volume shipped to the SIEM.
func TestRefusalLogsBoundCallerValues(t *testing.T) {
	parallel(t)
	// Bytes the log handlers escape: \xff in text, \ufffd in JSON.
	huge := strings.Repeat("\xff", 64<<10)
	e, m := newOIDCEnv(t)
	cases := []struct {
		name string
		do   func(b *browser) resp
		// logged is what the line must still say.
		logged string
	}{
		{"cross-origin post", func(b *browser) resp {
			return b.post("/console/approvers/"+strings.Repeat("p", 64<<10), url.Values{"user": {"eve"}},
				header("Origin", "https://"+huge), header("Sec-Fetch-Site", "cross-site"))
		}, "cross-origin request refused"},
		{"identity provider error, no sign-in", func(b *browser) resp {
			return b.get("/console/oidc/callback/provider?" + url.Values{"error": {huge}, "state": {"x"}}.Encode())
		}, "OIDC sign-in failed"},
		{"identity provider error of a sign-in", func(b *browser) resp {
			l := startLogin(t, e, m, b, ada)
			return b.get("/console/oidc/callback/provider?" + url.Values{"error": {huge}, "state": {l.state}}.Encode())
		}, "OIDC sign-in failed"},
		{"foreign issuer of a sign-in", func(b *browser) resp {
			l := startLogin(t, e, m, b, ada)
			cb, err := url.Parse(l.callback)
			if err != nil {
				t.Fatal(err)
			}
			q := cb.Query()
			q.Set("iss", "https://"+huge)
			return b.get("/console/oidc/callback/provider?" + q.Encode())
		}, "OIDC sign-in failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.logs.String())
			r := tc.do(e.browser())
			if r.status != http.StatusForbidden && r.status != http.StatusSeeOther {
				t.Fatalf("not refused: %s", r)
			}
			logged := e.logs.String()[before:]
			if !strings.Contains(logged, tc.logged) {
				t.Fatalf("the refusal was not logged (%q):\n%.2000s", tc.logged, logged)
			}
			if len(logged) > maxCallerLogLine {
				t.Errorf("the refusal logged %d bytes, want at most %d:\n%.600s…", len(logged), maxCallerLogLine, logged)
			}
		})
	}
}

// TestTenantIdentityProviderAnswersBoundedInLogs: a tenant's identity
// provider is the tenant's to run, and in the wrong hands it answers what it
// likes. A sign-in anyone may start has the console fetch its discovery
// document and redeem a code at its token endpoint; a refusal's body, up
// to a megabyte, went whole into the log line of the failed sign-in. Two
// small requests to the console so cost megabytes of log. The line keeps
// the start of the answer, which says what went wrong.
func TestTenantIdentityProviderAnswersBoundedInLogs(t *testing.T) {
	parallel(t)
	const maxLine = 8 << 10
	huge := strings.Repeat("\xff", 64<<10)
	cases := []struct {
		name      string
		discovery bool // the discovery document is refused, else the code
		status    int
		body      string
		logged    string
	}{
		{"discovery refused", true, http.StatusInternalServerError, huge, "sign-in unavailable"},
		{"code refused, no OAuth error", false, http.StatusBadRequest, huge, "OIDC sign-in failed"},
		{"code refused with a description", false, http.StatusBadRequest,
			`{"error":"invalid_grant","error_description":"` + strings.Repeat(`\u00ff`, 64<<10) + `"}`, "invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			mux := http.NewServeMux()
			idp := httptest.NewServer(mux)
			t.Cleanup(idp.Close)
			mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				if tc.discovery {
					w.WriteHeader(tc.status)
					_, _ = io.WriteString(w, tc.body)
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.URL, "authorization_endpoint": idp.URL + "/authorize",
					"token_endpoint": idp.URL + "/token", "jwks_uri": idp.URL + "/jwks", "response_types_supported": []string{"code"},
					"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"}})
			})
			mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(tc.body, "{") {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			e := newStores(t, newClock())
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{{Issuer: idp.URL, ClientID: "lockbox", ClientSecret: "s", Scope: identity.TenantScope("fabrikam")}}
			e.serve(cfg, false)

			b := e.browser()
			r := b.get("/console/signin/oidc?tenant=fabrikam")
			if !tc.discovery {
				az, err := url.Parse(r.location())
				if r.status != http.StatusFound || err != nil {
					t.Fatalf("sign-in start: %s", r)
				}
				r = b.get(az.Query().Get("redirect_uri") + "?" + url.Values{"code": {"c"}, "state": {az.Query().Get("state")}}.Encode())
			}
			if r.status != http.StatusServiceUnavailable && r.location() != "/console/signin?problem=failed" {
				t.Fatalf("the sign-in did not fail: %s", r)
			}
			var line string
			for l := range strings.Lines(e.logs.String()) {
				if strings.Contains(l, tc.logged) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("the failure was not logged (%q):\n%.2000s", tc.logged, e.logs)
			}
			if len(line) > maxLine {
				t.Errorf("the failed sign-in logged %d bytes, want at most %d:\n%.600s…", len(line), maxLine, line)
			}
		})
	}
}
