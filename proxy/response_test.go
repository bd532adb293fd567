package proxy

import (
	"bufio"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// upstreamAt has the environment's exchange upstream be h.
func upstreamAt(h http.Handler) envOption {
	return func(e *testEnv, c *Config) {
		srv := httptest.NewServer(h)
		e.t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL)
		if err != nil {
			e.t.Fatal(err)
		}
		c.Upstreams["exchange"] = u
	}
}

// TestInformationalResponsesDropped: 1xx responses of the upstream never
// reach the client, and the final answer carries the proxy's decision id,
// once. The calls have a body, so they go by net/http's Transport, whose
// 1xx ReverseProxy relays.
func TestInformationalResponsesDropped(t *testing.T) {
	hint := func(w http.ResponseWriter) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.Header().Set("Set-Cookie", "hint=1; Path=/")
		w.Header().Set(HeaderDecisionID, "forged-in-103")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("X-Processing", "1")
		w.WriteHeader(http.StatusProcessing)
		for _, k := range []string{"Link", "Set-Cookie", HeaderDecisionID, "X-Processing"} {
			w.Header().Del(k)
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
	}{
		{name: "before a final answer", status: http.StatusOK, handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			hint(w)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		}},
		{name: "before the upstream hangs up", status: http.StatusBadGateway, handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			hint(w)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, upstreamAt(tt.handler))
			repairOnContoso(e)
			q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Content-Type", "application/json"})(e)
			q.body = `{"kind":"index"}`
			// http.ReadResponse returns the first response on the wire,
			// a 1xx included.
			res := e.send(q)
			if res.status != tt.status {
				t.Fatalf("client got status %d (body %s), want %d", res.status, res.body, tt.status)
			}
			for _, k := range []string{"Link", "Set-Cookie", "X-Processing"} {
				if v, ok := res.header[k]; ok {
					t.Errorf("header %s: %q from a 1xx reached the client", k, v)
				}
			}
			lines := e.logLines("proxy call forwarded")
			if tt.status != http.StatusOK {
				lines = e.logLines("proxy call failed upstream")
			}
			if ids := res.header.Values(HeaderDecisionID); len(ids) != 1 || len(lines) != 1 || ids[0] != lines[0]["decision_id"] {
				t.Errorf("decision ids %q, log lines %v: want exactly the proxy's", ids, lines)
			}
		})
	}
}

// TestTrailersFiltered: only allowed trailers reach the client, announced
// or not, by either transport (GET by h1transport, POST by net/http's).
func TestTrailersFiltered(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "Set-Cookie, X-Lockbox-Decision-Id, Content-Digest, Cache-Control, Connection")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		w.(http.Flusher).Flush() // chunked, so that trailers can follow
		w.Header().Set("Set-Cookie", "t=1")
		w.Header().Set(HeaderDecisionID, "forged-in-trailer")
		w.Header().Set("Content-Digest", "sha-256=:dGVzdA==:")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Connection", "keep-alive")
		// Sent without being announced.
		w.Header().Set(http.TrailerPrefix+"Set-Cookie2", "u=1")
		w.Header().Set(http.TrailerPrefix+"X-Unannounced", "1")
	})
	tests := []struct {
		name string
		req  func(*testEnv) rawRequest
	}{
		{name: "GET", req: as(alice, "GET", mailboxes, [2]string{"TE", "trailers"})},
		{name: "POST", req: func(e *testEnv) rawRequest {
			q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"TE", "trailers"}, [2]string{"Content-Type", "application/json"})(e)
			q.body = `{"kind":"index"}`
			return q
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, upstreamAt(upstream))
			e.grantFor(alice, "contoso", "exchange", time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
			c := e.dial()
			if _, err := c.c.Write(tt.req(e).bytes()); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK || string(body) != `{"ok":true}` {
				t.Fatalf("%d %q %v", res.StatusCode, body, err)
			}
			if got := slices.Sorted(maps.Keys(res.Trailer)); !slices.Equal(got, []string{"Content-Digest"}) {
				t.Errorf("trailers %v reached the client; want only Content-Digest", res.Trailer)
			}
			if v := res.Trailer.Get("Content-Digest"); v != "sha-256=:dGVzdA==:" {
				t.Errorf("Content-Digest trailer %q", v)
			}
			if ids := res.Header.Values(HeaderDecisionID); len(ids) != 1 || ids[0] == "forged-in-trailer" {
				t.Errorf("decision ids %q", ids)
			}
		})
	}
}

