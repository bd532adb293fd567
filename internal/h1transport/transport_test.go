package h1transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTransport() *Transport {
	return &Transport{
		DialTimeout:            time.Second,
		ResponseHeaderTimeout:  10 * time.Second,
		IdleConnTimeout:        time.Minute,
		MaxIdleConnsPerHost:    16,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// countingServer is an httptest server that counts the connections it
// accepted.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func get(t *testing.T, tr http.RoundTripper, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	res.Body.Close()
	return res.StatusCode, string(b)
}

func TestKeepAlive(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	})
	tr := newTransport()
	for i := range 20 {
		if code, body := get(t, tr, fmt.Sprintf("%s/n/%d", srv.URL, i)); code != 200 || body != fmt.Sprintf("GET /n/%d", i) {
			t.Fatalf("call %d: %d %q", i, code, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential calls opened %d connections, want 1", n)
	}
}

func TestConcurrentCalls(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat(r.URL.Path, 300))) // several reads' worth
	})
	tr := newTransport()
	// Room in the pool for every caller's connection: with less, one
	// returned while the pool is full is closed and a later call dials
	// again, and 32 callers may open more than 32 connections in all
	// (42 on a loaded machine), as they should.
	tr.MaxIdleConnsPerHost = 32
	var wg sync.WaitGroup
	errs := make(chan error, 32*25)
	for g := range 32 {
		wg.Go(func() {
			for i := range 25 {
				p := fmt.Sprintf("/g%d/c%d", g, i)
				res, err := tr.RoundTrip(httptest.NewRequest(http.MethodGet, srv.URL+p, nil).WithContext(context.Background()))
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || string(b) != strings.Repeat(p, 300) {
					errs <- fmt.Errorf("%s: got %d bytes, err %v", p, len(b), err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conns.Load(); n > 32 {
		t.Errorf("32 callers opened %d connections", n)
	}
}

func TestRequestBody(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v %s", r.ContentLength, r.TransferEncoding, b)
	})
	tr := newTransport()
	for _, tc := range []struct {
		name string
		body io.Reader
		want string
	}{
		{"content-length", strings.NewReader("hello"), "5 [] hello"},
		{"chunked", io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo")), "-1 [chunked] hello"},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", tc.body)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != tc.want {
			t.Errorf("%s: upstream saw %q, want %q", tc.name, b, tc.want)
		}
	}
}

// TestRequestBodyErrorKept: a body that fails while it is written (the
// proxy's MaxBytesReader past its limit) fails the call with that error,
// which the caller can still find.
func TestRequestBodyErrorKept(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), 10)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", body)
	req.ContentLength = -1
	_, err := newTransport().RoundTrip(req)
	if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
		t.Fatalf("err = %v, want a *http.MaxBytesError in it", err)
	}
}

