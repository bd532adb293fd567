package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

var (
	alice   = identity.Claims{Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}, TTL: 48 * time.Hour}
	manager = identity.Principal{Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}}
	admin   = identity.Principal{Subject: "admin@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"}
)

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lockbox is one running "lockbox serve".
type lockbox struct {
	srv   *server.Server
	clk   *clock.Fake
	key   ed25519.PrivateKey // signs users' tokens
	cfg   config.Config
	logs  *syncBuffer
	token string // alice's
	// stop is the stop signal: it ends Run's context.
	stop context.CancelFunc
	// wait returns Run's error once Run has returned. The test's cleanup
	// fails a test whose Run ended with an error, unless it waited for
	// that error itself.
	wait   func() error
	waited bool
}

// start runs "lockbox serve" with env on top of what every test needs: a
// Redis, keys and loopback addresses; opts change its Options.
func start(t *testing.T, env map[string]string, opts ...func(*server.Options)) *lockbox {
	t.Helper()
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{
		"LOCKBOX_REDIS_URL":              redistest.URL(t),
		"LOCKBOX_JWT_JWKS_FILE":          jwks,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
		"LOCKBOX_API_ADDR":               "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":             "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":           "127.0.0.1:0",
		"LOCKBOX_SIEM_SINK":              "off",
		// Deadlines of the proxy path, the longest allowed, so that a
		// loaded machine under -race does not turn a permitted call
		// into a 503.
		"LOCKBOX_GRANT_TIMEOUT": "5s",
	}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := config.LoadFor(full, config.ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	lb := &lockbox{clk: clock.NewFake(time.Now().UTC().Truncate(time.Second)), key: key, cfg: cfg, logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	lb.stop = cancel
	o := server.Options{Now: lb.clk.Now, Logger: slog.New(slog.NewTextHandler(lb.logs, nil)), PolicyEvalTimeout: 10 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	lb.srv, err = server.New(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := lb.srv.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	tenanttest.Onboard(t, lb.srv.Tenants, "contoso")
	done := make(chan error, 1)
	go func() { done <- lb.srv.Run(ctx) }()
	var once sync.Once
	var runErr error
	ran := func() error { once.Do(func() { runErr = <-done }); return runErr }
	lb.wait = func() error { lb.waited = true; return ran() }
	t.Cleanup(func() {
		cancel()
		if err := ran(); err != nil && !lb.waited {
			t.Errorf("server: %v", err)
		}
	})
	if lb.token, err = identity.Mint(key, cfg.JWTIssuer, cfg.JWTAudience, alice, lb.clk.Now()); err != nil {
		t.Fatal(err)
	}
	return lb
}

// grant has alice's request for exchange on contoso approved, and returns
// it.
func (lb *lockbox) grant(t *testing.T) grants.Request {
	t.Helper()
	ctx := context.Background()
	r, err := lb.srv.Requests.Create(ctx, grants.Actor{Principal: identity.Principal{Subject: alice.Subject, Roles: alice.Roles}, ClientIP: "198.51.100.1"},
		grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "mailbox will not open", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []identity.Principal{manager, admin} {
		if r, err = lb.srv.Requests.Act(ctx, r.ID, grants.ActionApprove, grants.Actor{Principal: p, ClientIP: "198.51.100.2"}, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	if r.State != grants.StateApproved {
		t.Fatalf("request is %s", r.State)
	}
	return r
}

// upstream is an https tenant service that requires a client certificate
// of clientCA and records the name on it.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	cns []string
}

func newUpstream(t *testing.T, ca, clientCA *tlstest.CA) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.cns = append(u.cns, r.TLS.PeerCertificates[0].Subject.CommonName)
		u.mu.Unlock()
		_, _ = io.WriteString(w, `{"value":[]}`)
	}))
	u.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "exchange.internal").TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()}
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) clients() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.cns...)
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.pem")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSEverywhere runs "lockbox serve" as a cluster would with
// cert-manager: every listener on TLS with a certificate from mounted
// Secret files, client certificates required by the API, and the proxy
// verifying its https upstream against a private CA and presenting its own
// client certificate there. Then the certificate is renewed in place.
func TestTLSEverywhere(t *testing.T) {
	serving := tlstest.NewCA(t, "lockbox serving CA")
	clients := tlstest.NewCA(t, "API clients CA")
	upstreamCA := tlstest.NewCA(t, "tenant services CA")
	proxyClients := tlstest.NewCA(t, "proxy clients CA")

	first := serving.Server(t, "lockbox")
	listenerFiles := serving.WriteFiles(t, first)
	proxyFiles := proxyClients.WriteFiles(t, proxyClients.Client(t, "lockbox-proxy"))
	up := newUpstream(t, upstreamCA, proxyClients)

	lb := start(t, map[string]string{
		"LOCKBOX_TLS_CERT_FILE":             listenerFiles.CertFile,
		"LOCKBOX_TLS_KEY_FILE":              listenerFiles.KeyFile,
		"LOCKBOX_TLS_CLIENT_CA_FILE":        writeFile(t, clients.PEM),
		"LOCKBOX_UPSTREAMS":                 "exchange=" + up.srv.URL,
		"LOCKBOX_UPSTREAM_CA_FILE":          writeFile(t, upstreamCA.PEM),
		"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE": proxyFiles.CertFile,
		"LOCKBOX_UPSTREAM_CLIENT_KEY_FILE":  proxyFiles.KeyFile,
	})
	for name, u := range map[string]string{"api": lb.srv.APIURL(), "proxy": lb.srv.ProxyURL(), "metrics": lb.srv.MetricsURL()} {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("%s URL %s, want https", name, u)
		}
	}
	if strings.Contains(lb.logs.String(), "serving plain HTTP") {
		t.Errorf("warned of plain HTTP:\n%s", lb.logs)
	}
	apiCert := clients.Client(t, "support-console").TLS
	client := func(certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serving.Pool(), Certificates: certs}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	get := func(c *http.Client, url, token string) (*http.Response, error) {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}

	// Metrics and health over TLS, no client certificate asked.
	resp, err := get(client(), lb.srv.MetricsURL()+"/readyz", "")
	if err != nil || resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("metrics over TLS: %v %v", resp, err)
	}
	if resp, err := http.Get("http://" + lb.srv.MetricsAddr() + "/readyz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("the metrics listener answered plain HTTP")
	}

	// The API: a client certificate of the client CA admits the
	// connection; the bearer token still says who calls.
	if resp, err := get(client(apiCert), lb.srv.APIURL()+"/v1/requests", lb.token); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("API with a client certificate and a token: %v %v", resp, err)
	}
	if resp, err := get(client(apiCert), lb.srv.APIURL()+"/v1/requests", ""); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API with a client certificate and no token: %v %v, want 401", resp, err)
	}
	for name, certs := range map[string][]tls.Certificate{
		"no client certificate":        nil,
		"a certificate of another CA":  {tlstest.NewCA(t, "rogue").Client(t, "mallory").TLS},
		"the serving CA's certificate": {serving.Client(t, "mallory").TLS},
	} {
		if resp, err := get(client(certs...), lb.srv.APIURL()+"/v1/requests", lb.token); err == nil {
			t.Errorf("API with %s: %s, want the connection refused", name, resp.Status)
		}
	}

	// The proxy: HTTP/2 over TLS, no client certificate asked; the
	// upstream is verified against its CA and sees the proxy's client
	// certificate.
	lb.grant(t)
	resp, err = get(client(), lb.srv.ProxyURL()+"/exchange/tenants/contoso/mailboxes", lb.token)
	if err != nil || resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("proxy call: %v %v, want 200 over HTTP/2", resp, err)
	}
	if got := up.clients(); len(got) != 1 || got[0] != "lockbox-proxy" {
		t.Fatalf("the upstream saw client certificates %q", got)
	}

	// cert-manager renews the certificate: new connections to every
	// listener get the new one once the check interval has passed.
	second := serving.Server(t, "lockbox")
	listenerFiles.Update(t, second.CertPEM, second.KeyPEM, serving.PEM)
	lb.clk.Advance(tlsfiles.DefaultCheckInterval)
	for name, addr := range map[string]string{"api": lb.srv.APIAddr(), "proxy": lb.srv.ProxyAddr(), "metrics": lb.srv.MetricsAddr()} {
		if got := servedSerial(t, addr, serving.Pool(), apiCert); got != second.Cert.SerialNumber.String() {
			t.Errorf("%s serves serial %s after renewal, want %s", name, got, second.Cert.SerialNumber)
		}
	}
	// A broken renewal is refused and logged; the last good certificate
	// keeps serving.
	listenerFiles.Update(t, first.CertPEM, second.KeyPEM, serving.PEM)
	lb.clk.Advance(tlsfiles.DefaultCheckInterval)
	if got := servedSerial(t, lb.srv.ProxyAddr(), serving.Pool(), apiCert); got != second.Cert.SerialNumber.String() {
		t.Errorf("after a broken renewal the proxy serves serial %s, want %s", got, second.Cert.SerialNumber)
	}
	if !strings.Contains(lb.logs.String(), "TLS certificate files changed but can't be used") {
		t.Errorf("no error logged for the broken renewal:\n%s", lb.logs)
	}
}

