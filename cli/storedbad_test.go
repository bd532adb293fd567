package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestUnreadableStoredTokenSaysWhatToDo: a stored token file that holds
// no token (cut short by a full disk, edited by hand, without an access
// token) failed every command with the JSON decoder's words alone, or
// "holds no access token", and nothing on what to do. The line now ends
// saying to sign in again, which replaces the file. Nothing is sent.
func TestUnreadableStoredTokenSaysWhatToDo(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	for name, body := range map[string]string{
		"cut short":       `{"server": "` + s.addr + `", "access_tok`,
		"no access token": `{"server": "` + s.addr + `"}`,
		"not JSON at all": "garbage\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Dir(s.tokenPath()), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.tokenPath(), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			r, _ := s.list(nil)
			if r.code != exitError || !strings.Contains(r.stderr, "run lockboxctl login") {
				t.Errorf("exit %d, stderr %q: want exit 1 saying to run lockboxctl login", r.code, r.stderr)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("the error takes %d lines: %q", n+1, r.stderr)
			}
			if len(r.calls) != 0 {
				t.Errorf("calls were made: %v", r.calls)
			}
		})
	}
}
