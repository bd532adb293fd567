package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// handlerTracker serves a testEnv's handler and knows when the calls it
// was given are over, the handler's deferred work (the body budget's
// release) included.
type handlerTracker struct {
	wg      sync.WaitGroup
	started chan struct{} // one value per call, once its handler runs
}

// track replaces e's server with one whose calls t can wait for.
func (e *testEnv) track() *handlerTracker {
	t := &handlerTracker{started: make(chan struct{}, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.wg.Add(1)
		// Deferred, so that a handler ended by a panic (ReverseProxy's
		// http.ErrAbortHandler) is over too.
		defer t.wg.Done()
		t.started <- struct{}{}
		e.h.ServeHTTP(w, r)
	}))
	e.t.Cleanup(srv.Close)
	e.srv = srv
	return t
}

// wait returns once every call whose handler has started is over. A
// caller must know each call it waits for started: its answer was read,
// or a value taken from started.
func (t *handlerTracker) wait() { t.wg.Wait() }

// checkBudgetEmpty fails t unless no call holds any of e's body budget,
// as the handler and as the gauge report it.
func checkBudgetEmpty(t *testing.T, e *testEnv) {
	t.Helper()
	if n := e.h.bodies.inUse(); n != 0 {
		t.Errorf("body budget in use: %d bytes, want 0", n)
	}
	if g := testutil.ToFloat64(e.h.metrics.bodyBytes); g != 0 {
		t.Errorf("lockbox_proxy_body_buffer_bytes = %v, want 0", g)
	}
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestBodyBudgetFull: while calls hold the whole body budget (their bodies
// read and their upstream not yet answering), the next call whose body
// must be read is refused at once, 503 overloaded with Retry-After, before
// its grant is looked up (an operator without a grant gets the same
// answer) and before anything is audited or forwarded; calls without a
// body and streamed bodies pass meanwhile. Once the held calls finish, the
// budget is free again and a body at the limit is read and forwarded.
func TestBodyBudgetFull(t *testing.T) {
	const limit = 1024
	arrived, release := make(chan struct{}, 8), make(chan struct{})
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := reached.Add(1)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Errorf("upstream read: %v", err)
		}
		// The first two calls are held until release; any later one is
		// answered at once, so a call that should have been refused fails
		// the test rather than hanging it.
		if n <= 2 {
			arrived <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(up.Close)
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before up.Close, which waits for its handlers
	e := newTestEnv(t, func(_ *testEnv, c *Config) {
		c.MaxBodyBytes, c.BodyBufferBytes = limit, 2*limit
		c.Upstreams["exchange"] = mustParseURL(t, up.URL)
	})
	calls := e.track()
	repairOnContoso(e)
	e.grantFor(alice, "contoso", "sharepoint", time.Hour, "Set-SPOSite")
	e.grantFor(bob, "contoso", "sharepoint", time.Hour)

	// Two calls take the whole budget: one body of declared length at the
	// limit, one chunked, whose first buffer is the limit too.
	full := "kind=" + strings.Repeat("x", limit-len("kind="))
	held := []*conn{e.dial(), e.dial()}
	for i, q := range []rawRequest{
		formPOST(formURLEncoded, full, false)(e),
		formPOST("application/json", `{"kind":"`+strings.Repeat("x", limit-100)+`"}`, true)(e),
	} {
		if _, err := held[i].c.Write(q.bytes()); err != nil {
			t.Fatal(err)
		}
		<-arrived
	}
	if n := e.h.bodies.inUse(); n != 2*limit {
		t.Fatalf("held calls reserved %d bytes, want %d", n, 2*limit)
	}
	if g := testutil.ToFloat64(e.h.metrics.bodyBytes); g != 2*limit {
		t.Errorf("lockbox_proxy_body_buffer_bytes = %v, want %d", g, 2*limit)
	}

	refused := []struct {
		name string
		req  func(*testEnv) rawRequest
	}{
		{"form of declared length", formPOST(formURLEncoded, "kind=index", false)},
		{"chunked JSON", formPOST("application/json", `{"kind":"index"}`, true)},
		{"operator without a grant", func(e *testEnv) rawRequest {
			q := as(bob, "POST", mailboxes+"/bob/repair", [2]string{"Content-Type", formURLEncoded})(e)
			q.body = "kind=index"
			return q
		}},
	}
	for _, tt := range refused {
		res := e.send(tt.req(e))
		if res.status != http.StatusServiceUnavailable || res.errorCode(t) != string(ReasonOverloaded) {
			t.Errorf("%s: %d %s, want 503 %s", tt.name, res.status, res.body, ReasonOverloaded)
		}
		if ra := res.header.Values("Retry-After"); len(ra) != 1 || ra[0] != retryAfterOverloaded {
			t.Errorf("%s: Retry-After %q, want %q", tt.name, ra, retryAfterOverloaded)
		}
		if res.header.Get(HeaderDecisionID) == "" {
			t.Errorf("%s: no decision id", tt.name)
		}
	}
	if n := reached.Load(); n != 2 {
		t.Errorf("upstream reached %d times, want 2 (the held calls)", n)
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonOverloaded))); got != float64(len(refused)) {
		t.Errorf("denials{exchange,overloaded} = %v, want %d", got, len(refused))
	}
	lines := e.logLines("proxy call denied")
	if len(lines) != len(refused) {
		t.Errorf("%d denial log lines, want %d", len(lines), len(refused))
	}
	for _, l := range lines {
		if l["reason"] != string(ReasonOverloaded) || l["status"] != float64(503) || l["activity"] != "New-MailboxRepairRequest" ||
			!strings.Contains(fmt.Sprint(l["error"]), "2048 of 2048 in use") {
			t.Errorf("denial log line %v", l)
		}
	}

	// Calls that buffer nothing still pass: a streamed body, no body.
	patch := as(alice, "PATCH", "/sharepoint/tenants/contoso/sites/s1", [2]string{"Content-Type", "application/json"})(e)
	patch.body, patch.chunked = `{"title":"t"}`, true
	if res := e.send(patch); res.status != http.StatusOK {
		t.Errorf("streamed PATCH while the budget is full: %d %s", res.status, res.body)
	}
	if res := e.send(as(bob, "GET", "/sharepoint/tenants/contoso/sites")(e)); res.status != http.StatusOK {
		t.Errorf("GET while the budget is full: %d %s", res.status, res.body)
	}

	// Only the two held calls were audited: the refusals came first.
	written := 0
	for _, r := range mustList(t, e, 100) {
		if r.Operation == "New-MailboxRepairRequest" {
			written++
		}
	}
	if written != 2 {
		t.Errorf("%d New-MailboxRepairRequest records, want 2", written)
	}

	free()
	for _, c := range held {
		res, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Errorf("held call: %d", res.StatusCode)
		}
	}
	calls.wait()
	checkBudgetEmpty(t, e)
	if res := e.send(formPOST(formURLEncoded, full, false)(e)); res.status != http.StatusNoContent {
		t.Errorf("a body at the limit once the budget is free: %d %s", res.status, res.body)
	}
	if n := reached.Load(); n != 3 {
		t.Errorf("upstream reached %d times, want 3", n)
	}
	calls.wait()
	checkBudgetEmpty(t, e)
}

