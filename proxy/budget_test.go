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

	"github.com/lockbox-oss/lockbox/identity"
)

// handlerTracker serves a testEnv's handler and knows when the calls it
// was given are over, the handler's deferred work (the body budget's
// release) included.
type handlerTracker struct {
	wg      sync.WaitGroup
	started chan struct{} // one value per call, once its handler runs
	// reading gets one value per call with a body, once the handler first
	// reads it: a body the proxy buffers has its reservation by then. A
	// value that finds reading full is dropped.
	reading chan struct{}
}

// track replaces e's server with one whose calls t can wait for.
func (e *testEnv) track() *handlerTracker {
	t := &handlerTracker{started: make(chan struct{}, 64), reading: make(chan struct{}, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.wg.Add(1)
		// Deferred, so that a handler ended by a panic (ReverseProxy's
		// http.ErrAbortHandler) is over too.
		defer t.wg.Done()
		t.started <- struct{}{}
		if hasBody(r) {
			r.Body = &firstRead{ReadCloser: r.Body, c: t.reading}
		}
		e.h.ServeHTTP(w, r)
	}))
	e.t.Cleanup(srv.Close)
	e.srv = srv
	return t
}

// firstRead is a request body that reports its first Read on c.
type firstRead struct {
	io.ReadCloser
	c    chan<- struct{}
	once sync.Once
}

func (b *firstRead) Read(p []byte) (int, error) {
	b.once.Do(func() {
		select {
		case b.c <- struct{}{}:
		default:
		}
	})
	return b.ReadCloser.Read(p)
}

// wait returns once every call whose handler has started is over. A
// caller must know each call it waits for started: its answer was read,
// or a value taken from started.
func (t *handlerTracker) wait() { t.wg.Wait() }

