package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/together"
)

// writeTimeout is the WriteTimeout of the servers of these tests. A write
// of an export is given at least three quarters of it, so a slow reader
// that stops for longer than that, or a scheduling pause that long on
// either side, fails a steady export. The slow readers take small bites
// often (pace) rather than large ones seldom, and the timeout is long
// enough that only a pause of some three seconds cuts them: with a
// quarter-second pace and a one-second timeout, and even with a
// 20 ms pace and a two-second timeout, a loaded two-core machine running
// the suite under -race cut one now and then.
const writeTimeout = 4 * time.Second

// pace is how long a slow reader waits between two bites.
const pace = writeTimeout / 100

// generatedAudit exports n generated records of about 500 bytes each,
// whatever the query, and tells cut the error of the first write that
// failed.
type generatedAudit struct {
	api.AuditSearcher
	n   int
	cut chan error
}

func (g generatedAudit) Export(ctx context.Context, p identity.Principal, q audit.Query, w func(record.Record) error) error {
	pad := strings.Repeat("x", 300)
	for i := range g.n {
		err := w(record.Record{
			Id: fmt.Sprintf("rec-%06d", i), CreationTime: record.TimeOf(start.Add(time.Duration(i) * time.Second)),
			Operation: "Get-Mailbox", OrganizationId: "contoso", LockboxTenant: "contoso", Workload: "exchange",
			UserId: record.OperatorUserID, ClientIP: "10.0.0.9", ObjectId: pad,
		})
		if err != nil {
			select {
			case g.cut <- err:
			default:
			}
			return err
		}
	}
	return nil
}

// smallBuffers accepts connections with a small send buffer, so that a
// client that reads slowly holds the server's writes back within a few
// tens of kilobytes rather than the megabytes the kernel would buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

// exportEnv serves the API over TLS, HTTP/2 offered, with WriteTimeout
// writeTimeout, exporting n generated records.
type exportEnv struct {
	*env
	tls  *httptest.Server
	pool *x509.CertPool
	cut  chan error
}

func newExportEnv(t *testing.T, n int) *exportEnv {
	cut := make(chan error, 1)
	e := newEnv(t, func(c *api.Config) { c.Audit = generatedAudit{AuditSearcher: c.Audit, n: n, cut: cut} })
	srv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	srv.Listener = smallBuffers{srv.Listener}
	srv.EnableHTTP2 = true
	srv.Config.WriteTimeout = writeTimeout
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &exportEnv{env: e, tls: srv, pool: pool, cut: cut}
}

// dial opens a TLS connection to the server speaking proto, whose receive
// buffer is small too; every read and write on it fails after patience.
func (e *exportEnv) dial(t *testing.T, proto string, patience time.Duration) *tls.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", e.tls.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.(*net.TCPConn).SetReadBuffer(32 << 10)
	c := tls.Client(raw, &tls.Config{RootCAs: e.pool, ServerName: "example.com", NextProtos: []string{proto}})
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(patience))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	// httptest's server offers only "h2" by ALPN: HTTP/1.1 is none.
	if got := c.ConnectionState().NegotiatedProtocol; (got == "h2") != (proto == "h2") {
		t.Fatalf("negotiated %q, want %q", got, proto)
	}
	return c
}

const exportPath = "/v1/audit/export?tenant=contoso&format=jsonl"

// h1Export asks for the export over HTTP/1.1 and returns its answer, the
// header read.
func (e *exportEnv) h1Export(t *testing.T, c *tls.Conn) *http.Response {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer %s\r\n\r\n", exportPath, e.token(auditor)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReaderSize(c, 1<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %s", res.Status)
	}
	return res
}

// h2Export asks for the export over HTTP/2 on stream 1, announcing window
// as the streams' initial flow-control window.
func (e *exportEnv) h2Export(t *testing.T, c *tls.Conn, window uint32) *http2.Framer {
	t.Helper()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window}); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", exportPath},
		{"authorization", "Bearer " + e.token(auditor)}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
		t.Fatal(err)
	}
	return fr
}

