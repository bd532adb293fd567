package jwksfetch_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/identity/jwksfetch"
)

// server answers with whatever body and status the test sets, and counts
// the fetches.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	body    string
	fetches atomic.Int64
}

func newServer(t *testing.T, body string) *server {
	t.Helper()
	s := &server{status: http.StatusOK, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func newFetcher(t *testing.T, cfg jwksfetch.Config) *jwksfetch.Fetcher {
	t.Helper()
	f, err := jwksfetch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// recorder is a subscriber that keeps what it was given and refuses
// documents that don't start with "{".
type recorder struct {
	mu   sync.Mutex
	docs []string
}

func (r *recorder) accept(b []byte) error {
	if !strings.HasPrefix(string(b), "{") {
		return errors.New("not a JWKS")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.docs = append(r.docs, string(b))
	return nil
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.docs) == 0 {
		return ""
	}
	return r.docs[len(r.docs)-1]
}

func TestRegisterAndRefresh(t *testing.T) {
	srv := newServer(t, `{"keys":[1]}`)
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour})
	ctx := context.Background()
	var a, b recorder
	if err := f.Register(ctx, srv.URL, a.accept); err != nil {
		t.Fatal(err)
	}
	if a.last() != `{"keys":[1]}` || srv.fetches.Load() != 1 {
		t.Fatalf("after Register: %q, %d fetches", a.last(), srv.fetches.Load())
	}
	// A second issuer with the same URL gets the document without a fetch
	// of its own, and both hear of later ones.
	if err := f.Register(ctx, srv.URL, b.accept); err != nil {
		t.Fatal(err)
	}
	if b.last() != `{"keys":[1]}` || srv.fetches.Load() != 1 {
		t.Fatalf("second subscriber: %q, %d fetches", b.last(), srv.fetches.Load())
	}
	srv.set(http.StatusOK, `{"keys":[2]}`)
	if err := f.Refresh(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	if a.last() != `{"keys":[2]}` || b.last() != `{"keys":[2]}` {
		t.Fatalf("after Refresh: %q %q", a.last(), b.last())
	}

	// Failures are errors, and hand nothing on.
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"server error", http.StatusServiceUnavailable, `{"keys":[3]}`},
		{"refused by the subscriber", http.StatusOK, `<html>`},
		{"too large", http.StatusOK, "{" + strings.Repeat(" ", jwksfetch.MaxDocumentSize) + "}"},
	} {
		srv.set(tc.status, tc.body)
		if err := f.Refresh(ctx, srv.URL); err == nil {
			t.Errorf("%s: Refresh succeeded", tc.name)
		}
		if a.last() != `{"keys":[2]}` {
			t.Errorf("%s: the subscriber got %.40q", tc.name, a.last())
		}
	}
}

// An identity provider that is down at Register is picked up later.
func TestRegisterWhileDown(t *testing.T) {
	srv := newServer(t, `{}`)
	srv.set(http.StatusBadGateway, "")
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour})
	var r recorder
	if err := f.Register(context.Background(), srv.URL, r.accept); err == nil {
		t.Fatal("Register succeeded against a failing server")
	}
	srv.set(http.StatusOK, `{"keys":[]}`)
	if err := f.Refresh(context.Background(), srv.URL); err != nil || r.last() != `{"keys":[]}` {
		t.Fatalf("Refresh once it is up: %v, %q", err, r.last())
	}
	// The connection itself failing.
	srv.Close()
	if err := f.Refresh(context.Background(), srv.URL); err == nil {
		t.Fatal("Refresh succeeded against a closed server")
	}
}

