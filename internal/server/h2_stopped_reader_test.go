package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// goroutinesIn counts the goroutines whose stack mentions any of fns.
func goroutinesIn(fns ...string) int {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range fns {
			if strings.Contains(g, fn) {
				n++
				break
			}
		}
	}
	return n
}

// TestH2ClientThatStopsReadingIsLetGo: an HTTP/2 client opens streams for
// an answer of some size, raises its flow-control windows so the server
// may send everything, and then never reads its socket. The README ("No
// listener waits on a client for long") says a client that stops reading
// is cut off once the write timeout passed, instead of holding the call
// for good. With each listener's write timeout shortened to 500 ms, every
// goroutine of that connection (its serve loop, its frame writer, its
// handlers) is gone well within 15 s. They stayed for good: with no HTTP2
// config, HTTP2Config.WriteByteTimeout was 0, the frame writer blocked in
// conn.Write, and the stream resets the write deadlines queued (and the
// idle GOAWAY) waited behind it.
//
//   - api: unauthenticated, the admin center's public console.js, on the
//     address browsers reach;
//   - proxy: a support engineer's permitted call (a 64 KiB answer);
//   - metrics: an unauthenticated scrape (metricsServer's wiring).
func TestH2ClientThatStopsReadingIsLetGo(t *testing.T) {
	const timeout = 500 * time.Millisecond
	serving := tlstest.NewCA(t, "lockbox serving CA")
	files := serving.WriteFiles(t, serving.Server(t, "lockbox"))
	tlsEnv := func(up string) map[string]string {
		return map[string]string{"LOCKBOX_TLS_CERT_FILE": files.CertFile, "LOCKBOX_TLS_KEY_FILE": files.KeyFile, "LOCKBOX_UPSTREAMS": "exchange=" + up}
	}

	t.Run("api", func(t *testing.T) {
		lb := start(t, tlsEnv("http://127.0.0.1:1"), func(o *server.Options) { o.APIWriteTimeout = timeout })
		h2StopsReading(t, lb.srv.APIAddr(), serving.Pool(), "/console/static/console.js", nil, timeout)
	})
	t.Run("proxy", func(t *testing.T) {
		big := strings.Repeat("x", 64<<10)
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) }))
		t.Cleanup(up.Close)
		lb := start(t, tlsEnv(up.URL), func(o *server.Options) { o.ProxyClientTimeout = timeout })
		lb.grant(t)
		h2StopsReading(t, lb.srv.ProxyAddr(), serving.Pool(), "/exchange/tenants/contoso/mailboxes", [][2]string{{"authorization", "Bearer " + lb.token}}, timeout)
	})
	t.Run("metrics", func(t *testing.T) {
		lb := start(t, tlsEnv("http://127.0.0.1:1"))
		ln := serveMetricsTLS(t, lb.srv.MetricsHTTPServer().Handler, timeout, serving)
		h2StopsReading(t, ln.Addr().String(), serving.Pool(), "/metrics", nil, timeout)
	})
}

// h2StopsReading asks for path on 200 streams of one HTTP/2 connection to
// addr, with windows open wide and a tiny socket receive buffer, never
// reads a byte, and fails unless the server lets go of the connection
// within 30 times timeout, the listener's write timeout.
func h2StopsReading(t *testing.T, addr string, pool *x509.CertPool, path string, header [][2]string, timeout time.Duration) {
	t.Helper()
	const h2conn = "net/http.(*http2serverConn).serve("
	before := goroutinesIn(h2conn)

	// A tiny receive buffer, so the server's writes stall early.
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	var c *tls.Conn
	var err error
	for range 20 { // the handshake is bounded by the shortened timeout: try again
		c, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Fatalf("negotiated %q, want h2", got)
	}
	_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	// 200 streams: far more than the socket buffers hold when the client
	// reads nothing. Fewer than the server's 250 concurrent streams, so
	// none is refused.
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "lockbox"}, {":path", path}}, header...)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := range 200 {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: block.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
			t.Fatalf("stream %d: %v", 2*i+1, err)
		}
	}
	// The client now reads nothing, ever, and sends nothing more.
	sent := time.Now()

	// The server's handlers end up blocked writing: their answers no
	// longer fit in what the connection can take.
	const blocked = "(*http2serverConn).writeDataFromHandler"
	for goroutinesIn(blocked) == 0 {
		if time.Since(sent) > 10*time.Second {
			t.Fatalf("GET %s: no handler ever blocked writing: nothing to stall on", path)
		}
		time.Sleep(time.Millisecond)
	}
	// Every write deadline of the streams has long passed (30 times the
	// write timeout), as has the window a WriteByteTimeout of the same
	// length would give the connection. This deadline only bounds a
	// failure: a fixed server lets go within about a second.
	deadline := sent.Add(30 * timeout)
	for time.Now().Before(deadline) {
		if goroutinesIn(blocked) == 0 && goroutinesIn(h2conn) <= before {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("GET %s: %s after the client stopped reading (write timeout %s) the server still holds the HTTP/2 connection "+
		"(%d serve loops, %d handlers blocked writing, %d frame writers blocked in conn.Write): nothing bounds a write to a client that does not read its socket",
		path, time.Since(sent).Round(time.Millisecond), timeout, goroutinesIn(h2conn)-before,
		goroutinesIn("(*http2serverConn).writeDataFromHandler"), goroutinesIn("(*http2serverConn).writeFrameAsync"))
}
