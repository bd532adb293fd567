package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// The proxy speaks HTTP/2 when a TLS client negotiates it. These tests hold
// its HTTP/2 path to the rules of the HTTP/1.1 one: the same screen,
// canonicalization, authentication and fresh outbound header set, with
// requests framed by hand, so that they can carry what no well-behaved
// client sends (pseudo-headers out of order, connection-specific headers,
// extended CONNECT, smuggled bodies).

// tlsProxy serves e's handler over TLS as "lockbox serve" does
// (tlsfiles.ServerConfig; HTTP/1.1 and HTTP/2, no h2c; read and write
// timeouts of the handler's ClientTimeout) and returns its address and the
// roots that verify it.
func (e *testEnv) tlsProxy() (string, *x509.CertPool) {
	e.t.Helper()
	ca := tlstest.NewCA(e.t, "proxy CA")
	files := ca.WriteFiles(e.t, ca.Server(e.t, "proxy"))
	pair, err := tlsfiles.LoadKeyPair(tlsfiles.PairConfig{CertFile: files.CertFile, KeyFile: files.KeyFile, Setting: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	srv := &http.Server{Handler: e.h, TLSConfig: tlsfiles.ServerConfig(pair, nil), Protocols: protocols, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: e.h.ClientTimeout(), WriteTimeout: e.h.ClientTimeout()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	e.t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), ca.Pool()
}

// h2conn is one HTTP/2 connection to the proxy, framed by hand.
type h2conn struct {
	t      testing.TB
	c      *tls.Conn
	fr     *http2.Framer
	nextID uint32
}

func dialH2(t testing.TB, addr string, roots *x509.CertPool) *h2conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &h2conn{t: t, c: c, fr: fr, nextID: 1}
}

// h2req is a request as header fields in wire order, pseudo-headers and
// all, and an optional body in one DATA frame.
type h2req struct {
	fields [][2]string
	body   string
}

// h2get is a well-formed request: the four pseudo-headers, then header.
func h2get(method, path string, header ...[2]string) h2req {
	return h2req{fields: append([][2]string{
		{":method", method}, {":scheme", "https"}, {":authority", "proxy.test"}, {":path", path},
	}, header...)}
}

// h2res is what came back on the request's stream: a response, or a reset.
type h2res struct {
	response
	reset   bool // RST_STREAM on the stream, or GOAWAY
	errCode http2.ErrCode
}

func (c *h2conn) do(q h2req) h2res {
	c.t.Helper()
	id := c.nextID
	c.nextID += 2
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range q.fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: q.body == "", EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
	if q.body != "" {
		if err := c.fr.WriteData(id, true, []byte(q.body)); err != nil {
			c.t.Fatal(err)
		}
	}
	res := h2res{response: response{header: http.Header{}}}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			res.reset, res.errCode = true, f.ErrCode
			return res
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				res.reset, res.errCode = true, f.ErrCode
				return res
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			if s := f.PseudoValue("status"); s != "" {
				res.status, _ = strconv.Atoi(s)
			}
			for _, hf := range f.RegularFields() {
				res.header.Add(hf.Name, hf.Value)
			}
			if f.StreamEnded() {
				return res
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			res.body = append(res.body, f.Data()...)
			if len(f.Data()) > 0 {
				_ = c.fr.WriteWindowUpdate(0, uint32(len(f.Data())))
			}
			if f.StreamEnded() {
				return res
			}
		}
	}
}

// h2Hostile is hostileHeaders as an HTTP/2 client can send them: lower
// case, and without Connection, which HTTP/2 forbids (the cases below show
// it refused) and which made Accept-Language hop-by-hop there.
func h2Hostile() [][2]string {
	var out [][2]string
	for _, h := range hostileHeaders {
		if h[0] == "Connection" || h[0] == "Accept-Language" {
			continue
		}
		out = append(out, [2]string{strings.ToLower(h[0]), h[1]})
	}
	return out
}