// The background refresh fetches every Refresh interval without anyone
// asking. httprc schedules in whole seconds, so this waits a few.
func TestBackgroundRefresh(t *testing.T) {
	srv := newServer(t, `{"keys":[1]}`)
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Second})
	var r recorder
	if err := f.Register(context.Background(), srv.URL, r.accept); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusOK, `{"keys":[2]}`)
	deadline := time.Now().Add(15 * time.Second)
	for r.last() != `{"keys":[2]}` {
		if time.Now().After(deadline) {
			t.Fatalf("no background fetch in 15s (%d fetches)", srv.fetches.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The default client does not follow a redirect out of https.
func TestRedirectOutOfHTTPSRefused(t *testing.T) {
	plain := newServer(t, `{"keys":[]}`)
	tlsSrv := httptest.NewTLSServer(http.RedirectHandler(plain.URL, http.StatusFound))
	t.Cleanup(tlsSrv.Close)
	// The default client would not trust the test certificate; the
	// redirect check is what this is about, so call it as the client does.
	req, _ := http.NewRequest(http.MethodGet, plain.URL, nil)
	via, _ := http.NewRequest(http.MethodGet, tlsSrv.URL, nil)
	if err := jwksfetch.CheckRedirect(req, []*http.Request{via}); err == nil {
		t.Fatal("a redirect from https to http was allowed")
	}
	https, _ := url.Parse(tlsSrv.URL + "/elsewhere")
	req.URL = https
	if err := jwksfetch.CheckRedirect(req, []*http.Request{via}); err != nil {
		t.Fatalf("a redirect within https was refused: %v", err)
	}
}

// A redirect may only lead where a JWKS URL may point: a fetch that starts
// in the clear on a loopback address (a local identity provider) must not
// be sent on, still in the clear, to another host, whose answer anyone on
// the way could replace with their own keys.
func TestRedirectOutOfLoopbackRefused(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"http://127.0.0.1:8081/jwks", "http://idp.example/jwks", false},
		{"http://localhost:8081/jwks", "http://10.0.0.7/jwks", false},
		{"http://[::1]:8081/jwks", "ftp://idp.example/jwks", false},
		{"http://127.0.0.1:8081/jwks", "http://127.0.0.1:8081/keys", true},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.to, nil)
		via, _ := http.NewRequest(http.MethodGet, tc.from, nil)
		err := jwksfetch.CheckRedirect(req, []*http.Request{via})
		if (err == nil) != tc.ok {
			t.Errorf("redirect from %s to %s: error %v, want allowed=%v", tc.from, tc.to, err, tc.ok)
		}
	}
}

// TestRedirectToAnotherOriginRefused: the keys that decide who signs in
// come from the origin (scheme, host and port) the operator configured. A
// redirect elsewhere, even within https, would let whoever controls a
// path on the identity provider's host (an open redirect, a hosted page)
// or a hijacked DNS name for the target choose the keys.
func TestRedirectToAnotherOriginRefused(t *testing.T) {
	for _, tc := range []struct {
		via []string
		to  string
		ok  bool
	}{
		{[]string{"https://idp.example/jwks"}, "https://idp.example/keys", true},
		{[]string{"https://idp.example/jwks"}, "https://IDP.example:443/keys", true},
		{[]string{"http://localhost:8081/jwks"}, "http://localhost:8081/keys", true},
		{[]string{"https://idp.example/jwks"}, "https://evil.example/jwks", false},
		{[]string{"https://idp.example/jwks"}, "https://keys.idp.example/jwks", false},
		{[]string{"https://idp.example/jwks"}, "https://idp.example:8443/jwks", false},
		{[]string{"https://idp.example:8443/jwks"}, "https://idp.example/jwks", false},
		{[]string{"http://127.0.0.1:8081/jwks"}, "http://localhost:8081/jwks", false},
		{[]string{"http://127.0.0.1:8081/jwks"}, "http://127.0.0.1:8082/jwks", false},
		{[]string{"http://localhost:8081/jwks"}, "https://localhost:8081/jwks", false},
		// Every hop is held to the configured URL's origin, not to the
		// hop before it.
		{[]string{"https://idp.example/jwks", "https://idp.example/v2/jwks"}, "https://evil.example/jwks", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.to, nil)
		var via []*http.Request
		for _, u := range tc.via {
			r, _ := http.NewRequest(http.MethodGet, u, nil)
			via = append(via, r)
		}
		err := jwksfetch.CheckRedirect(req, via)
		if (err == nil) != tc.ok {
			t.Errorf("redirect from %s to %s: error %v, want allowed=%v", tc.via, tc.to, err, tc.ok)
		}
	}
}

