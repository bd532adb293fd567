package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/config"
)

// TestConsoleKeysRefresh: the admin center's issuers fetch their jwks_uri
// again at LOCKBOX_JWT_JWKS_REFRESH, and keep keys they can't fetch again
// for LOCKBOX_JWT_JWKS_MAX_AGE, as the API's JWKS URLs do: the documented
// bound on a retired key.
func TestConsoleKeysRefresh(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(map[string]string{
		"LOCKBOX_OIDC_ISSUER": "https://login.example.com/", "LOCKBOX_OIDC_CLIENT_ID": "lockbox-console",
		"LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com",
		"LOCKBOX_JWT_JWKS_REFRESH": "7m", "LOCKBOX_JWT_JWKS_MAX_AGE": "9h",
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := consoleSignins(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d admin center issuers, want 1", len(got))
	}
	if got[0].KeysRefresh != 7*time.Minute || got[0].KeysMaxAge != 9*time.Hour {
		t.Errorf("the admin center's issuer fetches its keys again every %s and keeps them %s, want 7m and 9h", got[0].KeysRefresh, got[0].KeysMaxAge)
	}
}
