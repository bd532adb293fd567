package peer_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
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

// trusted are the proxies of TestTrust: a private range, an IPv6 range and
// one address.
var trusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
	netip.MustParsePrefix("192.0.2.1/32"),
}

// seen records the request the handler behind Trust got.
type seen struct{ r *http.Request }

func (s *seen) ServeHTTP(_ http.ResponseWriter, r *http.Request) { s.r = r }

// TestTrust: behind trusted proxies, the client is the right-most
// X-Forwarded-For entry no trusted proxy added, and an untrusted peer's
// headers change nothing.
func TestTrust(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		xff    []string // header lines, in order
		want   string
	}{
		{"one proxy", "10.0.0.1:5000", []string{"198.51.100.7, 10.0.0.5"}, "198.51.100.7"},
		{"client right behind the proxy", "10.0.0.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"untrusted peer's header ignored", "203.0.113.9:1234", []string{"198.51.100.7"}, "203.0.113.9"},
		{"untrusted peer claiming a trusted chain", "203.0.113.9:1234", []string{"198.51.100.7, 10.0.0.5"}, "203.0.113.9"},
		{"trusted peer without the header", "10.0.0.1:5000", nil, "10.0.0.1"},
		{"entries the client wrote left of the client", "10.0.0.1:5000", []string{"192.0.2.99, 203.0.113.50, 198.51.100.7, 10.0.0.5"}, "198.51.100.7"},
		{"several header lines", "10.0.0.1:5000", []string{"192.0.2.99, 198.51.100.7", "10.0.0.9", "10.0.0.5"}, "198.51.100.7"},
		{"the last line is the right-most", "10.0.0.1:5000", []string{"203.0.113.1", "198.51.100.7"}, "198.51.100.7"},
		{"every entry trusted: the left-most", "10.0.0.1:5000", []string{"10.0.0.3, 10.0.0.4", "192.0.2.1"}, "10.0.0.3"},
		{"a single trusted address", "10.0.0.1:5000", []string{"198.51.100.7, 192.0.2.1"}, "198.51.100.7"},
		{"garbage stops the walk at the hop that added it", "10.0.0.1:5000", []string{"198.51.100.7, garbage, 10.0.0.5"}, "10.0.0.5"},
		{"garbage right-most: the peer", "10.0.0.1:5000", []string{"198.51.100.7, unknown"}, "10.0.0.1"},
		{"an obfuscated identifier", "10.0.0.1:5000", []string{"_hidden"}, "10.0.0.1"},
		{"a bad port is no address", "10.0.0.1:5000", []string{"198.51.100.7:99999"}, "10.0.0.1"},
		{"a range is no address", "10.0.0.1:5000", []string{"198.51.100.0/24"}, "10.0.0.1"},
		{"empty elements skipped", "10.0.0.1:5000", []string{"198.51.100.7,, 10.0.0.5, ", " "}, "198.51.100.7"},
		{"whitespace trimmed", "10.0.0.1:5000", []string{"\t198.51.100.7 ,\t10.0.0.5 "}, "198.51.100.7"},
		{"IPv4 with a port", "10.0.0.1:5000", []string{"198.51.100.7:8080"}, "198.51.100.7"},
		{"IPv6", "10.0.0.1:5000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv6 in brackets", "10.0.0.1:5000", []string{"[2001:db8::7]"}, "2001:db8::7"},
		{"IPv6 in brackets with a port", "10.0.0.1:5000", []string{"[2001:db8::7]:443, 10.0.0.5"}, "2001:db8::7"},
		{"IPv4-mapped unmapped", "10.0.0.1:5000", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"IPv4-mapped trusted entry", "10.0.0.1:5000", []string{"198.51.100.7, ::ffff:10.0.0.5"}, "198.51.100.7"},
		{"zone dropped", "10.0.0.1:5000", []string{"fe80::1%eth0"}, "fe80::1"},
		{"trusted IPv6 peer", "[2001:db8:ffff::1]:443", []string{"203.0.113.5, 2001:db8:ffff::2"}, "203.0.113.5"},
		{"IPv4-mapped trusted peer", "[::ffff:10.0.0.1]:80", []string{"198.51.100.7"}, "198.51.100.7"},
		{"untrusted IPv6 peer", "[2001:db8::1]:443", []string{"198.51.100.7"}, "2001:db8::1"},
		{"peer not an address", "not an address", []string{"198.51.100.7"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s seen
			h, err := peer.Trust(&s, trusted)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if s.r == nil {
				t.Fatal("the handler behind Trust was not called")
			}
			if got := peer.IP(s.r); got != tc.want {
				t.Errorf("client IP = %q, want %q", got, tc.want)
			}
			if r.RemoteAddr != tc.remote {
				t.Errorf("the caller's request was changed: RemoteAddr %q, want %q", r.RemoteAddr, tc.remote)
			}
		})
	}
}

// TestTrustReadsOnlyXForwardedFor: Forwarded and X-Real-IP are not read,
// even from a trusted proxy.
func TestTrustReadsOnlyXForwardedFor(t *testing.T) {
	var s seen
	h, err := peer.Trust(&s, trusted)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:5000"
	r.Header.Set("Forwarded", "for=198.51.100.7")
	r.Header.Set("X-Real-IP", "198.51.100.7")
	r.Header.Set("True-Client-IP", "198.51.100.7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got := peer.IP(s.r); got != "10.0.0.1" {
		t.Errorf("client IP = %q, want the peer 10.0.0.1", got)
	}
}

// TestTrustNothing: with no trusted proxy, Trust adds nothing in front of
// the handler.
func TestTrustNothing(t *testing.T) {
	var s seen
	for _, nets := range [][]netip.Prefix{nil, {}} {
		h, err := peer.Trust(&s, nets)
		if err != nil {
			t.Fatal(err)
		}
		if h != http.Handler(&s) {
			t.Errorf("Trust(h, %v) = %T, want h itself", nets, h)
		}
	}
}

// TestTrustRefusesEveryAddress: a range holding every address would let
// every client choose its IP.
func TestTrustRefusesEveryAddress(t *testing.T) {
	for _, p := range []string{"0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96"} {
		if _, err := peer.Trust(&seen{}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix(p)}); err == nil {
			t.Errorf("Trust accepted %s", p)
		}
	}
}

// TestTrustAllocations: a call from an untrusted peer costs nothing, and
// one resolved behind a proxy a copy of the request and its address.
func TestTrustAllocations(t *testing.T) {
	var s seen
	h, err := peer.Trust(&s, trusted)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "192.0.2.99, 198.51.100.7, 10.0.0.5")
	for _, tc := range []struct {
		remote string
		max    float64
	}{{"203.0.113.9:1234", 0}, {"10.0.0.1:5000", 2}} {
		r.RemoteAddr = tc.remote
		if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n > tc.max {
			t.Errorf("from %s: %v allocations a call, want at most %v", tc.remote, n, tc.max)
		}
	}
}
