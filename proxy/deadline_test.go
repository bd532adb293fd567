package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/internal/together"
)

// testClientTimeout is the proxy's ClientTimeout in these tests.
const testClientTimeout = time.Second

func withClientTimeout(d time.Duration) envOption {
	return func(e *testEnv, c *Config) { c.ClientTimeout = d }
}

// patientStore gives the grant and audit stores seconds: tests that are
// not about them must not see a Redis slowed by a loaded machine as down.
func patientStore(_ *testEnv, c *Config) {
	c.GrantTimeout, c.AuditTimeout = 10*time.Second, 10*time.Second
}

// TestStalledClientsAreCut: a client that stops sending its body or stops
// taking its answer holds a call for ClientTimeout, not for as long as it
// likes. Neither needs a token: these are denials.
func TestStalledClientsAreCut(t *testing.T) {
	var g together.Group
	defer g.Wait()
	e := newTestEnv(t, withClientTimeout(testClientTimeout))
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
	addr, roots := e.tlsProxy()
	// Generous: the cut is due after testClientTimeout.
	const patience = 5 * time.Second

	// Over HTTP/1.1 the server answers only once it has read what is left
	// of the body (up to 256 KiB), so a body that never comes held even
	// a denial's answer.
	for name, header := range map[string]string{
		"HTTP/1.1 body never sent, no token": "Content-Type: text/plain\r\n",
		"HTTP/1.1 checked body never sent":   "Content-Type: application/json\r\nAuthorization: " + e.bearer(alice) + "\r\n",
	} {
		g.Run(t, name, func(t *testing.T) {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST "+mailboxes+"/alice/repair HTTP/1.1\r\nHost: proxy.test\r\n"+header+"Content-Length: 100\r\n\r\n{"); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(patience))
			started := time.Now()
			reply, err := io.ReadAll(c)
			if err != nil || !bytes.HasPrefix(reply, []byte("HTTP/1.1 4")) {
				t.Fatalf("after %s: %q, %v; want a refusal and the connection closed", time.Since(started).Round(time.Millisecond), reply, err)
			}
		})
	}

	// net/http answers "OPTIONS *" itself, after reading up to 4 KiB of
	// its body: the server's ReadTimeout bounds that.
	g.Run(t, "HTTP/1.1 OPTIONS * body never sent", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 100\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(patience))
		// The answer may be lost with the connection (its write deadline
		// passed while the body was awaited): only the end counts.
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server still waits for the body: %v", err)
		}
	})

	// Over HTTP/2 a client that never opens its flow-control window holds
	// each stream's handler on its answer, whether the proxy's handler or
	// net/http's own 400 wrote it.
	g.Run(t, "HTTP/2 window never opened", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(patience))
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
			t.Fatal(err)
		}
		streams := map[uint32][][2]string{
			1: {{":method", "GET"}, {":scheme", "https"}, {":authority", "proxy.test"}, {":path", mailboxes}},
			3: {{":method", "GET"}, {":scheme", "https"}, {":authority", "proxy.test"}, {":path", mailboxes}, {"authorization", "Bearer x"}},
			// net/http answers this one itself, with a 400.
			5: {{":method", "GET"}, {":scheme", "https"}, {":authority", "proxy.test"}, {":path", mailboxes}, {"connection", "close"}},
		}
		for _, id := range slices.Sorted(maps.Keys(streams)) { // stream ids only grow
			fields := streams[id]
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: encodeH2(t, fields), EndHeaders: true, EndStream: true}); err != nil {
				t.Fatal(err)
			}
		}
		reset := map[uint32]bool{}
		for len(reset) < len(streams) {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("streams reset: %v; then %v", reset, err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.DataFrame:
				if len(f.Data()) > 0 {
					t.Fatalf("stream %d sent data into a window of 0", f.StreamID)
				}
			case *http2.RSTStreamFrame:
				reset[f.StreamID] = true
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v", f.ErrCode)
			}
		}
	})
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstreams received %d requests", n)
	}
}