// TestH2Allowed: a permitted call over HTTP/2 reaches the upstream as the
// HTTP/1.1 path sends it — canonical target, the upstream's own Host
// whatever :authority and host say, and only the proxy's header set.
func TestH2Allowed(t *testing.T) {
	e := newTestEnv(t)
	req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest", "Get-Mailbox")
	e.clk.Advance(10 * time.Minute)
	addr, roots := e.tlsProxy()
	c := dialH2(t, addr, roots)

	q := h2get("POST", mailboxes+"/alice/repair?x=1", append([][2]string{
		{"authorization", e.bearer(alice)}, {"host", "admin.internal"}, {"content-type", "application/json"},
		{"content-length", "16"},
	}, h2Hostile()...)...)
	q.fields[2][1] = "admin.internal:8443" // :authority
	q.body = `{"kind":"index"}`
	res := c.do(q)
	if res.reset || res.status != http.StatusOK {
		t.Fatalf("status %d (reset %v %v), body %s", res.status, res.reset, res.errCode, res.body)
	}
	got := e.up["exchange"].requests()
	if len(got) != 1 {
		t.Fatalf("upstream received %d requests, want 1", len(got))
	}
	up := got[0]
	if up.Method != "POST" || up.RequestURI != "/api/exchange/tenants/contoso/mailboxes/alice/repair?x=1" || string(up.Body) != `{"kind":"index"}` {
		t.Errorf("upstream got %s %s %q", up.Method, up.RequestURI, up.Body)
	}
	if want := e.up["exchange"].srv.Listener.Addr().String(); up.Host != want {
		t.Errorf("upstream Host = %q, want %q", up.Host, want)
	}
	checkOutboundHeaders(t, e, up.Header, req, e.clk.Now(), "POST", "/api/exchange/tenants/contoso/mailboxes/alice/repair", "New-MailboxRepairRequest")
	if res.header.Get("set-cookie") != "" || res.header.Get("cache-control") != "no-store" || res.header.Get(strings.ToLower(HeaderDecisionID)) == "" {
		t.Errorf("response headers %v: want Set-Cookie dropped, no-store, a decision id", res.header)
	}

	// A stock client negotiates HTTP/2 too, and each stream of a
	// connection is judged on its own: a revocation between two calls
	// denies the second.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	get := func() *http.Response {
		r, _ := http.NewRequest("GET", "https://"+addr+mailboxes, nil)
		r.Header.Set("Authorization", e.bearer(alice))
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("stock client: %s %s", resp.Proto, resp.Status)
	}
	if _, err := e.grants.Act(context.Background(), req.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso")}, "done"); err != nil {
		t.Fatal(err)
	}
	if resp := get(); resp.StatusCode != http.StatusForbidden || resp.ProtoMajor != 2 {
		t.Fatalf("after revocation: %s %s", resp.Proto, resp.Status)
	}
	if n := len(e.up["exchange"].requests()); n != 2 {
		t.Errorf("upstream received %d requests, want 2", n)
	}
}

// h2Refusal is a request the proxy must refuse over HTTP/2: either its
// handler answers with a reason, as over HTTP/1.1, or the HTTP/2 layer
// refuses a malformed request before any handler runs (a stream reset, or
// a plain 400 of its own). Either way nothing reaches the upstream.
type h2Refusal struct {
	name   string
	req    h2req
	status int    // the proxy's answer; 0 when the HTTP/2 layer must refuse
	reason Reason // with status
}

