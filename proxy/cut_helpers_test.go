package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/identity"
)

// A call under way is cut as its grant ends, at its expires_at
// (grantend_test.go) or earlier, revoked, ended by the tenant or offboarded
// (callwatch_test.go). Both drive the call through the same harness and
// hold the cut to the same evidence, which lives here so that the two
// cannot drift apart in what they check.

// cutEnv is a test env whose upstream, made by upstream, reports on the
// returned channel once the proxy hung up on it, and lets go when release
// is closed, as the test ends. The client timeout is timeout, far longer
// than a test's patience, so that only the cut ends the call within it.
func cutEnv(t *testing.T, timeout time.Duration, upstream func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc, opts ...envOption) (*testEnv, chan string) {
	t.Helper()
	hungUp, release := make(chan string, 1), make(chan struct{})
	opts = append([]envOption{withClientTimeout(timeout), patientStore}, opts...)
	e := newTestEnv(t, append(opts, upstreamAt(upstream(hungUp, release)))...)
	t.Cleanup(func() { close(release) }) // before the upstream's Close, which waits for it
	return e, hungUp
}

// heldUpstream answers first at once, then holds the call until the proxy
// hangs up on it (reporting "canceled" on hungUp) or release is closed.
func heldUpstream(first string, hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, first)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			hungUp <- "canceled"
		case <-release:
		}
	}
}

// streamingUpstream answers first, then chunks of size bytes, each
// flushed, until a write fails as the proxy hangs up on it (reporting what
// failed on hungUp) or release is closed. A nil release never is.
func streamingUpstream(first string, size int, hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, first)
		chunk := strings.Repeat("x", size)
		for {
			select {
			case <-release:
				return
			default:
			}
			if _, err := io.WriteString(w, chunk); err != nil {
				hungUp <- "write failed"
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				hungUp <- "flush failed"
				return
			}
		}
	}
}

// authorizedCall is a call of method to url, under ctx, with p's token.
func authorizedCall(t *testing.T, ctx context.Context, e *testEnv, p identity.Principal, method, url string, body io.Reader) *http.Request {
	t.Helper()
	call, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	call.Header.Set("Authorization", e.bearer(p))
	return call
}

// waitHungUp waits, until ctx ends, for the upstream to report on hungUp
// that the proxy hung up on it, and returns what it reported. held names
// the upstream call in the failure.
func waitHungUp(t *testing.T, ctx context.Context, e *testEnv, hungUp <-chan string, held string) string {
	t.Helper()
	select {
	case what := <-hungUp:
		return what
	case <-ctx.Done():
		t.Fatalf("%s is still held:\n%s", held, e.logs)
		return ""
	}
}

// waitCounted waits, until ctx ends, for n calls counted in
// lockbox_proxy_requests_total: a call is counted as its handler returns,
// after its log line. never is the failure.
func waitCounted(t *testing.T, ctx context.Context, e *testEnv, n float64, never string) {
	t.Helper()
	for sumMetric(t, e, "lockbox_proxy_requests_total") < n {
		if ctx.Err() != nil {
			t.Fatalf("%s:\n%s", never, e.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cutLine is the one log line msg of the call's cut.
func cutLine(t *testing.T, e *testEnv, msg string) map[string]any {
	t.Helper()
	lines := e.logLines(msg)
	if len(lines) != 1 {
		t.Fatalf("%d log lines of the cut, want one:\n%s", len(lines), e.logs)
	}
	return lines[0]
}

// wantCutOnce checks that the one call, permitted and forwarded, was
// counted cut once, for reason.
func wantCutOnce(t *testing.T, e *testEnv, reason Reason) {
	t.Helper()
	if got := cutCount(t, e, "exchange", reason); got != 1 {
		t.Errorf("lockbox_proxy_calls_cut_total{exchange,%s} = %v, want 1", reason, got)
	}
	if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed)); got != 1 {
		t.Errorf("requests{exchange,%s} = %v, want 1: the call was permitted and forwarded", decisionAllowed, got)
	}
}

// cutCount reads lockbox_proxy_calls_cut_total{service, reason}: -1 when
// the series does not exist.
func cutCount(t testing.TB, e *testEnv, service string, reason Reason) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_proxy_calls_cut_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] == service && labels["reason"] == string(reason) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// wantCutOff reads the rest of res, a call under way, and fails unless it
// is cut off within ctx, the upstream sees the proxy hang up and the call
// is counted.
func wantCutOff(t *testing.T, ctx context.Context, e *testEnv, res *http.Response, hungUp <-chan string) {
	t.Helper()
	n, err := io.Copy(io.Discard, res.Body)
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the call was not cut within the test's patience (%d more bytes): %v\n%s", n, err, e.logs)
	case err == nil:
		t.Fatalf("the answer ended cleanly after %d more bytes, want it cut off", n)
	}
	waitHungUp(t, ctx, e, hungUp, "the upstream")
	waitCounted(t, ctx, e, 1, "the call was never counted")
}
