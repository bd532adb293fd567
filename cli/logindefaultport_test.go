package cli

import (
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestLoginAndLogoutAgreeOnTheDefaultPort: login --addr
// https://lockbox.example:443 stored the token under that address, and a
// command given https://Lockbox.Example (the same server) said "not
// signed in". The token is now kept for the server, whichever way its
// address is written.
func TestLoginAndLogoutAgreeOnTheDefaultPort(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	s.approveAt(2, alice)
	if r := s.ctl(map[string]string{EnvAddr: "https://lockbox.example:443"}, "login", "--issuer", s.idp.Issuer(), "--client-id", publicClient); r.code != 0 {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	s.onSleep = nil
	r := s.ctl(map[string]string{EnvAddr: "https://Lockbox.Example"}, "logout")
	t.Logf("%d %q %q", r.code, r.stdout, r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, "Signed out of https://lockbox.example") {
		t.Errorf("logout with the port left out: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = s.ctl(map[string]string{EnvAddr: "https://lockbox.example:443"}, "logout")
	if r.code != 0 || !strings.Contains(r.stdout, "Not signed in") {
		t.Errorf("logout again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
