package server_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestJWTSubjectClaimReachesTheVerifier: with LOCKBOX_JWT_SUBJECT_CLAIM=oid
// the API knows a caller by the token's oid, not its sub: the request
// alice files through the API names the oid as its requester, and a token
// without the claim is refused rather than taken by its sub.
func TestJWTSubjectClaimReachesTheVerifier(t *testing.T) {
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":         "exchange=http://127.0.0.1:1",
		"LOCKBOX_JWT_SUBJECT_CLAIM": "oid",
	})
	const oid = "8f3c2a4e-0000-4000-8000-00000000a11c"
	call := func(token string) (int, string) {
		t.Helper()
		body := `{"tenant":"contoso","service":"exchange","service_request":"SR-7","reason":"mailbox will not open","duration":"1h"}`
		req, err := http.NewRequest(http.MethodPost, "http://"+lb.srv.APIAddr()+"/v1/requests", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Requester string `json:"requester"`
		}
		var raw bytes.Buffer
		if err := json.NewDecoder(io.TeeReader(resp.Body, &raw)).Decode(&got); err != nil {
			t.Fatalf("%d %s: %v", resp.StatusCode, raw.String(), err)
		}
		return resp.StatusCode, got.Requester
	}
	if code, _ := call(lb.token); code != http.StatusUnauthorized {
		t.Errorf("a token without oid: %d, want 401", code)
	}
	code, requester := call(withClaim(t, lb.key, lb.token, "oid", oid))
	if code != http.StatusCreated || requester != oid {
		t.Errorf("a token with oid %s and sub %s: %d, requester %q; want 201, requester %q", oid, alice.Subject, code, requester, oid)
	}
}

// withClaim is token with claim name set to value in its payload, signed
// again with key.
func withClaim(t *testing.T, key ed25519.PrivateKey, token, name, value string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	claims[name] = value
	if b, err = json.Marshal(claims); err != nil {
		t.Fatal(err)
	}
	input := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}
