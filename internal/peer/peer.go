// Package peer says who is on the other end of an HTTP request, for audit
// records and request histories. It is the one place every Lockbox HTTP
// surface (proxy, API, admin center) takes the client IP from, so they
// can't disagree, and so a trusted-proxy setting, when one exists, changes
// them all at once.
package peer

import (
	"net/http"
	"net/netip"
)

// IP is the socket peer's address of r: IPv4-mapped addresses unmapped,
// no zone. It is never read from a header (X-Forwarded-For and the like are
// the client's to forge). It is empty when RemoteAddr is not an address
// and port, as for a request that did not come from a socket.
func IP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return ap.Addr().Unmap().WithZone("").String()
}
