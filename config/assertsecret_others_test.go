package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// secretEnv is a valid "lockbox serve" environment with two upstreams,
// and extra's name=value pairs.
func secretEnv(t *testing.T, extra ...string) map[string]string {
	t.Helper()
	env := map[string]string{
		"LOCKBOX_REDIS_URL":              "redis://127.0.0.1:6379/0",
		"LOCKBOX_JWT_JWKS_FILE":          writeFile(t, "jwks.json", `{"keys":[]}`),
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": writeFile(t, "signing.pem", "-----BEGIN PRIVATE KEY-----"),
		"LOCKBOX_UPSTREAMS":              "exchange=http://127.0.0.1:9001,sharepoint=https://sp.example/base",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

func validateServe(t *testing.T, env map[string]string) error {
	t.Helper()
	c, err := Load(env)
	if err != nil {
		return err
	}
	return c.Validate(ModeServe)
}

// TestAssertionSecretIsRedisURLPassword: the Redis password may be
// given in LOCKBOX_REDIS_URL (redis://:password@host) instead of
// LOCKBOX_REDIS_PASSWORD_FILE. The same password as an upstream's assertion
// secret would hand the upstream the store: it is refused from either.
func TestAssertionSecretIsRedisURLPassword(t *testing.T) {
	const pw = "redis-0123456789abcdef0123456789abcdef"
	file := writeFile(t, "exchange.secret", pw+"\n")
	// Control: the same password from LOCKBOX_REDIS_PASSWORD_FILE is refused.
	if err := validateServe(t, secretEnv(t,
		"LOCKBOX_REDIS_PASSWORD_FILE", writeFile(t, "redis.pw", pw+"\n"),
		"LOCKBOX_PROXY_ASSERTION_SECRET_FILES", "exchange="+file)); err == nil || !strings.Contains(err.Error(), "holds the same secret as LOCKBOX_REDIS_PASSWORD_FILE") {
		t.Fatalf("control: %v", err)
	}
	err := validateServe(t, secretEnv(t,
		"LOCKBOX_REDIS_URL", "redis://:"+pw+"@127.0.0.1:6379/0",
		"LOCKBOX_PROXY_ASSERTION_SECRET_FILES", "exchange="+file))
	if err == nil || !strings.Contains(err.Error(), "holds the same secret") {
		t.Fatalf("Validate: %v; want the Redis password in LOCKBOX_REDIS_URL refused as exchange's assertion secret", err)
	}
}

// TestAssertionSecretIsClientSecretFile: one file named both as an
// issuer's console client_secret_file and as an upstream's assertion secret
// is refused, white space around the secret or not: ReadClientSecret trims
// all of it, LoadSecret only the line ending, and the two compared as
// bytes let a trailing space (or tab) hand the upstream the admin center's
// client secret.
func TestAssertionSecretIsClientSecretFile(t *testing.T) {
	jwks := writeFile(t, "jwks.json", `{"keys":[]}`)
	for name, content := range map[string]string{
		"plain":          "client-0123456789abcdef0123456789abcdef\n",
		"trailing space": "client-0123456789abcdef0123456789abcdef \n",
		"leading tab":    "\tclient-0123456789abcdef0123456789abcdef\n",
	} {
		t.Run(name, func(t *testing.T) {
			shared := writeFile(t, "shared.secret", content)
			issuers := writeFile(t, "issuers.yaml", "issuers:\n- issuer: https://login.provider.example\n  audience: lockbox\n  scope: provider\n  jwks_file: "+jwks+
				"\n  console:\n    client_id: lockbox\n    client_secret_file: "+shared+"\n")
			err := validateServe(t, secretEnv(t, "LOCKBOX_JWT_JWKS_FILE", "", "LOCKBOX_ISSUERS_FILE", issuers, "LOCKBOX_CONSOLE_URL", "https://lockbox.example",
				"LOCKBOX_PROXY_ASSERTION_SECRET_FILES", "exchange="+shared))
			if err == nil || !strings.Contains(err.Error(), "holds the same secret as the client_secret_file of issuer") {
				t.Fatalf("Validate: %v; want the client secret file refused as exchange's assertion secret", err)
			}
		})
	}
}

// TestOtherSecretsReadBounded: LoadAssertionSecrets (run by Validate
// and by every SIGHUP) reads LOCKBOX_JWT_HMAC_SECRET_FILE to compare it,
// and stops at 64 KiB as every reader of a secret file does: a wrong path
// (a log, a disk image, /dev/zero) must not be read into memory whole, or
// forever. A 64 MiB sparse file stands for it here.
func TestOtherSecretsReadBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	secret := writeFile(t, "exchange.secret", "exchange-0123456789abcdef0123456789\n")
	c, err := Load(secretEnv(t, "LOCKBOX_JWT_JWKS_FILE", "", "LOCKBOX_JWT_HMAC_SECRET_FILE", big,
		"LOCKBOX_PROXY_ASSERTION_SECRET_FILES", "exchange="+secret))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _ = c.LoadAssertionSecrets()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("LoadAssertionSecrets allocated %d MiB reading a 64 MiB LOCKBOX_JWT_HMAC_SECRET_FILE: its read is not bounded", got>>20)
	}
}
