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

// TestStatusWithoutTheAPIsErrorIsSaidOnce: an answer without the API's
// error document (a gateway's 502, a 401 from a proxy in front, a
// metrics port's 404) was printed as "HTTP 401 Unauthorized (HTTP 401)":
// the message lockboxctl makes of such an answer already starts with the
// status, and the notes named it again. An HTML page's line said
// "answered 502 Bad Gateway ... (HTTP 502)". The status is now said once;
// the API's own refusals still end with it, as their message does not.
func TestStatusWithoutTheAPIsErrorIsSaidOnce(t *testing.T) {
	for _, c := range []struct {
		name        string
		status      int
		header      map[string]string
		body        string
		want        string // stderr's first line
		wantOneLine bool   // no line follows
	}{
		{"a 401 without a body", 401, nil, "", "lockboxctl: HTTP 401 Unauthorized", false},
		{"a 403 without a body", 403, nil, "", "lockboxctl: HTTP 403 Forbidden", false},
		{"a 404 in text", 404, nil, "404 page not found\n", "lockboxctl: HTTP 404 Not Found: 404 page not found", false},
		{"a 412 without a body", 412, nil, "", "lockboxctl: HTTP 412 Precondition Failed", false},
		{"a 500 without a body", 500, nil, "", "lockboxctl: HTTP 500 Internal Server Error", true},
		{"a 502 in text", 502, nil, "upstream connect error", "lockboxctl: HTTP 502 Bad Gateway: upstream connect error", true},
		{"a 503 with a trace id", 503, map[string]string{"X-Request-Id": "6XOG3QOH"}, "", "lockboxctl: HTTP 503 Service Unavailable (trace id 6XOG3QOH)", true},
		{"a problem document", 429, map[string]string{"Content-Type": "application/problem+json", "Retry-After": "5"}, `{"title":"Rate limited","detail":"slow down"}`,
			"lockboxctl: HTTP 429 Too Many Requests: Rate limited: slow down (retry after 5s)", true},
		// RFC 9457 lets a problem's title be the status's own text, as
		// many gateways write it: said once, as the status is.
		{"a problem titled with the status's text", 429, map[string]string{"Content-Type": "application/problem+json"}, `{"title":"Too Many Requests","detail":"slow down"}`,
			"lockboxctl: HTTP 429 Too Many Requests: slow down", true},
		{"a problem with only the status's text", 503, map[string]string{"Content-Type": "application/problem+json"}, `{"title":"service unavailable"}`,
			"lockboxctl: HTTP 503 Service Unavailable", true},
		// A status Go has no text for: no space left hanging.
		{"a 599 without a body", 599, nil, "", "lockboxctl: HTTP 599", true},
		{"an HTML page", 502, map[string]string{"Content-Type": "text/html"}, "<html>bad gateway</html>",
			"answered 502 Bad Gateway with an HTML page (\"bad gateway\"), not Lockbox's API: is --addr ($LOCKBOX_ADDR) Lockbox's API, or a proxy in front of it?", true},
		// The API's refusal: its message says nothing of the status.
		{"the API's 401", 401, map[string]string{"Content-Type": "application/json"}, `{"error":{"code":"unauthenticated","message":"token expired"}}`,
			"lockboxctl: token expired (unauthenticated, HTTP 401)", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			defer srv.Close()
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			Run(context.Background(), []string{"request", "list"}, func(k string) string { return env[k] }, &stdout, &stderr)
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			if !strings.HasSuffix(first, c.want) || !strings.HasPrefix(first, "lockboxctl: ") {
				t.Errorf("stderr's first line %q, want it to end %q", first, c.want)
			}
			if c.wantOneLine && rest != "" {
				t.Errorf("stderr goes on after its first line: %q", rest)
			}
		})
	}
}
