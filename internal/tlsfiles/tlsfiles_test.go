package tlsfiles_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// logBuffer collects log lines; safe for concurrent handshakes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), "msg=\""+msg)
}

type fixture struct {
	ca    *tlstest.CA
	files tlstest.Files
	clk   *clock.Fake
	logs  *logBuffer
	pair  *tlsfiles.KeyPair
}

func newFixture(t *testing.T, first tlstest.Leaf, ca *tlstest.CA) *fixture {
	t.Helper()
	f := &fixture{ca: ca, clk: clock.NewFake(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)), logs: &logBuffer{}}
	f.files = ca.WriteFiles(t, first)
	var err error
	f.pair, err = tlsfiles.LoadKeyPair(tlsfiles.PairConfig{
		CertFile: f.files.CertFile, KeyFile: f.files.KeyFile, Setting: "LOCKBOX_TLS_CERT_FILE",
		Now: f.clk.Now, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func serialOf(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

// TestRotation: a renewed pair is served once the check interval has
// passed, and not before; the files are swapped the way the kubelet swaps
// a Secret's.
func TestRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, b := ca.Server(t, "a"), ca.Server(t, "b")
	f := newFixture(t, a, ca)
	if got := serialOf(t, f.pair.Certificate()); got != a.Cert.SerialNumber.String() {
		t.Fatalf("serving %s, want a", got)
	}
	f.files.Update(t, b.CertPEM, b.KeyPEM, ca.PEM)
	f.clk.Advance(tlsfiles.DefaultCheckInterval - time.Nanosecond)
	if got := serialOf(t, f.pair.Certificate()); got != a.Cert.SerialNumber.String() {
		t.Fatalf("within the check interval: serving %s, want still a", got)
	}
	f.clk.Advance(time.Nanosecond)
	if got := serialOf(t, f.pair.Certificate()); got != b.Cert.SerialNumber.String() {
		t.Fatalf("after the check interval: serving %s, want b", got)
	}
	if n := f.logs.count("TLS certificate reloaded"); n != 1 {
		t.Errorf("%d reload log lines, want 1:\n%s", n, f.logs.b.String())
	}
	// Unchanged files: nothing to reload.
	f.clk.Advance(time.Hour)
	f.pair.Certificate()
	if n := f.logs.count("TLS certificate reloaded"); n != 1 {
		t.Errorf("%d reload log lines after a check of unchanged files, want 1", n)
	}
}

// TestBrokenRotationKeepsThePreviousPair: a new pair that can't be used is
// refused with one error line, however often it is looked at, and the
// previous certificate keeps serving; a good pair after it is taken.
func TestBrokenRotationKeepsThePreviousPair(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, b, c := ca.Server(t, "a"), ca.Server(t, "b"), ca.Server(t, "c")
	broken := []struct {
		name            string
		certPEM, keyPEM []byte
	}{
		{"key of another certificate", b.CertPEM, a.KeyPEM},
		{"garbage", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), b.KeyPEM},
		{"certificate without key", b.CertPEM, b.CertPEM},
		{"key without certificate", b.KeyPEM, b.KeyPEM},
		// Written up to the middle of the chain's second certificate: the
		// leaf is whole and matches the key, the chain is not.
		{"chain cut short", append(slices.Clone(b.CertPEM), ca.PEM[:len(ca.PEM)/2]...), b.KeyPEM},
	}
	for _, tc := range broken {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, a, ca)
			f.files.Update(t, tc.certPEM, tc.keyPEM, ca.PEM)
			for range 3 {
				f.clk.Advance(tlsfiles.DefaultCheckInterval)
				if got := serialOf(t, f.pair.Certificate()); got != a.Cert.SerialNumber.String() {
					t.Fatalf("serving %s after a broken rotation, want the previous certificate", got)
				}
			}
			if n := f.logs.count("TLS certificate files changed but can't be used"); n != 1 {
				t.Errorf("%d error lines, want 1:\n%s", n, f.logs.b.String())
			}
			f.files.Update(t, c.CertPEM, c.KeyPEM, ca.PEM)
			f.clk.Advance(tlsfiles.DefaultCheckInterval)
			if got := serialOf(t, f.pair.Certificate()); got != c.Cert.SerialNumber.String() {
				t.Fatalf("serving %s after a good rotation, want c", got)
			}
		})
	}
	t.Run("files gone", func(t *testing.T) {
		f := newFixture(t, a, ca)
		if err := os.Remove(filepath.Join(f.files.Dir, "..data")); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			f.clk.Advance(tlsfiles.DefaultCheckInterval)
			if got := serialOf(t, f.pair.Certificate()); got != a.Cert.SerialNumber.String() {
				t.Fatalf("serving %s without files, want the previous certificate", got)
			}
		}
		if n := f.logs.count("TLS certificate files changed but can't be used"); n != 1 {
			t.Errorf("%d error lines, want 1", n)
		}
	})
}

