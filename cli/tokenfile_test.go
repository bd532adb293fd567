package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenFileOthersCanRead: a --token-file other users may read or
// change gets a warning naming it and the chmod that fixes it, as ssh does
// of such a key; the command still runs with it (a Kubernetes secret is
// mounted 0644 unless told otherwise). The token itself is never shown.
func TestTokenFileOthersCanRead(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{
		{0o644, true},
		{0o640, true},
		{0o606, true},
		{0o600, false},
		{0o400, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(fileTok+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			r := run(t, []string{"get", "requests", "--token-file", path}, nil, nil)
			if r.code != 0 || len(r.auth) == 0 || r.auth[0] != "Bearer "+fileTok {
				t.Fatalf("exit %d, Authorization %q: want the file's token sent\n%s", r.code, r.auth, r.stderr)
			}
			warned := strings.Contains(r.stderr, "warning") && strings.Contains(r.stderr, "chmod 600 "+path)
			if warned != tc.warn {
				t.Errorf("mode %v: stderr %q, want a warning naming chmod 600 %s: %v", tc.mode, r.stderr, path, tc.warn)
			}
			if strings.Contains(r.stderr, fileTok) {
				t.Errorf("stderr shows the token: %q", r.stderr)
			}
		})
	}
}
