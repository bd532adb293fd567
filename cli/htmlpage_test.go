package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTMLPageIsNotTheAPIsAnswer: something in front of the API's address
// (a sign-in proxy, a default backend answering every path, a captive
// portal) answers 200 with a page. Every command failed with "decoding
// response: invalid character '<' looking for beginning of value",
// which names neither the answer nor what to check; audit export already
// said the page was not an export and asked whether the address was the
// API's. Every call now says so, on one line; and approver add and
// remove, whose calls expect no body, no longer report the change made
// (exit 0) when the page answered them instead of the API.
func TestHTMLPageIsNotTheAPIsAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html>\n<html><body>Sign in to continue</body></html>\n")
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"get", "requests"},
		{"approve", reqID},
		{"get", "settings", "contoso"},
		{"audit", "search"},
		{"approver", "add", "contoso", "alice@contoso.com"},
		{"approver", "remove", "contoso", "alice@contoso.com"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
			msg := stderr.String()
			if code != exitError || !strings.Contains(msg, "HTML page") || !strings.Contains(msg, "is "+srv.URL+" the API's address?") {
				t.Errorf("exit %d, stderr %q: want exit 1 naming the page and asking after the address", code, msg)
			}
			if n := strings.Count(strings.TrimSpace(msg), "\n"); n != 0 {
				t.Errorf("the error takes %d lines: %q", n+1, msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
		})
	}
}
