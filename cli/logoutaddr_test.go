package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestLogoutRefusesAnAddressNoCommandCanUse: logout took any address,
// found no token for it and said "Not signed in" with exit 0, so a typo
// in $LOCKBOX_ADDR looked like a successful sign-out while the token for
// the intended server stayed. It now refuses the address with the same
// one line and exit status as every other command.
func TestLogoutRefusesAnAddressNoCommandCanUse(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"another scheme", "ftp://lockbox.example"},
		{"a port alone", "8443"},
		{"a query", "https://lockbox.example/?x=1"},
		{"not a URL", "http://[::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, oidctest.Config{})
			s.mustLogin()
			env := map[string]string{EnvAddr: tc.addr}
			other := s.ctl(env, "tenant", "list")
			if other.code != exitUsage {
				t.Fatalf("tenant list: exit %d, want %d\n%s", other.code, exitUsage, other.stderr)
			}
			r := s.ctl(env, "logout")
			if r.code != exitUsage || r.stderr != other.stderr || r.stdout != "" {
				t.Errorf("logout: exit %d\nstdout: %q\nstderr: %q\nwant exit %d and tenant list's %q", r.code, r.stdout, r.stderr, exitUsage, other.stderr)
			}
			if n := strings.Count(r.stderr, "\n"); n != 1 {
				t.Errorf("logout: %d lines on stderr, want 1:\n%s", n, r.stderr)
			}
			if _, err := os.Stat(s.tokenPath()); err != nil {
				t.Errorf("the token of %s is gone: %v", s.addr, err)
			}
		})
	}
}

// TestLogoutSendsNothingSoNeedsNoInsecureHTTP: a token stored for plain
// http off loopback (login --insecure-http) is removed by a plain
// logout, since logout sends nothing, and a $LOCKBOX_INSECURE_HTTP that
// can't be read doesn't keep it either.
func TestLogoutSendsNothingSoNeedsNoInsecureHTTP(t *testing.T) {
	for _, env := range []map[string]string{
		{EnvAddr: "http://lockbox.example"},
		{EnvAddr: "http://lockbox.example", EnvInsecureHTTP: "maybe"},
	} {
		s := newSession(t, oidctest.Config{})
		s.approveAt(2, alice)
		if r := s.ctl(map[string]string{EnvAddr: "http://lockbox.example"}, "login", "--insecure-http",
			"--issuer", s.idp.Issuer(), "--client-id", publicClient); r.code != 0 {
			t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r := s.ctl(env, "logout")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Signed out of http://lockbox.example: removed ") {
			t.Errorf("logout with %v: exit %d\n%s%s", env, r.code, r.stdout, r.stderr)
		}
	}
}
