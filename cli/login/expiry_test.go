package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestTokenWithoutExpiresInExpiresWithTheJWT: a token response without
// expires_in (only RECOMMENDED by RFC 6749) gave a token without an
// expiry, which lockboxctl never refreshed: once the JWT expired every
// command got 401, with a refresh token stored all along. The access
// token's own exp says when it expires; a token that is no JWT, or has
// no exp, still has none, and expires_in, when sent, still decides.
func TestTokenWithoutExpiresInExpiresWithTheJWT(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exp := now.Add(50 * time.Minute)
	jwt := func(claims map[string]any) string {
		enc := func(v any) string {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return base64.RawURLEncoding.EncodeToString(b)
		}
		return enc(map[string]string{"alg": "EdDSA", "typ": "JWT"}) + "." + enc(claims) + ".c2ln"
	}
	for _, c := range []struct {
		name   string
		answer map[string]any
		want   time.Time
	}{
		{"a JWT without expires_in", map[string]any{"access_token": jwt(map[string]any{"sub": "alice", "exp": exp.Unix()})}, exp},
		{"expires_in decides", map[string]any{"access_token": jwt(map[string]any{"sub": "alice", "exp": exp.Unix()}), "expires_in": 600}, now.Add(10 * time.Minute)},
		{"a JWT without exp", map[string]any{"access_token": jwt(map[string]any{"sub": "alice"})}, time.Time{}},
		{"no JWT", map[string]any{"access_token": "opaque-token"}, time.Time{}},
		{"a JWT with an exp that is no number", map[string]any{"access_token": jwt(map[string]any{"exp": "soon"})}, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				answer := map[string]any{"token_type": "Bearer", "refresh_token": "rt-2"}
				for k, v := range c.answer {
					answer[k] = v
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(answer)
			}))
			t.Cleanup(idp.Close)
			old := Token{Server: "https://lockbox.example", Issuer: idp.URL, ClientID: "lockboxctl", TokenURL: idp.URL + "/token",
				AccessToken: "old", RefreshToken: "rt-1", Expiry: now.Add(-time.Minute)}
			fresh, err := Refresh(context.Background(), idp.Client(), now, old)
			if err != nil {
				t.Fatal(err)
			}
			if !fresh.Expiry.Equal(c.want) {
				t.Fatalf("expiry %v, want %v", fresh.Expiry, c.want)
			}
			if c.want.IsZero() {
				return
			}
			if fresh.NeedsRefresh(now) || !fresh.NeedsRefresh(c.want.Add(-RefreshMargin)) {
				t.Errorf("NeedsRefresh: %v now, %v a margin before the expiry; want false, true",
					fresh.NeedsRefresh(now), fresh.NeedsRefresh(c.want.Add(-RefreshMargin)))
			}
		})
	}
}
