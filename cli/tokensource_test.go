package cli

import (
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestRefusedTokenNamesItsSource: the token comes from --token-file, else
// $LOCKBOX_TOKEN, else lockboxctl login, and an old LOCKBOX_TOKEN left in
// the shell shadows the token a fresh login stored. The API's 401 ("token
// expired") said nothing of which token was sent, so the user who had
// just signed in saw it refused with no clue why. A 401 now names where
// the token came from, and what it shadowed.
func TestRefusedTokenNamesItsSource(t *testing.T) {
	expired := map[string]reply{"GET /v1/requests": {401, `{"error":{"code":"unauthenticated","message":"unauthenticated: token expired"}}`}}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"LOCKBOX_TOKEN", []string{"get", "requests"}, nil,
			"lockboxctl: the token sent came from $LOCKBOX_TOKEN, which comes before the one lockboxctl login stores\n"},
		{"--token-file", []string{"get", "requests", "--token-file", "$TOKENFILE"}, nil,
			"lockboxctl: the token sent came from --token-file $TOKENFILE, which comes before $LOCKBOX_TOKEN and the one lockboxctl login stores\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args, tc.env, expired)
			lines := strings.SplitAfter(r.stderr, "\n")
			if r.code != exitRefused || len(lines) != 3 || lines[0] != "lockboxctl: unauthenticated: token expired (unauthenticated, HTTP 401)\n" ||
				!sameLine(lines[1], tc.want) {
				t.Errorf("exit %d, stderr %q: want exit 3, the API's refusal and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	t.Run("lockboxctl login", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		s.approveAt(2, alice)
		if r := s.login(); r.code != 0 {
			t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
		}
		s.api.mu.Lock()
		s.api.replies = expired
		s.api.mu.Unlock()
		r, _ := s.list(nil)
		want := "lockboxctl: unauthenticated: token expired (unauthenticated, HTTP 401)\n" +
			"lockboxctl: the token sent is the one lockboxctl login stored: run lockboxctl login again\n"
		if r.code != exitRefused || r.stderr != want {
			t.Errorf("exit %d, stderr %q: want exit 3 and %q", r.code, r.stderr, want)
		}
	})
	// A refusal of what the command named (403) is not the token's.
	r := run(t, []string{"get", "requests"}, nil, map[string]reply{"GET /v1/requests": {403, `{"error":{"code":"forbidden","message":"forbidden"}}`}})
	if r.code != exitRefused || strings.Contains(r.stderr, "came from") {
		t.Errorf("403: exit %d, stderr %q: want exit 3 without a word of the token", r.code, r.stderr)
	}
}

// sameLine compares a line with want, where want may name the token
// file by its placeholder.
func sameLine(got, want string) bool {
	if !strings.Contains(want, "$TOKENFILE") {
		return got == want
	}
	prefix, suffix, _ := strings.Cut(want, "$TOKENFILE")
	return strings.HasPrefix(got, prefix) && strings.HasSuffix(got, suffix) && strings.HasSuffix(strings.TrimSuffix(got, suffix), "/token")
}
