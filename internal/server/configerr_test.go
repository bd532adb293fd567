package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// TestNewTellsConfigurationFromFailure: what New refuses in the admin
// center's sign-ins and the notifier's settings is configuration
// (config.ErrInvalid), which "lockbox serve" exits 78 for and systemd does
// not restart; a Redis that does not answer is not. New is handed a
// Config that config.Load checked, but "lockbox dev" changes it after the
// check, and the files it names are read again (a client secret rewritten
// meanwhile): both errors exited 1, and a bad setting was restarted every
// RestartSec.
func TestNewTellsConfigurationFromFailure(t *testing.T) {
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "client-secret")
	issuers := filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(issuers, []byte(`issuers:
  - {name: provider, issuer: https://login.provider.example, audience: lockbox, scope: provider, jwks_file: `+jwks+`,
     console: {client_id: lockbox-console, client_secret_file: `+secret+`}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	url := redistest.URL(t)
	load := func(t *testing.T, set map[string]string) config.Config {
		t.Helper()
		if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{
			"LOCKBOX_REDIS_URL":              url,
			"LOCKBOX_REDIS_TIMEOUT":          "2s",
			"LOCKBOX_JWT_JWKS_FILE":          jwks,
			"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
			"LOCKBOX_UPSTREAMS":              "exchange=http://127.0.0.1:1",
			"LOCKBOX_SIEM_SINK":              "off",
		}
		for k, v := range set {
			env[k] = v
		}
		cfg, err := config.LoadFor(env, config.ModeServe)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	tests := []struct {
		name    string
		cfg     func(t *testing.T) config.Config
		invalid bool
		names   string // the error names it
	}{
		{"an OIDC issuer without a client id", func(t *testing.T) config.Config {
			cfg := load(t, nil)
			cfg.OIDCIssuer, cfg.ConsoleURL = "https://login.provider.example", "https://lockbox.example"
			return cfg
		}, true, "LOCKBOX_OIDC_"},
		{"a console client secret emptied after the check", func(t *testing.T) config.Config {
			cfg := load(t, map[string]string{"LOCKBOX_JWT_JWKS_FILE": "", "LOCKBOX_ISSUERS_FILE": issuers,
				"LOCKBOX_CONSOLE_URL": "https://lockbox.example"})
			if err := os.WriteFile(secret, []byte("\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return cfg
		}, true, "LOCKBOX_ISSUERS_FILE"},
		{"an SMTP address without a host", func(t *testing.T) config.Config {
			cfg := load(t, nil)
			cfg.SMTPAddr, cfg.SMTPFrom = ":25", "lockbox@provider.example"
			return cfg
		}, true, "LOCKBOX_SMTP_"},
		{"Redis does not answer", func(t *testing.T) config.Config {
			return load(t, map[string]string{"LOCKBOX_REDIS_URL": "redis://127.0.0.1:1"})
		}, false, "LOCKBOX_REDIS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := server.New(context.Background(), tt.cfg(t), server.Options{})
			if err == nil {
				srv.Redis.Close()
				t.Fatal("New started")
			}
			if got := errors.Is(err, config.ErrInvalid); got != tt.invalid {
				t.Errorf("New: %v\nerrors.Is(err, config.ErrInvalid) = %v, want %v", err, got, tt.invalid)
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("New: %v, want it to name %s", err, tt.names)
			}
		})
	}
}