// rawServer accepts connections and hands each to serve, with the
// connection's index.
func rawServer(t *testing.T, serve func(i int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(i, c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readRequest reads one request off br, body included.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// TestReusedConnectionClosedMidCall: the upstream reads the second request
// on each kept-alive connection and closes it without answering. A GET is
// sent again on a new connection; a POST with a body (consumed) and a
// DELETE without one (the upstream may have acted on it) are not, and
// fail.
func TestReusedConnectionClosedMidCall(t *testing.T) {
	var requests, conns atomic.Int64
	url := rawServer(t, func(_ int, c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			if _, err := readRequest(br); err != nil {
				return
			}
			requests.Add(1)
			if n == 1 {
				return // the second request on a connection: dropped
			}
			io.WriteString(c, okResponse)
		}
	})
	tr := newTransport()
	get(t, tr, url+"/1")
	if code, body := get(t, tr, url+"/2"); code != 200 || body != "ok" {
		t.Fatalf("retried GET: %d %q", code, body)
	}
	if r, c := requests.Load(), conns.Load(); r != 3 || c != 2 {
		t.Fatalf("upstream saw %d requests on %d connections, want 3 on 2 (the dropped one and its retry)", r, c)
	}
	// The retry's connection is pooled; a POST on it is dropped.
	req, _ := http.NewRequest(http.MethodPost, url+"/3", strings.NewReader("body"))
	if res, err := tr.RoundTrip(req); err == nil {
		res.Body.Close()
		t.Fatal("a POST whose connection closed before answering succeeded; it must fail, not be sent again")
	}
	if r, c := requests.Load(), conns.Load(); r != 4 || c != 2 {
		t.Errorf("upstream saw %d requests on %d connections, want 4 on 2 (the POST not sent again)", r, c)
	}
	// A new connection answers the first call; the DELETE, second on it,
	// is dropped and must not be sent again.
	get(t, tr, url+"/4")
	req, _ = http.NewRequest(http.MethodDelete, url+"/5", nil)
	if res, err := tr.RoundTrip(req); err == nil {
		res.Body.Close()
		t.Fatal("a DELETE whose connection closed before answering succeeded; it must fail, not be sent again")
	}
	if r, c := requests.Load(), conns.Load(); r != 6 || c != 3 {
		t.Errorf("upstream saw %d requests on %d connections, want 6 on 3 (the DELETE not sent again)", r, c)
	}
}

// TestClosedIdleConnectionNotUsed: a pooled connection the upstream has
// closed is found closed when taken, and the call goes on a new one.
func TestClosedIdleConnectionNotUsed(t *testing.T) {
	closed := make(chan struct{})
	var conns atomic.Int64
	url := rawServer(t, func(i int, c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, okResponse)
		if i == 0 {
			// Close after answering, as an upstream's idle timeout would.
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			close(closed)
		}
	})
	tr := newTransport()
	get(t, tr, url+"/1")
	waitFIN(t, tr, url)
	get(t, tr, url+"/2")
	<-closed
	if n := conns.Load(); n != 2 {
		t.Errorf("connections: %d, want 2", n)
	}
}

// waitFIN waits until the single pooled connection to url has seen the
// upstream's FIN, as the next call would find it.
func waitFIN(t *testing.T, tr *Transport, url string) {
	t.Helper()
	p := tr.pool(strings.TrimPrefix(url, "http://"))
	p.mu.Lock()
	c := p.idle[0]
	p.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for peekQuiet(c.nc) {
		if time.Now().After(deadline) {
			t.Fatal("the upstream's close never arrived")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestUnsolicitedResponseNotServed: bytes an upstream sends on an idle
// connection (a response nobody asked for) are never taken as the answer to
// the next call.
func TestUnsolicitedResponseNotServed(t *testing.T) {
	for _, tc := range []struct {
		name string
		late bool // sent after the first response was read and the connection pooled
	}{{"with the response", false}, {"later", true}} {
		t.Run(tc.name, func(t *testing.T) {
			pooled, sent := make(chan struct{}), make(chan struct{})
			url := rawServer(t, func(i int, c net.Conn) {
				br := bufio.NewReader(c)
				for {
					if _, err := readRequest(br); err != nil {
						return
					}
					if i > 0 {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
						continue
					}
					evil := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
					if !tc.late {
						io.WriteString(c, okResponse+evil)
						continue
					}
					io.WriteString(c, okResponse)
					<-pooled
					io.WriteString(c, evil)
					close(sent)
				}
			})
			tr := newTransport()
			get(t, tr, url+"/1")
			if tc.late {
				close(pooled)
				<-sent
				p := tr.pool(strings.TrimPrefix(url, "http://"))
				p.mu.Lock()
				c := p.idle[0]
				p.mu.Unlock()
				for peekQuiet(c.nc) { // until the bytes are in our socket
					time.Sleep(time.Millisecond)
				}
			}
			if _, body := get(t, tr, url+"/2"); body != "real" {
				t.Fatalf("second call got %q, want the answer to it (\"real\")", body)
			}
		})
	}
}

func TestConnectionCloseNotReused(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	tr := newTransport()
	get(t, tr, srv.URL)
	get(t, tr, srv.URL)
	if n := conns.Load(); n != 2 {
		t.Errorf("connections: %d, want 2 (Connection: close)", n)
	}
}

func TestBodyNotReadToEndNotReused(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 64<<10)))
	})
	tr := newTransport()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(res.Body, make([]byte, 10))
	res.Body.Close()
	get(t, tr, srv.URL)
	if n := conns.Load(); n != 2 {
		t.Errorf("connections: %d, want 2 (a body left unread closes its connection)", n)
	}
}