func h2Refusals(e *testEnv) []h2Refusal {
	auth := [2]string{"authorization", e.bearer(alice)}
	get := func(path string, extra ...[2]string) h2req {
		return h2get("GET", path, append([][2]string{auth}, extra...)...)
	}
	with := func(fields ...[2]string) h2req { return h2req{fields: fields} }
	return []h2Refusal{
		// The screen and canonicalization, as over HTTP/1.1.
		{"dot segments", get("/exchange/tenants/contoso/../fabrikam/mailboxes"), 400, ReasonBadRequest},
		{"encoded slash", get("/exchange/tenants/contoso%2fmailboxes"), 400, ReasonBadRequest},
		{"encoded dot segments", get("/exchange/tenants/contoso/%2e%2e/fabrikam/mailboxes"), 400, ReasonBadRequest},
		{"double slash", get("/exchange//tenants/contoso/mailboxes"), 400, ReasonBadRequest},
		{"matrix parameter", get("/exchange/tenants/contoso;v=1/mailboxes"), 400, ReasonBadRequest},
		{"trailing slash", get(mailboxes + "/"), 400, ReasonBadRequest},
		{"backslash", get(`/exchange/tenants/contoso\mailboxes`), 400, ReasonBadRequest},
		{"method override header", get(mailboxes, [2]string{"x-http-method-override", "DELETE"}), 400, ReasonBadRequest},
		{"method override parameter", get(mailboxes + "?_method=DELETE"), 400, ReasonBadRequest},
		{"absolute-form :path", get("https://exchange.internal" + mailboxes), 400, ReasonBadRequest},
		// net/http answers "OPTIONS *" itself (200, no body) over either
		// protocol; the handler never sees it.
		{"asterisk :path", h2get("OPTIONS", "*", auth), 0, ""},
		{"CONNECT", with([2]string{":method", "CONNECT"}, [2]string{":authority", "exchange.internal:443"}, auth), 400, ReasonBadRequest},
		// Extended CONNECT (RFC 8441), how websockets ride HTTP/2: the
		// server does not offer it (SETTINGS_ENABLE_CONNECT_PROTOCOL), so
		// the stream is reset; TestH2ExtendedConnectOffered shows the
		// proxy refuses it where it is offered.
		{"extended CONNECT", with([2]string{":method", "CONNECT"}, [2]string{":protocol", "websocket"}, [2]string{":scheme", "https"},
			[2]string{":authority", "proxy.test"}, [2]string{":path", mailboxes}, auth), 0, ""},
		{"h2c settings header", get(mailboxes, [2]string{"http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"}), 400, ReasonBadRequest},
		// Connection-specific headers are malformed in HTTP/2: net/http
		// answers 400 itself.
		{"upgrade", get(mailboxes, [2]string{"upgrade", "websocket"}), 0, ""},
		{"connection", get(mailboxes, [2]string{"connection", "keep-alive"}), 0, ""},
		{"connection naming a header", get(mailboxes, [2]string{"connection", "x-lockbox-grant"}), 0, ""},
		{"keep-alive", get(mailboxes, [2]string{"keep-alive", "timeout=5"}), 0, ""},
		{"proxy-connection", get(mailboxes, [2]string{"proxy-connection", "keep-alive"}), 0, ""},
		{"transfer-encoding", get(mailboxes, [2]string{"transfer-encoding", "chunked"}), 0, ""},
		{"te other than trailers", get(mailboxes, [2]string{"te", "gzip"}), 0, ""},
		// Malformed pseudo-headers and field names.
		{"unknown pseudo-header", get(mailboxes, [2]string{":tenant", "fabrikam"}), 0, ""},
		{"pseudo-header after a header", h2req{fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, auth, {":path", mailboxes}}}, 0, ""},
		{"two :path", h2req{fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", mailboxes}, {":path", "/exchange/tenants/fabrikam/mailboxes"}, auth}}, 0, ""},
		{"no :path", h2req{fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "proxy.test"}, auth}}, 0, ""},
		{"no :scheme", h2req{fields: [][2]string{{":method", "GET"}, {":authority", "proxy.test"}, {":path", mailboxes}, auth}}, 0, ""},
		{"upper-case header name", get(mailboxes, [2]string{"X-Lockbox-User", "root"}), 0, ""},
		{"CR LF in a header value", get(mailboxes, [2]string{"accept", "application/json\r\nx-lockbox-user: root"}), 0, ""},
		// Authentication, as over HTTP/1.1.
		{"no token", h2get("GET", mailboxes), 401, ReasonUnauthenticated},
		{"two tokens", get(mailboxes, auth), 401, ReasonUnauthenticated},
		{"identity headers instead of a token", h2get("GET", mailboxes, [2]string{"x-lockbox-user", alice.Subject}, [2]string{"x-user", alice.Subject}), 401, ReasonUnauthenticated},
	}
}