// encodeH2 is a header block of fields, in order.
func encodeH2(t testing.TB, fields [][2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for _, f := range fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// slowUpstream answers a GET with chunks every interval, and a POST with
// the length of the body it read. With h2 it is an https upstream that
// speaks HTTP/2 to the proxy.
func slowUpstream(chunks int, interval time.Duration, h2 bool) envOption {
	return func(e *testEnv, c *Config) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h2 && r.ProtoMajor != 2 {
				http.Error(w, "spoken to in "+r.Proto, http.StatusHTTPVersionNotSupported)
				return
			}
			if r.Method == http.MethodPost {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				fmt.Fprint(w, len(b))
				return
			}
			for i := range chunks {
				if i > 0 {
					time.Sleep(interval)
				}
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
			}
		}))
		if h2 {
			srv.EnableHTTP2 = true
			srv.StartTLS()
			roots := x509.NewCertPool()
			roots.AddCert(srv.Certificate())
			c.UpstreamTLS = &tls.Config{RootCAs: roots}
		} else {
			srv.Start()
		}
		e.t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL + "/api/exchange")
		if err != nil {
			e.t.Fatal(err)
		}
		c.Upstreams["exchange"] = u
	}
}

// slowBody sends chunks of body every interval.
type slowBody struct {
	chunks   []string
	interval time.Duration
	sent     int
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.sent == len(b.chunks) {
		return 0, io.EOF
	}
	if b.sent > 0 {
		time.Sleep(b.interval)
	}
	n := copy(p, b.chunks[b.sent])
	b.sent++
	return n, nil
}

// TestMovingCallsAreNotCut: a download or an upload that keeps moving
// takes as long as it takes, over either protocol, to an upstream spoken
// to over HTTP/1.1 or HTTP/2, however much longer than ClientTimeout.
func TestMovingCallsAreNotCut(t *testing.T) {
	var g together.Group
	g.Run(t, "plain http upstream", func(t *testing.T) {
		testMovingCallsAreNotCut(t, false, []bool{false, true})
	})
	// What a stallWatch watches: HTTP/1.1 clients' calls.
	g.Run(t, "https upstream over HTTP/2", func(t *testing.T) {
		testMovingCallsAreNotCut(t, true, []bool{false})
	})
	g.Wait()
}

