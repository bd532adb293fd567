package server_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestJWTTokenTypesReachTheVerifier: LOCKBOX_JWT_TOKEN_TYPES=at+jwt makes
// the API take RFC 9068 access tokens only: the same claims signed with the
// same key are refused typed "JWT" and accepted typed "at+jwt".
func TestJWTTokenTypesReachTheVerifier(t *testing.T) {
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":       "exchange=http://127.0.0.1:1",
		"LOCKBOX_JWT_TOKEN_TYPES": "at+jwt",
	})
	jwt, err := identity.Mint(lb.key, lb.cfg.JWTIssuer, lb.cfg.JWTAudience, alice, lb.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	call := func(token string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+lb.srv.APIAddr()+"/v1/requests", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := call(jwt); got != http.StatusUnauthorized {
		t.Errorf("typed JWT: %d, want 401", got)
	}
	if got := call(retyped(t, lb.key, jwt, "at+jwt")); got != http.StatusOK {
		t.Errorf("typed at+jwt: %d, want 200", got)
	}
}

// retyped is token with its "typ" header set to typ, signed again with key.
func retyped(t *testing.T, key ed25519.PrivateKey, token, typ string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{}
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	hdr["typ"] = typ
	if b, err = json.Marshal(hdr); err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(b) + "." + parts[1]
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}