// servedSerial is the serial number of the certificate a listener serves
// to a new connection.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool, cert tls.Certificate) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSStartupErrors: a certificate Lockbox can't use stops start-up
// with the variable's name.
func TestTLSStartupErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, b := ca.Server(t, "a"), ca.Server(t, "b")
	cases := map[string]struct {
		env  map[string]string
		want string
	}{
		"key of another certificate": {map[string]string{"LOCKBOX_TLS_CERT_FILE": writeFile(t, a.CertPEM), "LOCKBOX_TLS_KEY_FILE": writeFile(t, b.KeyPEM)},
			"LOCKBOX_TLS_CERT_FILE, LOCKBOX_TLS_KEY_FILE: "},
		"client CA file holding a key": {map[string]string{"LOCKBOX_TLS_CERT_FILE": writeFile(t, a.CertPEM), "LOCKBOX_TLS_KEY_FILE": writeFile(t, a.KeyPEM),
			"LOCKBOX_TLS_CLIENT_CA_FILE": writeFile(t, a.KeyPEM)}, "LOCKBOX_TLS_CLIENT_CA_FILE: "},
		"upstream CA not PEM": {map[string]string{"LOCKBOX_UPSTREAMS": "exchange=https://127.0.0.1:1", "LOCKBOX_UPSTREAM_CA_FILE": writeFile(t, []byte("not PEM"))},
			"LOCKBOX_UPSTREAM_CA_FILE: "},
		"upstream client key mismatched": {map[string]string{"LOCKBOX_UPSTREAMS": "exchange=https://127.0.0.1:1",
			"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE": writeFile(t, a.CertPEM), "LOCKBOX_UPSTREAM_CLIENT_KEY_FILE": writeFile(t, b.KeyPEM)},
			"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE, LOCKBOX_UPSTREAM_CLIENT_KEY_FILE: "},
	}
	dir := t.TempDir()
	key, _ := identity.GenerateDevKey()
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"LOCKBOX_REDIS_URL": "redis://127.0.0.1:1", "LOCKBOX_JWT_JWKS_FILE": jwks,
				"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"), "LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := config.LoadFor(env, config.ModeServe)
			if err != nil {
				t.Fatal(err)
			}
			// The files are read before Redis is dialled.
			_, err = server.New(context.Background(), cfg, server.Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}

