package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRetryAfterIsShown: an API (or a gateway in front of it) that refuses
// a call for now says when to come back in Retry-After: the API's 429
// too_many_reads sends "Retry-After: 10". lockboxctl printed the message
// and the status only, leaving the user to guess how long "later" is. It
// now adds how long to wait, when the header gives seconds.
func TestRetryAfterIsShown(t *testing.T) {
	for _, c := range []struct {
		name, retryAfter, body string
		status                 int
		want                   string
	}{
		{"the API's 429", "10", `{"error":{"code":"too_many_reads","message":"this server already runs 16 audit exports or verifications at once, the most it runs; retry later"}}`, 429,
			"lockboxctl: this server already runs 16 audit exports or verifications at once, the most it runs; retry later (too_many_reads, HTTP 429, retry after 10s)\n"},
		{"a gateway's 503", " 120 ", "", 503, "lockboxctl: HTTP 503 Service Unavailable (retry after 120s)\n"},
		{"a date", "Wed, 21 Oct 2037 07:28:00 GMT", "", 503, "lockboxctl: HTTP 503 Service Unavailable\n"},
		{"none", "", "", 429, "lockboxctl: HTTP 429 Too Many Requests\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				if c.body != "" {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			defer srv.Close()
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), []string{"audit", "verify", "--tenant", "contoso"}, func(k string) string { return env[k] }, &stdout, &stderr)
			if code != exitError || stderr.String() != c.want {
				t.Errorf("exit %d, stderr %q: want exit 1 and %q", code, stderr.String(), c.want)
			}
		})
	}
}