// checkBudgetEmpty fails t unless no call holds any of e's body budget,
// as the handler and as the gauge report it.
func checkBudgetEmpty(t *testing.T, e *testEnv) {
	t.Helper()
	if n, ops := e.h.bodies.inUse(), e.h.bodies.holders(); n != 0 || ops != 0 {
		t.Errorf("body budget in use: %d bytes by %d operators, want none", n, ops)
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
// read and their upstream not yet answering; two operators', each at
// their share), the next call whose body
// must be read is refused at once, 503 overloaded with Retry-After, before
// anything is audited or forwarded (an operator without a grant is refused
// for that first: no body of theirs is read); calls without a body and
// streamed bodies pass meanwhile. Once the held calls finish, the
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
	// The held calls are carol's and dave's, so that alice, who holds
	// nothing, meets the whole budget's bound, not her share's.
	carol := identity.Principal{Subject: "carol@provider.example", Roles: []identity.Role{identity.RoleOperator}}
	dave := identity.Principal{Subject: "dave@provider.example", Roles: []identity.Role{identity.RoleOperator}}
	post := func(p identity.Principal, contentType, body string, chunked bool) rawRequest {
		e.grantFor(p, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
		q := as(p, "POST", mailboxes+"/"+p.Subject+"/repair", [2]string{"Content-Type", contentType})(e)
		q.body, q.chunked = body, chunked
		return q
	}

	// Two calls take the whole budget: one body of declared length at the
	// limit, one chunked, whose first buffer is the limit too.
	full := "kind=" + strings.Repeat("x", limit-len("kind="))
	held := []*conn{e.dial(), e.dial()}
	for i, q := range []rawRequest{
		post(carol, formURLEncoded, full, false),
		post(dave, "application/json", `{"kind":"`+strings.Repeat("x", limit-100)+`"}`, true),
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

	// An operator without a grant is refused for that, the budget full
	// or not: the grant is looked up before any body is read.
	noGrant := as(bob, "POST", mailboxes+"/bob/repair", [2]string{"Content-Type", formURLEncoded})(e)
	noGrant.body = "kind=index"
	if res := e.send(noGrant); res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonNoGrant) {
		t.Errorf("operator without a grant: %d %s, want 403 %s", res.status, res.body, ReasonNoGrant)
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

// TestBodyBudgetShare: one operator's calls together hold at most a share
// of the body budget, so that a few slow uploads from one operator can't
// keep every other operator's forms refused. While alice's uploads that
// trickle in (half a body sent, then nothing) hold her share, her next
// calls with a body to read are refused 503 overloaded, at once, and bob's
// are read and forwarded from the rest of the budget. When alice's clients
// hang up mid-body, what her calls held returns, and so does her share.
func TestBodyBudgetShare(t *testing.T) {
	const limit = 1024
	e := newTestEnv(t, func(_ *testEnv, c *Config) {
		// Her share is then a quarter of the budget: two bodies at the limit.
		c.MaxBodyBytes, c.BodyBufferBytes = limit, 8*limit
	})
	calls := e.track()
	repairOnContoso(e)
	e.grantFor(bob, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
	full := "kind=" + strings.Repeat("x", limit-len("kind="))

	// alice starts as many uploads as would hold the whole budget: bodies
	// at the limit, of declared length or chunked (whose first buffer is
	// the limit too). Each is either held, its body being read, or
	// answered at once.
	var held []*conn
	var refusals []response
	for i := range 8 {
		q := formPOST(formURLEncoded, full, i%2 == 1)(e)
		raw := q.bytes()
		c := e.dial()
		if _, err := c.c.Write(raw[:len(raw)-len(q.body)/2]); err != nil {
			t.Fatal(err)
		}
		answered := make(chan response, 1)
		go func() {
			// Ends with an error once the test closes a held call's
			// connection.
			res, err := http.ReadResponse(c.br, nil)
			if err != nil {
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			answered <- response{status: res.StatusCode, header: res.Header, body: b}
		}()
		select {
		case <-calls.reading:
			held = append(held, c)
		case res := <-answered:
			refusals = append(refusals, res)
		}
	}
	if len(held) != 2 {
		t.Errorf("alice holds %d slow uploads, want 2 (her share)", len(held))
	}
	if n := e.h.bodies.inUse(); n != int64(len(held))*limit {
		t.Errorf("budget in use %d, want %d", n, int64(len(held))*limit)
	}
	for _, res := range refusals {
		if res.status != http.StatusServiceUnavailable || res.errorCode(t) != string(ReasonOverloaded) {
			t.Errorf("alice's upload over her share: %d %s, want 503 %s", res.status, res.body, ReasonOverloaded)
		}
		if ra := res.header.Get("Retry-After"); ra != retryAfterOverloaded {
			t.Errorf("Retry-After %q, want %q", ra, retryAfterOverloaded)
		}
	}

	// Meanwhile bob's bodies are read and forwarded, one at the limit too,
	// and even a small one of alice's is refused.
	bobs := func(contentType, body string, chunked bool) rawRequest {
		q := as(bob, "POST", mailboxes+"/bob/repair", [2]string{"Content-Type", contentType})(e)
		q.body, q.chunked = body, chunked
		return q
	}
	for _, q := range []rawRequest{
		bobs(formURLEncoded, "kind=index", false),
		bobs(formURLEncoded, full, false),
		bobs("application/json", `{"kind":"index"}`, true),
	} {
		if res := e.send(q); res.status != http.StatusOK {
			t.Errorf("bob's POST while alice holds her share: %d %s", res.status, res.body)
		}
	}
	if res := e.send(formPOST(formURLEncoded, "kind=index", false)(e)); res.status != http.StatusServiceUnavailable {
		t.Errorf("alice's small form while she holds her share: %d %s, want 503", res.status, res.body)
	}
	lines := e.logLines("proxy call denied")
	if len(lines) != len(refusals)+1 {
		t.Errorf("%d denial log lines, want %d", len(lines), len(refusals)+1)
	}
	for _, l := range lines {
		if l["reason"] != string(ReasonOverloaded) || l["operator"] != alice.Subject ||
			!strings.Contains(fmt.Sprint(l["error"]), "the operator's calls hold 2048 of their share of 2048") {
			t.Errorf("denial log line %v", l)
		}
	}

	// alice's clients hang up mid-body: everything returns, and her share
	// is whole again.
	for _, c := range held {
		c.c.Close()
	}
	calls.wait()
	checkBudgetEmpty(t, e)
	for _, chunked := range []bool{false, true} {
		if res := e.send(formPOST(formURLEncoded, full, chunked)(e)); res.status != http.StatusOK {
			t.Errorf("alice's upload once hers ended (chunked %v): %d %s", chunked, res.status, res.body)
		}
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
// doublings up to the limit for an unknown one, and stops at the limit, the
// budget or the operator's share of it.
func TestReadBody(t *testing.T) {
	const limit = 10000 // and the operator's share, a quarter of the budget
	readErr := errors.New("connection reset")
	tests := []struct {
		name   string
		budget int64
		// mine and others are what the operator's other calls, and other
		// operators' calls, hold before this one.
		mine, others int64
		size         int64 // declared length, -1 when unknown
		body         io.Reader
		want         int // bytes read
		held         int64
		reason       Reason
		status       int    // when not the reason's
		errText      string // in the error, when set
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
			held: 0, reason: ReasonOverloaded, errText: "100 more bytes wanted, 0 of 99 in use"},
		{name: "declared, over what others left", others: 3*limit + 1, size: limit, body: strings.NewReader(strings.Repeat("a", limit)),
			held: 0, reason: ReasonOverloaded, errText: "10000 more bytes wanted, 30001 of 40000 in use"},
		{name: "unknown, growth over budget", budget: 6000, size: -1, body: strings.NewReader(strings.Repeat("a", 5000)),
			held: unknownLengthStart, reason: ReasonOverloaded},
		{name: "declared, at the share beside others", others: 2 * limit, mine: limit - 100, size: 100,
			body: strings.NewReader(strings.Repeat("a", 100)), want: 100, held: 100},
		{name: "declared, over the share", mine: limit - 99, size: 100, body: strings.NewReader(strings.Repeat("a", 100)),
			held: 0, reason: ReasonOverloaded, errText: "the operator's calls hold 9901 of their share of 10000 (9901 of 40000 in use)"},
		{name: "unknown, growth over the share", mine: limit - 5000, size: -1, body: strings.NewReader(strings.Repeat("a", 5000)),
			held: unknownLengthStart, reason: ReasonOverloaded, errText: "share"},
		{name: "read error", size: 100, body: io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(readErr)),
			held: 100, reason: ReasonBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{cfg: Config{MaxBodyBytes: limit}}
			h.bodies.setLimit(4*limit, limit)
			if tt.budget != 0 {
				h.bodies.setLimit(tt.budget, limit)
			}
			// What alice holds before, and what others do, spread over
			// operators a share each at most.
			before := map[string]int64{alice.Subject: tt.mine}
			for i, left := 0, tt.others; left > 0; i++ {
				before[fmt.Sprintf("op%d", i)] = min(left, limit)
				left -= limit
			}
			for op, n := range before {
				if err := h.bodies.reserve(op, n); err != nil {
					t.Fatal(err)
				}
			}
			var held int64
			body, reason, err := h.readBody(alice.Subject, tt.body, tt.size, &held)
			if reason != tt.reason {
				t.Fatalf("reason %q (%v), want %q", reason, err, tt.reason)
			}
			if reason == "" && len(body) != tt.want {
				t.Errorf("read %d bytes, want %d", len(body), tt.want)
			}
			if reason == "" && int64(cap(body)) != held {
				t.Errorf("buffer of %d bytes, %d reserved", cap(body), held)
			}
			if n := h.bodies.inUse() - tt.mine - tt.others; held != tt.held || n != tt.held {
				t.Errorf("held %d, budget in use by the call %d, want %d", held, n, tt.held)
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
			if tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)) {
				t.Errorf("error %v, want it to say %q", err, tt.errText)
			}
			h.bodies.release(alice.Subject, held)
			for op, n := range before {
				h.bodies.release(op, n)
			}
			if n, ops := h.bodies.inUse(), h.bodies.holders(); n != 0 || ops != 0 {
				t.Errorf("budget in use %d by %d operators after release", n, ops)
			}
		})
	}
}

// TestBodyBudgetConcurrent: reservations from many goroutines, for a few
// operators, never take more than the limit in all or more than the share
// for one operator, what the operators hold always adds up to what is in
// use, and releases return every byte and leave no operator behind.
func TestBodyBudgetConcurrent(t *testing.T) {
	var b bodyBudget
	b.setLimit(1000, 400) // a share of 400: the floor, over a quarter
	// check is called with a reservation held, so never sees an empty
	// budget.
	check := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		sum := int64(0)
		for op, n := range b.held {
			if n <= 0 || n > b.share {
				t.Errorf("%s holds %d, share %d", op, n, b.share)
			}
			sum += n
		}
		if used := b.used.Load(); sum != used || used > b.limit {
			t.Errorf("operators hold %d, in use %d, limit %d", sum, used, b.limit)
		}
	}
	var wg sync.WaitGroup
	var granted atomic.Int64
	for i := range 8 {
		op := fmt.Sprintf("op%d", i%4)
		wg.Go(func() {
			for range 1000 {
				if b.reserve(op, 150) == nil {
					granted.Add(1)
					check()
					b.release(op, 150)
				}
			}
		})
	}
	wg.Wait()
	if n, ops := b.inUse(), b.holders(); n != 0 || ops != 0 {
		t.Errorf("in use %d by %d operators after every release", n, ops)
	}
	if granted.Load() == 0 {
		t.Error("no reservation was granted")
	}
}

// TestBodyBudgetNoAllocs: once its table has room, a reservation and its
// release allocate nothing, whichever operator makes them: the map entry
// an operator's first reservation adds goes with its last release, and the
// slot is reused.
func TestBodyBudgetNoAllocs(t *testing.T) {
	var b bodyBudget
	b.setLimit(1<<20, 1<<10)
	ops := []string{alice.Subject, bob.Subject}
	i := 0
	if n := testing.AllocsPerRun(100, func() {
		op := ops[i%len(ops)]
		i++
		if err := b.reserve(op, 100); err != nil {
			t.Fatal(err)
		}
		b.release(op, 100)
	}); n != 0 {
		t.Errorf("%v allocations per reservation and release, want 0", n)
	}
}
