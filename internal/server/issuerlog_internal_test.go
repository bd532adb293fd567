package server

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestTrustedIssuerURLCredentialsNotLogged: each issuer trusted is logged
// at start-up by its URL, and by its name, which is the URL when it has
// none; a credential in the URL's query or user info is not logged, its
// query's names are.
func TestTrustedIssuerURLCredentialsNotLogged(t *testing.T) {
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(map[string]string{
		"LOCKBOX_JWT_ISSUER":    "https://lockbox:pw-s3cr3t@idp.example/?secret=s3cr3t",
		"LOCKBOX_JWT_JWKS_FILE": filepath.Join(dir, identity.DevJWKSFile),
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	_, fetcher, err := newVerifier(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if fetcher != nil {
		fetcher.Close()
	}
	got := logs.String()
	if !strings.Contains(got, "trusting token issuer") {
		t.Fatalf("no \"trusting token issuer\" line logged:\n%s", got)
	}
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("a credential in the issuer's URL is logged:\n%s", got)
	}
	if !strings.Contains(got, "idp.example/?secret=REDACTED") {
		t.Errorf("the issuer's host and query names are not logged:\n%s", got)
	}
}