// TestPlainHTTP: without a certificate "lockbox serve" speaks plain HTTP,
// warns for each listener other machines can reach, and its proxy never
// speaks HTTP/2 in clear.
func TestPlainHTTP(t *testing.T) {
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":  "exchange=http://127.0.0.1:1",
		"LOCKBOX_PROXY_ADDR": "0.0.0.0:0",
	})
	logs := lb.logs.String()
	if n := strings.Count(logs, "serving plain HTTP on a non-loopback address"); n != 1 || !strings.Contains(logs, "setting=LOCKBOX_PROXY_ADDR") {
		t.Errorf("want one warning, about LOCKBOX_PROXY_ADDR:\n%s", logs)
	}
	if !strings.HasPrefix(lb.srv.APIURL(), "http://127.0.0.1:") {
		t.Errorf("API URL %s", lb.srv.APIURL())
	}
	_, port, _ := net.SplitHostPort(lb.srv.ProxyAddr())
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	_ = http2.NewFramer(c, c).WriteSettings()
	reply, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("read: %v", err)
	}
	if !bytes.HasPrefix(reply, []byte("HTTP/1.1 ")) {
		t.Fatalf("reply to the HTTP/2 preface: %q, want an HTTP/1.1 refusal", reply)
	}
}

// TestProxyStalledClients: the proxy listener of "lockbox serve" gives up on
// a client that stalls, over either protocol, where net/http alone would
// wait for as long as the client likes; a call that keeps moving is not
// cut however long it takes.
func TestProxyStalledClients(t *testing.T) {
	// The download's gaps are an eighth of the timeout, and a deadline
	// moved at most every quarter of it gives a gap three quarters: a
	// machine must stall the upstream six times as long as it asked
	// before the download is cut (at a quarter and one second, a loaded
	// machine sometimes did).
	const timeout = 2 * time.Second
	const chunks = 12
	serving := tlstest.NewCA(t, "lockbox serving CA")
	files := serving.WriteFiles(t, serving.Server(t, "lockbox"))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range chunks {
			if i > 0 {
				time.Sleep(timeout / 8)
			}
			_, _ = io.WriteString(w, "chunk\n")
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(upstream.Close)
	lb := start(t, map[string]string{
		"LOCKBOX_TLS_CERT_FILE": files.CertFile, "LOCKBOX_TLS_KEY_FILE": files.KeyFile,
		"LOCKBOX_UPSTREAMS": "exchange=" + upstream.URL,
	}, func(o *server.Options) { o.ProxyClientTimeout = timeout })
	lb.grant(t)
	addr := lb.srv.ProxyAddr()
	dial := func(t *testing.T, proto string) *tls.Conn {
		t.Helper()
		c := dialTLS(t, addr, &tls.Config{RootCAs: serving.Pool(), NextProtos: []string{proto}}, 5*timeout)
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * timeout))
		return c
	}

	t.Run("HTTP/1.1 body never sent", func(t *testing.T) {
		c := dial(t, "http/1.1")
		if _, err := io.WriteString(c, "POST /exchange/tenants/contoso/mailboxes HTTP/1.1\r\nHost: lockbox\r\nContent-Length: 100\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if reply, err := io.ReadAll(c); err != nil || !bytes.HasPrefix(reply, []byte("HTTP/1.1 401 ")) {
			t.Fatalf("%q, %v; want 401 and the connection closed", reply, err)
		}
	})
	t.Run("HTTP/2 window never opened", func(t *testing.T) {
		c := dial(t, "h2")
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(c, c)
		if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
			t.Fatal(err)
		}
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "lockbox"}, {":path", "/exchange/tenants/contoso/mailboxes"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("no reset of the stalled stream: %v", err)
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
				return
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		}
	})
	t.Run("a download longer than the timeout", func(t *testing.T) {
		for _, h2 := range []bool{false, true} {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serving.Pool()}, ForceAttemptHTTP2: h2}
			t.Cleanup(tr.CloseIdleConnections)
			req, _ := http.NewRequest("GET", lb.srv.ProxyURL()+"/exchange/tenants/contoso/mailboxes", nil)
			req.Header.Set("Authorization", "Bearer "+lb.token)
			started := time.Now()
			res, err := (&http.Client{Transport: tr, Timeout: 10 * timeout}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK || strings.Count(string(body), "chunk") != chunks || time.Since(started) < timeout {
				t.Errorf("%s after %s: %s %q %v; want 200 and all %d chunks", res.Proto, time.Since(started), res.Status, body, err, chunks)
			}
		}
	})
}