// TestAuditExportToASlowClient: an export whose client reads slowly but
// steadily, so that it takes several times the listener's WriteTimeout, is
// sent whole; one whose client stops taking bytes is cut once it waited the
// WriteTimeout. Without the export moving its write deadline on, the
// first are cut at the WriteTimeout; without a WriteTimeout, the second
// hold the handler for as long as their client likes.
func TestAuditExportToASlowClient(t *testing.T) {
	// Each case waits several write timeouts on an environment of its own:
	// they wait side by side.
	var g together.Group
	defer g.Wait()
	g.Run(t, "HTTP/1.1 slow reader", func(t *testing.T) {
		const n = 5000 // about 2.5 MB: many times what the buffers hold, read 16 KB a pace
		e := newExportEnv(t, n)
		c := e.dial(t, "http/1.1", time.Minute)
		started := time.Now()
		res := e.h1Export(t, c)
		var body bytes.Buffer
		buf := make([]byte, 16<<10)
		for {
			k, err := io.ReadFull(res.Body, buf)
			body.Write(buf[:k])
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break // the last chunk was read: the body is complete
			}
			if err != nil {
				t.Fatalf("after %s and %d bytes: %v", time.Since(started), body.Len(), err)
			}
			time.Sleep(pace) // a slow reader's pace
		}
		took := time.Since(started)
		if lines := bytes.Count(body.Bytes(), []byte("\n")); lines != n {
			t.Fatalf("%d records after %s, want %d", lines, took, n)
		}
		if took < writeTimeout+writeTimeout/8 {
			t.Errorf("the export took %s, not longer than the WriteTimeout: the test proves nothing", took)
		}
	})
	g.Run(t, "HTTP/1.1 reader stops", func(t *testing.T) {
		e := newExportEnv(t, 4000)
		c := e.dial(t, "http/1.1", 20*time.Second)
		res := e.h1Export(t, c)
		_ = res // read no further
		select {
		case err := <-e.cut:
			t.Logf("export cut: %v", err)
		case <-time.After(5 * writeTimeout):
			t.Fatal("the export still waits on a client that stopped reading")
		}
	})
	g.Run(t, "HTTP/2 slow reader", func(t *testing.T) {
		const n, window = 2500, 8 << 10 // about 1.25 MB, sent 8 KB a pace
		e := newExportEnv(t, n)
		c := e.dial(t, "h2", time.Minute)
		started := time.Now()
		fr := e.h2Export(t, c, window)
		var body bytes.Buffer
		avail := window // what the server may still send on the stream
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("after %s and %d bytes: %v", time.Since(started), body.Len(), err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
				continue
			case *http2.RSTStreamFrame:
				t.Fatalf("stream reset (%v) after %s and %d bytes", f.ErrCode, time.Since(started), body.Len())
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY (%v) after %s", f.ErrCode, time.Since(started))
			case *http2.DataFrame:
				body.Write(f.Data())
				avail -= len(f.Data())
				if f.StreamEnded() {
					took := time.Since(started)
					if lines := bytes.Count(body.Bytes(), []byte("\n")); lines != n {
						t.Fatalf("%d records after %s, want %d", lines, took, n)
					}
					if took < writeTimeout+writeTimeout/8 {
						t.Errorf("the export took %s, not longer than the WriteTimeout: the test proves nothing", took)
					}
					return
				}
				if avail == 0 {
					time.Sleep(pace) // a slow reader's pace
					_ = fr.WriteWindowUpdate(0, window)
					_ = fr.WriteWindowUpdate(1, window)
					avail = window
				}
			}
		}
	})
	g.Run(t, "HTTP/2 window never opened", func(t *testing.T) {
		e := newExportEnv(t, 600)
		c := e.dial(t, "h2", 5*writeTimeout)
		started := time.Now()
		fr := e.h2Export(t, c, 0)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("no reset of the stalled stream after %s: %v", time.Since(started), err)
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
				break
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		}
		select {
		case err := <-e.cut:
			t.Logf("export cut after %s: %v", time.Since(started), err)
		case <-time.After(5 * writeTimeout):
			t.Fatal("the stream was reset but the export still waits")
		}
	})
}
