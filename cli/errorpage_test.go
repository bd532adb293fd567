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

// TestErrorPageIsNotTheAPIsAnswer: an error answer whose body is a web
// page (a load balancer's 502, a default backend's 404) was printed as
// the start of its markup, escape sequences and all ("HTTP 502 Bad
// Gateway: <html> <head><title>..."), which told the user nothing about
// what answered. lockboxctl now says, on one bounded line without the
// page's markup or control characters, that the server at the address
// answered with an HTML page, not Lockbox's API, and asks which it is.
func TestErrorPageIsNotTheAPIsAnswer(t *testing.T) {
	nginx := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n" +
		"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n" + strings.Repeat("<!-- a padding comment -->\r\n", 6)
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"502 page", "text/html", nginx, http.StatusBadGateway, `answered 502 Bad Gateway with an HTML page ("502 Bad Gateway"), not Lockbox's API`},
		// No Content-Type: the page is known by its content.
		{"404 page unlabelled", "", "<!DOCTYPE html><html><body><p>default backend - 404</p></body></html>", http.StatusNotFound,
			`answered 404 Not Found with an HTML page ("default backend - 404"), not Lockbox's API`},
		// A title with a terminal's escape sequences, entities and a
		// length no line should carry.
		{"hostile title", "text/html; charset=utf-8", "<html><head><TITLE>\x1b]0;owned\x07Service &amp; \x1b[31mdown\x1b[0m" +
			strings.Repeat(" again", 100) + "</TITLE></head></html>", http.StatusServiceUnavailable,
			`answered 503 Service Unavailable with an HTML page ("]0;owned Service & [31mdown [0m again again`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.contentType != "" {
				w.Header().Set("Content-Type", c.contentType)
			} else {
				w.Header()["Content-Type"] = nil
			}
			w.WriteHeader(c.status)
			_, _ = io.WriteString(w, c.body)
		}))
		for _, args := range [][]string{{"get", "requests"}, {"approve", reqID}, {"audit", "search"}} {
			t.Run(c.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
				var stdout, stderr bytes.Buffer
				code := Run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
				msg := stderr.String()
				if code != exitError {
					t.Errorf("exit %d, want %d", code, exitError)
				}
				if !strings.HasPrefix(msg, "lockboxctl: the server at "+srv.URL+" ") || !strings.Contains(msg, c.want) ||
					!strings.Contains(msg, "is --addr ($LOCKBOX_ADDR) Lockbox's API, or a proxy in front of it?") {
					t.Errorf("stderr %q\nwant the server at %s, %q, and the question", msg, srv.URL, c.want)
				}
				if strings.Count(msg, "\n") != 1 || len(msg) > 300 {
					t.Errorf("stderr is %d lines, %d bytes: %q", strings.Count(msg, "\n"), len(msg), msg)
				}
				if strings.ContainsAny(msg, "<>\x1b\x07\r") || strings.Contains(msg, `\u00`) {
					t.Errorf("stderr shows markup or control characters: %q", msg)
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout: %q", stdout.String())
				}
			})
		}
		srv.Close()
	}
}