func TestResponseHeaderTooLarge(t *testing.T) {
	url := rawServer(t, func(_ int, c net.Conn) {
		readRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		for range 10_000 {
			if _, err := io.WriteString(c, "X-Filler: "+strings.Repeat("y", 100)+"\r\n"); err != nil {
				return
			}
		}
	})
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	_, err := newTransport().RoundTrip(req)
	if !errors.Is(err, errResponseHeaderTooLarge) {
		t.Fatalf("err = %v, want %v", err, errResponseHeaderTooLarge)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	url := rawServer(t, func(_ int, c net.Conn) {
		readRequest(bufio.NewReader(c))
		io.Copy(io.Discard, c) // never answers
	})
	tr := newTransport()
	tr.ResponseHeaderTimeout = 50 * time.Millisecond
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	_, err := tr.RoundTrip(req)
	if !isTimeout(err) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestCancel: cancelling a call's context while its body streams ends the
// read with the context's error and closes the connection.
func TestCancel(t *testing.T) {
	upstreamSawClose := make(chan struct{})
	url := rawServer(t, func(_ int, c net.Conn) {
		readRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		io.Copy(io.Discard, c) // returns when the proxy closes
		close(upstreamSawClose)
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := newTransport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	io.ReadFull(res.Body, buf)
	cancel()
	_, err = res.Body.Read(buf)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	res.Body.Close()
	<-upstreamSawClose
}

func TestCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/", nil)
	if _, err := newTransport().RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestInformationalResponses(t *testing.T) {
	url := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := readRequest(br)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/hints":
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+okResponse)
			case "/upgrade":
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			}
		}
	})
	tr := newTransport()
	if code, body := get(t, tr, url+"/hints"); code != 200 || body != "ok" {
		t.Errorf("after 103: %d %q, want 200 \"ok\"", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/upgrade", nil)
	if res, err := tr.RoundTrip(req); err == nil {
		res.Body.Close()
		t.Error("a 101 was returned; nothing asks to switch protocols, so it must fail")
	}
}

func TestHeadAndNoContent(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", "10")
	})
	tr := newTransport()
	for range 3 {
		req, _ := http.NewRequest(http.MethodHead, srv.URL+"/", nil)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(res.Body); len(b) != 0 || res.ContentLength != 10 {
			t.Fatalf("HEAD: body %q, ContentLength %d", b, res.ContentLength)
		}
		res.Body.Close()
		if code, _ := get(t, tr, srv.URL+"/204"); code != 204 {
			t.Fatalf("status %d, want 204", code)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("connections: %d, want 1 (bodiless answers keep the connection)", n)
	}
}

func TestIdlePoolBounded(t *testing.T) {
	const callers = 6
	arrived := make(chan struct{}, callers)
	release := make(chan struct{})
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Write([]byte("ok"))
	})
	tr := newTransport()
	tr.MaxIdleConnsPerHost = 2
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { get(t, tr, srv.URL) })
	}
	for range callers {
		<-arrived
	}
	close(release)
	wg.Wait()
	p := tr.pool(strings.TrimPrefix(srv.URL, "http://"))
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if conns.Load() != callers || idle != 2 {
		t.Errorf("%d connections, %d kept idle; want %d and 2", conns.Load(), idle, callers)
	}
}

func TestIdleTimeout(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	tr := newTransport()
	get(t, tr, srv.URL)
	p := tr.pool(strings.TrimPrefix(srv.URL, "http://"))
	p.mu.Lock()
	p.idle[0].idleSince = time.Now().Add(-2 * tr.IdleConnTimeout)
	p.mu.Unlock()
	get(t, tr, srv.URL)
	if n := conns.Load(); n != 2 {
		t.Errorf("connections: %d, want 2 (the first was idle past IdleConnTimeout)", n)
	}
	// The sweep closes what has been idle too long, and nothing younger.
	if next := p.closeIdle(time.Now().Add(-time.Hour)); next.IsZero() {
		t.Error("closeIdle closed a connection idle for less than the cutoff")
	}
	if next := p.closeIdle(time.Now().Add(time.Hour)); !next.IsZero() {
		t.Error("closeIdle left a connection idle past the cutoff")
	}
}

