package peer_test

import (
	"net/http/httptest"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/peer"
)

func TestIP(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"203.0.113.7:51234", "203.0.113.7"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:198.51.100.4]:80", "198.51.100.4"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"not an address", ""},
		{"203.0.113.7", ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-For", "192.0.2.99")
		r.Header.Set("X-Real-IP", "192.0.2.99")
		if got := peer.IP(r); got != tc.want {
			t.Errorf("IP(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}