// TestH2Refusals sends each refused request on a connection of its own.
func TestH2Refusals(t *testing.T) {
	e := newTestEnv(t)
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	e.grantFor(alice, "fabrikam", "exchange", 2*time.Hour)
	addr, roots := e.tlsProxy()
	handled := 0.0 // calls the handler has judged so far
	for _, tc := range h2Refusals(e) {
		t.Run(tc.name, func(t *testing.T) {
			res := dialH2(t, addr, roots).do(tc.req)
			if tc.status != 0 {
				handled++
			}
			// The handler counts every call it sees before answering.
			if got := sumMetric(t, e, "lockbox_proxy_requests_total"); got != handled {
				t.Errorf("the handler judged %v calls, want %v", got, handled)
			}
			switch {
			case tc.status != 0 && res.reset:
				t.Errorf("stream reset (%v), want %d %s from the proxy", res.errCode, tc.status, tc.reason)
			case tc.status != 0 && (res.status != tc.status || res.errorCode(t) != string(tc.reason)):
				t.Errorf("answered %d %s, want %d %s", res.status, res.body, tc.status, tc.reason)
			case tc.status == 0 && res.reset && res.errCode != http2.ErrCodeProtocol:
				t.Errorf("reset with %v, want PROTOCOL_ERROR", res.errCode)
			case tc.status == 0 && !res.reset && res.header.Get(HeaderDecisionID) != "":
				t.Errorf("answered %d %s by the proxy's handler, want the HTTP/2 layer to refuse", res.status, res.body)
			case tc.status == 0 && !res.reset && tc.req.fields[0][1] != "OPTIONS" && res.status != http.StatusBadRequest:
				t.Errorf("answered %d %s, want 400 or a reset", res.status, res.body)
			}
			if n := e.upstreamCalls(); n != 0 {
				t.Fatalf("upstreams received %d requests", n)
			}
		})
	}
}

// TestH2ExtendedConnectOffered runs the extended CONNECT case against a
// server that offers it (GODEBUG=http2xconnect=1, read once at start-up,
// hence a process of its own): the request reaches the handler, whose
// screen refuses CONNECT whatever its :protocol.
func TestH2ExtendedConnectOffered(t *testing.T) {
	if !strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		cmd := exec.Command(os.Args[0], "-test.run=^TestH2ExtendedConnectOffered$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "GODEBUG=http2xconnect=1", redistest.EnvURL+"="+redistest.URL(t))
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestH2ExtendedConnectOffered")) {
			t.Fatalf("with GODEBUG=http2xconnect=1: %v\n%s", err, out)
		}
		return
	}
	e := newTestEnv(t)
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	addr, roots := e.tlsProxy()
	c := dialH2(t, addr, roots)
	res := c.do(h2req{fields: [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
		{":authority", "proxy.test"}, {":path", mailboxes}, {"authorization", e.bearer(alice)}, {"sec-websocket-version", "13"}}})
	if res.reset || res.status != http.StatusBadRequest || res.errorCode(t) != string(ReasonBadRequest) {
		t.Fatalf("extended CONNECT: %d %s (reset %v %v), want 400 bad_request", res.status, res.body, res.reset, res.errCode)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Fatalf("upstreams received %d requests", n)
	}
}

