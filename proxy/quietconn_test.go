package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestQuietUpstreamConn: over the connections of net/http's Transport
// (calls with a body, https), an upstream that sends part of its answer
// and then nothing fails the body's read once the timeout passes without
// a byte; an answer whose pieces keep coming, and an upload that keeps
// moving before the answer starts, are never cut however long they take,
// and the connection serves the next call.
func TestQuietUpstreamConn(t *testing.T) {
	const pieces = 30
	var want strings.Builder
	for i := range pieces {
		fmt.Fprintf(&want, "%d;", i)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/stall":
			_, _ = io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/slow":
			// 3 s in all, more than the timeout, no pause near its bound.
			for i := range pieces {
				fmt.Fprintf(w, "%d;", i)
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		default:
			_, _ = w.Write(got)
		}
	})
	for _, tc := range []struct {
		name  string
		https bool
		body  bool
	}{
		{name: "call with a body, plain http", body: true},
		{name: "read, https", https: true},
		{name: "call with a body, https", https: true, body: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var srv *httptest.Server
			var roots *x509.CertPool
			if tc.https {
				srv = httptest.NewTLSServer(handler)
				roots = x509.NewCertPool()
				roots.AddCert(srv.Certificate())
			} else {
				srv = httptest.NewServer(handler)
			}
			t.Cleanup(srv.Close)
			newTr := func(timeout time.Duration) http.RoundTripper {
				tr := newTransport(tc.https, &tls.Config{RootCAs: roots}, timeout, h2Pings{after: time.Hour, timeout: time.Hour})
				t.Cleanup(tr.(splitTransport).std.(*http.Transport).CloseIdleConnections)
				return tr
			}
			do := func(tr http.RoundTripper, path string, body io.Reader) (*http.Response, error) {
				method := http.MethodGet
				if tc.body {
					method = http.MethodPost
					if body == nil {
						body = strings.NewReader("payload")
					}
				}
				req, err := http.NewRequest(method, srv.URL+path, body)
				if err != nil {
					t.Fatal(err)
				}
				return tr.RoundTrip(req)
			}

			t.Run("stalled answer", func(t *testing.T) {
				const timeout = time.Second
				res, err := do(newTr(timeout), "/stall", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				read := make(chan error, 1)
				var got []byte
				go func() {
					var err error
					got, err = io.ReadAll(res.Body)
					read <- err
				}()
				select {
				case err := <-read:
					if string(got) != "first" || !errors.Is(err, os.ErrDeadlineExceeded) ||
						!strings.Contains(err.Error(), "no bytes to or from the upstream for 1s") {
						t.Errorf("read %q, %v; want the first piece, then the quiet timeout's error", got, err)
					}
				case <-time.After(10 * timeout):
					t.Fatal("the body's read still waits on a stalled upstream")
				}
			})
			t.Run("moving answer", func(t *testing.T) {
				const timeout = 2 * time.Second
				tr := newTr(timeout)
				res, err := do(tr, "/slow", nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || string(got) != want.String() {
					t.Fatalf("read %q, %v; want %q", got, err, want.String())
				}
				if tc.body {
					// A moving upload, the answer awaited all along.
					pr, pw := io.Pipe()
					go func() {
						for i := range pieces {
							fmt.Fprintf(pw, "%d;", i)
							time.Sleep(100 * time.Millisecond)
						}
						pw.Close()
					}()
					res, err := do(tr, "/echo", pr)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(res.Body)
					res.Body.Close()
					if err != nil || string(got) != want.String() {
						t.Fatalf("upload echoed %q, %v; want %q", got, err, want.String())
					}
				}
			})
		})
	}
}
