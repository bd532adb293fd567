package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConsoleAnswersBeforeTheConsoleCarryItsHeaders: what the API
// address's mux answers itself for the admin center's paths, before the
// console's handler runs (the redirect of /console to /console/, the
// redirects that clean a path, the root's redirect to the console), came
// without the headers every console page carries: a browser following
// /console got a response it could frame, sniff or cache. The console's
// own 404 and 405 are checked beside them.
func TestConsoleAnswersBeforeTheConsoleCarryItsHeaders(t *testing.T) {
	lb := start(t, map[string]string{"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"})
	base := "http://" + lb.srv.APIAddr()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/console", http.StatusTemporaryRedirect},
		{"HEAD", "/console", http.StatusTemporaryRedirect},
		{"POST", "/console", http.StatusTemporaryRedirect},
		{"GET", "//console", http.StatusTemporaryRedirect},
		{"GET", "/console/./signin", http.StatusTemporaryRedirect},
		{"GET", "/console//requests", http.StatusTemporaryRedirect},
		{"GET", "/", http.StatusSeeOther},
		{"GET", "/console/no-such-page", http.StatusNotFound},
		{"DELETE", "/console/requests", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for name, want := range map[string]string{
				"Cache-Control":                "no-store",
				"X-Content-Type-Options":       "nosniff",
				"Referrer-Policy":              "same-origin",
				"X-Frame-Options":              "DENY",
				"Cross-Origin-Opener-Policy":   "same-origin",
				"Cross-Origin-Resource-Policy": "same-origin",
			} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy: %q", csp)
			}
		})
	}
	// The API's own answers stay the API's: no page policy on its JSON.
	resp, _, err := get(t, base+"/v1/no-such-route")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Frame-Options") != "" {
		t.Errorf("/v1/no-such-route: %d, X-Frame-Options %q", resp.StatusCode, resp.Header.Get("X-Frame-Options"))
	}
}