// TestH2SmuggledBody: a DATA frame beyond the declared content-length (the
// HTTP/2-to-HTTP/1.1 downgrade attack) never becomes a second request at
// the upstream, nor more body than declared.
func TestH2SmuggledBody(t *testing.T) {
	smuggled := "GET /api/exchange/tenants/fabrikam/mailboxes HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, declared := range []int{0, 5} {
		t.Run("content-length "+strconv.Itoa(declared), func(t *testing.T) {
			e := newTestEnv(t)
			e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
			addr, roots := e.tlsProxy()
			q := h2get("POST", mailboxes+"/alice/repair", [2]string{"authorization", e.bearer(alice)},
				[2]string{"content-length", strconv.Itoa(declared)})
			q.body = "hello" + smuggled
			dialH2(t, addr, roots).do(q)
			// The handler may still be forwarding when the stream is reset:
			// wait (bounded) until it has counted the call.
			for deadline := time.Now().Add(5 * time.Second); sumMetric(t, e, "lockbox_proxy_requests_total") < 1; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the proxy never finished the call")
				}
			}
			// The upstream may see the call (its headers arrive before the
			// excess data), but never with more than declared, and never a
			// second request.
			for _, r := range e.up["exchange"].requests() {
				if len(r.Body) > declared || r.Method != "POST" || !strings.HasSuffix(r.RequestURI, "/alice/repair") {
					t.Errorf("upstream got %s %s with %d body bytes (%q), declared %d", r.Method, r.RequestURI, len(r.Body), r.Body, declared)
				}
			}
			if n := e.upstreamCalls(); n > 1 {
				t.Errorf("upstream received %d requests", n)
			}
		})
	}
}

// trailerUpstream records what each call brought, trailers included, and
// says when a call has arrived.
type trailerUpstream struct {
	srv     *httptest.Server
	arrived chan struct{}
	mu      sync.Mutex
	got     []trailerSeen
}

type trailerSeen struct {
	header, trailer http.Header
	body            []byte
	err             error
}

func newTrailerUpstream(t *testing.T) *trailerUpstream {
	u := &trailerUpstream{arrived: make(chan struct{}, 8)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.arrived <- struct{}{}
		body, err := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, trailerSeen{header: r.Header.Clone(), trailer: r.Trailer.Clone(), body: body, err: err})
		u.mu.Unlock()
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *trailerUpstream) seen() []trailerSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.got)
}

// exchangeAt puts exchange at u.
func exchangeAt(u *httptest.Server) envOption {
	return func(e *testEnv, c *Config) {
		pu, err := url.Parse(u.URL + "/api/exchange")
		if err != nil {
			e.t.Fatal(err)
		}
		c.Upstreams["exchange"] = pu
	}
}

// TestRequestTrailersDropped: trailers a client sends after its body, over
// HTTP/2 (a HEADERS frame after DATA) or HTTP/1.1 (after the last chunk),
// reach the upstream neither as trailers nor as headers: the outbound
// header set is the proxy's alone.
func TestRequestTrailersDropped(t *testing.T) {
	up := newTrailerUpstream(t)
	e := newTestEnv(t, exchangeAt(up.srv))
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
	addr, roots := e.tlsProxy()
	trailers := [][2]string{{"x-lockbox-user", "root"}, {"x-forwarded-for", "203.0.113.99"}, {"x-http-method-override", "DELETE"}}

	c := dialH2(t, addr, roots)
	head := encodeH2(t, [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "proxy.test"}, {":path", mailboxes + "/alice/repair"},
		{"authorization", e.bearer(alice)}, {"content-type", "text/plain"}, {"trailer", "x-lockbox-user, x-forwarded-for, x-http-method-override"}})
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: head, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteData(1, false, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: encodeH2(t, trailers), EndHeaders: true, EndStream: true}); err != nil {
		t.Fatal(err)
	}
	c.nextID = 3
	if res := c.read(1); res.reset || res.status != http.StatusOK {
		t.Fatalf("HTTP/2: %d %s (reset %v %v)", res.status, res.body, res.reset, res.errCode)
	}

	q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Content-Type", "text/plain"},
		[2]string{"Trailer", "X-Lockbox-User, X-Forwarded-For, X-Http-Method-Override"})(e)
	raw := string(q.bytes())
	raw = strings.TrimSuffix(raw, "\r\n") + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
	for _, tr := range trailers {
		raw += tr[0] + ": " + tr[1] + "\r\n"
	}
	raw += "\r\n"
	h1, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	_ = h1.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(h1, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(h1), nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("HTTP/1.1: %v %v", res, err)
	}
	res.Body.Close()

	got := up.seen()
	if len(got) != 2 {
		t.Fatalf("upstream received %d calls, want 2", len(got))
	}
	for i, s := range got {
		if s.err != nil || string(s.body) != "hello" || len(s.trailer) != 0 {
			t.Errorf("call %d: body %q %v, trailers %v", i, s.body, s.err, s.trailer)
		}
		for _, tr := range trailers {
			if v := s.header.Values(tr[0]); slices.Contains(v, tr[1]) {
				t.Errorf("call %d: the client's trailer reached the upstream as header %s: %q", i, tr[0], v)
			}
		}
		if v := s.header.Values(HeaderUser); len(v) != 1 || v[0] != "Microsoft Operator" {
			t.Errorf("call %d: %s = %q", i, HeaderUser, v)
		}
	}
}

