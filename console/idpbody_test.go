package console_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestIdentityProviderBodiesBounded: a tenant runs its own identity
// provider, so what it answers is untrusted input, and any visitor can make
// the console fetch from it (start a sign-in, bring back a code). An answer
// of gigabytes (a discovery document, its refusal, the keys, the token
// endpoint's answer) was read whole into the replica's memory. Each is now
// cut at a bound: the fetch fails, and the identity provider gets to send
// no more than the bound and what the network buffers between the two
// hold. The test counts the bytes the identity provider wrote, so it needs
// no timing; its answers are 128 MiB, valid JSON then whitespace, which a
// reader without a bound takes whole and without complaint.
func TestIdentityProviderBodiesBounded(t *testing.T) {
	parallel(t)
	const (
		huge = 128 << 20
		// bound is the console's 1 MiB, and room for the socket buffers of
		// a loopback connection (Linux grows the receiving one up to
		// 32 MiB).
		bound = 48 << 20
	)
	cases := []struct {
		name string
		// hugeAt is the endpoint whose answer is huge.
		hugeAt string
		status int
		// failed is the sign-in's failure: "start" (sign-in unavailable,
		// 503) or "callback" (problem=failed).
		failed string
	}{
		{"discovery document", "/.well-known/openid-configuration", http.StatusOK, "start"},
		{"discovery refused", "/.well-known/openid-configuration", http.StatusInternalServerError, "start"},
		{"token endpoint", "/token", http.StatusOK, "callback"},
		{"token endpoint refusal", "/token", http.StatusBadRequest, "callback"},
		{"keys", "/jwks", http.StatusOK, "callback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			var served atomic.Int64
			mux := http.NewServeMux()
			idp := httptest.NewServer(mux)
			t.Cleanup(idp.Close)
			// answer writes doc, then, at the huge endpoint, whitespace
			// until huge bytes were written or the console hung up.
			answer := func(w http.ResponseWriter, r *http.Request, status int, doc []byte) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path != tc.hugeAt {
					w.WriteHeader(status)
					_, _ = w.Write(doc)
					return
				}
				w.WriteHeader(tc.status)
				n, err := w.Write(doc)
				served.Add(int64(n))
				pad := []byte(strings.Repeat(" ", 64<<10))
				for total := n; err == nil && total < huge; total += n {
					n, err = w.Write(pad)
					served.Add(int64(n))
				}
			}
			mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				doc, _ := json.Marshal(map[string]any{"issuer": idp.URL, "authorization_endpoint": idp.URL + "/authorize",
					"token_endpoint": idp.URL + "/token", "jwks_uri": idp.URL + "/jwks", "response_types_supported": []string{"code"},
					"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"}})
				answer(w, r, http.StatusOK, doc)
			})
			mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
				if err != nil {
					t.Error(err)
					return
				}
				claims, _ := json.Marshal(map[string]any{"iss": idp.URL, "aud": "lockbox", "sub": "ada",
					"iat": start.Unix(), "exp": start.Add(time.Hour).Unix()})
				sig, err := signer.Sign(claims)
				if err != nil {
					t.Error(err)
					return
				}
				raw, _ := sig.CompactSerialize()
				doc, _ := json.Marshal(map[string]any{"access_token": "a", "token_type": "Bearer", "expires_in": 3600, "id_token": raw})
				if tc.status != http.StatusOK && tc.hugeAt == "/token" {
					doc = []byte(`{"error":"invalid_grant"}`)
				}
				answer(w, r, http.StatusOK, doc)
			})
			mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
				doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
				answer(w, r, http.StatusOK, doc)
			})
			e := newStores(t, newClock())
			cfg := e.consoleConfig()
			cfg.OIDC = []console.OIDCConfig{{Issuer: idp.URL, ClientID: "lockbox", ClientSecret: "s", Scope: identity.TenantScope("fabrikam")}}
			e.serve(cfg, false)

			b := e.browser()
			r := b.get("/console/signin/oidc?tenant=fabrikam")
			if tc.failed == "start" {
				if r.status != http.StatusServiceUnavailable {
					t.Fatalf("sign-in started with a discovery document of %d bytes: %s", served.Load(), r)
				}
			} else {
				az, err := url.Parse(r.location())
				if r.status != http.StatusFound || err != nil {
					t.Fatalf("sign-in start: %s", r)
				}
				r = b.get(az.Query().Get("redirect_uri") + "?" + url.Values{"code": {"c"}, "state": {az.Query().Get("state")}}.Encode())
				if r.location() != "/console/signin?problem=failed" {
					t.Fatalf("the sign-in did not fail: %s", r)
				}
			}
			// The identity provider's handler ends when the console hung
			// up: only then is its count final.
			idp.Close()
			n := served.Load()
			t.Logf("the identity provider sent %d bytes", n)
			if n > bound {
				t.Errorf("the identity provider got to send %d bytes, want at most %d", n, bound)
			}
		})
	}
}
