package main

import (
	"bytes"
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/config"
)

// devIgnoredWarning starts the one warning dev logs for the settings it
// replaces.
const devIgnoredWarning = "lockbox dev ignores these settings, which it replaces with its own"

// replacedEnv is devEnv in a directory of the test's, with extra.
func replacedEnv(t *testing.T, extra map[string]string) map[string]string {
	env := devEnv(filepath.Join(t.TempDir(), "dev"))
	maps.Copy(env, extra)
	return env
}

// TestDevIgnoresTheSettingsItReplaces: "lockbox dev" verifies tokens with
// its dev key, signs grant assertions with a key of its own, runs every
// component and stops at once, yet it loaded those settings as "lockbox
// serve" does: LOCKBOX_PROXY_SIGNING_KEY_FILE=/nonexistent stopped it
// with exit 78 on a file it never reads, and so did each of the others
// naming what this machine does not have. Each now starts dev, which
// logs one warning naming it; a production shell holding them all
// (together refused by serve: several token key sources, an issuers file
// beside LOCKBOX_JWT_ISSUER) starts it too, with one warning naming each.
func TestDevIgnoresTheSettingsItReplaces(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	wrong := map[string]string{
		"LOCKBOX_JWT_JWKS_URL":           "http://idp.example/jwks", // http off loopback: refused by serve
		"LOCKBOX_JWT_JWKS_FILE":          missing,
		"LOCKBOX_JWT_HMAC_SECRET_FILE":   missing,
		"LOCKBOX_ISSUERS_FILE":           missing,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": missing,
		"LOCKBOX_SERVE":                  "everything",
		"LOCKBOX_SHUTDOWN_DELAY":         "5", // no unit
	}
	if len(wrong) != len(devReplaced) {
		t.Fatalf("%d settings tried, dev replaces %d: %q", len(wrong), len(devReplaced), devReplaced)
	}
	for _, name := range devReplaced {
		t.Run(name, func(t *testing.T) {
			env := replacedEnv(t, map[string]string{name: wrong[name]})
			// serve refuses it: dev would have too.
			if _, err := config.LoadFor(env, config.ModeDev); err == nil || !strings.Contains(err.Error(), name+":") && !strings.Contains(err.Error(), name+",") {
				t.Fatalf("%s=%s: config.LoadFor(dev) = %v; want it refused, naming it", name, wrong[name], err)
			}
			_, stderr := runDev(t, env)
			want := "ignored=" + name + "\n"
			if n := strings.Count(stderr.String(), devIgnoredWarning); n != 1 || !strings.Contains(stderr.String(), want) {
				t.Errorf("%s=%s: %d warnings; want one, ending %q; logs:\n%s", name, wrong[name], n, want, stderr.String())
			}
		})
	}
	t.Run("a production shell", func(t *testing.T) {
		extra := map[string]string{"LOCKBOX_JWT_ISSUER": "https://login.provider.example"}
		maps.Copy(extra, wrong)
		_, stderr := runDev(t, replacedEnv(t, extra))
		want := "ignored=" + strings.Join(devReplaced, ",") + "\n"
		if n := strings.Count(stderr.String(), devIgnoredWarning); n != 1 || !strings.Contains(stderr.String(), want) {
			t.Errorf("%d warnings; want one, ending %q; logs:\n%s", n, want, stderr.String())
		}
	})
	t.Run("none set", func(t *testing.T) {
		// An empty value sets nothing.
		_, stderr := runDev(t, replacedEnv(t, map[string]string{"LOCKBOX_PROXY_SIGNING_KEY_FILE": ""}))
		if strings.Contains(stderr.String(), devIgnoredWarning) {
			t.Errorf("a warning with none of them set; logs:\n%s", stderr.String())
		}
	})
}

// TestDevStillRefusesWhatItHonours: the settings dev does read are
// checked as serve checks them, the replaced ones beside them or not: a
// wrong one stops dev, exit 78, naming it.
func TestDevStillRefusesWhatItHonours(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"LOCKBOX_REDIS_URL", "http://127.0.0.1:6379"},
		{"LOCKBOX_API_ADDR", "nowhere"},
		{"LOCKBOX_OIDC_ISSUER", "http://idp.example"},
		{"LOCKBOX_PROXY_PUBLISHED_KEY_FILES", filepath.Join(t.TempDir(), "missing.pem")},
		// Dev writes the upstreams' key set there when it is set.
		{"LOCKBOX_PROXY_JWKS_FILE", t.TempDir()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := replacedEnv(t, map[string]string{tc.name: tc.value, "LOCKBOX_PROXY_SIGNING_KEY_FILE": "/nonexistent"})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stdout, stderr := &syncBuffer{}, &syncBuffer{}
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"dev"}, env, stdout, stderr) }()
			var code int
			for waiting := true; waiting; {
				select {
				case code = <-done:
					waiting = false
				case <-time.After(20 * time.Millisecond):
					if strings.Contains(stdout.String(), "Stop with Ctrl-C.") {
						cancel()
						<-done
						t.Fatalf("%s=%s: dev started; logs:\n%s", tc.name, tc.value, stderr.String())
					}
				}
			}
			if code != exitConfig || !strings.Contains(stderr.String(), tc.name+":") {
				t.Errorf("%s=%s: exit %d; want %d, naming it; stderr:\n%s", tc.name, tc.value, code, exitConfig, stderr.String())
			}
		})
	}
}

// TestDevTokenIgnoresTheSettingsDevReplaces: "lockbox dev token" signs
// with the dev key whatever they say, as dev verifies with it.
func TestDevTokenIgnoresTheSettingsDevReplaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	if _, _, err := ensureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LOCKBOX_DEV_DIR": dir, "LOCKBOX_SERVE": "everything", "LOCKBOX_JWT_JWKS_URL": "http://idp.example/jwks"}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"dev", "token", "--sub", "alice@provider.example", "--roles", "operator"}, env, &stdout, &stderr); code != 0 || strings.Count(stdout.String(), ".") != 2 {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout.String(), stderr.String())
	}
}