func testMovingCallsAreNotCut(t *testing.T, upstreamH2 bool, clientsH2 []bool) {
	// Longer than the other tests' timeout, and pauses short next to it: a
	// call that moves is never cut while its pauses stay under three
	// quarters of the timeout, and the checks and the trip to the upstream
	// (TLS and HTTP/2 to an https one) must fit in it before the first
	// byte moves. At a second with pauses of 200 ms, a loaded machine's
	// stall of half a second was enough to cut a call. The calls still
	// take longer than the timeout, so a call whose deadlines were not
	// moved on would be cut.
	const timeout = 3 * testClientTimeout
	const interval = timeout / 20
	const chunks = 24 // (chunks-1)*interval, more than timeout
	e := newTestEnv(t, withClientTimeout(timeout), patientStore, slowUpstream(chunks, interval, upstreamH2))
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
	addr, roots := e.tlsProxy()
	// Minted here: the subtests run side by side, and e reports to this
	// test.
	bearer := e.bearer(alice)
	var want strings.Builder
	for i := range chunks {
		fmt.Fprintf(&want, "chunk %d\n", i)
	}
	bodyChunks := []string{`{"kind":`}
	for range chunks - 2 {
		bodyChunks = append(bodyChunks, " ")
	}
	bodyChunks = append(bodyChunks, `"index"}`)
	body := strings.Join(bodyChunks, "")

	var g together.Group
	defer g.Wait()
	for _, h2 := range clientsH2 {
		client := clientFor(t, roots, h2)
		for _, tc := range []struct {
			name, method, path, contentType string
			body                            io.Reader
			want                            string
		}{
			{name: "download", method: "GET", path: mailboxes, want: want.String()},
			// Streamed to the upstream as it comes.
			{name: "streamed upload", method: "POST", path: mailboxes + "/alice/repair", contentType: "text/plain",
				body: &slowBody{chunks: bodyChunks, interval: interval}, want: strconv.Itoa(len(body))},
			// Read whole and checked for a method override first.
			{name: "checked upload", method: "POST", path: mailboxes + "/alice/repair", contentType: "application/json",
				body: &slowBody{chunks: bodyChunks, interval: interval}, want: strconv.Itoa(len(body))},
		} {
			// The calls mostly wait: side by side, the test takes
			// seconds, not several times as many.
			g.Run(t, fmt.Sprintf("%s HTTP/2 %v", tc.name, h2), func(t *testing.T) {
				req, err := http.NewRequest(tc.method, "https://"+addr+tc.path, tc.body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", bearer)
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				started := time.Now()
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				got, err := io.ReadAll(res.Body)
				took := time.Since(started)
				if err != nil || res.StatusCode != http.StatusOK || string(got) != tc.want {
					t.Fatalf("after %s: %s %q %v, want 200 %q", took.Round(time.Millisecond), res.Status, got, err, tc.want)
				}
				if (res.ProtoMajor == 2) != h2 {
					t.Errorf("spoke %s", res.Proto)
				}
				if took < timeout {
					t.Errorf("took %s, not longer than the client timeout: the test proves nothing", took)
				}
			})
		}
	}
}

// clientFor is a client of the TLS proxy speaking HTTP/2 or HTTP/1.1.
func clientFor(t *testing.T, roots *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestStalledUpstreamIsCut: an upstream that stops sending its answer
// midway holds an HTTP/1.1 call for ClientTimeout, not for as long as it
// likes, whatever the call: a body-less read (spoken by h1transport) or a
// call with a body, to a plain-http or an https upstream (spoken by
// net/http's Transport), over HTTP/1.1 or HTTP/2 to an https one. The
// client sees the answer cut off, the upstream sees the proxy hang up, and
// the call is logged and counted as failed upstream: the client was
// waiting for more. (Over HTTP/2 the stream's deadline ends the wait:
// TestH2StalledUpstreamIsCut.)
func TestStalledUpstreamIsCut(t *testing.T) {
	var g together.Group
	defer g.Wait()
	for _, tc := range []struct {
		name  string
		https bool
		h2    bool // the https upstream offers HTTP/2
		body  bool
	}{
		{name: "read, plain http"},
		{name: "call with a body, plain http", body: true},
		{name: "read, https", https: true},
		{name: "call with a body, https", https: true, body: true},
		// The upstream's connection stays alive (it answers the proxy's
		// pings) while the answer stalls: only the call can tell.
		{name: "read, https over HTTP/2", https: true, h2: true},
		{name: "call with a body, https over HTTP/2", https: true, h2: true, body: true},
	} {
		g.Run(t, tc.name, func(t *testing.T) {
			// Longer than the other tests' timeout: the checks and the trip
			// to the upstream must fit in it on a loaded machine, before the
			// stall starts.
			const timeout = 3 * testClientTimeout
			hungUp := make(chan string, 8)
			release := make(chan struct{})
			stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					hungUp <- r.Proto
				case <-release:
				}
			})
			upstream := upstreamAt(stall)
			switch {
			case tc.h2:
				upstream = h2Upstream(stall, timeout)
			case tc.https:
				upstream = func(e *testEnv, c *Config) {
					srv := httptest.NewTLSServer(stall) // HTTP/1.1 only
					e.t.Cleanup(srv.Close)
					u, err := url.Parse(srv.URL)
					if err != nil {
						e.t.Fatal(err)
					}
					c.Upstreams["exchange"] = u
					roots := x509.NewCertPool()
					roots.AddCert(srv.Certificate())
					c.UpstreamTLS = &tls.Config{RootCAs: roots}
				}
			}
			e := newTestEnv(t, withClientTimeout(timeout), patientStore, upstream)
			t.Cleanup(func() { close(release) }) // before the upstream's Close, which waits for it
			e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
			addr, roots := e.tlsProxy()
			client := clientFor(t, roots, false)
			// The TLS handshake is bounded by the timeout too: one that a
			// loaded machine makes fail is not what is tested, so the
			// connection is opened by a denied call first, again if need be.
			for i := 0; ; i++ {
				res, err := client.Get("https://" + addr + mailboxes)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					break
				}
				if i == 4 {
					t.Fatal(err)
				}
			}
			// Generous: the cut is due after timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			method, target, body := http.MethodGet, mailboxes, io.Reader(nil)
			if tc.body {
				method, target, body = http.MethodPost, mailboxes+"/alice/repair", strings.NewReader(`{"full":true}`)
			}
			req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+target, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", e.bearer(alice))
			if tc.body {
				req.Header.Set("Content-Type", "application/json")
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, err := io.ReadAll(res.Body)
			if err == nil || ctx.Err() != nil || string(got) != "first\n" || res.ProtoMajor != 1 {
				t.Fatalf("%s %s: read %q, %v (after the test's patience: %v); want the first line, then the answer cut off\n%s",
					res.Proto, res.Status, got, err, ctx.Err(), e.logs)
			}
			select {
			case proto := <-hungUp:
				want := "HTTP/1.1"
				if tc.h2 {
					want = "HTTP/2.0"
				}
				if proto != want {
					t.Errorf("the upstream was spoken to in %s, want %s", proto, want)
				}
			case <-ctx.Done():
				t.Fatal("the upstream is still held")
			}
			// Counted as the handler returns, after its log line: the
			// denied call that opened the connection, then this one.
			for sumMetric(t, e, "lockbox_proxy_requests_total") < 2 {
				if ctx.Err() != nil {
					t.Fatalf("the call was never counted:\n%s", e.logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if lines := e.logLines("proxy call failed upstream"); len(lines) != 1 {
				t.Errorf("%d failure log lines, want one:\n%s", len(lines), e.logs)
			} else if msg, _ := lines[0]["error"].(string); tc.h2 && !strings.Contains(msg, stallCut) {
				// Not the connection's quiet timeout: the pings keep it alive.
				t.Errorf("failed with %q, want the call's stall cut (%q)", msg, stallCut)
			}
			if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionError)); got != 1 {
				t.Errorf("requests{exchange,%s} = %v, want 1", decisionError, got)
			}
		})
	}
}

