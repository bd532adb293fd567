package server

import (
	"net/http"
	"time"

	"github.com/lockbox-oss/lockbox/internal/httptimeouts"
)

// MetricsServer is the metrics address's server with every timeout d, for
// the tests of package server_test.
func MetricsServer(h http.Handler, d time.Duration) *http.Server {
	return metricsServer(h, nil, httptimeouts.Timeouts{ReadHeader: d, Read: d, Write: d, Idle: d})
}

// MetricsHTTPServer is the server s built for the metrics address.
func (s *Server) MetricsHTTPServer() *http.Server { return s.metSrv }

// APIHTTPServer is the server s built for the API address.
func (s *Server) APIHTTPServer() *http.Server { return s.apiSrv }

// Serve is serve.
var Serve = serve

// DefaultMetricsTimeouts are the metrics address's timeouts: read header,
// read, write, idle.
var DefaultMetricsTimeouts = [4]time.Duration{metricsTimeouts.ReadHeader, metricsTimeouts.Read, metricsTimeouts.Write, metricsTimeouts.Idle}