func TestOnlyHTTP(t *testing.T) {
	for _, u := range []string{"https://example.com/", "/relative"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := newTransport().RoundTrip(req); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}

// TestZeroLimits: zero means the documented default, not "refuse
// everything": no idle timeout, and net/http's header limit.
func TestZeroLimits(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("b", 100<<10)) // past 64 KiB, within 1 MiB
		w.Write([]byte("ok"))
	})
	tr := &Transport{MaxIdleConnsPerHost: 1}
	for range 2 {
		if code, body := get(t, tr, srv.URL); code != 200 || body != "ok" {
			t.Fatalf("%d %q", code, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("connections: %d, want 1", n)
	}
}

// TestUnpeekableConnectionNotQuiet: a connection that can't be looked at
// without reading is not known to be quiet, so it is never reused.
func TestUnpeekableConnectionNotQuiet(t *testing.T) {
	a, b := net.Pipe() // no file descriptor behind it
	defer a.Close()
	defer b.Close()
	if peekQuiet(a) {
		t.Fatal("a connection with nothing to peek with counted as quiet")
	}
}

// TestInvalidRequestRefused: a request net/http's Transport refuses to
// write is refused here too. Request.Write alone writes the method as it
// is, so a CR LF in it starts a second request on the connection; it turns
// CR and LF in a header value into spaces and drops a header whose name is
// not a token, so the upstream would get a call other than the one made.
func TestInvalidRequestRefused(t *testing.T) {
	url := rawServer(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(c, okResponse)
		}
	})
	std := &http.Transport{}
	t.Cleanup(std.CloseIdleConnections)
	tr := newTransport()
	for _, tc := range []struct {
		name string
		edit func(*http.Request)
	}{
		{"a second request in the method", func(r *http.Request) {
			r.Method = "GET /a HTTP/1.1\r\nHost: upstream\r\n\r\nDELETE"
		}},
		{"a space in the method", func(r *http.Request) { r.Method = "GET /b" }},
		{"CR LF in a header value", func(r *http.Request) { r.Header["Accept"] = []string{"a\r\nX-Injected: 1"} }},
		{"LF in a header value", func(r *http.Request) { r.Header["Accept"] = []string{"a\nX-Injected: 1"} }},
		{"NUL in a header value", func(r *http.Request) { r.Header["Accept"] = []string{"a\x00b"} }},
		{"CR LF in a header name", func(r *http.Request) { r.Header["X-A\r\nX-Injected"] = []string{"1"} }},
		{"a space in a header name", func(r *http.Request) { r.Header["X-A B"] = []string{"1"} }},
		{"CR LF in a trailer value", func(r *http.Request) {
			r.Method = http.MethodPost
			r.Body = io.NopCloser(strings.NewReader("body"))
			r.ContentLength = -1
			r.Trailer = http.Header{"X-T": {"a\r\nX-Injected: 1"}}
		}},
		{"CR LF in the query", func(r *http.Request) { r.URL.RawQuery = "a=1\r\nX-Injected: 1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, url+"/a", nil)
			tc.edit(req)
			// The standard this transport keeps: net/http's refuses it.
			if res, err := std.RoundTrip(req.Clone(context.Background())); err == nil {
				res.Body.Close()
				t.Fatal("net/http's Transport sent it; the case tests nothing")
			}
			if res, err := tr.RoundTrip(req); err == nil {
				res.Body.Close()
				t.Fatal("sent and answered; it must be refused before anything is written")
			}
		})
	}
	// The transport still works for a valid call.
	if code, body := get(t, tr, url+"/ok"); code != 200 || body != "ok" {
		t.Fatalf("valid call: %d %q", code, body)
	}
}