// read reads the answer on stream id, like do.
func (c *h2conn) read(id uint32) h2res { return c.readStreams(id)[id] }

// readStreams reads the answers on streams ids, whose frames may come
// interleaved, until each has ended or was reset.
func (c *h2conn) readStreams(ids ...uint32) map[uint32]h2res {
	c.t.Helper()
	out := map[uint32]h2res{}
	open := map[uint32]bool{}
	for _, id := range ids {
		out[id] = h2res{response: response{header: http.Header{}}}
		open[id] = true
	}
	end := func(id uint32, res h2res) {
		out[id] = res
		delete(open, id)
	}
	for len(open) > 0 {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("streams %v: %v", ids, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			for id := range open {
				res := out[id]
				res.reset, res.errCode = true, f.ErrCode
				end(id, res)
			}
		case *http2.RSTStreamFrame:
			if res, ok := out[f.StreamID]; ok && open[f.StreamID] {
				res.reset, res.errCode = true, f.ErrCode
				end(f.StreamID, res)
			}
		case *http2.MetaHeadersFrame:
			res, ok := out[f.StreamID]
			if !ok || !open[f.StreamID] {
				continue
			}
			if s := f.PseudoValue("status"); s != "" {
				res.status, _ = strconv.Atoi(s)
			}
			for _, hf := range f.RegularFields() {
				res.header.Add(hf.Name, hf.Value)
			}
			out[f.StreamID] = res
			if f.StreamEnded() {
				end(f.StreamID, res)
			}
		case *http2.DataFrame:
			res, ok := out[f.StreamID]
			if !ok || !open[f.StreamID] {
				continue
			}
			res.body = append(res.body, f.Data()...)
			out[f.StreamID] = res
			if f.StreamEnded() {
				end(f.StreamID, res)
			}
		}
	}
	return out
}

// TestH2StreamsJudgedAlone: streams open at once on one connection, with
// different tokens, are each judged by their own: alice's call, still
// sending its body, is forwarded under her grant; bob's, without a grant,
// and one without a token are refused meanwhile.
func TestH2StreamsJudgedAlone(t *testing.T) {
	e := newTestEnv(t)
	req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
	addr, roots := e.tlsProxy()
	c := dialH2(t, addr, roots)
	open := func(id uint32, end bool, fields ...[2]string) {
		t.Helper()
		if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: encodeH2(t, fields), EndHeaders: true, EndStream: end}); err != nil {
			t.Fatal(err)
		}
	}
	pseudo := func(method, path string) [][2]string {
		return [][2]string{{":method", method}, {":scheme", "https"}, {":authority", "proxy.test"}, {":path", path}}
	}
	open(1, false, append(pseudo("POST", mailboxes+"/alice/repair"), [2]string{"authorization", e.bearer(alice)}, [2]string{"content-type", "text/plain"})...)
	open(3, true, append(pseudo("POST", mailboxes+"/alice/repair"), [2]string{"authorization", e.bearer(bob)})...)
	open(5, true, pseudo("POST", mailboxes+"/alice/repair")...)
	refused := c.readStreams(3, 5)
	if res := refused[3]; res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonNoGrant) {
		t.Errorf("bob: %d %s", res.status, res.body)
	}
	if res := refused[5]; res.status != http.StatusUnauthorized || res.errorCode(t) != string(ReasonUnauthenticated) {
		t.Errorf("no token: %d %s", res.status, res.body)
	}
	if err := c.fr.WriteData(1, true, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if res := c.read(1); res.status != http.StatusOK {
		t.Fatalf("alice: %d %s", res.status, res.body)
	}
	got := e.up["exchange"].requests()
	if len(got) != 1 || string(got[0].Body) != "hello" || got[0].Header.Get(HeaderRequestID) != req.ID {
		t.Fatalf("upstream received %+v, want alice's call alone", got)
	}
}