// TestBodyBudgetReleased: whichever way a call whose body was read ends,
// refused after the read, forwarded, abandoned by its client or cut off
// by its upstream (ReverseProxy's panic), what it reserved returns to the
// budget.
func TestBodyBudgetReleased(t *testing.T) {
	// cutShort answers with less of its body than it announced, then
	// aborts: ReverseProxy then ends the proxy's handler with a panic.
	cutShort := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte("short"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	tests := []struct {
		name     string
		config   envOption
		upstream http.HandlerFunc // exchange's, when set
		req      func(*testEnv) rawRequest
		// status is the answer; 0 when the client hangs up before it.
		status int
		reason Reason
		// hangUp: the client sends part of the body and closes.
		hangUp bool
	}{
		{name: "method override in a form", req: formPOST(formURLEncoded, "kind=index&_method=DELETE", false),
			status: 400, reason: ReasonBadRequest},
		{name: "method override in a chunked JSON POST", req: formPOST("application/json", `{"_method":"DELETE"}`, true),
			status: 400, reason: ReasonBadRequest},
		{name: "chunked body over the limit", config: func(_ *testEnv, c *Config) { c.MaxBodyBytes = 1024 },
			req: formPOST(formURLEncoded, "kind="+strings.Repeat("x", 5000), true), status: 413, reason: ReasonBadRequest},
		{name: "malformed JSON", req: formPOST("application/json", `{"kind":`, false),
			status: 400, reason: ReasonBadRequest},
		{name: "no grant", req: func(e *testEnv) rawRequest {
			q := as(bob, "POST", mailboxes+"/bob/repair", [2]string{"Content-Type", formURLEncoded})(e)
			q.body = "kind=index"
			return q
		}, status: 403, reason: ReasonNoGrant},
		{name: "forwarded", req: formPOST(formURLEncoded, "kind=index", false), status: 200},
		{name: "client hangs up mid-body", req: formPOST(formURLEncoded, "kind=index", false), hangUp: true},
		{name: "upstream cuts its answer short", upstream: cutShort,
			req: formPOST(formURLEncoded, "kind=index", false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envOption
			if tt.config != nil {
				opts = append(opts, tt.config)
			}
			var atUpstream atomic.Int64
			var e *testEnv
			if tt.upstream != nil {
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					atUpstream.Store(e.h.bodies.inUse())
					tt.upstream(w, r)
				}))
				t.Cleanup(up.Close)
				opts = append(opts, func(_ *testEnv, c *Config) { c.Upstreams["exchange"] = mustParseURL(t, up.URL) })
			}
			e = newTestEnv(t, opts...)
			calls := e.track()
			repairOnContoso(e)
			q := tt.req(e)
			switch {
			case tt.hangUp:
				c := e.dial()
				raw := q.bytes()
				// The header and part of the declared body.
				if _, err := c.c.Write(raw[:len(raw)-len(q.body)/2]); err != nil {
					t.Fatal(err)
				}
				<-calls.started
				c.c.Close()
			case tt.upstream != nil:
				c := e.dial()
				if _, err := c.c.Write(q.bytes()); err != nil {
					t.Fatal(err)
				}
				// The connection ends before the announced body does.
				if res, err := http.ReadResponse(c.br, nil); err == nil {
					if _, err := io.ReadAll(res.Body); err == nil {
						t.Error("the cut-off answer reached the client whole")
					}
					res.Body.Close()
				}
				if n := atUpstream.Load(); n != int64(len(q.body)) {
					t.Errorf("budget in use while forwarding: %d, want %d", n, len(q.body))
				}
			default:
				res := e.send(q)
				if res.status != tt.status {
					t.Fatalf("%d %s, want %d", res.status, res.body, tt.status)
				}
				if tt.reason != "" && res.errorCode(t) != string(tt.reason) {
					t.Fatalf("%s, want %s", res.body, tt.reason)
				}
			}
			calls.wait()
			checkBudgetEmpty(t, e)
		})
	}
}

