package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestNoAnswerInTime: a server that took the call and never answered it
// (overloaded, hung) was reported as "cannot reach the Lockbox API at
// ...: context deadline exceeded (Client.Timeout exceeded while awaiting
// headers)": Go's words, and "cannot reach" for a server that was
// reached. An export whose server stopped sending midway printed
// "client: audit export: the server sent nothing for 30s". Both now say,
// on one line, that the API gave no answer for so long and what to try.
func TestNoAnswerInTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read whole, so that the server notices the client leave.
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/audit/export" && r.URL.Query().Get("tenant") == "midway" {
			_, _ = io.WriteString(w, "{\"Id\":\"1\"}\n")
			_ = http.NewResponseController(w).Flush()
		}
		<-r.Context().Done() // never answers, or never ends
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"get", "requests"},
		{"approve", reqID},
		{"audit", "export", "--tenant", "contoso"},
		{"audit", "export", "--tenant", "midway"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			// The server never answers: any timeout runs out, however short.
			deps := sessionDeps{apiTimeout: 50 * time.Millisecond}
			code := runWith(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr, deps)
			want := "lockboxctl: the Lockbox API at " + srv.URL + " gave no answer for 50ms: it may be down or overloaded; try again later\n"
			if code != exitError || stderr.String() != want {
				t.Errorf("exit %d, stderr %q: want exit 1 and %q", code, stderr.String(), want)
			}
		})
	}
}