// TestH2ResetMidUpload: a client that resets its stream after the call was
// audited and forwarded, in the middle of its body, aborts the upstream's
// call too (its body read fails: it never sees a complete request), and
// the call is logged as canceled by the client. Its audit record stands.
func TestH2ResetMidUpload(t *testing.T) {
	up := newTrailerUpstream(t)
	e := newTestEnv(t, exchangeAt(up.srv))
	req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
	addr, roots := e.tlsProxy()
	c := dialH2(t, addr, roots)
	head := encodeH2(t, [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "proxy.test"}, {":path", mailboxes + "/alice/repair"},
		{"authorization", e.bearer(alice)}, {"content-type", "text/plain"}, {"content-length", "100"}})
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: head, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteData(1, false, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the call never reached the upstream")
	}
	if err := c.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(up.seen()) == 0 || len(e.logLines("proxy call canceled by the client")) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("upstream saw %d calls; log:\n%s", len(up.seen()), e.logs)
		}
	}
	if s := up.seen()[0]; s.err == nil || len(s.body) >= 100 {
		t.Errorf("the upstream read %d bytes and %v, want the body cut short", len(s.body), s.err)
	}
	recs, err := e.audit.List(context.Background(), "contoso", 1)
	if err != nil || len(recs) != 1 || recs[0].Operation != "New-MailboxRepairRequest" || recs[0].LockboxRequestId != req.ID {
		t.Fatalf("newest audit record %+v %v: want the call's", recs, err)
	}
}

// TestH1AbortMidUpload: over HTTP/1.1, a client that hangs up in the
// middle of its body after the call was forwarded is logged as canceled by
// the client, not as an upstream failure: the proxy's own request context
// is not canceled until the handler returns, so only the failed read of the
// client's body tells the two apart.
func TestH1AbortMidUpload(t *testing.T) {
	up := newTrailerUpstream(t)
	e := newTestEnv(t, exchangeAt(up.srv))
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
	c := e.dial()
	head := "POST " + mailboxes + "/alice/repair HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: " + e.bearer(alice) +
		"\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789"
	if _, err := io.WriteString(c.c, head); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the call never reached the upstream")
	}
	c.c.Close()
	for deadline := time.Now().Add(5 * time.Second); len(up.seen()) == 0 || len(e.logLines("proxy call canceled by the client")) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("upstream saw %d calls; log:\n%s", len(up.seen()), e.logs)
		}
	}
	if n := len(e.logLines("proxy call failed upstream")); n != 0 {
		t.Errorf("the client's hang-up was also logged as %d upstream failures:\n%s", n, e.logs)
	}
	if s := up.seen()[0]; s.err == nil || len(s.body) >= 100 {
		t.Errorf("the upstream read %d bytes and %v, want the body cut short", len(s.body), s.err)
	}
}

// grantLookupFunc adapts a function to GrantLookup.
type grantLookupFunc func(ctx context.Context, tenant, operator, service string) (grants.Grant, error)