// TestFetchRefusesRedirectToAnotherOrigin: the fetcher itself, over HTTP,
// does not follow the identity provider's host to another origin, and says
// so naming the configured URL, without the credentials the redirect
// carried; a redirect within the origin is followed.
func TestFetchRefusesRedirectToAnotherOrigin(t *testing.T) {
	keys := newServer(t, `{"keys":["elsewhere"]}`)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/jwks", http.StatusFound)
		case "/jwks":
			w.Write([]byte(`{"keys":["here"]}`))
		default:
			// A port is an origin of its own, even on the same host.
			to, _ := url.Parse(keys.URL + "/jwks")
			to.User = url.UserPassword("lockbox", "hunter2")
			http.Redirect(w, r, to.String(), http.StatusFound)
		}
	}))
	t.Cleanup(idp.Close)
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour})

	var rec recorder
	err := f.Register(context.Background(), idp.URL+"/away", rec.accept)
	if err == nil {
		t.Fatal("a redirect to another origin was followed")
	}
	if rec.last() != "" || keys.fetches.Load() != 0 {
		t.Fatalf("the other origin was fetched (%d times), the subscriber got %q", keys.fetches.Load(), rec.last())
	}
	for _, want := range []string{idp.URL + "/away", "another origin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the redirect's password", err)
	}

	var same recorder
	if err := f.Register(context.Background(), idp.URL+"/moved", same.accept); err != nil {
		t.Fatalf("a redirect within the origin was refused: %v", err)
	}
	if same.last() != `{"keys":["here"]}` {
		t.Fatalf("the subscriber got %q", same.last())
	}
}

// TestFetchRefusesMalformedRedirect: an identity provider redirecting to
// a Location that does not parse made net/http fail, before the redirect
// rule saw it, with an error quoting the Location whole, password and
// all, and that error went to the logs. The redirect is now refused
// without quoting it, with the fetcher's client as with a caller's.
func TestFetchRefusesMalformedRedirect(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://lockbox:hunter2@[::1/jwks")
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(idp.Close)
	for name, hc := range map[string]*http.Client{"fetcher's client": nil, "caller's client": {}} {
		t.Run(name, func(t *testing.T) {
			f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour, HTTPClient: hc})
			var rec recorder
			err := f.Register(context.Background(), idp.URL+"/jwks", rec.accept)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); strings.Contains(msg, "hunter2") || strings.Contains(msg, "lockbox:") || !strings.Contains(msg, "Location") {
				t.Errorf("error %q: want it to say the Location was refused, without quoting it", msg)
			}
			if rec.last() != "" {
				t.Errorf("the subscriber got %q", rec.last())
			}
		})
	}
}

// TestFetchWithClientRefusesRedirectToAnotherOrigin: a client of the
// caller's (one trusting a private CA, say) gets the same redirect rule:
// https to https on another host is still another origin.
func TestFetchWithClientRefusesRedirectToAnotherOrigin(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Write([]byte(`{"keys":["elsewhere"]}`))
	}))
	t.Cleanup(other.Close)
	idp := httptest.NewTLSServer(http.RedirectHandler(other.URL+"/jwks", http.StatusFound))
	t.Cleanup(idp.Close)
	// httptest's TLS servers share one certificate: this client trusts
	// both, so only the redirect rule stands in the way.
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour, HTTPClient: idp.Client()})
	var rec recorder
	if err := f.Register(context.Background(), idp.URL+"/jwks", rec.accept); err == nil {
		t.Fatal("a redirect to another origin was followed")
	}
	if rec.last() != "" || elsewhere.Load() != 0 {
		t.Fatalf("the other origin was fetched (%d times), the subscriber got %q", elsewhere.Load(), rec.last())
	}
}

// TestOverlappingFetchesDeliverInOrder: a fetch that began before another
// of the same URL and answers after it (a slow background fetch beside a
// token's refresh) does not deliver its older document last: a key the
// newer one no longer lists would verify again until the next fetch.
func TestOverlappingFetchesDeliverInOrder(t *testing.T) {
	var n atomic.Int64
	release, slowIn := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Write([]byte(`{"keys":["first"]}`))
		case 2:
			// What the identity provider served before it rotated, sent
			// only after the next fetch was answered.
			close(slowIn)
			<-release
			w.Write([]byte(`{"keys":["old"]}`))
		default:
			w.Write([]byte(`{"keys":["new"]}`))
		}
	}))
	t.Cleanup(srv.Close)
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour})
	rec := &recorder{}
	if err := f.Register(context.Background(), srv.URL, rec.accept); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() { slow <- f.Refresh(context.Background(), srv.URL) }()
	select {
	case <-slowIn:
	case <-time.After(10 * time.Second):
		t.Fatal("the first refresh never reached the server")
	}
	if err := f.Refresh(context.Background(), srv.URL); err != nil {
		t.Fatal(err)
	}
	close(release)
	select {
	case <-slow:
	case <-time.After(10 * time.Second):
		t.Fatal("the first refresh never finished")
	}
	if got := rec.last(); got != `{"keys":["new"]}` {
		t.Fatalf("the last document delivered is %s, want the newest", got)
	}
}