// dialTLS opens a TLS connection to addr, trying again while patience
// lasts when the handshake fails. net/http bounds a TLS handshake by the
// least of the server's read and write timeouts, so with the WriteTimeout
// these tests shorten to a fraction of a second a loaded machine now and
// then has the server cut the handshake before any request: that is no
// answer of the server's to what the test asks, so the test asks again.
// Under TLS 1.3 the client's side of the handshake ends before the
// server's, so the cut may show only later, as the connection closed
// before the server said anything: see serverSpoke.
func dialTLS(t *testing.T, addr string, cfg *tls.Config, patience time.Duration) *tls.Conn {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Deadline: deadline}, "tcp", addr, cfg)
		if err == nil {
			_ = c.SetDeadline(deadline)
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS connection to %s within %s: %v", addr, patience, err)
		}
		t.Logf("TLS handshake failed, trying again: %v", err)
	}
}

// errHandshakeCut is what an attempt returns when the connection failed
// before the server said anything on it: see dialTLS.
var errHandshakeCut = errors.New("the connection closed before the server said anything")

// serverSpoke turns err, the error of a read or write on a connection
// the server has said nothing on yet, into errHandshakeCut, unless it is
// the test's own deadline passing.
func serverSpoke(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", errHandshakeCut, err)
}

