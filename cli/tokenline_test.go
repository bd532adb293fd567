package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenNotOnOneLine: a token holding a line break or another control
// character can't go in an Authorization header, and net/http refuses to
// send it. That refusal came out as "cannot reach the Lockbox API at
// ...", sending the user to debug a server that was never called, for a
// --token-file that holds more than a token (the JSON file lockboxctl
// login stores, say) or a LOCKBOX_TOKEN pasted across lines. It now names
// where the token came from, without showing it, and nothing is sent.
func TestTokenNotOnOneLine(t *testing.T) {
	const secret = "eyJhbGciOi.secret"
	stored := "{\n  \"server\": \"http://127.0.0.1:8080\",\n  \"access_token\": \"" + secret + "\"\n}\n"
	path := filepath.Join(t.TempDir(), "token.json")
	if err := os.WriteFile(path, []byte(stored), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"a token file of several lines", []string{"get", "requests", "--token-file", path}, nil, "--token-file " + path},
		{"LOCKBOX_TOKEN across lines", []string{"get", "requests"}, map[string]string{EnvToken: "eyJhbGciOi\n.secret"}, "$" + EnvToken},
		{"LOCKBOX_TOKEN with an escape", []string{"approve", reqID}, map[string]string{EnvToken: "eyJhbGciOi\x1b.secret"}, "$" + EnvToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args, tc.env, nil)
			if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q: want exit 1 naming %q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "cannot reach") {
				t.Errorf("blames the API: %q", r.stderr)
			}
			if strings.Contains(r.stderr, "secret") {
				t.Errorf("stderr shows the token: %q", r.stderr)
			}
			if len(r.calls) != 0 {
				t.Errorf("calls were made: %v", r.calls)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("the error takes %d lines: %q", n+1, r.stderr)
			}
		})
	}
}
