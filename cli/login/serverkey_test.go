package login

import (
	"errors"
	"os"
	"testing"
)

// TestServerKeyLeavesOutTheDefaultPort: https://host and https://host:443
// (http://host and http://host:80) are one server, but were stored under
// two keys, so a token stored for one was "not signed in" for the other.
// The key now leaves out the port a scheme implies, and keeps the host in
// lower case.
func TestServerKeyLeavesOutTheDefaultPort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://lockbox.example", "https://lockbox.example"},
		{"https://lockbox.example:443", "https://lockbox.example"},
		{"HTTPS://Lockbox.Example:443/", "https://lockbox.example"},
		{"http://lockbox.example:80", "http://lockbox.example"},
		{"http://lockbox.example:", "http://lockbox.example"},
		{"https://[::1]:443/lockbox/", "https://[::1]/lockbox"},
		{"https://lockbox.example:443/Lockbox", "https://lockbox.example/Lockbox"},
		// Another port, or a scheme's default on the other scheme, is
		// another server.
		{"https://lockbox.example:80", "https://lockbox.example:80"},
		{"http://lockbox.example:443", "http://lockbox.example:443"},
		{"https://lockbox.example:8443", "https://lockbox.example:8443"},
	} {
		if got, err := ServerKey(tc.in); err != nil || got != tc.want {
			t.Errorf("ServerKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestStoreReadsTokensStoredWithTheDefaultPort: a token stored before
// the key left out the default port, under https://host:443, is still
// the token of https://host: found, refreshed under the new key, and
// removed by logout.
func TestStoreReadsTokensStoredWithTheDefaultPort(t *testing.T) {
	for _, tc := range []struct{ old, server string }{
		{"https://lockbox.example:443", "https://lockbox.example"},
		{"http://lockbox.example:80/prefix", "http://lockbox.example/prefix"},
	} {
		t.Run(tc.old, func(t *testing.T) {
			s := Store{Dir: t.TempDir()}
			if err := s.Save(Token{Server: tc.old, AccessToken: "old-token"}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Load(tc.server)
			if err != nil || got.AccessToken != "old-token" || got.Server != tc.server {
				t.Fatalf("Load(%q) = %+v, %v; want the token stored under %q, for %q", tc.server, got, err, tc.old, tc.server)
			}
			// Another server's token is not found under a key that
			// only looks alike.
			if got, err := s.Load("https://lockbox.example:8443"); !errors.Is(err, ErrNotSignedIn) {
				t.Errorf("another port got the token: %+v, %v", got, err)
			}
			// Refreshed, it is saved under the new key.
			if err := s.Save(got); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(s.Path(tc.server)); err != nil {
				t.Errorf("not saved under the new key: %v", err)
			}
			removed, err := s.Remove(tc.server)
			if err != nil || !removed {
				t.Fatalf("Remove(%q) = %v, %v", tc.server, removed, err)
			}
			for _, k := range []string{tc.old, tc.server} {
				if _, err := os.Stat(s.Path(k)); !os.IsNotExist(err) {
					t.Errorf("the file of %s is still there: %v", k, err)
				}
			}
			if _, err := s.Load(tc.server); !errors.Is(err, ErrNotSignedIn) {
				t.Errorf("after Remove: %v", err)
			}
		})
	}
}

// TestRemoveLeavesAnotherServersFile: the old key's file name may be
// another server's (https://x_443's is https://x:443's); logout of
// https://x leaves that server's token.
func TestRemoveLeavesAnotherServersFile(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := s.Save(Token{Server: "https://x_443", AccessToken: "its-token"}); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.Remove("https://x"); err != nil || removed {
		t.Fatalf("Remove(https://x) = %v, %v; want nothing removed", removed, err)
	}
	if got, err := s.Load("https://x_443"); err != nil || got.AccessToken != "its-token" {
		t.Errorf("https://x_443's token: %+v, %v", got, err)
	}
}