// TestReadBody: readBody reserves the capacity of the buffer it reads
// into before allocating it, at once for a declared length and in
// doublings up to the limit for an unknown one, and stops at the limit or
// the budget.
func TestReadBody(t *testing.T) {
	const limit = 10000
	readErr := errors.New("connection reset")
	tests := []struct {
		name   string
		budget int64
		size   int64 // declared length, -1 when unknown
		body   io.Reader
		want   int // bytes read
		held   int64
		reason Reason
		status int // when not the reason's
	}{
		{name: "declared", size: 100, body: strings.NewReader(strings.Repeat("a", 100)), want: 100, held: 100},
		{name: "declared, a byte at a time", size: 100, body: iotest.OneByteReader(strings.NewReader(strings.Repeat("a", 100))), want: 100, held: 100},
		{name: "declared, at the limit", size: limit, body: strings.NewReader(strings.Repeat("a", limit)), want: limit, held: limit},
		{name: "declared zero", size: 0, body: strings.NewReader(""), want: 0, held: 0},
		{name: "longer than declared", size: 100, body: strings.NewReader(strings.Repeat("a", 150)), want: 150, held: unknownLengthStart},
		{name: "unknown, empty", size: -1, body: strings.NewReader(""), want: 0, held: unknownLengthStart},
		{name: "unknown, first buffer", size: -1, body: strings.NewReader(strings.Repeat("a", unknownLengthStart)), want: unknownLengthStart, held: unknownLengthStart},
		{name: "unknown, grown", size: -1, body: strings.NewReader(strings.Repeat("a", 5000)), want: 5000, held: 2 * unknownLengthStart},
		{name: "unknown, at the limit", size: -1, body: strings.NewReader(strings.Repeat("a", limit)), want: limit, held: limit},
		{name: "unknown, over the limit", size: -1, body: strings.NewReader(strings.Repeat("a", limit+1)),
			held: limit, reason: ReasonBadRequest, status: http.StatusRequestEntityTooLarge},
		{name: "declared, over budget", budget: 99, size: 100, body: strings.NewReader(strings.Repeat("a", 100)),
			held: 0, reason: ReasonOverloaded},
		{name: "unknown, growth over budget", budget: 6000, size: -1, body: strings.NewReader(strings.Repeat("a", 5000)),
			held: unknownLengthStart, reason: ReasonOverloaded},
		{name: "read error", size: 100, body: io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(readErr)),
			held: 100, reason: ReasonBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{cfg: Config{MaxBodyBytes: limit}}
			h.bodies.limit = 4 * limit
			if tt.budget != 0 {
				h.bodies.limit = tt.budget
			}
			var held int64
			body, reason, err := h.readBody(tt.body, tt.size, &held)
			if reason != tt.reason {
				t.Fatalf("reason %q (%v), want %q", reason, err, tt.reason)
			}
			if reason == "" && len(body) != tt.want {
				t.Errorf("read %d bytes, want %d", len(body), tt.want)
			}
			if reason == "" && int64(cap(body)) != held {
				t.Errorf("buffer of %d bytes, %d reserved", cap(body), held)
			}
			if held != tt.held || h.bodies.inUse() != tt.held {
				t.Errorf("held %d, budget in use %d, want %d", held, h.bodies.inUse(), tt.held)
			}
			if tt.status != 0 && statusOf(reason, err) != tt.status {
				t.Errorf("status %d, want %d", statusOf(reason, err), tt.status)
			}
			if tt.name == "read error" && !errors.Is(err, readErr) {
				t.Errorf("error %v does not wrap the read's", err)
			}
			if reason == ReasonOverloaded && !errors.Is(err, errOverloaded) {
				t.Errorf("error %v", err)
			}
			h.bodies.release(held)
			if h.bodies.inUse() != 0 {
				t.Errorf("budget in use %d after release", h.bodies.inUse())
			}
		})
	}
}

// TestBodyBudgetConcurrent: reservations from many goroutines never take
// more than the limit, and releases return every byte.
func TestBodyBudgetConcurrent(t *testing.T) {
	b := &bodyBudget{limit: 1000}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if b.reserve(300) {
					if n := b.inUse(); n > 1000 {
						t.Errorf("in use %d over the limit", n)
					}
					b.release(300)
				}
			}
		})
	}
	wg.Wait()
	if n := b.inUse(); n != 0 {
		t.Errorf("in use %d after every release", n)
	}
}
