package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// A configuration serve refuses exits 78 (EX_CONFIG), which the systemd
// unit's RestartPreventExitStatus keeps from being started again every
// RestartSec; a failure that may pass by itself exits 1, which it retries.
// Both exited 1, and a bad setting was restarted until systemd gave up.
func TestServeExitStatusTellsConfigurationFromFailure(t *testing.T) {
	brokenPolicy := t.TempDir()
	if err := os.WriteFile(filepath.Join(brokenPolicy, "authz.rego"), []byte("package lockbox.authz\n\nallow if {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(t.TempDir(), "grant.pem")
	if err := os.WriteFile(badKey, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A regular file where a directory should be, and a directory where
	// a file should be.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aDir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An address another process holds: Listen fails after Redis answered.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name     string
		redis    bool // a Redis that answers, else a closed port
		set      map[string]string
		wantCode int
		wantLine string // a line of stderr starts with it
	}{
		{"a variable that does not parse", false, map[string]string{"LOCKBOX_REDIS_TIMEOUT": "5"}, 78, "lockbox: LOCKBOX_REDIS_TIMEOUT: "},
		{"a required variable unset", false, map[string]string{"LOCKBOX_UPSTREAMS": ""}, 78, "lockbox: LOCKBOX_UPSTREAMS: "},
		{"a policy directory that does not compile", true, map[string]string{"LOCKBOX_POLICY_DIR": brokenPolicy}, 78, "lockbox: LOCKBOX_POLICY_DIR: "},
		{"a policy directory that does not exist", true, map[string]string{"LOCKBOX_POLICY_DIR": filepath.Join(brokenPolicy, "nowhere")}, 78, "lockbox: LOCKBOX_POLICY_DIR: "},
		{"a signing key file that holds no key", true, map[string]string{"LOCKBOX_PROXY_SIGNING_KEY_FILE": badKey}, 78, "lockbox: LOCKBOX_PROXY_SIGNING_KEY_FILE: "},
		{"a signing key file that does not exist", true, map[string]string{"LOCKBOX_PROXY_SIGNING_KEY_FILE": badKey + ".missing"}, 78, "lockbox: LOCKBOX_PROXY_SIGNING_KEY_FILE: "},
		{"a SIEM file in a directory that does not exist", true, map[string]string{"LOCKBOX_SIEM_SINK": "file:" + filepath.Join(aDir, "missing", "siem.jsonl")}, 78, "lockbox: LOCKBOX_SIEM_SINK: "},
		{"a SIEM file that is a directory", true, map[string]string{"LOCKBOX_SIEM_SINK": "file:" + aDir}, 78, "lockbox: LOCKBOX_SIEM_SINK: "},
		{"a SIEM file beneath a file", true, map[string]string{"LOCKBOX_SIEM_SINK": "file:" + filepath.Join(notDir, "siem.jsonl")}, 78, "lockbox: LOCKBOX_SIEM_SINK: "},
		{"a grant JWKS file in a directory that does not exist", false, map[string]string{"LOCKBOX_PROXY_JWKS_FILE": filepath.Join(aDir, "missing", "jwks.json")}, 78, "lockbox: LOCKBOX_PROXY_JWKS_FILE: "},
		{"a grant JWKS file that is a directory", false, map[string]string{"LOCKBOX_PROXY_JWKS_FILE": aDir}, 78, "lockbox: LOCKBOX_PROXY_JWKS_FILE: "},
		{"an SMTP address without a host", false, map[string]string{"LOCKBOX_SMTP_ADDR": ":25", "LOCKBOX_SMTP_FROM": "lockbox@provider.example"}, 78, "lockbox: LOCKBOX_SMTP_ADDR: "},
		{"an SMTP address on port 0", false, map[string]string{"LOCKBOX_SMTP_ADDR": "mail.example:0", "LOCKBOX_SMTP_FROM": "lockbox@provider.example"}, 78, "lockbox: LOCKBOX_SMTP_ADDR: "},
		{"a webhook URL with its scheme in capitals", false, map[string]string{"LOCKBOX_WEBHOOK_URLS": "HTTPS://hooks.example/lockbox", "LOCKBOX_WEBHOOK_SECRET_FILE": secret}, 78, "lockbox: LOCKBOX_WEBHOOK_URLS: "},
		{"Redis does not answer", false, nil, 1, "lockbox: LOCKBOX_REDIS_URL: "},
		{"an address in use", true, map[string]string{"LOCKBOX_API_ADDR": taken.Addr().String()}, 1, "lockbox: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Port 1 is closed: the dial is refused at once, and
			// LOCKBOX_REDIS_TIMEOUT bounds it should it not be.
			url := "redis://127.0.0.1:1"
			if tt.redis {
				url = redistest.URL(t)
			}
			env := serveEnv(t, url)
			env["LOCKBOX_REDIS_TIMEOUT"] = "2s"
			for k, v := range tt.set {
				env[k] = v
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"serve"}, env, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, errb.String())
			}
			found := false
			for line := range strings.Lines(errb.String()) {
				found = found || strings.HasPrefix(line, tt.wantLine)
			}
			if !found {
				t.Errorf("no line starts with %q:\n%s", tt.wantLine, errb.String())
			}
		})
	}
}

// The status reaches the process's exit, which is what systemd reads.
func TestServeProcessExitsWithConfigStatus(t *testing.T) {
	tests := []struct {
		name     string
		set      []string
		wantCode int
	}{
		{"a bad variable", []string{"LOCKBOX_API_ADDR=bogus"}, 78},
		{"Redis does not answer", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "serve")
			cmd.Env = append(scrubbedEnv(), runMainEnv+"=1")
			for k, v := range serveEnv(t, "redis://127.0.0.1:1") {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.Env = append(cmd.Env, "LOCKBOX_REDIS_TIMEOUT=2s")
			cmd.Env = append(cmd.Env, tt.set...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("lockbox serve: %v, want exit %d\n%s", err, tt.wantCode, errb.String())
			}
			if got := ee.ExitCode(); got != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", got, tt.wantCode, errb.String())
			}
		})
	}
}

// "lockbox dev" refuses a configuration with the same status as serve;
// "lockbox dev token", which prints and ends, keeps 1.
func TestDevExitStatusForAConfigurationRefused(t *testing.T) {
	env := devEnv(filepath.Join(t.TempDir(), "dev"))
	env["LOCKBOX_REDIS_TIMEOUT"] = "5"
	for _, tt := range []struct {
		args     []string
		wantCode int
	}{
		{[]string{"dev"}, 78},
		{[]string{"dev", "token", "--sub", "a@provider.example", "--roles", "operator"}, 1},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tt.args, env, &out, &errb); code != tt.wantCode || !strings.Contains(errb.String(), "lockbox: LOCKBOX_REDIS_TIMEOUT: ") {
			t.Errorf("%s: exit %d, want %d naming LOCKBOX_REDIS_TIMEOUT:\n%s", strings.Join(tt.args, " "), code, tt.wantCode, errb.String())
		}
	}

	// A LOCKBOX_DEV_DIR beneath a regular file can't be made: dev
	// exited 1, as for a failure that may pass.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"dev"}, devEnv(filepath.Join(notDir, "dev")), &out, &errb); code != exitConfig ||
		!strings.Contains(errb.String(), "lockbox: LOCKBOX_DEV_DIR: ") {
		t.Errorf("dev with LOCKBOX_DEV_DIR beneath a file: exit %d, want %d naming LOCKBOX_DEV_DIR:\n%s", code, exitConfig, errb.String())
	}
}
