// Package peer says who is on the other end of an HTTP request, for audit
// records and request histories. It is the one place every Lockbox HTTP
// surface (proxy, API, admin center) takes the client IP from, so they
// can't disagree, and so the trusted-proxy setting (LOCKBOX_TRUSTED_PROXIES,
// through Trust) changes them all at once.
package peer

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// IP is the client's address of r: IPv4-mapped addresses unmapped, no
// zone. It is the socket peer's, unless a handler Trust built stands in
// front and found the client behind a trusted proxy. It is never read from
// a header here (X-Forwarded-For and the like are the client's to forge).
// It is empty when RemoteAddr is not an address and port, as for a request
// that did not come from a socket.
func IP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return plain(ap.Addr()).String()
}

// plain is a with IPv4-mapped addresses unmapped and no zone.
func plain(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// forwardedFor is the one header Trust reads, in its canonical form, so
// that looking it up costs no allocation.
const forwardedFor = "X-Forwarded-For"

// Trust returns h behind the proxies in nets (load balancers, ingress
// controllers, a mesh's sidecar): a request whose socket peer is in nets
// reaches h with RemoteAddr set to the client's address the proxies
// recorded in X-Forwarded-For, so IP, and everything that reads it, sees
// the client instead of the last proxy. With nets empty, Trust returns h
// itself: nothing stands in front of it and no header is ever read.
//
// The walk is nginx's real_ip_recursive over X-Forwarded-For: every header
// line in order, comma-separated entries, whitespace trimmed, empty entries
// skipped. From the right, entries in nets are proxies and are passed
// over; the first entry not in nets is the client. When every entry is in
// nets, the left-most is. An entry that is no address (an IP, or an IP and
// port, IPv6 in brackets) stops the walk at the proxy that added it, since
// nothing it says can be believed: the client is the last trusted address
// seen, the peer itself when that is the first entry. Entries left of the
// client are the client's own words and never read. A peer not in nets is
// the client, whatever it sends.
//
// Forwarded (RFC 7239) and X-Real-IP are not read: the proxies in front
// must set X-Forwarded-For, as nginx, Envoy, cloud load balancers and
// ingress-nginx do. A range holding every address (0.0.0.0/0, ::/0) is
// refused: it would let every client choose its IP.
func Trust(h http.Handler, nets []netip.Prefix) (http.Handler, error) {
	if len(nets) == 0 {
		return h, nil
	}
	t := &trusting{next: h, nets: make([]netip.Prefix, 0, len(nets))}
	for _, p := range nets {
		if !p.IsValid() {
			return nil, errors.New("an invalid network")
		}
		p = unmapPrefix(p)
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%s holds every address: trusting it would let every client choose its IP", p)
		}
		t.nets = append(t.nets, p.Masked())
	}
	return t, nil
}

// unmapPrefix is p with an IPv4-mapped IPv6 range (::ffff:10.0.0.0/104)
// written as the IPv4 range it maps (10.0.0.0/8), since addresses are
// compared unmapped.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// trusting is the handler Trust builds.
type trusting struct {
	next http.Handler
	nets []netip.Prefix
}

func (t *trusting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if client, ok := t.client(r); ok {
		// A copy: a handler must not change the request it was given,
		// and the copy's address is what every handler after this one
		// reads.
		r2 := new(http.Request)
		*r2 = *r
		r2.RemoteAddr = client.String()
		r = r2
	}
	t.next.ServeHTTP(w, r)
}

// client walks r's X-Forwarded-For as Trust says, and returns the client's
// address (port 0 when its entry named none), or false when the client is
// the peer itself.
func (t *trusting) client(r *http.Request) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !t.trusts(plain(ap.Addr())) {
		return netip.AddrPort{}, false
	}
	var client netip.AddrPort
	found := false
	lines := r.Header[forwardedFor]
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			var e string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				e, rest = rest[j+1:], rest[:j]
			} else {
				e, rest = rest, ""
			}
			if e = strings.Trim(e, " \t"); e == "" {
				continue
			}
			a, ok := parseEntry(e)
			if !ok {
				return client, found
			}
			client, found = a, true
			if !t.trusts(a.Addr()) {
				return client, true
			}
		}
	}
	return client, found
}

func (t *trusting) trusts(a netip.Addr) bool {
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseEntry reads one X-Forwarded-For entry: an IPv4 or IPv6 address,
// IPv6 optionally in brackets, either optionally with a port. The form is
// told by its syntax, so a valid entry is parsed once, without an error
// (and its allocation) first.
func parseEntry(s string) (netip.AddrPort, bool) {
	switch {
	case s[0] == '[' && s[len(s)-1] == ']':
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(plain(a), 0), true
	case s[0] == '[' || strings.Count(s, ":") == 1:
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(plain(ap.Addr()), ap.Port()), true
	default:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(plain(a), 0), true
	}
}