// stallCut is what the log says of a call a stallWatch cut.
const stallCut = "nothing moved to or from the upstream for the client timeout"

// h2Upstream is an https upstream speaking HTTP/2 to the proxy, whose
// transport is NewTransport's for timeout but pings a silent connection
// far more often than a quarter of it, as upstreamPingAfter does
// DefaultClientTimeout: the connection is never quiet for long, as one
// carrying other calls would not be, so only the call can tell that it
// stalled.
func h2Upstream(h http.Handler, timeout time.Duration) envOption {
	return func(e *testEnv, c *Config) {
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		e.t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL)
		if err != nil {
			e.t.Fatal(err)
		}
		c.Upstreams["exchange"] = u
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		tr := newTransport(true, &tls.Config{RootCAs: roots}, timeout, h2Pings{after: timeout / 10, timeout: time.Minute})
		e.t.Cleanup(tr.(splitTransport).std.(*http.Transport).CloseIdleConnections)
		c.Transport = tr
	}
}

// TestStalledUploadIsCut: an upstream spoken to over HTTP/2 that stops
// taking an HTTP/1.1 client's upload (it reads no more, so the stream's
// flow-control window stays shut) holds the call for ClientTimeout, not
// for as long as it likes, whether it answered first or not. The upstream
// sees the proxy hang up, and the call is logged and counted as failed
// upstream: the client was still sending. A client that stops sending its
// upload midway is cut at the same moment, by its own read deadline, and
// the call is the client's failure, not the upstream's. An HTTP/2
// client's stream deadline cuts such a call, and the upstream sees that
// too, though net/http's HTTP/2 transport heeds no canceled context while
// it still sends an upload after the answer came.
func TestStalledUploadIsCut(t *testing.T) {
	var g together.Group
	defer g.Wait()
	for _, tc := range []struct {
		name         string
		answer       bool // the upstream answers before it stops reading
		clientStalls bool // the client stops sending, not the upstream taking
		h2           bool // the client speaks HTTP/2
	}{
		{name: "before the answer"},
		{name: "after the answer's header", answer: true},
		{name: "the client stops sending", clientStalls: true},
		{name: "HTTP/2 client, after the answer's header", answer: true, h2: true},
	} {
		g.Run(t, tc.name, func(t *testing.T) {
			// Longer than the other tests' timeout: the checks and the trip
			// to the upstream must fit in it on a loaded machine, before the
			// stall starts.
			const timeout = 3 * testClientTimeout
			hungUp := make(chan string, 8)
			release := make(chan struct{})
			stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = r.Body.Read(make([]byte, 1))
				if tc.answer {
					_, _ = io.WriteString(w, "first\n")
					w.(http.Flusher).Flush()
				}
				select {
				case <-r.Context().Done():
					hungUp <- r.Proto
				case <-release:
				}
			})
			e := newTestEnv(t, withClientTimeout(timeout), patientStore, h2Upstream(stall, timeout))
			t.Cleanup(func() { close(release) }) // before the upstream's Close, which waits for it
			e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
			addr, roots := e.tlsProxy()
			client := clientFor(t, roots, tc.h2)
			// The TLS handshake is bounded by the timeout too: the
			// connection is opened by a denied call first, again if need be.
			for i := 0; ; i++ {
				res, err := client.Get("https://" + addr + mailboxes)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					break
				}
				if i == 4 {
					t.Fatal(err)
				}
			}
			// Generous: the cut is due after timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// Far more than the upstream's window for a stream and the
			// proxy's buffers: the upload stops moving.
			body := io.Reader(strings.NewReader(strings.Repeat("x", 4<<20)))
			if tc.clientStalls {
				// The first piece, then nothing until the test ends.
				pr, pw := io.Pipe()
				go func() {
					_, _ = io.WriteString(pw, "first piece")
					<-release
					pw.Close()
				}()
				body = pr
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+mailboxes+"/alice/repair", body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.clientStalls {
				req.ContentLength = 1000
			}
			req.Header.Set("Authorization", e.bearer(alice))
			req.Header.Set("Content-Type", "text/plain") // streamed as it comes
			// The client sees a 502, the answer cut off, or its upload
			// fail as the proxy closes the connection: which, depends on
			// how far its upload got.
			var got []byte
			res, err := client.Do(req)
			if err == nil {
				got, err = io.ReadAll(res.Body)
				res.Body.Close()
				if err == nil && res.StatusCode == http.StatusOK {
					t.Fatalf("%s %s %q, want the call to fail", res.Proto, res.Status, got)
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("read %q, %v after the test's patience: the call is still held\n%s", got, err, e.logs)
			}
			select {
			case proto := <-hungUp:
				if proto != "HTTP/2.0" {
					t.Errorf("the upstream was spoken to in %s, want HTTP/2.0", proto)
				}
			case <-ctx.Done():
				t.Fatal("the upstream is still held")
			}
			// Counted as the handler returns, after its log line: the
			// denied call that opened the connection, then this one.
			for sumMetric(t, e, "lockbox_proxy_requests_total") < 2 {
				if ctx.Err() != nil {
					t.Fatalf("the call was never counted:\n%s", e.logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
			const failed, canceled = "proxy call failed upstream", "proxy call canceled by the client"
			if tc.clientStalls {
				if f, c := len(e.logLines(failed)), len(e.logLines(canceled)); f != 0 || c != 1 {
					t.Errorf("logged %d times %q and %d times %q, want 0 and 1:\n%s", f, failed, c, canceled, e.logs)
				}
				if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed)); got != 1 {
					t.Errorf("requests{exchange,%s} = %v, want 1", decisionAllowed, got)
				}
				return
			}
			cut := stallCut
			if tc.h2 {
				cut = "which ended the stream" // the stream's deadline (streamCut)
			}
			if lines := e.logLines(failed); len(lines) != 1 {
				t.Errorf("%d failure log lines, want one:\n%s", len(lines), e.logs)
			} else if msg, _ := lines[0]["error"].(string); !strings.Contains(msg, cut) {
				t.Errorf("failed with %q, want the cut's (%q)", msg, cut)
			}
			if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionError)); got != 1 {
				t.Errorf("requests{exchange,%s} = %v, want 1", decisionError, got)
			}
		})
	}
}

