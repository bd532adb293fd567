package writedeadline_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/writedeadline"
)

// timeout is the WriteTimeout of the test servers. A Writer moves its
// deadline on every quarter of it, so a scheduling pause of more than three
// quarters cuts an answer: at 300 ms a loaded two-core machine running the
// suite under -race paused that long now and then, and at 1 s once, under
// a load average of 20.
const timeout = 2 * time.Second

// pause is the server's own work between two writes: longer than the
// whole timeout, so only a moved deadline lets the answer through.
const pause = timeout + timeout/2

// serve runs h over TLS, HTTP/2 offered, with WriteTimeout timeout.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.Config.WriteTimeout = timeout
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get fetches url over HTTP/2 or HTTP/1.1 and reads the whole body.
func get(t *testing.T, srv *httptest.Server, h2 bool) (string, string, error) {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = h2
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr, Timeout: 20 * timeout}).Get(srv.URL)
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.Proto, string(body), err
}

// TestPausesLongerThanTheTimeout: an answer whose server side takes longer
// than the WriteTimeout between two writes (an export scanning records its
// filters skip) is not cut while its client keeps up. Over HTTP/2 the
// stream is reset when its deadline passes even with no write waiting, so
// this needs the deadline moved during the pause, not only before writes.
func TestPausesLongerThanTheTimeout(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		out := writedeadline.New(w, r)
		defer out.Close()
		for i, part := range []string{"first\n", "second\n", "third\n"} {
			if i > 0 {
				// The server's own work, not the client's: longer than
				// the whole timeout.
				time.Sleep(pause)
			}
			if _, err := io.WriteString(out, part); err != nil {
				return
			}
			if err := out.Flush(); err != nil {
				return
			}
		}
	})
	for _, h2 := range []bool{false, true} {
		proto, body, err := get(t, srv, h2)
		if err != nil || body != "first\nsecond\nthird\n" {
			t.Errorf("%s (HTTP/2 %t): %q, %v; want all three parts", proto, h2, body, err)
		}
	}
}

// TestServerWriteTimeoutAloneCutsLongAnswers is the case the package exists
// for: the same answer written without a Writer is cut by the server's
// WriteTimeout, however well its client keeps up.
func TestServerWriteTimeoutAloneCutsLongAnswers(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		for i, part := range []string{"first\n", "second\n", "third\n"} {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := io.WriteString(w, part); err != nil {
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				return
			}
		}
	})
	for _, h2 := range []bool{false, true} {
		if proto, body, err := get(t, srv, h2); err == nil && body == "first\nsecond\nthird\n" {
			t.Errorf("%s (HTTP/2 %t): the whole answer passed the server's WriteTimeout", proto, h2)
		}
	}
}

// TestWithoutServerTimeout: without a server's WriteTimeout (a recorder
// here) a Writer only writes.
func TestWithoutServerTimeout(t *testing.T) {
	rec := httptest.NewRecorder()
	out := writedeadline.New(rec, httptest.NewRequest("GET", "/", nil))
	if out.Timeout() != 0 {
		t.Errorf("Timeout() = %s, want 0", out.Timeout())
	}
	if _, err := io.WriteString(out, "body"); err != nil {
		t.Fatal(err)
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	out.Close()
	if rec.Body.String() != "body" || !rec.Flushed {
		t.Errorf("recorded %q, flushed %t", rec.Body.String(), rec.Flushed)
	}
}

// TestCloseTwice: Close may be called again (a deferred Close after an
// explicit one), and a Writer on a server with a WriteTimeout reports it.
func TestCloseTwice(t *testing.T) {
	got := make(chan time.Duration, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		out := writedeadline.New(w, r)
		defer out.Close()
		got <- out.Timeout()
		_, _ = io.WriteString(out, "ok")
		out.Close()
	})
	if _, body, err := get(t, srv, true); err != nil || body != "ok" {
		t.Fatalf("%q, %v", body, err)
	}
	if d := <-got; d != timeout {
		t.Errorf("Timeout() = %s, want the server's %s", d, timeout)
	}
}