// TestConcurrentRefreshesDoNotJam: many refreshes at once (tokens naming
// unknown keys of many issuers, at the moment the identity providers are
// slow) must all finish once the providers answer. httprc hands a refresh
// to its workers from its one control loop, which blocks while the
// workers' queue is full; a worker that finished a fetch then reports to
// that same loop, and with enough refreshes waiting both sides wait for
// each other for good: no refresh, background or on demand, ever ends.
func TestConcurrentRefreshesDoNotJam(t *testing.T) {
	const callers = 12
	var gated atomic.Bool
	entered, release := make(chan struct{}, callers), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gated.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(srv.Close)
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour, Timeout: time.Minute})
	var rec recorder
	if err := f.Register(context.Background(), srv.URL, rec.accept); err != nil {
		t.Fatal(err)
	}
	gated.Store(true)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, callers)
	for range callers {
		go func() { errs <- f.Refresh(ctx, srv.URL) }()
	}
	// Both workers are fetching, and every other refresh waits wherever
	// it waits: then the providers answer.
	for range 2 {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the refreshes never reached the server")
		}
	}
	waitParked(t, ctx, "jwksfetch.(*Fetcher).Refresh(", callers)
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("a refresh failed: %v", err)
		}
	}
}

// waitParked waits until n goroutines with fn on their stack are blocked
// (not running or runnable), so the test acts once they all queued up, not
// after a guessed pause.
func waitParked(t *testing.T, ctx context.Context, fn string, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for {
		m := runtime.Stack(buf, true)
		parked := 0
		for _, g := range strings.Split(string(buf[:m]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, fn) && !strings.Contains(header, "[running") && !strings.Contains(header, "[runnable") {
				parked++
			}
		}
		if parked >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d goroutines in %s blocked", parked, n, fn)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestRegisterSameURLAtOnce: issuers that share a URL register it side by
// side at start-up. The one that came second must not ask for a refresh
// of a URL the first has not handed to httprc yet: that failed with
// "resource not found", and the issuer was reported as without keys
// although the first fetch brought it them. The race is narrow, so it is
// run many times.
func TestRegisterSameURLAtOnce(t *testing.T) {
	srv := newServer(t, `{"keys":[1]}`)
	for i := range 300 {
		f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour})
		var recs [2]recorder
		errs := make(chan error, len(recs))
		for j := range recs {
			go func() { errs <- f.Register(context.Background(), srv.URL, recs[j].accept) }()
		}
		for range recs {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: Register: %v", i, err)
			}
		}
		for j := range recs {
			if got := recs[j].last(); got != `{"keys":[1]}` {
				t.Fatalf("round %d: subscriber %d got %q", i, j, got)
			}
		}
	}
}

// TestRegisterSameURLSharesTheFirstFetch: issuers that share a URL (a
// cloud identity provider signs every tenant's tokens with one key set)
// register it side by side at start-up and share its first fetch: one
// fetch, whose document each of them gets and whose failure each reports.
// Each used to fetch it again, two at a time, so forty tenants' issuers
// behind an identity provider that hangs held start-up for twenty fetch
// timeouts, and one that answers got forty requests at once.
func TestRegisterSameURLSharesTheFirstFetch(t *testing.T) {
	const issuers = 5
	for _, tc := range []struct {
		name   string
		status int
		ok     bool
	}{
		{"answered", http.StatusOK, true},
		{"failed", http.StatusServiceUnavailable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fetches atomic.Int64
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fetches.Add(1)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(`{"keys":[1]}`))
			}))
			t.Cleanup(srv.Close)
			f := newFetcher(t, jwksfetch.Config{Refresh: time.Hour, Timeout: time.Minute})
			var recs [issuers]recorder
			errs := make(chan error, issuers)
			for i := range recs {
				go func() { errs <- f.Register(context.Background(), srv.URL, recs[i].accept) }()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// Every Register waits, on the fetch or on one another's:
			// then the identity provider answers.
			waitParked(t, ctx, "jwksfetch.(*Fetcher).Register(", issuers)
			close(release)
			for range issuers {
				if err := <-errs; (err == nil) != tc.ok {
					t.Errorf("Register: %v", err)
				}
			}
			if n := fetches.Load(); n != 1 {
				t.Errorf("%d issuers sharing a URL fetched it %d times at start-up, want once", issuers, n)
			}
			if tc.ok {
				for i := range recs {
					if got := recs[i].last(); got != `{"keys":[1]}` {
						t.Errorf("issuer %d got %q", i, got)
					}
				}
			}
		})
	}
}

