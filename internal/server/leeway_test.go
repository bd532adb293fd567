package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestZeroLeewayChecksExpiryToTheSecond: LOCKBOX_JWT_LEEWAY=0 is a strict
// choice, not an unset value: a token works up to its exp and is refused
// one second later, whether its verification is remembered or not. Zero
// was refused at start-up, and had it reached the verifier, zero there
// meant the 30 s default.
func TestZeroLeewayChecksExpiryToTheSecond(t *testing.T) {
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":  "exchange=http://127.0.0.1:1",
		"LOCKBOX_JWT_LEEWAY": "0",
	})
	claims := alice
	claims.TTL = time.Minute
	token, err := identity.Mint(lb.key, lb.cfg.JWTIssuer, lb.cfg.JWTAudience, claims, lb.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	call := func() int {
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
	// At exp itself the token still works (and its verification is
	// remembered).
	lb.clk.Advance(time.Minute)
	if got := call(); got != http.StatusOK {
		t.Fatalf("at exp: %d, want 200", got)
	}
	lb.clk.Advance(time.Second)
	if got := call(); got != http.StatusUnauthorized {
		t.Errorf("1s past exp with LOCKBOX_JWT_LEEWAY=0: %d, want 401", got)
	}
}