// TestRetryOnceOnNewConnection: a GET whose pooled connection closes
// before answering is sent again once, on a new connection, however many
// pooled connections are as stale: each try is one more copy of the call
// (and of its grant assertion) that the upstream may have acted on.
func TestRetryOnceOnNewConnection(t *testing.T) {
	const pooled = 3
	arrived := make(chan struct{}, pooled)
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{} // path: copies the upstream read
	url := rawServer(t, func(i int, c net.Conn) {
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			req, err := readRequest(br)
			if err != nil {
				return
			}
			mu.Lock()
			seen[req.URL.Path]++
			mu.Unlock()
			if n > 0 {
				return // a kept-alive connection's next request: dropped unanswered
			}
			if i < pooled {
				arrived <- struct{}{}
				<-release
			}
			io.WriteString(c, okResponse)
		}
	})
	tr := newTransport()
	// pooled calls at once, each on a connection of its own, all pooled.
	var wg sync.WaitGroup
	for range pooled {
		wg.Go(func() { get(t, tr, url+"/fill") })
	}
	for range pooled {
		<-arrived
	}
	close(release)
	wg.Wait()
	if code, body := get(t, tr, url+"/x"); code != 200 || body != "ok" {
		t.Fatalf("GET /x: %d %q", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := seen["/x"]; n != 2 {
		t.Errorf("the upstream read GET /x %d times, want 2 (the dropped call and one retry on a new connection)", n)
	}
}

// TestCloseUnfinishedBody: closing a body not read to its end closes the
// connection at once, as net/http's Transport does, without first reading
// whatever the upstream still has to send: it may never end.
func TestCloseUnfinishedBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   http.RoundTripper
	}{{"h1transport", newTransport()}, {"net-http", &http.Transport{}}} {
		t.Run(tc.name, func(t *testing.T) {
			upstreamSawClose := make(chan struct{})
			url := rawServer(t, func(_ int, c net.Conn) {
				readRequest(bufio.NewReader(c))
				// The first chunk of a body that does not end.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n")
				io.Copy(io.Discard, c) // returns when the client closes
				close(upstreamSawClose)
			})
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			res, err := tc.tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "part" {
				t.Fatalf("first chunk %q, %v", buf, err)
			}
			closed := make(chan struct{})
			go func() {
				res.Body.Close()
				close(closed)
			}()
			for _, wait := range []struct {
				ch   chan struct{}
				what string
			}{{closed, "Close returned"}, {upstreamSawClose, "the upstream saw the connection closed"}} {
				select {
				case <-wait.ch:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s only after 10 s, if ever: Close waits for the rest of the body", wait.what)
				}
			}
		})
	}
}

// TestMisframedAnswerNotServedToNextCall: whatever an upstream sends past
// the end of an answer, as framed by net/http's rules, never becomes the
// answer to the next call on the connection (the next call may be another
// engineer's, for another tenant): the connection is closed, or the call
// that follows gets its own answer.
func TestMisframedAnswerNotServedToNextCall(t *testing.T) {
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
	for _, tc := range []struct {
		name, method, answer string
	}{
		{"chunked overrides Content-Length", http.MethodGet, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + evil},
		{"bytes past Content-Length", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + evil},
		{"bytes past the last chunk", http.MethodGet, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + evil},
		{"a body after HEAD", http.MethodHead, "HTTP/1.1 200 OK\r\nContent-Length: 48\r\n\r\n" + evil},
		{"a body after 204", http.MethodGet, "HTTP/1.1 204 No Content\r\nContent-Length: 48\r\n\r\n" + evil},
		{"a body after 304", http.MethodGet, "HTTP/1.1 304 Not Modified\r\nContent-Length: 48\r\n\r\n" + evil},
		{"a body after 103", http.MethodGet, "HTTP/1.1 103 Early Hints\r\nContent-Length: 48\r\n\r\n" + evil + okResponse},
		{"HTTP/1.0 without keep-alive", http.MethodGet, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok" + evil},
		{"Connection: close among others", http.MethodGet, "HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 2\r\n\r\nok" + evil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawServer(t, func(i int, c net.Conn) {
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					if _, err := readRequest(br); err != nil {
						return
					}
					if i == 0 && n == 0 {
						io.WriteString(c, tc.answer) // one write: one segment on loopback
						continue
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
				}
			})
			tr := newTransport()
			req, _ := http.NewRequest(tc.method, url+"/1", nil)
			if res, err := tr.RoundTrip(req); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			for i := range 2 {
				if code, body := get(t, tr, url+"/2"); code != 200 || body != "real" {
					t.Fatalf("call %d after it: %d %q, want the answer to it (\"real\")", i+1, code, body)
				}
			}
		})
	}
}

// cancelOnWrite cancels its call once the request is written, and returns
// from that write only once the cancellation has set the connection's
// deadline: the transport sets the response-header deadline after that.
type cancelOnWrite struct {
	net.Conn
	cancel   context.CancelFunc
	deadline chan struct{}
	once     sync.Once
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.once.Do(func() {
		c.cancel()
		<-c.deadline
	})
	return n, err
}

