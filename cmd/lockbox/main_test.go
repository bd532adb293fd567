package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/config"
)

// The usage line reads "lockbox policy test DIR [-v]": -v may follow the
// directory as well as precede it.
func TestPolicyTestFlagsBeforeOrAfterDir(t *testing.T) {
	const verboseLine = "data.lockbox.authz_test.test_"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		verbose  bool
	}{
		{"dir only", []string{"policy", "test", "../../rego"}, 0, false},
		{"-v after the dir", []string{"policy", "test", "../../rego", "-v"}, 0, true},
		{"-v before the dir", []string{"policy", "test", "-v", "../../rego"}, 0, true},
		{"--v=true after the dir", []string{"policy", "test", "../../rego/", "--v=true"}, 0, true},
		{"unknown flag after the dir", []string{"policy", "test", "../../rego", "-x"}, 2, false},
		{"two dirs", []string{"policy", "test", "../../rego", "-v", "other"}, 2, false},
		{"no dir", []string{"policy", "test", "-v"}, 2, false},
		{"-v after -- is a dir", []string{"policy", "test", "--", "../../rego", "-v"}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, map[string]string{}, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out.String(), errb.String())
			}
			if got := strings.Contains(out.String(), verboseLine); got != tt.verbose {
				t.Errorf("verbose output: %v, want %v\n%s", got, tt.verbose, out.String())
			}
			if code == 0 && !strings.Contains(out.String(), "0 failed") {
				t.Errorf("no summary:\n%s", out.String())
			}
		})
	}
}

// Every bad setting is reported at once, one a line, each line naming its
// variable, before anything starts.
func TestServeReportsEveryBadSetting(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve"}, map[string]string{
		"LOCKBOX_API_ADDR":      "bogus",
		"LOCKBOX_REDIS_TIMEOUT": "5",
	}, &out, &errb)
	if code != exitConfig {
		t.Fatalf("exit %d, want %d (a configuration refused)\n%s", code, exitConfig, errb.String())
	}
	seen := map[string]bool{}
	for line := range strings.Lines(errb.String()) {
		name, _, ok := strings.Cut(strings.TrimPrefix(line, "lockbox: "), ":")
		if !strings.HasPrefix(line, "lockbox: LOCKBOX_") || !ok {
			t.Errorf("line %q names no variable", line)
		}
		seen[name] = true
	}
	for _, name := range []string{"LOCKBOX_API_ADDR", "LOCKBOX_REDIS_TIMEOUT", "LOCKBOX_REDIS_URL"} {
		if !seen[name] {
			t.Errorf("%s not reported:\n%s", name, errb.String())
		}
	}
}

// A LOCKBOX_ variable nothing reads is most likely misspelt: serve warns,
// naming the variable it is nearest to, and goes on (here to report the
// settings that are missing). lockboxctl's variables, which the same shell
// may hold, get no warning.
func TestServeWarnsOfUnknownVariables(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve"}, map[string]string{
		// Spelt out in pieces, or config's TestOtherVarsComplete would
		// take it for a variable the project reads.
		"LOCKBOX_" + "AUDIT_REPLICA": "1",
		"LOCKBOX_TOKEN":              "t",
	}, &out, &errb)
	if code != exitConfig {
		t.Fatalf("exit %d, want %d (a configuration refused)\n%s", code, exitConfig, errb.String())
	}
	got := errb.String()
	for _, want := range []string{
		`level=WARN msg="LOCKBOX_AUDIT_REPLICA is not a Lockbox variable and is ignored; did you mean LOCKBOX_AUDIT_REPLICAS?"`,
		"lockbox: LOCKBOX_REDIS_URL: required",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "LOCKBOX_TOKEN") {
		t.Errorf("lockboxctl's LOCKBOX_TOKEN was warned of:\n%s", got)
	}
}

