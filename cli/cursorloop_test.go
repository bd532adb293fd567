package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestAllStopsAtARepeatedCursor: --all follows next cursors until there is
// none; a server that answers a cursor it gave before (a bug, or a proxy
// caching the first page) would have it print the same pages for ever.
// lockboxctl stops there with exit 1, naming the cursor, after the pages
// it read.
func TestAllStopsAtARepeatedCursor(t *testing.T) {
	// The server's cursors for a call with cursor c: "" starts the cycle.
	for _, cyc := range []struct {
		name string
		next map[string]string
	}{
		{"the same cursor again", map[string]string{"": "c1", "c1": "c1"}},
		{"a cycle of two", map[string]string{"": "c1", "c1": "c2", "c2": "c1"}},
	} {
		for _, args := range [][]string{
			{"get", "requests", "--all"},
			{"get", "requests", "--all", "-o", "json"},
			{"get", "requests", "--state", "pending", "--all"},
			{"Get-AccessToCustomerDataRequest", "-All"},
			{"audit", "search", "--all"},
		} {
			t.Run(cyc.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				// A run that never stops is ended after maxCalls, so the
				// test fails instead of hanging.
				const maxCalls = 50
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var (
					mu    sync.Mutex
					calls int
				)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					calls++
					if calls >= maxCalls {
						cancel()
					}
					mu.Unlock()
					next := cyc.next[r.URL.Query().Get("cursor")]
					var body any
					switch r.URL.Path {
					case "/v1/requests":
						req := sampleRequest()
						if st := r.URL.Query().Get("state"); st != "" {
							req.State = wire.State(st)
						}
						body = wire.RequestList{Requests: []wire.Request{req}, NextCursor: next}
					case "/v1/audit":
						body = wire.RecordPage{Records: sampleRecords(), NextCursor: next}
					default:
						http.NotFound(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					_ = json.NewEncoder(w).Encode(body)
				}))
				defer srv.Close()

				env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
				var stdout, stderr bytes.Buffer
				code := Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
				mu.Lock()
				n := calls
				mu.Unlock()
				if n >= maxCalls {
					t.Fatalf("%d calls and counting: --all does not stop at a repeated cursor", n)
				}
				if code != exitError || !strings.Contains(stderr.String(), "c1") || !strings.Contains(stderr.String(), "again") {
					t.Errorf("exit %d, stderr %q: want exit 1 naming the repeated cursor", code, stderr.String())
				}
			})
		}
	}
}

// TestAllFailingMidwayPrintsNoPartialDocument: --all -o json (or yaml)
// that fails after some pages, at a repeated cursor or at a page the
// server can't answer, prints nothing on stdout, as audit search --all
// always did: a script piping it into jq gets exit 1 and the reason on
// stderr, not a parse error in half a document. Its pages came first.
func TestAllFailingMidwayPrintsNoPartialDocument(t *testing.T) {
	for _, fail := range []struct {
		name string
		// next is the server's cursor after the page of cursor c; a
		// cursor it has no page for gets a 500.
		next   map[string]string
		stderr string
	}{
		{"a repeated cursor", map[string]string{"": "c1", "c1": "c2", "c2": "c1"}, "again"},
		{"a failed page", map[string]string{"": "c1", "c1": "broken"}, "HTTP 500"},
	} {
		for _, args := range [][]string{
			{"get", "requests", "--all", "-o", "json"},
			{"get", "requests", "--all", "-o", "yaml"},
			{"get", "requests", "--state", "pending", "--all", "-o", "json"},
			{"Get-AccessToCustomerDataRequest", "-All", "-o", "json"},
			{"audit", "search", "--all", "-o", "json"},
		} {
			t.Run(fail.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				var (
					mu    sync.Mutex
					pages int
				)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next, ok := fail.next[r.URL.Query().Get("cursor")]
					if !ok {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusInternalServerError)
						_, _ = w.Write([]byte(`{"error":{"code":"internal","message":"the page failed"}}`))
						return
					}
					mu.Lock()
					pages++
					mu.Unlock()
					var body any
					switch r.URL.Path {
					case "/v1/requests":
						req := sampleRequest()
						if st := r.URL.Query().Get("state"); st != "" {
							req.State = wire.State(st)
						}
						body = wire.RequestList{Requests: []wire.Request{req}, NextCursor: next}
					case "/v1/audit":
						body = wire.RecordPage{Records: sampleRecords(), NextCursor: next}
					default:
						http.NotFound(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					_ = json.NewEncoder(w).Encode(body)
				}))
				defer srv.Close()

				env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
				var stdout, stderr bytes.Buffer
				code := Run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
				mu.Lock()
				n := pages
				mu.Unlock()
				if n < 2 {
					t.Fatalf("the server answered %d pages: the failure did not come midway", n)
				}
				if code != exitError || !strings.Contains(stderr.String(), fail.stderr) {
					t.Errorf("exit %d, stderr %q: want exit 1 mentioning %q", code, stderr.String(), fail.stderr)
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout holds part of a document:\n%s", stdout.String())
				}
			})
		}
	}
}
