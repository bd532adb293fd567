package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestTokenSecretReloadedToAssertionSecretRefused: an assertion secret
// that is also the token secret is refused when the assertion secrets are
// read, and the other way round too: a token secret file reloaded (SIGHUP,
// or the watch) into an upstream's assertion secret is refused as a broken
// file is, and the token keys loaded before stay. Taken, it let the
// upstream, which holds that secret, mint operators' tokens.
func TestTokenSecretReloadedToAssertionSecretRefused(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token.secret")
	orig := writeSecret(t, tokenFile)
	assertFile := filepath.Join(dir, "exchange-assertion.secret")
	assertion := writeSecret(t, assertFile)
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":                    "exchange=http://127.0.0.1:9",
		"LOCKBOX_JWT_JWKS_FILE":                "",
		"LOCKBOX_JWT_HMAC_SECRET_FILE":         tokenFile,
		"LOCKBOX_PROXY_ASSERTION_SECRET_FILES": "exchange=" + assertFile,
	})

	// An operator's token MAC'd with key.
	now := lb.clk.Now()
	mint := func(key []byte, sub string) string {
		t.Helper()
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(map[string]any{
			"iss": lb.cfg.JWTIssuer, "aud": lb.cfg.JWTAudience, "sub": sub,
			"roles": []string{string(identity.RoleOperator)},
			"iat":   now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": sub,
		}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// What exchange can make with the secret it holds.
	forged := mint(assertion, "mallory@provider.example")
	genuine := mint(orig, "alice@provider.example")
	if _, err := lb.srv.Verifier.Verify(context.Background(), forged); err == nil {
		t.Fatal("control: the forged token verified before the token secret changed")
	}

	// The operator puts the upstream's secret in the token secret file
	// (a copy-paste slip) and sends SIGHUP.
	if err := os.WriteFile(tokenFile, append(assertion, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadErr := lb.srv.Reload()
	if p, err := lb.srv.Verifier.Verify(context.Background(), forged); err == nil {
		t.Fatalf("exchange's assertion secret now verifies operator tokens: %s (%v) authenticated; Reload: %v; assertion kid in use %s",
			p.Subject, p.Roles, reloadErr, lb.srv.Proxy.AssertionKeyIDs()["exchange"])
	}
	if reloadErr == nil || !strings.Contains(reloadErr.Error(), "it is the assertion secret of exchange") {
		t.Errorf("Reload: %v, want the token secret refused as exchange's assertion secret", reloadErr)
	}
	// Only the token reload failed: the assertion secrets, unchanged, are
	// judged by the token secrets in use, not by the refused file.
	if strings.Contains(reloadErr.Error(), "holds the same secret") || strings.Contains(lb.logs.String(), "assertion secret reload failed") {
		t.Errorf("the unchanged assertion secrets were refused too: %v", reloadErr)
	}
	if n := strings.Count(reloadErr.Error(), tokenFile); n != 1 {
		t.Errorf("the error names the token file %d times: %v", n, reloadErr)
	}
	// The token keys loaded before still verify.
	if _, err := lb.srv.Verifier.Verify(context.Background(), genuine); err != nil {
		t.Errorf("a token MAC'd with the token secret loaded before: %v", err)
	}

	// The other way at SIGHUP: exchange's file given the token secret in
	// use is refused, named as that, and exchange keeps its secret.
	if err := os.WriteFile(tokenFile, append(orig, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lb.srv.Reload(); err != nil {
		t.Fatalf("Reload with the files as at start-up: %v", err)
	}
	kid := lb.srv.Proxy.AssertionKeyIDs()["exchange"]
	if err := os.WriteFile(assertFile, append(orig, ' ', '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lb.srv.Reload(); err == nil || !strings.Contains(err.Error(), "holds the same secret as the token secret of issuer") {
		t.Errorf("Reload with exchange's file holding the token secret: %v", err)
	}
	if got := lb.srv.Proxy.AssertionKeyIDs()["exchange"]; got != kid {
		t.Errorf("exchange's kid %s, want %s still", got, kid)
	}
}