// records is a slog handler that hands every record to the test.
type records chan slog.Record

func (r records) Enabled(context.Context, slog.Level) bool { return true }
func (r records) Handle(_ context.Context, rec slog.Record) error {
	select {
	case r <- rec:
	default:
	}
	return nil
}
func (r records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r records) WithGroup(string) slog.Handler      { return r }

// TestBackgroundFetchLogSaysRefused: a background fetch whose document a
// subscriber refused is logged as refused, and one that could not reach
// the server as a failed fetch: an identity provider that answers with
// keys Lockbox won't use is not one that is down, and whoever reads the
// log should not go looking for a network problem. httprc schedules in
// whole seconds, so each waits about one.
func TestBackgroundFetchLogSaysRefused(t *testing.T) {
	srv := newServer(t, `{"keys":[1]}`)
	logs := make(records, 16)
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Second, Logger: slog.New(logs)})
	var r recorder
	if err := f.Register(context.Background(), srv.URL, r.accept); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		select {
		case rec := <-logs:
			var msg strings.Builder
			msg.WriteString(rec.Message)
			rec.Attrs(func(a slog.Attr) bool { msg.WriteString(" " + a.String()); return true })
			return msg.String()
		case <-time.After(15 * time.Second):
			t.Fatalf("no background fetch logged in 15s (%d fetches)", srv.fetches.Load())
			return ""
		}
	}
	srv.set(http.StatusOK, `<html>`)
	if got := next(); !strings.Contains(got, "was refused") || strings.Contains(got, "fetch failed") {
		t.Errorf("a refused document is logged as %q", got)
	}
	srv.set(http.StatusServiceUnavailable, `{"keys":[1]}`)
	// Records of the refused document's fetches may still be queued.
	deadline := time.After(15 * time.Second)
	for {
		got := next()
		if strings.Contains(got, "was refused") {
			select {
			case <-deadline:
				t.Fatalf("still logged as refused after 15s: %q", got)
			default:
			}
			continue
		}
		if !strings.Contains(got, "fetch failed") {
			t.Errorf("a failed fetch is logged as %q", got)
		}
		break
	}
}

// TestFetchErrorsDoNotShowQuery: a JWKS URL's query may carry a
// credential, and fetch errors go to logs: the error Register returns and
// the line a background fetch logs show the query's names, not its values.
// httprc schedules in whole seconds, so the background fetch waits about
// one.
func TestFetchErrorsDoNotShowQuery(t *testing.T) {
	srv := newServer(t, `{"keys":[1]}`)
	srv.set(http.StatusServiceUnavailable, "")
	logs := make(records, 16)
	f := newFetcher(t, jwksfetch.Config{Refresh: time.Second, Logger: slog.New(logs)})
	var r recorder
	err := f.Register(context.Background(), srv.URL+"/keys?tenant=t1&sig=s3cret", r.accept)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "/keys?tenant=") {
		t.Errorf("Register's error = %v, want one naming the URL without its query's values", err)
	}
	select {
	case rec := <-logs:
		var msg strings.Builder
		msg.WriteString(rec.Message)
		rec.Attrs(func(a slog.Attr) bool { msg.WriteString(" " + a.String()); return true })
		if got := msg.String(); strings.Contains(got, "s3cret") || !strings.Contains(got, "fetch failed") || !strings.Contains(got, "status code=503") {
			t.Errorf("a background fetch's failure is logged as %q", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no background fetch logged in 15s (%d fetches)", srv.fetches.Load())
	}
}

// TestNewRefusesNegativeWorkers: a Fetcher can't be made to run no fetches.
func TestNewRefusesNegativeWorkers(t *testing.T) {
	if f, err := jwksfetch.New(jwksfetch.Config{Workers: -1}); err == nil {
		f.Close()
		t.Fatal("Workers -1 accepted")
	}
}