// TestH2StalledUpstreamIsCut: over HTTP/2 the stream's deadline ends the
// wait for an upstream that stops sending its answer midway, whether the
// upstream is plain http (h1transport) or https spoken over HTTP/2. The
// proxy cuts the stream, not the client: the call is logged and counted as
// failed upstream, as over HTTP/1.1 (TestStalledUpstreamIsCut). A client
// that does hang up on such an answer, its stream reset long before any
// deadline, is still logged and counted as canceled by the client.
func TestH2StalledUpstreamIsCut(t *testing.T) {
	var g together.Group
	defer g.Wait()
	// Longer than the other tests' timeout: the checks and the trip to the
	// upstream must fit in it on a loaded machine, before the stall starts.
	const stallTimeout = 3 * testClientTimeout
	for _, tc := range []struct {
		name    string
		https   bool
		timeout time.Duration
		hangUp  bool // the client resets its stream after the first line
	}{
		{name: "plain http upstream", timeout: stallTimeout},
		{name: "https upstream over HTTP/2", https: true, timeout: stallTimeout},
		// A timeout no wait of the test comes near: only the client ends
		// the call.
		{name: "client hangs up", timeout: time.Minute, hangUp: true},
	} {
		g.Run(t, tc.name, func(t *testing.T) {
			hungUp := make(chan string, 8)
			release := make(chan struct{})
			stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					hungUp <- r.Proto
				case <-release:
				}
			})
			upstream := upstreamAt(stall)
			if tc.https {
				upstream = func(e *testEnv, c *Config) {
					srv := httptest.NewUnstartedServer(stall)
					srv.EnableHTTP2 = true
					srv.StartTLS()
					e.t.Cleanup(srv.Close)
					u, err := url.Parse(srv.URL)
					if err != nil {
						e.t.Fatal(err)
					}
					c.Upstreams["exchange"] = u
					roots := x509.NewCertPool()
					roots.AddCert(srv.Certificate())
					c.UpstreamTLS = &tls.Config{RootCAs: roots}
				}
			}
			e := newTestEnv(t, withClientTimeout(tc.timeout), patientStore, upstream)
			t.Cleanup(func() { close(release) }) // before the upstream's Close, which waits for it
			e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox")
			addr, roots := e.tlsProxy()
			client := clientFor(t, roots, true)
			// The TLS handshake is bounded by the timeout too: the
			// connection is opened by a denied call first, again if need be.
			for i := 0; ; i++ {
				res, err := client.Get("https://" + addr + mailboxes)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					break
				}
				if i == 4 {
					t.Fatal(err)
				}
			}
			// Generous: the cut is due after the timeout.
			patience, cancelPatience := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancelPatience()
			ctx, hangUp := context.WithCancel(patience)
			defer hangUp()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+mailboxes, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", e.bearer(alice))
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
				t.Fatalf("%s %s, want 200 over HTTP/2", res.Proto, res.Status)
			}
			first := make([]byte, len("first\n"))
			if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "first\n" {
				t.Fatalf("read %q, %v; want the first line", first, err)
			}
			if tc.hangUp {
				hangUp()
			}
			rest, err := io.ReadAll(res.Body)
			if err == nil || patience.Err() != nil {
				t.Fatalf("then read %q, %v (after the test's patience: %v); want the answer cut off", rest, err, patience.Err())
			}
			select {
			case proto := <-hungUp:
				if tc.https && proto != "HTTP/2.0" {
					t.Errorf("the upstream was spoken to in %s, want HTTP/2.0", proto)
				}
			case <-patience.Done():
				t.Fatal("the upstream is still held")
			}
			// Counted as the handler returns, after its log line: the
			// denied call that opened the connection, then this one.
			for sumMetric(t, e, "lockbox_proxy_requests_total") < 2 {
				if patience.Err() != nil {
					t.Fatalf("the call was never counted:\n%s", e.logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
			const failed, canceled = "proxy call failed upstream", "proxy call canceled by the client"
			wantFailed, wantCanceled, decision := 1, 0, decisionError
			if tc.hangUp {
				wantFailed, wantCanceled, decision = 0, 1, decisionAllowed
			}
			if f, c := len(e.logLines(failed)), len(e.logLines(canceled)); f != wantFailed || c != wantCanceled {
				t.Errorf("logged %d times %q and %d times %q, want %d and %d:\n%s", f, failed, c, canceled, wantFailed, wantCanceled, e.logs)
			}
			if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decision)); got != 1 {
				t.Errorf("requests{exchange,%s} = %v, want 1", decision, got)
			}
		})
	}
}

