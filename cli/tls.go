package cli

import (
	"crypto/tls"
	"fmt"
	"net/http"

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

// httpClient returns the HTTP client the TLS settings ask for; nil, for the
// API client's default, when none is set.
func (e *env) httpClient() (*http.Client, error) {
	caFile, certFile, keyFile := e.getenv(EnvCAFile), e.getenv(EnvClientCertFile), e.getenv(EnvClientKeyFile)
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
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
	return &http.Client{Transport: tr, Timeout: client.DefaultTimeout}, nil
}
