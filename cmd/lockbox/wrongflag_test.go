package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWrongFlagIsOneLine: a flag a command does not take is refused with
// exit 2 and one line that names the flag and the command's help, and
// nothing on stdout. "lockbox notify dead-letters --bogus" printed the
// whole help, each line prefixed "lockbox: ", which buried the one line
// that said what was wrong, and "lockbox version --bogus" printed the
// version and exited 0. "lockbox --bogus", "lockbox -x" and "lockbox
// bogus" printed "unknown command" and the whole usage after it.
func TestWrongFlagIsOneLine(t *testing.T) {
	tests := []struct {
		args  []string
		help  string // the command line that shows the help
		wrong string // what the line names; "" for "bogus"
	}{
		{[]string{"--bogus"}, "lockbox --help", ""},
		{[]string{"-x"}, "lockbox --help", `"-x"`},
		{[]string{"bogus"}, "lockbox --help", ""},
		{[]string{"--bogus", "serve"}, "lockbox --help", ""},
		{[]string{"Serve"}, "lockbox --help", `"Serve"`},
		{[]string{"serve", "--bogus"}, "lockbox serve --help", ""},
		{[]string{"dev", "--bogus"}, "lockbox dev --help", ""},
		{[]string{"dev", "token", "--bogus"}, "lockbox dev token --help", ""},
		{[]string{"dev", "token", "--sub", "a@contoso.example", "--bogus"}, "lockbox dev token --help", ""},
		{[]string{"policy", "--bogus"}, "lockbox policy --help", ""},
		{[]string{"policy", "test", "--bogus", "../../rego"}, "lockbox policy test --help", ""},
		{[]string{"policy", "test", "../../rego", "--bogus"}, "lockbox policy test --help", ""},
		{[]string{"webhook-key", "--bogus", "https://hooks.example/a"}, "lockbox webhook-key --help", ""},
		{[]string{"webhook-key", "https://hooks.example/a", "--bogus"}, "lockbox webhook-key --help", ""},
		{[]string{"notify", "--bogus"}, "lockbox notify --help", ""},
		{[]string{"notify", "dead-letters", "--bogus"}, "lockbox notify dead-letters --help", ""},
		{[]string{"notify", "dead-letters", "--tenant", "contoso", "--bogus"}, "lockbox notify dead-letters --help", ""},
		{[]string{"notify", "redrive", "--bogus"}, "lockbox notify redrive --help", ""},
		{[]string{"notify", "redrive", "--tenant", "contoso", "--all", "--bogus"}, "lockbox notify redrive --help", ""},
		{[]string{"version", "--bogus"}, "lockbox version --help", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			env := map[string]string{
				"LOCKBOX_DEV_DIR": filepath.Join(t.TempDir(), "dev"), "LOCKBOX_API_ADDR": "127.0.0.1:0",
				"LOCKBOX_PROXY_ADDR": "127.0.0.1:0", "LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
				"LOCKBOX_REDIS_URL": "redis://127.0.0.1:1/0", // nothing listens
			}
			// Were a server started, it would stop here rather than hang.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			code := run(ctx, tt.args, env, &out, &errb)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
			if out.Len() > 0 {
				t.Errorf("stdout: %q, want nothing", out.String())
			}
			stderr := errb.String()
			if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Fatalf("stderr has %d lines, want one:\n%s", n, stderr)
			}
			wrong := tt.wrong
			if wrong == "" {
				wrong = "bogus"
			}
			if !strings.HasPrefix(stderr, "lockbox: ") || !strings.Contains(stderr, wrong) {
				t.Errorf("stderr %q does not name what is wrong, %s", stderr, wrong)
			}
			if !strings.Contains(stderr, "("+tt.help+")") {
				t.Errorf("stderr %q does not say where the help is (%s)", stderr, tt.help)
			}
		})
	}
	// Each command line that the lines name shows that command's help.
	for _, tt := range tests {
		args := strings.Fields(strings.TrimPrefix(tt.help, "lockbox "))
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "usage: lockbox ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want its usage", tt.help, code, out.String(), errb.String())
		}
	}
}
