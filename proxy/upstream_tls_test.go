package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// tlsUpstream is an https upstream that records who connected and how.
type tlsUpstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []tlsSeen
}

type tlsSeen struct {
	proto      string
	clientCN   string // "" without a client certificate
	requestURI string
	header     http.Header
}

func newTLSUpstream(t *testing.T, cfg *tls.Config) *tlsUpstream {
	t.Helper()
	u := &tlsUpstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := tlsSeen{proto: r.Proto, requestURI: r.RequestURI, header: r.Header.Clone()}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			s.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		u.mu.Lock()
		u.got = append(u.got, s)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	u.srv.TLS = cfg
	// The refused handshakes are the point of some cases.
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.srv.EnableHTTP2 = true
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *tlsUpstream) seen() []tlsSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]tlsSeen(nil), u.got...)
}

// behind puts exchange at up, with the proxy's TLS to it built from
// upstreamTLS.
func behind(up *tlsUpstream, upstreamTLS *tls.Config) envOption {
	return func(e *testEnv, c *Config) {
		u, err := url.Parse(up.srv.URL + "/api/exchange")
		if err != nil {
			e.t.Fatal(err)
		}
		c.Upstreams["exchange"] = u
		c.UpstreamTLS = upstreamTLS
	}
}

// TestUpstreamTLS: an https upstream is verified against the configured
// roots, and the proxy presents its client certificate to an upstream that
// requires one. An upstream the proxy can't verify, or one that refuses
// the proxy, gets nothing: the call, already permitted and audited, is 502
// upstream_unavailable.
func TestUpstreamTLS(t *testing.T) {
	upstreamCA := tlstest.NewCA(t, "upstream CA")
	proxyClients := tlstest.NewCA(t, "proxy client CA")
	serverCert := upstreamCA.Server(t, "exchange.internal").TLS
	files := proxyClients.WriteFiles(t, proxyClients.Client(t, "lockbox-proxy"))
	clientPair, err := tlsfiles.LoadKeyPair(tlsfiles.PairConfig{CertFile: files.CertFile, KeyFile: files.KeyFile, Setting: "test"})
	if err != nil {
		t.Fatal(err)
	}
	verifying := &tls.Config{Certificates: []tls.Certificate{serverCert}}
	requiring := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: proxyClients.Pool()}

	tests := []struct {
		name        string
		upstream    *tls.Config
		upstreamTLS *tls.Config
		// wantCN is the client certificate the upstream sees; wantOK false
		// means the call fails with 502.
		wantOK bool
		wantCN string
	}{
		{name: "verified against the configured CA", upstream: verifying, upstreamTLS: tlsfiles.ClientConfig(upstreamCA.Pool(), nil), wantOK: true},
		{name: "system roots don't know the upstream's CA", upstream: verifying, upstreamTLS: nil},
		{name: "another CA configured", upstream: verifying, upstreamTLS: tlsfiles.ClientConfig(tlstest.NewCA(t, "other").Pool(), nil)},
		{name: "client certificate presented", upstream: requiring, upstreamTLS: tlsfiles.ClientConfig(upstreamCA.Pool(), clientPair), wantOK: true, wantCN: "lockbox-proxy"},
		{name: "upstream requires a client certificate the proxy lacks", upstream: requiring, upstreamTLS: tlsfiles.ClientConfig(upstreamCA.Pool(), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newTLSUpstream(t, tt.upstream)
			e := newTestEnv(t, behind(up, tt.upstreamTLS))
			req := e.grantFor(alice, "contoso", "exchange", time.Hour)
			res := e.send(as(alice, "GET", mailboxes, hostileHeaders...)(e))
			// Permitted either way: the record is written before the
			// upstream is dialled.
			recs, err := e.audit.List(context.Background(), "contoso", 1)
			if err != nil || len(recs) != 1 || recs[0].Operation != "Get-Mailbox" || recs[0].LockboxRequestId != req.ID {
				t.Fatalf("newest audit record %+v %v: want the call's", recs, err)
			}
			seen := up.seen()
			if !tt.wantOK {
				if res.status != http.StatusBadGateway || res.errorCode(t) != string(ReasonUpstreamUnavailable) {
					t.Fatalf("%d %s, want 502 upstream_unavailable", res.status, res.body)
				}
				if len(seen) != 0 {
					t.Fatalf("the upstream received %d requests", len(seen))
				}
				if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionError)); got != 1 {
					t.Errorf("requests{exchange,error} = %v", got)
				}
				return
			}
			if res.status != http.StatusOK {
				t.Fatalf("%d %s", res.status, res.body)
			}
			if len(seen) != 1 {
				t.Fatalf("the upstream received %d requests", len(seen))
			}
			s := seen[0]
			if s.clientCN != tt.wantCN || s.requestURI != "/api/exchange/tenants/contoso/mailboxes" {
				t.Errorf("upstream saw client %q, target %q", s.clientCN, s.requestURI)
			}
			// An https upstream gets HTTP/2 when it offers it, and the
			// header set is the proxy's whatever the protocol.
			if s.proto != "HTTP/2.0" {
				t.Errorf("upstream spoke %s, want HTTP/2.0", s.proto)
			}
			checkOutboundHeaders(t, e, s.header, req, e.clk.Now(), "GET", "/api/exchange/tenants/contoso/mailboxes", "Get-Mailbox")
			if s.header.Get(grantsig.Header) == "" {
				t.Error("no grant header")
			}
		})
	}
}