// h2StalledStream opens an HTTP/2 connection to addr that never opens its
// flow-control window (SETTINGS_INITIAL_WINDOW_SIZE 0), asks for path on
// stream 1 with header, and fails unless the server resets the stream
// within patience: the stream's handler, blocked on its last write, is
// released. It returns how long that took, from the request's start.
func h2StalledStream(t *testing.T, addr string, pool *x509.CertPool, path string, patience time.Duration, header ...[2]string) time.Duration {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		took, err := h2StalledStreamOnce(t, addr, pool, path, time.Until(deadline), header...)
		if err == nil {
			return took
		}
		if !errors.Is(err, errHandshakeCut) || time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", path, err)
		}
		t.Logf("GET %s: trying again: %v", path, err)
	}
}

// h2StalledStreamOnce is one attempt of h2StalledStream. Until the
// server's SETTINGS, which it sends once its side of the handshake is
// done, a failed read or write is errHandshakeCut.
func h2StalledStreamOnce(t *testing.T, addr string, pool *x509.CertPool, path string, patience time.Duration, header ...[2]string) (time.Duration, error) {
	t.Helper()
	c := dialTLS(t, addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}}, patience)
	defer c.Close()
	if got := c.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Fatalf("negotiated %q, want h2", got)
	}
	started := time.Now()
	spoke := false
	cut := func(err error) error {
		if spoke {
			return err
		}
		return serverSpoke(err)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return 0, cut(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		return 0, cut(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "lockbox"}, {":path", path}}, header...)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
		return 0, cut(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return 0, cut(fmt.Errorf("no reset of the stalled stream after %s: %w", time.Since(started), err))
		}
		spoke = true
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return time.Since(started), nil
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() && len(f.Data()) == 0 {
				t.Fatalf("GET %s: the answer has no body: nothing to stall on", path)
			}
		}
	}
}

// TestAPIStalledClients: the API listener of "lockbox serve" (the /v1 API
// and the admin center) gives up on an HTTP/2 client that never opens its
// flow-control window once its WriteTimeout passed, where it used to hold
// each stream's handler on its last write for as long as the client
// liked. (The audit exports, which move that deadline on while they make
// progress, are tested in package api.)
func TestAPIStalledClients(t *testing.T) {
	const timeout = 500 * time.Millisecond
	serving := tlstest.NewCA(t, "lockbox serving CA")
	files := serving.WriteFiles(t, serving.Server(t, "lockbox"))
	lb := start(t, map[string]string{
		"LOCKBOX_TLS_CERT_FILE": files.CertFile, "LOCKBOX_TLS_KEY_FILE": files.KeyFile,
		"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1",
	}, func(o *server.Options) { o.APIWriteTimeout = timeout })
	if got := lb.srv.APIHTTPServer().WriteTimeout; got != timeout {
		t.Errorf("API WriteTimeout %s, want %s", got, timeout)
	}
	for _, c := range []struct {
		path   string
		header [][2]string
	}{
		{"/v1/requests", nil}, // 401: no token
		{"/v1/requests", [][2]string{{"authorization", "Bearer " + lb.token}}},
		{"/console/signin", nil},
	} {
		took := h2StalledStream(t, lb.srv.APIAddr(), serving.Pool(), c.path, 20*timeout, c.header...)
		t.Logf("GET %s (%d header fields): stream reset after %s", c.path, len(c.header), took)
	}
}

