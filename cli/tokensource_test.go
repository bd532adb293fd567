package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/cli/login"
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
	// The API's message starts with its code, which the line notes after
	// it: printed as it came, it said "unauthenticated" twice.
	const refusal = "lockboxctl: token expired (unauthenticated, HTTP 401)\n"
	for _, tc := range []struct {
		name   string
		args   []string
		env    map[string]string
		stored bool   // a token lockboxctl login stored for the server
		want   string // the line after the refusal, "" for none
	}{
		{"LOCKBOX_TOKEN over a stored login", []string{"get", "requests"}, nil, true,
			"lockboxctl: the token sent came from $LOCKBOX_TOKEN, which comes before the one lockboxctl login stored\n"},
		{"--token-file over LOCKBOX_TOKEN and a stored login", []string{"get", "requests", "--token-file", "$TOKENFILE"}, nil, true,
			"lockboxctl: the token sent came from --token-file $TOKENFILE, which comes before $LOCKBOX_TOKEN and the one lockboxctl login stored\n"},
		{"--token-file over LOCKBOX_TOKEN", []string{"get", "requests", "--token-file", "$TOKENFILE"}, nil, false,
			"lockboxctl: the token sent came from --token-file $TOKENFILE, which comes before $LOCKBOX_TOKEN\n"},
		{"--token-file over a stored login", []string{"get", "requests", "--token-file", "$TOKENFILE"}, map[string]string{EnvToken: ""}, true,
			"lockboxctl: the token sent came from --token-file $TOKENFILE, which comes before the one lockboxctl login stored\n"},
		// Nothing is shadowed: the line named a login's token to people
		// who had never signed in.
		{"LOCKBOX_TOKEN, no login stored", []string{"get", "requests"}, nil, false, ""},
		{"--token-file alone", []string{"get", "requests", "--token-file", "$TOKENFILE"}, map[string]string{EnvToken: ""}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{replies: expired}
			srv := httptest.NewServer(f)
			defer srv.Close()
			dir := t.TempDir()
			tokenFile := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(tokenFile, []byte(fileTok+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.stored {
				key, err := login.ServerKey(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				if err := (login.Store{Dir: dir}).Save(login.Token{Server: key, AccessToken: "stored", Expiry: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			vars := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: dir}
			for k, v := range tc.env {
				vars[k] = v
			}
			expand := strings.NewReplacer("$TOKENFILE", tokenFile).Replace
			var args []string
			for _, a := range tc.args {
				args = append(args, expand(a))
			}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), args, func(k string) string { return vars[k] }, &stdout, &stderr)
			want := refusal + expand(tc.want)
			if code != exitRefused || stderr.String() != want {
				t.Errorf("exit %d, stderr %q: want exit 3 and %q", code, stderr.String(), want)
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
		want := refusal +
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
