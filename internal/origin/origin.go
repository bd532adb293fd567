// Package origin names a URL's origin (scheme, host and port) for the
// redirect rules of Lockbox's HTTP clients: the JWKS fetcher, the admin
// center's OIDC client, lockboxctl's sign-in and the API client
// (api/client) follow a redirect only within the origin they started at,
// so that key material and credentials (a bearer token among them) come
// from, and go to, only the server the operator named. Its Transport
// refuses a redirect to a Location that does not parse, which those rules
// never get to see.
//
// The package imports no other Lockbox package, and nothing outside the
// standard library: api/client, a package other programs import, uses it.
package origin

import (
	"errors"
	"io"
	"net"
	"net/http"
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

// ErrMalformedRedirect is Transport's refusal of an answer redirecting to
// a Location that is not a URL: the *MalformedRedirectError it returns is
// this error.
var ErrMalformedRedirect = errors.New("redirect to a Location that is not a URL refused (not shown: it may hold a password)")

// MalformedRedirectError is Transport's refusal, naming the answer's
// status for a caller that reports it (api/client's own error does).
type MalformedRedirectError struct {
	// Status is the answer's status: 301, 302, 303, 307 or 308.
	Status int
}

func (e *MalformedRedirectError) Error() string { return ErrMalformedRedirect.Error() }

// Is makes the error ErrMalformedRedirect for errors.Is.
func (e *MalformedRedirectError) Is(target error) bool { return target == ErrMalformedRedirect }

// Transport is next (http.DefaultTransport when nil) refusing, with a
// *MalformedRedirectError, an answer that redirects (301, 302, 303, 307, 308)
// to a Location net/http can't parse. net/http fails on such a Location
// before any CheckRedirect sees it, with an error quoting it whole, user
// name and password too, and that error goes to logs and terminals.
// (The admin center's OIDC client has a stricter one of its own, which
// also refuses a Location with user information.)
func Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return locationCheck{next}
}

type locationCheck struct{ next http.RoundTripper }

func (t locationCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return resp, nil
	}
	// The same parse as net/http's, so that what passes here parses there.
	if loc := resp.Header.Get("Location"); loc != "" {
		if _, err := r.URL.Parse(loc); err != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			_ = resp.Body.Close()
			return nil, &MalformedRedirectError{Status: resp.StatusCode}
		}
	}
	return resp, nil
}