// TestUpstreamStatusBelow100: an answer whose status is below 100 (three
// digits, so http.ReadResponse takes it) is the upstream failing, by
// either transport (GET by h1transport, POST by net/http's): the client
// gets 502 and the call is logged and counted as failed. Relayed, it made
// net/http's server panic and drop the client's connection.
func TestUpstreamStatusBelow100(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 099 Odd\r\nContent-Length: 5\r\n\r\nhello")
	})
	tests := []struct {
		name string
		req  func(*testEnv) rawRequest
	}{
		{name: "GET", req: as(alice, "GET", mailboxes)},
		{name: "POST", req: func(e *testEnv) rawRequest {
			q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Content-Type", "application/json"})(e)
			q.body = `{"kind":"index"}`
			return q
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, upstreamAt(upstream))
			e.grantFor(alice, "contoso", "exchange", time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
			res := e.send(tt.req(e))
			if res.status != http.StatusBadGateway || string(res.body) == "hello" {
				t.Fatalf("client got %d %q, want 502", res.status, res.body)
			}
			lines := e.logLines("proxy call failed upstream")
			if ids := res.header.Values(HeaderDecisionID); len(ids) != 1 || len(lines) != 1 || ids[0] != lines[0]["decision_id"] {
				t.Errorf("decision ids %q, failure log lines %v", ids, lines)
			}
			if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionError)); got != 1 {
				t.Errorf("requests{exchange,error} = %v, want 1", got)
			}
		})
	}
}

// TestStreamingResponseFlushed: the answer's writer still flushes, so a
// streamed answer reaches the client as the upstream writes it.
func TestStreamingResponseFlushed(t *testing.T) {
	release := make(chan struct{})
	e := newTestEnv(t, upstreamAt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second\n")
	})))
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	readsOnContoso(e)
	c := e.dial()
	if _, err := c.c.Write(as(alice, "GET", mailboxes)(e).bytes()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	// Before release, only a flush can have brought the first line.
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(release)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed)); got != 1 {
		t.Errorf("requests{exchange,allowed} = %v", got)
	}
}

// TestModifyResponse: the upstream's answer loses what could plant state
// in the client, keep tenant data in a cache or send the client's later
// calls elsewhere (Alt-Svc), and announces only allowed trailers.
func TestModifyResponse(t *testing.T) {
	res := &http.Response{
		StatusCode: http.StatusOK,
		Header: http.Header{
			"Content-Type":                 {"application/json"},
			"Etag":                         {`"v1"`},
			"Vary":                         {"Accept"},
			"Set-Cookie":                   {"a=1"},
			"Set-Cookie2":                  {"b=1"},
			HeaderDecisionID:               {"forged"},
			"Cache-Control":                {"public, max-age=3600"},
			"Cdn-Cache-Control":            {"max-age=86400"},
			"Cloudflare-Cdn-Cache-Control": {"max-age=86400"},
			"Surrogate-Control":            {"max-age=86400"},
			"Pragma":                       {"cache"},
			"Age":                          {"10"},
			"Expires":                      {"Thu, 01 Jan 2099 00:00:00 GMT"},
			"X-Accel-Expires":              {"86400"},
			"Alt-Svc":                      {`h3=":443"; ma=86400`, `h2="upstream.internal:8443"`},
		},
		Trailer: http.Header{
			"Set-Cookie": nil, "Set-Cookie2": nil, HeaderDecisionID: nil, "Cache-Control": nil, "Expires": nil,
			"Content-Digest": nil, "Repr-Digest": nil, "Server-Timing": nil, "Connection": nil,
		},
	}
	if err := modifyResponse(res); err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Content-Type":  {"application/json"},
		"Etag":          {`"v1"`},
		"Vary":          {"Accept"},
		"Cache-Control": {"no-store"},
	}
	if got := slices.Sorted(maps.Keys(res.Header)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v, want %v", res.Header, want)
	}
	if got := slices.Sorted(maps.Keys(res.Trailer)); !slices.Equal(got, []string{"Content-Digest", "Repr-Digest"}) {
		t.Errorf("announced trailers %v, want Content-Digest and Repr-Digest", got)
	}
}

// failingFlusher is a ResponseWriter whose flushes fail, as a server's do
// once the client is gone.
type failingFlusher struct {
	*httptest.ResponseRecorder
}

func (failingFlusher) FlushError() error { return errors.New("client gone") }

// TestAnswerWriterFlushError: ResponseController.Flush reports a failed
// flush through the answer's writer, and still writes the header first.
func TestAnswerWriterFlushError(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &answerWriter{ResponseWriter: failingFlusher{rec}, id: "d1"}
	if err := http.NewResponseController(w).Flush(); err == nil || err.Error() != "client gone" {
		t.Fatalf("Flush = %v, want the writer's error", err)
	}
	if !w.wroteHeader || rec.Header().Get(HeaderDecisionID) != "d1" || rec.Code != http.StatusOK {
		t.Errorf("header written %v, decision id %q, code %d", w.wroteHeader, rec.Header().Get(HeaderDecisionID), rec.Code)
	}
	// A writer that flushes fine: no error, and Flush itself still works.
	ok := &answerWriter{ResponseWriter: httptest.NewRecorder(), id: "d2"}
	if err := http.NewResponseController(ok).Flush(); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	ok.Flush()
}

