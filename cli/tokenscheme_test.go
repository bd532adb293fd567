package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTokenWithItsScheme: a token copied with its scheme ("Bearer eyJ...",
// from a curl command line or an Authorization header) was refused as
// one that "contains whitespace or control characters", which sent the
// user looking for a stray space. It now says the token starts with its
// scheme and is to be given alone, naming where it came from; nothing is
// sent.
func TestTokenWithItsScheme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("Bearer eyJhbGciOi.secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		from string
	}{
		{"LOCKBOX_TOKEN", []string{"get", "requests"}, map[string]string{EnvToken: "Bearer eyJhbGciOi.secret"}, "$" + EnvToken},
		{"LOCKBOX_TOKEN in lower case", []string{"approve", reqID}, map[string]string{EnvToken: "bearer eyJhbGciOi.secret"}, "$" + EnvToken},
		{"a token file", []string{"get", "requests", "--token-file", path}, nil, "--token-file " + path},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args, tc.env, nil)
			want := "lockboxctl: the token from " + tc.from + ` starts with "Bearer ": give the token alone, without the scheme` + "\n"
			if r.code != exitError || r.stderr != want {
				t.Errorf("exit %d, stderr %q: want exit 1 and %q", r.code, r.stderr, want)
			}
			if len(r.calls) != 0 {
				t.Errorf("calls were made: %v", r.calls)
			}
		})
	}
}