// TestAPIWriteTimeoutDefault: without Options.APIWriteTimeout the API
// listener's WriteTimeout is DefaultAPIWriteTimeout.
func TestAPIWriteTimeoutDefault(t *testing.T) {
	lb := start(t, map[string]string{"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"})
	if got := lb.srv.APIHTTPServer().WriteTimeout; got != server.DefaultAPIWriteTimeout {
		t.Errorf("API WriteTimeout %s, want %s", got, server.DefaultAPIWriteTimeout)
	}
}

// TestMetricsListenerTimeouts: the metrics address's server has a read,
// a write and an idle timeout, where it used to have a header timeout
// only. With them shortened: an HTTP/2 scrape whose client never opens its
// flow-control window is reset, and a kept-alive connection left idle is
// closed; with its own, "lockbox serve" builds it.
func TestMetricsListenerTimeouts(t *testing.T) {
	lb := start(t, map[string]string{"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"})
	met := lb.srv.MetricsHTTPServer()
	got := [4]time.Duration{met.ReadHeaderTimeout, met.ReadTimeout, met.WriteTimeout, met.IdleTimeout}
	if got != server.DefaultMetricsTimeouts {
		t.Errorf("metrics timeouts (read header, read, write, idle) %v, want %v", got, server.DefaultMetricsTimeouts)
	}
	for i, d := range got {
		if d <= 0 {
			t.Errorf("metrics timeout %d is %s: unbounded", i, d)
		}
	}

	const timeout = 300 * time.Millisecond
	serving := tlstest.NewCA(t, "lockbox serving CA")
	ln := serveMetricsTLS(t, met.Handler, timeout, serving)

	t.Run("HTTP/2 window never opened", func(t *testing.T) {
		h2StalledStream(t, ln.Addr().String(), serving.Pool(), "/metrics", 20*timeout)
	})
	t.Run("idle keep-alive connection", func(t *testing.T) {
		deadline := time.Now().Add(20 * timeout)
		var br *bufio.Reader
		var res *http.Response
		for {
			c := dialTLS(t, ln.Addr().String(), &tls.Config{RootCAs: serving.Pool(), NextProtos: []string{"http/1.1"}}, time.Until(deadline))
			defer c.Close()
			_, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: lockbox\r\n\r\n")
			if err == nil {
				br = bufio.NewReader(c)
				res, err = http.ReadResponse(br, nil)
			}
			if err == nil {
				break
			}
			// Until its answer, the server said nothing on the connection.
			if err := serverSpoke(err); !errors.Is(err, errHandshakeCut) || time.Now().After(deadline) {
				t.Fatal(err)
			}
			t.Logf("trying again: %v", err)
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil || res.StatusCode != http.StatusOK || res.Close {
			t.Fatalf("%s, close %t, %v: want 200 on a kept-alive connection", res.Status, res.Close, err)
		}
		idle := time.Now()
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after %s idle: read %d, %v; want the connection closed", time.Since(idle), n, err)
		}
		t.Logf("closed after %s idle", time.Since(idle))
	})
}

// serveMetricsTLS serves h as the metrics listener does (MetricsServer,
// its timeouts all timeout), over TLS with a certificate of serving, until
// the test ends, and returns its listener.
func serveMetricsTLS(t *testing.T, h http.Handler, timeout time.Duration, serving *tlstest.CA) net.Listener {
	t.Helper()
	srv := server.MetricsServer(h, timeout)
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{serving.Server(t, "lockbox").TLS}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- server.Serve(srv, ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln
}