// TestH2SlowReaderIsClientCancel: an HTTP/2 client that takes none of a
// permitted answer's body (its flow-control window stays shut) is cut by
// the stream's deadline too, but it is the client that stalled: the call
// is logged and counted as canceled by the client, not as failed upstream
// (TestH2StalledUpstreamIsCut tells the two apart).
func TestH2SlowReaderIsClientCancel(t *testing.T) {
	const timeout = 3 * testClientTimeout
	// More than the server buffers for a stream, so that the handler's
	// own write waits for the window.
	big := strings.Repeat("x", 256<<10)
	e := newTestEnv(t, withClientTimeout(timeout), patientStore, upstreamAt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, big)
	})))
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox")
	addr, roots := e.tlsProxy()
	c := dialH2(t, addr, roots)
	_ = c.c.SetDeadline(time.Now().Add(20 * time.Second)) // generous: the cut is due after timeout
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: encodeH2(t, h2get("GET", mailboxes, [2]string{"authorization", e.bearer(alice)}).fields)}); err != nil {
		t.Fatal(err)
	}
	status := ""
	for reset := false; !reset; {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("status %q, then %v; log:\n%s", status, err, e.logs)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
		case *http2.DataFrame:
			if len(f.Data()) > 0 {
				t.Fatalf("stream %d sent data into a window of 0", f.StreamID)
			}
		case *http2.RSTStreamFrame:
			reset = f.StreamID == 1
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
	if status != "200" {
		t.Errorf("status %q before the reset, want 200", status)
	}
	// Counted as the handler returns, after its log line.
	for deadline := time.Now().Add(10 * time.Second); sumMetric(t, e, "lockbox_proxy_requests_total") < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the call was never counted:\n%s", e.logs)
		}
	}
	const failed, canceled = "proxy call failed upstream", "proxy call canceled by the client"
	if f, c := len(e.logLines(failed)), len(e.logLines(canceled)); f != 0 || c != 1 {
		t.Errorf("logged %d times %q and %d times %q, want 0 and 1:\n%s", f, failed, c, canceled, e.logs)
	}
	if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed)); got != 1 {
		t.Errorf("requests{exchange,allowed} = %v, want 1", got)
	}
}

