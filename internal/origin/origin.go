// Package origin names a URL's origin (scheme, host and port) for the
// redirect rules of Lockbox's identity fetchers: the JWKS fetcher, the
// admin center's OIDC client and lockboxctl's sign-in follow a redirect
// only within the origin they started at, so that key material and
// credentials come from, and go to, only the server the operator named.
//
// The package imports no other Lockbox package.
package origin

import (
	"net"
	"net/url"
	"strings"
)

// Of is u's scheme, host and port, the port written out, so that
// https://idp.example and https://IDP.example:443 are one origin.
func Of(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
