package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// Secrets are read from their files by Load (env's "file" option), a
// trailing line ending dropped; they never show in a log or a %+v.
func TestSecretsAreReadFromTheirFiles(t *testing.T) {
	c, err := Load(map[string]string{
		"LOCKBOX_REDIS_URL":               "redis://127.0.0.1:6379",
		"LOCKBOX_REDIS_PASSWORD_FILE":     writeFile(t, "redis", "r3dis\n"),
		"LOCKBOX_SMTP_ADDR":               "mail.example:587",
		"LOCKBOX_SMTP_FROM":               "lockbox@provider.example",
		"LOCKBOX_SMTP_USERNAME":           "lockbox",
		"LOCKBOX_SMTP_PASSWORD_FILE":      writeFile(t, "smtp", "smtp-pa55\r\n"),
		"LOCKBOX_WEBHOOK_URLS":            "https://hooks.example/lockbox",
		"LOCKBOX_WEBHOOK_SECRET_FILE":     writeFile(t, "hook", "hook-key"),
		"LOCKBOX_OIDC_ISSUER":             "https://login.example.com",
		"LOCKBOX_OIDC_CLIENT_ID":          "console",
		"LOCKBOX_OIDC_CLIENT_SECRET_FILE": writeFile(t, "oidc", "oidc-s3cret\n"),
		"LOCKBOX_CONSOLE_URL":             "https://lockbox.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ got, want string }{
		{c.RedisPassword.Value(), "r3dis"}, {c.SMTPPassword.Value(), "smtp-pa55"},
		{c.WebhookSecret.Value(), "hook-key"}, {c.OIDCClientSecret.Value(), "oidc-s3cret"},
	} {
		if s.got != s.want {
			t.Errorf("secret %q, want %q", s.got, s.want)
		}
	}
	o, err := c.RedisOptions()
	if err != nil || o.Single.Password != "r3dis" {
		t.Errorf("Redis password %q (%v)", o.Single.Password, err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	shown := buf.String() + fmt.Sprintf("%v %+v %#v %s", c, c, c, c.WebhookSecret)
	for _, secret := range []string{"r3dis", "smtp-pa55", "hook-key", "oidc-s3cret"} {
		if strings.Contains(shown, secret) {
			t.Errorf("%s shown:\n%s", secret, shown)
		}
	}
	if !strings.Contains(buf.String(), "config.LOCKBOX_SMTP_PASSWORD_FILE=[redacted]") {
		t.Errorf("log does not say the SMTP password is set: %s", buf.String())
	}
}

// Every bad variable of a configuration is reported at once, one line
// each, naming it: values env can't parse, secret files it can't read,
// empty secret files, bad upstreams, and the checks that follow.
func TestLoadReportsEveryBadVariable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := Load(map[string]string{
		"LOCKBOX_REDIS_URL":           "redis://127.0.0.1:6379",
		"LOCKBOX_REDIS_PASSWORD_FILE": missing,
		"LOCKBOX_WEBHOOK_URLS":        "https://hooks.example/lockbox",
		"LOCKBOX_WEBHOOK_SECRET_FILE": writeFile(t, "hook", "\n"),
		"LOCKBOX_UPSTREAMS":           "exchange=http://a:1,exchange=http://b:1",
		"LOCKBOX_GRANT_TIMEOUT":       "fast",
		"LOCKBOX_SIEM_FORMAT":         "xml",
	})
	if err == nil {
		t.Fatal("no error")
	}
	want := map[string]string{
		"LOCKBOX_REDIS_PASSWORD_FILE": "no such file",
		"LOCKBOX_WEBHOOK_SECRET_FILE": "is empty",
		"LOCKBOX_UPSTREAMS":           "service exchange is listed twice",
		"LOCKBOX_GRANT_TIMEOUT":       "not a duration",
		"LOCKBOX_SIEM_FORMAT":         `"xml" is not one of json, ocsf`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for _, line := range lines {
		name, msg, _ := strings.Cut(line, ": ")
		if w, ok := want[name]; !ok || !strings.Contains(msg, w) {
			t.Errorf("line %q, want %s: ...%s...", line, name, w)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("%s not reported:\n%v", name, err)
	}
	for _, e := range flatten(err) {
		var ve *VarError
		if !errors.As(e, &ve) {
			t.Errorf("%v (%T) is not a *VarError", e, e)
		}
	}
}

// A secret file holding only white space (a blank line written by
// "echo '  ' > file", a template that rendered nothing but its
// indentation) is refused as an empty one is, naming its variable: a
// webhook key or a password of spaces is a mistake, never a secret, and
// the issuers file's client secrets are already held to this.
func TestSecretFileOfWhiteSpaceIsRefused(t *testing.T) {
	for _, content := range []string{" \n", "\t", "  \r\n", " \n \n"} {
		_, err := Load(map[string]string{
			"LOCKBOX_REDIS_URL":               "redis://127.0.0.1:6379",
			"LOCKBOX_REDIS_PASSWORD_FILE":     writeFile(t, "redis", content),
			"LOCKBOX_WEBHOOK_URLS":            "https://hooks.example/lockbox",
			"LOCKBOX_WEBHOOK_SECRET_FILE":     writeFile(t, "hook", content),
			"LOCKBOX_OIDC_ISSUER":             "https://login.example.com",
			"LOCKBOX_OIDC_CLIENT_ID":          "console",
			"LOCKBOX_OIDC_CLIENT_SECRET_FILE": writeFile(t, "oidc", content),
			"LOCKBOX_CONSOLE_URL":             "https://lockbox.example.com",
		})
		if err == nil {
			t.Errorf("%q: no error", content)
			continue
		}
		for _, name := range []string{"LOCKBOX_REDIS_PASSWORD_FILE", "LOCKBOX_WEBHOOK_SECRET_FILE", "LOCKBOX_OIDC_CLIENT_SECRET_FILE"} {
			if !strings.Contains(err.Error(), name+": ") || !strings.Contains(err.Error(), "empty") {
				t.Errorf("%q: %s not refused as empty:\n%v", content, name, err)
			}
		}
		if n := len(strings.Split(err.Error(), "\n")); n != 3 {
			t.Errorf("%q: %d lines, want 3 (one per file):\n%v", content, n, err)
		}
	}
	// White space inside or around other characters is part of the
	// secret.
	c, err := Load(map[string]string{
		"LOCKBOX_WEBHOOK_URLS":        "https://hooks.example/lockbox",
		"LOCKBOX_WEBHOOK_SECRET_FILE": writeFile(t, "hook", " hook key \n"),
	})
	if err != nil || c.WebhookSecret.Value() != " hook key " {
		t.Errorf("secret %q (%v), want %q", c.WebhookSecret.Value(), err, " hook key ")
	}
}

// A secret file variable naming a large file (a log, a disk image: a
// wrong path) is refused before the file is read, naming the variable,
// instead of read whole into memory to be a password; the certificate,
// key and issuers files are bounded alike.
func TestSecretFileTooLargeIsRefused(t *testing.T) {
	big := writeFile(t, "big", strings.Repeat("x", maxSecretFile+1))
	_, err := Load(map[string]string{
		"LOCKBOX_WEBHOOK_URLS":        "https://hooks.example/lockbox",
		"LOCKBOX_WEBHOOK_SECRET_FILE": big,
	})
	if err == nil || !strings.Contains(err.Error(), "LOCKBOX_WEBHOOK_SECRET_FILE: ") || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Load = %v, want LOCKBOX_WEBHOOK_SECRET_FILE refused as too large", err)
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 1 {
		t.Errorf("%d lines, want 1:\n%v", n, err)
	}
	if _, err := ReadClientSecret(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("ReadClientSecret = %v, want it refused as too large", err)
	}
	c, err := Load(map[string]string{
		"LOCKBOX_WEBHOOK_URLS":        "https://hooks.example/lockbox",
		"LOCKBOX_WEBHOOK_SECRET_FILE": writeFile(t, "hook", strings.Repeat("k", maxSecretFile)),
	})
	if err != nil || len(c.WebhookSecret.Value()) != maxSecretFile {
		t.Errorf("a secret of %d bytes: %d bytes read (%v)", maxSecretFile, len(c.WebhookSecret.Value()), err)
	}
}
