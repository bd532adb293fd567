package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRedirectKeepsTheToken: an API answer that redirects to another
// server is not followed, so the bearer token is sent to the API's address
// alone. net/http re-sends Authorization to any port and scheme of the
// same host name (and to its subdomains), so a redirect to
// http://same-host:other-port, or from https to http, handed the token to
// another server, or to the network in the clear.
func TestRedirectKeepsTheToken(t *testing.T) {
	other := &fakeAPI{}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()

	var target string // where the API redirects GET /v1/requests
	api := &fakeAPI{}
	apiSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/requests" && r.URL.Query().Get("moved") == "" {
			api.mu.Lock()
			api.auth = append(api.auth, r.Header.Get("Authorization"))
			api.mu.Unlock()
			http.Redirect(w, r, target, http.StatusTemporaryRedirect)
			return
		}
		api.ServeHTTP(w, r)
	}))
	defer apiSrv.Close()

	ctl := func(t *testing.T) (int, string) {
		t.Helper()
		env := map[string]string{EnvAddr: apiSrv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"get", "requests"}, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, stderr.String()
	}

	t.Run("to another server on the same host", func(t *testing.T) {
		// 127.0.0.1 on another port: the same host name to net/http.
		target = otherSrv.URL + "/v1/requests?moved=1"
		code, stderr := ctl(t)
		other.mu.Lock()
		defer other.mu.Unlock()
		for _, a := range other.auth {
			if a != "" {
				t.Errorf("the server redirected to got Authorization %q", a)
			}
		}
		if code != 1 || !strings.Contains(stderr, otherSrv.URL) || !strings.Contains(stderr, "not followed") {
			t.Errorf("exit %d, stderr %q: want exit 1 naming the redirect's target, not followed", code, stderr)
		}
	})

	t.Run("within the API's own address", func(t *testing.T) {
		// The same scheme, host and port: still the API, which gets the
		// token after the redirect too.
		target = apiSrv.URL + "/v1/requests?moved=1"
		if code, stderr := ctl(t); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		api.mu.Lock()
		defer api.mu.Unlock()
		if n := len(api.auth); n < 2 || api.auth[n-1] != "Bearer "+envToken {
			t.Errorf("the API saw Authorization %q, want the token after the redirect too", api.auth)
		}
	})
}