func (c *cancelOnWrite) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	select {
	case c.deadline <- struct{}{}:
	default:
	}
	return err
}

// TestCancelWhileWriting: a call cancelled as its request is written ends
// then, though the transport sets the response-header deadline after the
// write, over the deadline the cancellation set: it is not held until an
// upstream that never answers runs out ResponseHeaderTimeout.
func TestCancelWhileWriting(t *testing.T) {
	url := rawServer(t, func(_ int, c net.Conn) {
		readRequest(bufio.NewReader(c))
		io.Copy(io.Discard, c) // never answers
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := newTransport()
	tr.ResponseHeaderTimeout = 10 * time.Minute
	tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &cancelOnWrite{Conn: nc, cancel: cancel, deadline: make(chan struct{}, 1)}, nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	done := make(chan error, 1)
	go func() {
		res, err := tr.RoundTrip(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call cancelled as its request was written still waits for the answer")
	}
}

// TestEndlessTrailer: an upstream whose chunked body ends in a trailer
// section with no end fails the call once the trailer outgrows the
// connection's read buffer; the transport neither buffers it nor waits
// for its end. What was read of it stays bounded, and the connection is
// not used again.
func TestEndlessTrailer(t *testing.T) {
	url := rawServer(t, func(_ int, c net.Conn) {
		readRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Filler: ")
		// Up to 64 MiB: without a bound the call would read it all.
		filler := strings.Repeat("y", 32<<10)
		for range 2 << 10 {
			if _, err := io.WriteString(c, filler); err != nil {
				return
			}
		}
	})
	var read atomic.Int64
	tr := newTransport()
	tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, read: &read}, nil
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil || string(b) != "hello" {
		t.Fatalf("body %q, err %v: want the body, then an error", b, err)
	}
	if n := read.Load(); n > tr.MaxResponseHeaderBytes {
		t.Errorf("read %d bytes for the call, more than the header limit %d", n, tr.MaxResponseHeaderBytes)
	}
	p := tr.pool(strings.TrimPrefix(url, "http://"))
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d idle connections after a failed trailer, want 0", idle)
	}
}

// countingConn counts the bytes read from its connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestResponseBodyIdleTimeout: an upstream that sends its header and part
// of its body, then nothing, fails the body's read once
// ResponseBodyIdleTimeout passes without a byte, rather than holding the
// call for as long as it likes; a body whose pieces keep coming is read to
// its end however long it takes, and its connection serves the next call
// after its deadline would have passed.
func TestResponseBodyIdleTimeout(t *testing.T) {
	const idle = time.Second
	t.Run("stalled", func(t *testing.T) {
		url := rawServer(t, func(_ int, c net.Conn) {
			readRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
			io.Copy(io.Discard, c) // then nothing, until the client closes
		})
		tr := newTransport()
		tr.ResponseBodyIdleTimeout = idle
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		read := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(res.Body)
			read <- err
		}()
		select {
		case err := <-read:
			if !isTimeout(err) || !strings.Contains(err.Error(), "no bytes of the response body for 1s") {
				t.Errorf("body read: %v, want the idle timeout's", err)
			}
		case <-time.After(10 * idle):
			t.Fatal("the body's read still waits on a stalled upstream")
		}
	})
	t.Run("moving", func(t *testing.T) {
		const pieces, pause = 30, idle / 20 // 1.5 s in all, no pause near the bound
		srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/next" {
				io.WriteString(w, "next")
				return
			}
			for i := range pieces {
				fmt.Fprintf(w, "%d;", i)
				w.(http.Flusher).Flush()
				time.Sleep(pause)
			}
		})
		tr := newTransport()
		tr.ResponseBodyIdleTimeout = idle
		var want strings.Builder
		for i := range pieces {
			fmt.Fprintf(&want, "%d;", i)
		}
		if code, body := get(t, tr, srv.URL+"/slow"); code != 200 || body != want.String() {
			t.Fatalf("slow body: %d %q", code, body)
		}
		// The deadline set during the body has passed by now; the pooled
		// connection's must not fail the peek before its reuse.
		time.Sleep(idle + idle/4)
		if code, body := get(t, tr, srv.URL+"/next"); code != 200 || body != "next" {
			t.Fatalf("next call: %d %q", code, body)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("the two calls opened %d connections, want 1: the first one's was not reused", n)
		}
	})
}
