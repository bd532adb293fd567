package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// closedPipe is a standard output whose reader is gone, as an *os.File
// reports it once SIGPIPE no longer ends the process. wrote runs at each
// write.
type closedPipe struct{ wrote func() }

func (c closedPipe) Write([]byte) (int, error) {
	c.wrote()
	return 0, &fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
}

// TestClosedStdoutEndsQuietly: "lockboxctl get requests | head -1" ended
// with SIGPIPE (exit 141), or, where the write's error came back,
// "lockboxctl: write /dev/stdout: broken pipe" and exit 1: a pipeline
// that did what it meant failed under "set -o pipefail". A stdout whose
// reader is gone now ends the command where it is, with exit 0 and
// nothing on stderr, and a listing with --all reads no page after the
// write that failed. (-o json and -o yaml write their document whole,
// once every page is read, so they learn of it only then.)
func TestClosedStdoutEndsQuietly(t *testing.T) {
	for _, args := range [][]string{
		{"get", "requests"},
		{"get", "requests", "--all"},
		{"get", "requests", "--all", "-o", "json"},
		{"get", "requests", "--all", "-o", "yaml"},
		{"get", "requests", "--all", "-o", "id"},
		{"describe", "request", reqID},
		{"audit", "search", "--all"},
		{"audit", "search", "--all", "-o", "csv"},
		{"audit", "export", "--tenant", "contoso"},
		{"--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var (
				mu    sync.Mutex
				pages int
				// pages read when the first write failed; -1 before.
				atWrite = -1
			)
			// Every page has a next one: only the closed stdout ends
			// a listing with --all. Bounded, so a failure ends.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				pages++
				n := pages
				mu.Unlock()
				next := ""
				if n < 200 {
					next = fmt.Sprintf("c%d", n)
				}
				var body any
				switch {
				case r.URL.Path == "/v1/requests":
					body = wire.RequestList{Requests: []wire.Request{sampleRequest()}, NextCursor: next}
				case r.URL.Path == "/v1/requests/"+reqID:
					body = sampleRequest()
				case r.URL.Path == "/v1/audit":
					body = wire.RecordPage{Records: sampleRecords(), NextCursor: next}
				case r.URL.Path == "/v1/audit/export":
					w.Header().Set("Content-Type", "application/x-ndjson")
					for _, rec := range sampleRecords() {
						_ = json.NewEncoder(w).Encode(rec)
					}
					return
				default:
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(body)
			}))
			defer srv.Close()
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stderr bytes.Buffer
			out := closedPipe{wrote: func() {
				mu.Lock()
				defer mu.Unlock()
				if atWrite < 0 {
					atWrite = pages
				}
			}}
			code := Run(context.Background(), args, func(k string) string { return env[k] }, out, &stderr)
			if code != exitOK || stderr.Len() != 0 {
				t.Errorf("exit %d, stderr %q: want exit 0 and nothing said", code, stderr.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if atWrite < 0 {
				t.Fatal("wrote nothing")
			}
			if pages != atWrite {
				t.Errorf("read %d pages, %d of them after the write that failed", pages, pages-atWrite)
			}
		})
	}
}
