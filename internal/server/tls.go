package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
)

// tlsState is what the configuration says about TLS, loaded: the
// listeners' certificate, the API's client CAs and the proxy's TLS to
// upstreams.
type tlsState struct {
	// cert is served by the listeners of LOCKBOX_TLS_LISTENERS; nil when
	// every listener speaks plain HTTP.
	cert *tlsfiles.KeyPair
	// clientCAs, when set, make the API require client certificates.
	clientCAs *x509.CertPool
	// upstream configures connections to https upstreams; nil means the
	// system's roots and no client certificate.
	upstream *tls.Config
	// upstreamCert is the certificate upstream presents; nil without one.
	upstreamCert *tlsfiles.KeyPair
}

// loadTLS reads the certificate and CA files the configuration names. A
// file that can't be used stops start-up with the variable's name.
func loadTLS(cfg config.Config, opts Options) (tlsState, error) {
	var st tlsState
	log := opts.Logger.With("component", "tls")
	var err error
	if cfg.TLSCertFile != "" {
		if st.cert, err = tlsfiles.LoadKeyPair(tlsfiles.PairConfig{
			CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile, Setting: "LOCKBOX_TLS_CERT_FILE, LOCKBOX_TLS_KEY_FILE",
			Now: opts.Now, Logger: log,
		}); err != nil {
			return st, err
		}
	}
	if cfg.TLSClientCAFile != "" {
		if st.clientCAs, err = tlsfiles.LoadCertPool(cfg.TLSClientCAFile); err != nil {
			return st, fmt.Errorf("LOCKBOX_TLS_CLIENT_CA_FILE: %w", err)
		}
	}
	if !cfg.Runs(config.ComponentProxy) || (cfg.UpstreamCAFile == "" && cfg.UpstreamClientCertFile == "") {
		return st, nil
	}
	var roots *x509.CertPool
	if cfg.UpstreamCAFile != "" {
		if roots, err = tlsfiles.LoadCertPool(cfg.UpstreamCAFile); err != nil {
			return st, fmt.Errorf("LOCKBOX_UPSTREAM_CA_FILE: %w", err)
		}
	}
	var client *tlsfiles.KeyPair
	if cfg.UpstreamClientCertFile != "" {
		if client, err = tlsfiles.LoadKeyPair(tlsfiles.PairConfig{
			CertFile: cfg.UpstreamClientCertFile, KeyFile: cfg.UpstreamClientKeyFile,
			Setting: "LOCKBOX_UPSTREAM_CLIENT_CERT_FILE, LOCKBOX_UPSTREAM_CLIENT_KEY_FILE", Now: opts.Now, Logger: log,
		}); err != nil {
			return st, err
		}
	}
	st.upstream, st.upstreamCert = tlsfiles.ClientConfig(roots, client), client
	return st, nil
}

// useTLS gives each built server the TLS configuration its listener
// serves, if any. Run serves a server with a TLSConfig over TLS.
func (s *Server) useTLS() {
	if s.tls.cert == nil {
		return
	}
	for _, l := range []struct {
		name config.Listener
		srv  *http.Server
	}{{config.ListenerProxy, s.proxySrv}, {config.ListenerAPI, s.apiSrv}, {config.ListenerMetrics, s.metSrv}} {
		if l.srv == nil || !s.servesTLS(l.name) {
			continue
		}
		var clientCAs *x509.CertPool
		if l.name == config.ListenerAPI {
			// The API's alone: the proxy's callers and Prometheus are
			// not asked for one.
			clientCAs = s.tls.clientCAs
		}
		l.srv.TLSConfig = tlsfiles.ServerConfig(s.tls.cert, clientCAs)
	}
}

// proxyProtocols are the HTTP versions the proxy speaks: HTTP/1.1, and
// HTTP/2 only when negotiated in a TLS handshake (ALPN). Never h2c, over
// plain TCP, neither by prior knowledge nor by Upgrade: the handler's
// screen refuses upgrades, and with UnencryptedHTTP2 off the server never
// reads the h2c preface as HTTP/2. Over HTTP/2 every request is a stream
// that reaches the handler like an HTTP/1.1 request and passes the same
// checks; the protocol itself refuses what HTTP/1.1 has to screen for
// (connection-specific headers, Transfer-Encoding), and the tests in
// proxy/h2_test.go hold the proxy to it.
func proxyProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	return p
}

// serve runs srv on ln, over TLS when useTLS gave srv a TLSConfig (its
// GetCertificate serves the current certificate; ServeTLS adds "h2" and
// "http/1.1" to the ALPN protocols as srv's Protocols allow). It reads
// TLSConfig before Serve, which may set one of its own for HTTP/2.
// Connections that have sent nothing when srv shuts down are closed at
// once (quietListener).
func serve(srv *http.Server, ln net.Listener) error {
	ql := newQuietListener(ln)
	srv.RegisterOnShutdown(ql.closeQuiet)
	ln = ql
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// warnPlainHTTP logs each listener that serves plain HTTP on an address
// other machines can reach: tokens and tenant data would cross the network
// in clear, unless something in front (a mesh, a load balancer) encrypts.
func (s *Server) warnPlainHTTP() {
	for _, l := range []struct {
		setting string
		name    config.Listener
		ln      net.Listener
	}{{"LOCKBOX_PROXY_ADDR", config.ListenerProxy, s.proxyLn}, {"LOCKBOX_API_ADDR", config.ListenerAPI, s.apiLn}, {"LOCKBOX_METRICS_ADDR", config.ListenerMetrics, s.metricsLn}} {
		if l.ln == nil || s.servesTLS(l.name) {
			continue
		}
		if a, ok := l.ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			continue
		}
		s.log.Warn("serving plain HTTP on a non-loopback address: set LOCKBOX_TLS_CERT_FILE and LOCKBOX_TLS_KEY_FILE (and LOCKBOX_TLS_LISTENERS), or encrypt in front of Lockbox",
			"setting", l.setting, "addr", l.ln.Addr().String())
	}
}

// ProxyURL is the proxy's base URL, http or https; empty when the proxy
// doesn't run.
func (s *Server) ProxyURL() string { return s.urlOf(s.proxyLn, config.ListenerProxy) }

// APIURL is the API's base URL, http or https; empty when the API doesn't
// run.
func (s *Server) APIURL() string { return s.urlOf(s.apiLn, config.ListenerAPI) }

// MetricsURL is the metrics address's base URL, http or https.
func (s *Server) MetricsURL() string { return s.urlOf(s.metricsLn, config.ListenerMetrics) }

// urlOf asks the configuration, not the http.Server: a running server
// fills in its own TLSConfig when it sets up HTTP/2, TLS or not.
func (s *Server) urlOf(ln net.Listener, l config.Listener) string {
	if ln == nil {
		return ""
	}
	if s.servesTLS(l) {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// servesTLS reports whether listener l serves TLS.
func (s *Server) servesTLS(l config.Listener) bool { return s.tls.cert != nil && s.cfg.ServesTLS(l) }
