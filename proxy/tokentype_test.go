package proxy

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// withClaims is tok, a token the proxy's issuer signed, with extra claims
// added and signed again with the same key and header: the issuer's own
// token for another purpose.
func (e *testEnv) withClaims(tok string, extra map[string]any) string {
	e.t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		e.t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		e.t.Fatal(err)
	}
	for k, v := range extra {
		claims[k] = v
	}
	b, err := json.Marshal(claims)
	if err != nil {
		e.t.Fatal(err)
	}
	input := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(e.idKey, []byte(input)))
}

// TestProxyRefusesTokensThatAreNoAccessToken: an operator with a live grant
// presents a token her identity provider signed for something else, with
// the proxy's audience: the ID token of the client whose id is that audience
// (the one an admin center sign-in receives, and hands the browser again at
// sign-out), or a Keycloak refresh token. Either is refused as
// unauthenticated before any grant is read, and nothing reaches the
// upstream; her access token, the same claims without those, is forwarded.
func TestProxyRefusesTokensThatAreNoAccessToken(t *testing.T) {
	e := newTestEnv(t)
	e.grantFor(alice, "contoso", "exchange", time.Hour)
	access := e.token(alice)
	for _, tt := range []struct {
		name  string
		extra map[string]any
	}{
		{"ID token", map[string]any{"nonce": "n-0S6_WzA2Mj", "azp": testAudience}},
		{"refreshed ID token", map[string]any{"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}},
		{"Keycloak refresh token", map[string]any{"typ": "Refresh"}},
		{"logout token", map[string]any{"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.upstreamCalls()
			denied := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonUnauthenticated)))
			res := e.send(rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", "Bearer " + e.withClaims(access, tt.extra)}}})
			if res.status != http.StatusUnauthorized || res.errorCode(t) != string(ReasonUnauthenticated) {
				t.Fatalf("got %d %s, want 401 %s", res.status, res.body, ReasonUnauthenticated)
			}
			if !strings.Contains(string(res.body), "not an access token") {
				t.Errorf("message %s does not say why", res.body)
			}
			if n := e.upstreamCalls(); n != before {
				t.Errorf("the upstream received %d calls", n-before)
			}
			if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonUnauthenticated))); got != denied+1 {
				t.Errorf("unauthenticated denials went from %v to %v, want one more", denied, got)
			}
		})
	}
	if res := e.send(rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", "Bearer " + access}}}); res.status != http.StatusOK {
		t.Fatalf("access token: %d %s, want 200", res.status, res.body)
	}
}
