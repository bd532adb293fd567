package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevHelpOnTheKeySettingsItPutsAside: "lockbox dev --help" said dev
// verifies tokens with its dev key "whatever" the key settings say, and
// signs grants with a key of its own in place of
// LOCKBOX_PROXY_SIGNING_KEY_FILE's; a developer whose shell still named
// a production key file that is not on their machine met exit 78 naming
// it. Each of those settings, naming a file that does not exist, is run
// through "lockbox dev": where dev refuses it, the help says the files
// are checked all the same, and where it does not, the help does not say
// so.
func TestDevHelpOnTheKeySettingsItPutsAside(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"dev", "--help"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("lockbox dev --help: exit %d: %s", code, stderr.String())
	}
	help := strings.Join(strings.Fields(stdout.String()), " ")
	const checked = `checked as "lockbox serve" checks them`
	says := strings.Contains(help, checked)
	// Canceled: a dev that takes the setting stops as it starts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, v := range []string{"LOCKBOX_JWT_JWKS_FILE", "LOCKBOX_JWT_HMAC_SECRET_FILE", "LOCKBOX_ISSUERS_FILE", "LOCKBOX_PROXY_SIGNING_KEY_FILE"} {
		t.Run(v, func(t *testing.T) {
			env := map[string]string{
				v:                      filepath.Join(t.TempDir(), "missing"),
				"LOCKBOX_DEV_DIR":      filepath.Join(t.TempDir(), "dev"),
				"LOCKBOX_API_ADDR":     "127.0.0.1:0",
				"LOCKBOX_PROXY_ADDR":   "127.0.0.1:0",
				"LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
			}
			var stdout, stderr bytes.Buffer
			code := run(ctx, []string{"dev"}, env, &stdout, &stderr)
			refused := code == exitConfig && strings.Contains(stderr.String(), v+":")
			switch {
			case refused && !says:
				t.Errorf("lockbox dev refuses %s naming a missing file (exit %d: %s), but its help does not say the key settings are %s:\n%s",
					v, code, strings.TrimSpace(stderr.String()), checked, stdout.String())
			case !refused && says:
				t.Errorf("lockbox dev takes %s naming a missing file (exit %d), but its help says the key settings are %s", v, code, checked)
			}
		})
	}
}
