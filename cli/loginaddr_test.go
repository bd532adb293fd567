package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestLoginRefusesAnAddressNoCommandCanUse: login keeps a token for the
// API address it is given, and every later command refuses an address it
// can't call (another scheme, a query) or plain http off loopback without
// --insecure-http, as a wrong command line (exit 2). login signed in
// anyway, at the identity provider and with the user's time, stored a
// token no command would send, and exited 0. It now refuses the address
// as every other command does, before anything goes to the identity
// provider, and with --insecure-http signs in as before.
func TestLoginRefusesAnAddressNoCommandCanUse(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		env        map[string]string
		want       string
	}{
		{"another scheme", "ftp://lockbox.example", nil, "ftp://lockbox.example"},
		{"a query", "https://lockbox.example/?x=1", nil, "query"},
		{"plain http off loopback", "http://lockbox.example", nil, "--insecure-http"},
		{"a bad LOCKBOX_INSECURE_HTTP", "https://lockbox.example", map[string]string{EnvInsecureHTTP: "maybe"}, EnvInsecureHTTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, oidctest.Config{})
			// The provider would sign the user in.
			s.approveAt(2, alice)
			sent := false
			s.ctlHTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = true
				return http.DefaultTransport.RoundTrip(r)
			})}
			env := map[string]string{EnvAddr: tc.addr}
			for k, v := range tc.env {
				env[k] = v
			}
			r := s.ctl(env, "login", "--issuer", s.idp.Issuer(), "--client-id", publicClient)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d naming %q", r.code, r.stderr, exitUsage, tc.want)
			}
			if sent {
				t.Error("the identity provider was asked")
			}
			if left, _ := os.ReadDir(filepath.Join(s.dir, "tokens")); len(left) != 0 {
				t.Errorf("a token was stored: %v", left)
			}
		})
	}

	t.Run("plain http with --insecure-http", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		s.approveAt(2, alice)
		r := s.ctl(map[string]string{EnvAddr: "http://lockbox.example"}, "login", "--insecure-http",
			"--issuer", s.idp.Issuer(), "--client-id", publicClient)
		if r.code != 0 || !strings.Contains(r.stdout, "Signed in to http://lockbox.example") {
			t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}