// TestHandshakes: a listener configured with ServerConfig serves the
// rotated certificate to new connections, with TLS 1.2 as the floor.
func TestHandshakes(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, b := ca.Server(t, "a"), ca.Server(t, "b")
	f := newFixture(t, a, ca)
	addr := serveTLS(t, tlsfiles.ServerConfig(f.pair, nil))

	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	if got := handshake(t, addr, client); got != a.Cert.SerialNumber.String() {
		t.Fatalf("first handshake: certificate %s, want a", got)
	}
	f.files.Update(t, b.CertPEM, b.KeyPEM, ca.PEM)
	f.clk.Advance(tlsfiles.DefaultCheckInterval)
	if got := handshake(t, addr, client); got != b.Cert.SerialNumber.String() {
		t.Fatalf("after rotation: certificate %s, want b", got)
	}

	old := client.Clone()
	old.MaxVersion = tls.VersionTLS11
	if _, err := dial(addr, old); err == nil {
		t.Error("a TLS 1.1 client got a connection")
	}
	other := tlstest.NewCA(t, "other")
	if _, err := dial(addr, &tls.Config{RootCAs: other.Pool(), ServerName: "127.0.0.1"}); err == nil {
		t.Error("a client trusting another CA accepted the certificate")
	}
}

// TestClientCertificates: with client CAs, a handshake without a client
// certificate, or with one from another CA, fails.
func TestClientCertificates(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	clients := tlstest.NewCA(t, "clients")
	f := newFixture(t, ca.Server(t, "server"), ca)
	addr := serveTLS(t, tlsfiles.ServerConfig(f.pair, clients.Pool()))

	good := clients.Client(t, "support-console")
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{good.TLS}}); err != nil {
		t.Fatalf("client certificate of the client CA: %v", err)
	}
	for name, certs := range map[string][]tls.Certificate{
		"no client certificate":             nil,
		"certificate of another CA":         {tlstest.NewCA(t, "rogue").Client(t, "mallory").TLS},
		"the server's CA, not the clients'": {ca.Client(t, "mallory").TLS},
	} {
		if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: certs}); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
}

// TestClientConfig: the upstream side verifies against the given roots and
// presents the pair's certificate, rotated like a server's.
func TestClientConfig(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	clientCA := tlstest.NewCA(t, "proxy clients")
	one, two := clientCA.Client(t, "proxy-1"), clientCA.Client(t, "proxy-2")
	f := newFixture(t, one, clientCA)
	upstream := ca.Server(t, "upstream")
	seen := make(chan string, 2)
	addr := serveTLSFunc(t, &tls.Config{
		Certificates: []tls.Certificate{upstream.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA.Pool(),
	}, func(c *tls.Conn) { seen <- c.ConnectionState().PeerCertificates[0].Subject.CommonName })

	cfg := tlsfiles.ClientConfig(ca.Pool(), f.pair)
	cfg.ServerName = "127.0.0.1"
	if _, err := dial(addr, cfg); err != nil {
		t.Fatal(err)
	}
	if cn := <-seen; cn != "proxy-1" {
		t.Fatalf("upstream saw client %q", cn)
	}
	f.files.Update(t, two.CertPEM, two.KeyPEM, clientCA.PEM)
	f.clk.Advance(tlsfiles.DefaultCheckInterval)
	if _, err := dial(addr, cfg); err != nil {
		t.Fatal(err)
	}
	if cn := <-seen; cn != "proxy-2" {
		t.Fatalf("after rotation the upstream saw client %q", cn)
	}
	wrong := tlsfiles.ClientConfig(tlstest.NewCA(t, "elsewhere").Pool(), f.pair)
	wrong.ServerName = "127.0.0.1"
	if _, err := dial(addr, wrong); err == nil {
		t.Error("connected to an upstream whose certificate is not from the configured CA")
	}
}

// TestConcurrentRotation runs handshakes while the files change, for the
// race detector: every handshake gets one of the pairs, whole.
func TestConcurrentRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	leaves := []tlstest.Leaf{ca.Server(t, "a"), ca.Server(t, "b"), ca.Server(t, "c")}
	f := newFixture(t, leaves[0], ca)
	valid := map[string]bool{}
	for _, l := range leaves {
		valid[l.Cert.SerialNumber.String()] = true
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := f.pair.Certificate()
				leaf, err := x509.ParseCertificate(c.Certificate[0])
				if err != nil || !valid[leaf.SerialNumber.String()] || c.Leaf == nil || c.Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
					t.Error("served a certificate that is none of the pairs")
					return
				}
			}
		})
	}
	for i := range 12 {
		l := leaves[i%len(leaves)]
		f.files.Update(t, l.CertPEM, l.KeyPEM, ca.PEM)
		f.clk.Advance(tlsfiles.DefaultCheckInterval)
	}
	close(stop)
	wg.Wait()
}

func TestLoadKeyPairErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, b := ca.Server(t, "a"), ca.Server(t, "b")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string][2]string{
		"missing key":     {write("a.crt", a.CertPEM), filepath.Join(dir, "nope.key")},
		"mismatched key":  {write("a2.crt", a.CertPEM), write("b.key", b.KeyPEM)},
		"empty":           {write("empty.crt", nil), write("a.key", a.KeyPEM)},
		"CA file as cert": {write("ca.crt", ca.PEM), write("a2.key", a.KeyPEM)},
		"chain cut short": {write("a3.crt", append(slices.Clone(a.CertPEM), ca.PEM[:len(ca.PEM)/2]...)), write("a3.key", a.KeyPEM)},
		"key cut short":   {write("a4.crt", a.CertPEM), write("a4.key", a.KeyPEM[:len(a.KeyPEM)/2])},
	}
	for name, files := range cases {
		_, err := tlsfiles.LoadKeyPair(tlsfiles.PairConfig{CertFile: files[0], KeyFile: files[1], Setting: "LOCKBOX_TLS_CERT_FILE"})
		if err == nil || !strings.HasPrefix(err.Error(), "LOCKBOX_TLS_CERT_FILE: ") {
			t.Errorf("%s: error %v, want one naming the setting", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error %v quotes key material", name, err)
		}
	}
}