func (f grantLookupFunc) Grant(ctx context.Context, tenant, operator, service string) (grants.Grant, error) {
	return f(ctx, tenant, operator, service)
}

// TestH2ResetWhileJudged: a client that resets its stream while its call is
// still being judged (here, while the grant is read from Redis) cancels
// the read, which then fails; that failure is the client's doing, not a
// Redis that is down. The call is logged as canceled by the client and is
// never a store_unavailable denial, whose every count pages whoever runs
// Redis (deploy/prometheus/lockbox.rules.yml).
func TestH2ResetWhileJudged(t *testing.T) {
	arrived := make(chan struct{}, 1)
	e := newTestEnv(t, patientStore, func(e *testEnv, c *Config) {
		c.Grants = grantLookupFunc(func(ctx context.Context, tenant, operator, service string) (grants.Grant, error) {
			arrived <- struct{}{}
			// The client resets its stream meanwhile; the bound only ends
			// a test that failed to.
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			return e.grants.Grant(ctx, tenant, operator, service)
		})
	})
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox")
	addr, roots := e.tlsProxy()
	c := dialH2(t, addr, roots)
	_ = c.c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: encodeH2(t, h2get("GET", mailboxes, [2]string{"authorization", e.bearer(alice)}).fields)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the grant was never looked up")
	}
	if err := c.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	// Counted as the handler returns, after its log line.
	for deadline := time.Now().Add(10 * time.Second); sumMetric(t, e, "lockbox_proxy_requests_total") < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the call was never counted; log:\n%s", e.logs)
		}
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonStoreUnavailable))); got != 0 {
		t.Errorf("denials{exchange,store_unavailable} = %v, want 0; log:\n%s", got, e.logs)
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonBadRequest))); got != 0 {
		t.Errorf("denials{exchange,bad_request} = %v, want 0: the request was fine", got)
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", "client_canceled")); got != 1 {
		t.Errorf("denials{exchange,client_canceled} = %v, want 1: the client's doing", got)
	}
	if lines := e.logLines("proxy call canceled by the client"); len(lines) == 1 && lines[0]["reason"] != "client_canceled" {
		t.Errorf("logged with reason %v, want client_canceled", lines[0]["reason"])
	}
	if n := len(e.logLines("proxy call canceled by the client")); n != 1 {
		t.Errorf("logged %d times as canceled by the client, want once; log:\n%s", n, e.logs)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstreams received %d requests", n)
	}
}

// TestH1HalfCloseWhileJudged: over HTTP/1.1 a client that closes only its
// sending half after its request cancels the call's context as one that
// hangs up does, yet still reads: it gets a refusal, never the empty 200
// net/http sends for a handler that wrote nothing.
func TestH1HalfCloseWhileJudged(t *testing.T) {
	arrived := make(chan struct{}, 1)
	e := newTestEnv(t, patientStore, func(e *testEnv, c *Config) {
		c.Grants = grantLookupFunc(func(ctx context.Context, tenant, operator, service string) (grants.Grant, error) {
			arrived <- struct{}{}
			// The server sees the half-close meanwhile; the bound only
			// ends a test in which it did not.
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			return e.grants.Grant(ctx, tenant, operator, service)
		})
	})
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox")
	c := e.dial()
	_ = c.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.c.Write(as(alice, "GET", mailboxes)(e).bytes()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the grant was never looked up")
	}
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	got := response{status: res.StatusCode, header: res.Header, body: body}
	if got.status != 499 || got.errorCode(t) != "client_canceled" {
		t.Fatalf("answered %d %q, want the refusal 499 client_canceled", got.status, body)
	}
	// Counted as the handler returns, after its answer.
	for deadline := time.Now().Add(10 * time.Second); sumMetric(t, e, "lockbox_proxy_requests_total") < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the call was never counted; log:\n%s", e.logs)
		}
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", "client_canceled")); got != 1 {
		t.Errorf("denials{exchange,client_canceled} = %v, want 1", got)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstreams received %d requests", n)
	}
}