// closingStream is an HTTP/2 stream's ResponseWriter as net/http's server
// closes it (serverConn.closeStream): it records why the stream closed,
// cancels the request's context, and only then marks the stream closed.
// A flush returns the recorded error once the stream is marked closed, and
// nil before: a handler that sees its context canceled can flush in
// between. Here the first flush is that moment, and the stream is marked
// closed just after it.
type closingStream struct {
	http.ResponseWriter
	cause  error // why the stream closes
	closed chan struct{}
	once   sync.Once
}

func newClosingStream(cause error) *closingStream {
	return &closingStream{ResponseWriter: httptest.NewRecorder(), cause: cause, closed: make(chan struct{})}
}

func (s *closingStream) markClosed() { s.once.Do(func() { close(s.closed) }) }

func (s *closingStream) FlushError() error {
	select {
	case <-s.closed:
		return s.cause
	default:
	}
	go s.markClosed()
	return nil
}

func (s *closingStream) CloseNotify() <-chan bool {
	ch := make(chan bool, 1)
	go func() {
		<-s.closed
		ch <- true
	}()
	return ch
}

// TestStreamCutWaitsForTheClose: streamCut is asked once the call's context
// was canceled, which the server does a moment before it marks the stream
// closed. It must tell the stream's deadline from the client's reset even
// when asked in that moment, not take a stream not yet marked closed for
// one the client reset (TestH2StalledUpstreamIsCut, under load).
func TestStreamCutWaitsForTheClose(t *testing.T) {
	clientReset := errors.New("http2: stream closed")
	for _, tc := range []struct {
		name        string
		cause       error
		closedFirst bool // the stream is marked closed before streamCut asks
		want        error
	}{
		{name: "deadline, asked before the close", cause: os.ErrDeadlineExceeded, want: os.ErrDeadlineExceeded},
		{name: "deadline, asked after the close", cause: os.ErrDeadlineExceeded, closedFirst: true, want: os.ErrDeadlineExceeded},
		{name: "client reset, asked before the close", cause: clientReset},
		{name: "client reset, asked after the close", cause: clientReset, closedFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newClosingStream(tc.cause)
			if tc.closedFirst {
				s.markClosed()
			}
			// A generous timeout: it only bounds the wait for a close
			// that never comes.
			d := &clientDeadline{w: s, timeout: time.Minute}
			got := make(chan error, 1)
			go func() { got <- d.streamCut() }()
			select {
			case err := <-got:
				if !errors.Is(err, tc.want) {
					t.Errorf("streamCut() = %v, want %v", err, tc.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("streamCut still waits on a stream marked closed")
			}
		})
	}
}
