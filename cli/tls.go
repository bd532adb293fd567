package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
)

// TLS settings of lockboxctl, for an API served with a private CA or one
// that requires client certificates (LOCKBOX_TLS_CLIENT_CA_FILE). The
// client certificate only opens the connection; the token still says who
// calls.
const (
	// EnvCAFile is a PEM file of CA certificates that verify the API,
	// instead of the system's roots.
	EnvCAFile = "LOCKBOX_CA_FILE"
	// EnvClientCertFile and EnvClientKeyFile are the client certificate
	// and key presented to the API.
	EnvClientCertFile = "LOCKBOX_CLIENT_CERT_FILE"
	EnvClientKeyFile  = "LOCKBOX_CLIENT_KEY_FILE"
)

// httpClient returns the HTTP client of the API calls: the TLS settings'
// (the default transport when none is set), following no redirect that
// leaves the API's address (sameServer).
func (e *env) httpClient() (*http.Client, error) {
	caFile, certFile, keyFile := e.getenv(EnvCAFile), e.getenv(EnvClientCertFile), e.getenv(EnvClientKeyFile)
	if caFile == "" && certFile == "" && keyFile == "" {
		return &http.Client{Timeout: e.session.timeout(), CheckRedirect: sameServer}, nil
	}
	cfg := &tls.Config{MinVersion: tlsfiles.MinVersion}
	if caFile != "" {
		pool, err := tlsfiles.LoadCertPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCAFile, err)
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", EnvClientCertFile, EnvClientKeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, fmt.Errorf("%s and %s go together", EnvClientCertFile, EnvClientKeyFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr, Timeout: e.session.timeout(), CheckRedirect: sameServer}, nil
}

// sameServer refuses a redirect to another scheme, host or port than the
// request's first: the call carries the bearer token, and net/http sends
// Authorization on to any port and scheme of the same host name (and to
// its subdomains), so a redirect to http://host:other-port, or from https
// to plain http, handed the token to another server or to the network.
func sameServer(req *http.Request, via []*http.Request) error {
	if from := via[0].URL; !client.SameOrigin(req.URL, from) {
		return &redirectError{from: withoutUser(from), to: withoutUser(req.URL)}
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// withoutUser is u without its user information, for messages: a
// Location's user name (Redacted keeps it) or password are not for the
// terminal.
func withoutUser(u *url.URL) string {
	v := *u
	v.User = nil
	return v.String()
}

// redirectError is an answer of the API's address that redirects to
// another server. report names it as such: the API was reached.
type redirectError struct{ from, to string }

func (e *redirectError) Error() string {
	return fmt.Sprintf("%s redirects to %s, another server: not followed, so the token is not sent there "+
		"(if the API moved, give its new address as --addr or $%s)", e.from, e.to, EnvAddr)
}