func TestLoadCertPool(t *testing.T) {
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	leaf := ca.Server(t, "a")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool, err := tlsfiles.LoadCertPool(write("bundle.crt", append(append([]byte{}, other.PEM...), ca.PEM...)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("the second CA of a bundle does not verify: %v", err)
	}
	for name, data := range map[string][]byte{
		"key file":       leaf.KeyPEM,
		"empty":          nil,
		"not PEM":        []byte("hello"),
		"trailing junk":  append(append([]byte{}, ca.PEM...), "junk"...),
		"bad DER inside": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
	} {
		if _, err := tlsfiles.LoadCertPool(write(strings.ReplaceAll(name, " ", "-"), data)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := tlsfiles.LoadCertPool(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// serveTLS accepts TLS connections on a loopback port, completes each
// handshake and closes the connection.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	return serveTLSFunc(t, cfg, func(*tls.Conn) {})
}

func serveTLSFunc(t *testing.T, cfg *tls.Config, after func(*tls.Conn)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				after(tc)
				// One byte back: the client knows the server accepted it
				// (a TLS 1.3 server checks a client certificate after the
				// client's side of the handshake has returned).
				var b [1]byte
				if _, err := io.ReadFull(tc, b[:]); err == nil {
					_, _ = tc.Write(b[:])
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial completes a handshake and one round trip, so that a refusal the
// server sends after the client's handshake (TLS 1.3 client certificates)
// is seen.
func dial(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return nil, err
	}
	// The server echoes the byte once it has accepted the connection; a
	// refusal is its alert.
	var buf [1]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return nil, err
	}
	st := c.ConnectionState()
	return &st, nil
}

func handshake(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestExpiredRotationKeepsThePreviousPair: a new pair whose certificate
// has already expired (a backup copied over the renewed files, a Secret
// restored from an old snapshot) would fail every client's handshake; it
// is refused as a broken pair is, with one error line saying so, and the
// previous certificate keeps serving until a usable pair arrives.
func TestExpiredRotationKeepsThePreviousPair(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, c := ca.Server(t, "a"), ca.Server(t, "c")
	f := newFixture(t, a, ca)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Expired a month before the fixture's clock, which a and c are
	// valid at.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "expired"},
		NotBefore: f.clk.Now().AddDate(-1, 0, 0), NotAfter: f.clk.Now().AddDate(0, -1, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f.files.Update(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), ca.PEM)
	for range 3 {
		f.clk.Advance(tlsfiles.DefaultCheckInterval)
		if got := serialOf(t, f.pair.Certificate()); got != a.Cert.SerialNumber.String() {
			t.Fatalf("serving %s after an expired certificate was rotated in, want the previous one", got)
		}
	}
	if n := f.logs.count("TLS certificate files changed but can't be used"); n != 1 || !strings.Contains(f.logs.b.String(), "expired") {
		t.Errorf("%d error lines, want 1 saying the certificate expired:\n%s", n, f.logs.b.String())
	}
	f.files.Update(t, c.CertPEM, c.KeyPEM, ca.PEM)
	f.clk.Advance(tlsfiles.DefaultCheckInterval)
	if got := serialOf(t, f.pair.Certificate()); got != c.Cert.SerialNumber.String() {
		t.Fatalf("serving %s after a good rotation, want c", got)
	}
}

// TestReloadReadsAtOnce: Reload (an operator's SIGHUP) serves a renewed
// pair at once, within the check interval, and says so; a broken pair is
// refused with an error naming the setting and the file, every time it is
// asked, even once a handshake refused it, and the last good certificate
// keeps serving; unchanged files are no change.
func TestReloadReadsAtOnce(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, b, c := ca.Server(t, "a"), ca.Server(t, "b"), ca.Server(t, "c")
	f := newFixture(t, a, ca)
	f.files.Update(t, b.CertPEM, b.KeyPEM, ca.PEM)
	if changed, err := f.pair.Reload(); !changed || err != nil {
		t.Fatalf("Reload of a renewed pair: changed %v, %v; want changed", changed, err)
	}
	if got := serialOf(t, f.pair.Certificate()); got != b.Cert.SerialNumber.String() {
		t.Fatalf("after Reload, within the check interval: serving %s, want b", got)
	}
	if got := f.pair.Leaf().SerialNumber.String(); got != b.Cert.SerialNumber.String() {
		t.Errorf("Leaf is %s, want b", got)
	}
	if changed, err := f.pair.Reload(); changed || err != nil {
		t.Errorf("Reload of unchanged files: changed %v, %v; want no change", changed, err)
	}

	f.files.Update(t, c.CertPEM, a.KeyPEM, ca.PEM)
	f.clk.Advance(tlsfiles.DefaultCheckInterval)
	f.pair.Certificate() // a handshake refuses the pair first
	for range 2 {
		changed, err := f.pair.Reload()
		if changed || err == nil || !strings.Contains(err.Error(), "LOCKBOX_TLS_CERT_FILE") || !strings.Contains(err.Error(), f.files.CertFile) {
			t.Errorf("Reload of a broken pair: changed %v, %v; want an error naming the setting and %s", changed, err, f.files.CertFile)
		}
		if got := serialOf(t, f.pair.Certificate()); got != b.Cert.SerialNumber.String() {
			t.Fatalf("after Reload of a broken pair: serving %s, want still b", got)
		}
	}
	// Reload logs nothing itself; the handshake's refusal was one line.
	f.clk.Advance(tlsfiles.DefaultCheckInterval)
	f.pair.Certificate()
	if n := f.logs.count("TLS certificate files changed but can't be used"); n != 1 {
		t.Errorf("%d error lines, want the handshake's 1:\n%s", n, f.logs.b.String())
	}
}