// The usage names only variables Lockbox reads, and every one "lockbox
// serve" may require.
func TestUsageNamesRealVariables(t *testing.T) {
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	named := map[string]bool{}
	for _, v := range regexp.MustCompile(`LOCKBOX_[A-Z0-9_]+`).FindAllString(usage+serveHelp+devHelp, -1) {
		named[v] = true
		if !known[v] {
			t.Errorf("usage names %s, which is no variable (config.Vars)", v)
		}
	}
	for _, v := range []string{"LOCKBOX_REDIS_URL", "LOCKBOX_REDIS_SENTINEL_ADDRS", "LOCKBOX_REDIS_CLUSTER_ADDRS",
		"LOCKBOX_ISSUERS_FILE", "LOCKBOX_UPSTREAMS", "LOCKBOX_PROXY_SIGNING_KEY_FILE"} {
		if !named[v] {
			t.Errorf("usage does not name %s, which lockbox serve may require", v)
		}
	}
}

// "lockbox dev --help" started a second dev server, which rewrote the token
// and env files of the one already running to point at itself. Help flags
// print help and exit 0; serve and dev refuse arguments (exit 2); and
// neither starts anything or writes to LOCKBOX_DEV_DIR. "lockbox version
// --help" printed the version, as if asked for it.
func TestHelpStartsNothing(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		want     string // on stdout for 0, on stderr otherwise
	}{
		{[]string{"dev", "--help"}, 0, "usage: lockbox dev\n"},
		{[]string{"dev", "-h"}, 0, "usage: lockbox dev\n"},
		{[]string{"dev", "help"}, 0, "usage: lockbox dev\n"},
		{[]string{"dev", "--api-addr", ":9000"}, 2, `lockbox dev takes no arguments, got "--api-addr :9000"`},
		{[]string{"serve", "--help"}, 0, "usage: lockbox serve\n"},
		{[]string{"serve", "now"}, 2, `lockbox serve takes no arguments`},
		{[]string{"dev", "token", "--help"}, 0, "usage: lockbox dev token --sub S"},
		{[]string{"dev", "token", "-h"}, 0, "lockbox-admin"},
		{[]string{"dev", "token", "--sub", "a@b.example", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"dev", "token", "--bogus"}, 2, "flag provided but not defined: -bogus (lockbox dev token --help)"},
		{[]string{"policy", "--help"}, 0, "usage: lockbox policy test DIR [-v]\n"},
		{[]string{"policy", "test", "--help"}, 0, "usage: lockbox policy test DIR [-v]\n"},
		{[]string{"version", "--help"}, 0, "usage: lockbox version\n"},
		{[]string{"version", "-h"}, 0, "usage: lockbox version\n"},
		{[]string{"version", "help"}, 0, "usage: lockbox version\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dev")
			env := map[string]string{
				"LOCKBOX_DEV_DIR": dir, "LOCKBOX_API_ADDR": "127.0.0.1:0",
				"LOCKBOX_PROXY_ADDR": "127.0.0.1:0", "LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
			}
			// Were the server started, it would stop here rather than hang.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			code := run(ctx, tt.args, env, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out.String(), errb.String())
			}
			got := errb.String()
			if code == 0 {
				got = out.String()
				if errb.Len() > 0 {
					t.Errorf("help wrote to stderr: %s", errb.String())
				}
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, got)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("LOCKBOX_DEV_DIR was created (%v): something started", err)
			}
		})
	}
}

// "lockbox version" names the Go release the binary was built with, as
// "lockboxctl version" does: it printed the version alone.
func TestVersionNamesTheGoRelease(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.4.0"
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if want := "lockbox v1.4.0 (" + runtime.Version() + ")\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
}

// A key file serve can't use stops start-up with a line that starts with
// its variable, as every other bad setting's does. It read "lockbox:
// identity: LOCKBOX_JWT_*: identity: jwks FILE: ...", naming a family of
// variables after a package's name.
func TestServeNamesTheKeyFileItCannotUse(t *testing.T) {
	env := serveEnv(t, "redis://127.0.0.1:1")
	bad := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(bad, []byte(`{"keys":`), 0o600); err != nil {
		t.Fatal(err)
	}
	env["LOCKBOX_JWT_JWKS_FILE"] = bad
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve"}, env, &out, &errb)
	if code != exitConfig {
		t.Fatalf("exit %d, want %d (a configuration refused)\n%s", code, exitConfig, errb.String())
	}
	named := false
	for line := range strings.Lines(errb.String()) {
		named = named || strings.HasPrefix(line, "lockbox: LOCKBOX_JWT_JWKS_FILE: ")
	}
	if !named {
		t.Errorf("no line starts with LOCKBOX_JWT_JWKS_FILE:\n%s", errb.String())
	}
}