// TestUpstreamFailsMidBody: an upstream that breaks its answer off after
// the header (a body shorter than its Content-Length, a chunked body
// without its last chunk, a trailer section with no end) fails the call,
// by either transport (GET by h1transport, POST by net/http's): the client
// sees the answer cut off, never a clean end, and the call is logged and
// counted as failed upstream, as one whose upstream never answered is.
func TestUpstreamFailsMidBody(t *testing.T) {
	answers := []struct {
		name string
		raw  string
		// endless follows raw with bytes until the proxy hangs up.
		endless bool
	}{
		{name: "short Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"},
		{name: "chunked without its end", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
		{name: "endless trailer", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Filler: ", endless: true},
	}
	requests := []struct {
		name string
		req  func(*testEnv) rawRequest
	}{
		{name: "GET", req: as(alice, "GET", mailboxes, [2]string{"TE", "trailers"})},
		{name: "POST", req: func(e *testEnv) rawRequest {
			q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"TE", "trailers"}, [2]string{"Content-Type", "application/json"})(e)
			q.body = `{"kind":"index"}`
			return q
		}},
	}
	for _, a := range answers {
		for _, rq := range requests {
			t.Run(a.name+"/"+rq.name, func(t *testing.T) {
				upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					c, _, err := http.NewResponseController(w).Hijack()
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					if _, err := io.WriteString(c, a.raw); err != nil || !a.endless {
						return
					}
					filler := strings.Repeat("y", 4<<10)
					for range 16 << 10 { // 64 MiB at most
						if _, err := io.WriteString(c, filler); err != nil {
							return
						}
					}
				})
				e := newTestEnv(t, patientStore, upstreamAt(upstream))
				e.grantFor(alice, "contoso", "exchange", time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
				q := rq.req(e)
				c := e.dial()
				if _, err := c.c.Write(q.bytes()); err != nil {
					t.Fatal(err)
				}
				// The answer is cut off in its body, or before its header
				// when the proxy still held all of it in its buffer.
				var ids []string
				res, err := http.ReadResponse(c.br, &http.Request{Method: q.method})
				if err == nil {
					ids = res.Header.Values(HeaderDecisionID)
					var body []byte
					body, err = io.ReadAll(res.Body)
					res.Body.Close()
					if err == nil {
						t.Errorf("client read %d %q to a clean end; want the answer cut off", res.StatusCode, body)
					}
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
					t.Errorf("client's read ended with %v, want the connection dropped", err)
				}
				// The server closes the connection once the handler is
				// done, so its log line and metrics are in by now.
				lines := e.logLines("proxy call failed upstream")
				if len(lines) != 1 || lines[0]["reason"] != string(ReasonUpstreamUnavailable) ||
					ids != nil && (len(ids) != 1 || ids[0] != lines[0]["decision_id"]) {
					t.Errorf("decision ids %q, failure log lines %v", ids, lines)
				}
				if n := len(e.logLines("proxy call forwarded")) + len(e.logLines("proxy call canceled by the client")); n != 0 {
					t.Errorf("%d other log lines about the call", n)
				}
				for d, want := range map[string]float64{decisionError: 1, decisionAllowed: 0} {
					if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", d)); got != want {
						t.Errorf("requests{exchange,%s} = %v, want %v", d, got, want)
					}
				}
			})
		}
	}
}

// TestUpstreamSwitchesProtocols: an upstream that answers 101 Switching
// Protocols, which no forwarded call asks for (screen refuses upgrades), is
// a failure (502), and the connection it switched is closed at once, with
// either transport. net/http's Transport hands a 101's connection to the
// caller, and ReverseProxy, refusing the switch, never closed it: each such
// answer held one socket to the upstream open for good.
func TestUpstreamSwitchesProtocols(t *testing.T) {
	tests := []struct {
		name string
		req  func(*testEnv) rawRequest
	}{
		// Calls without a body go by h1transport, with one by net/http's.
		{name: "GET", req: as(alice, "GET", mailboxes)},
		{name: "POST", req: func(e *testEnv) rawRequest {
			q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Content-Type", "application/octet-stream"})(e)
			q.body = "index"
			return q
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What the upstream's read of its switched connection returned
			// once the proxy had answered.
			after := make(chan error, 1)
			answered := make(chan struct{})
			upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				c, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					after <- err
					return
				}
				defer c.Close()
				if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); err != nil {
					after <- err
					return
				}
				<-answered
				// Only bounds the wait if the proxy never closes: it has
				// closed the connection before it answered.
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Read(make([]byte, 1))
				after <- err
			})
			e := newTestEnv(t, upstreamAt(upstream), patientStore)
			e.grantFor(alice, "contoso", "exchange", time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
			res := e.send(tt.req(e))
			close(answered)
			if res.status != http.StatusBadGateway || res.errorCode(t) != string(ReasonUpstreamUnavailable) {
				t.Fatalf("client got %d %s, want 502 %s", res.status, res.body, ReasonUpstreamUnavailable)
			}
			if err := <-after; !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the upstream's switched connection, read after the proxy answered: %v; want it closed", err)
			}
			if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionError)); got != 1 {
				t.Errorf("requests{exchange,error} = %v, want 1", got)
			}
		})
	}
}
