package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// TestRefusedRedirectShowsNoUserInfo: lockboxctl names where a redirect
// it does not follow pointed, and named it with url.URL.Redacted: the
// user name of the Location's user information reached the terminal
// ("http://alice:xxxxx@host/..."). It now names the scheme, host, port
// and path only; characters that could act on the terminal stay escaped,
// on one line. login's refusals name an origin alone, as before.
func TestRefusedRedirectShowsNoUserInfo(t *testing.T) {
	other := httptest.NewServer(&fakeAPI{})
	defer other.Close()
	otherHost := strings.TrimPrefix(other.URL, "http://")

	serving := tlstest.NewCA(t, "serving")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, serving.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// redirector answers every call with a redirect to location.
	redirector := func(t *testing.T, location string, tlsOn bool) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", location)
			w.WriteHeader(http.StatusTemporaryRedirect)
		}))
		t.Cleanup(srv.Close)
		if !tlsOn {
			srv.Start()
			return srv.URL
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving.Server(t, "lockbox").TLS}}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		return srv.URL
	}
	check := func(t *testing.T, stderr, want string) {
		t.Helper()
		for _, secret := range []string{"alice", "s3cret", "\u202e", "\u0085"} {
			if strings.Contains(stderr, secret) {
				t.Errorf("stderr shows %q: %q", secret, stderr)
			}
		}
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q: want it to name %s", stderr, want)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
			t.Errorf("the error takes %d lines: %q", n+1, stderr)
		}
	}

	for _, tc := range []struct {
		name, location string
		tls            bool
		want           string
	}{
		{"another server, user and password", "http://alice:s3cret@" + otherHost + "/v1/requests", false, other.URL + "/v1/requests"},
		{"another server, user and controls", "http://alice@" + otherHost + "/x\u202e\u0085y", false, other.URL + "/x"},
		{"https to plain http", "http://alice:s3cret@lockbox.example/v1/requests", true, "http://lockbox.example/v1/requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := redirector(t, tc.location, tc.tls)
			env := map[string]string{EnvAddr: addr, EnvToken: envToken, EnvConfigDir: t.TempDir(), EnvCAFile: caFile}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), []string{"get", "requests"}, func(k string) string { return env[k] }, &stdout, &stderr)
			if code != exitError || !strings.Contains(stderr.String(), "not followed") {
				t.Errorf("exit %d, stderr %q: want exit 1, the redirect not followed", code, stderr.String())
			}
			check(t, stderr.String(), tc.want)
		})
	}

	t.Run("login", func(t *testing.T) {
		for _, tc := range []struct{ name, location, want string }{
			{"another origin", "http://alice:s3cret@" + otherHost + "/\u202e", "(" + other.URL + ")"},
			{"its own origin, ten times over", "", "stopped after 10 redirects"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					loc := tc.location
					if loc == "" {
						loc = "http://alice:s3cret@" + r.Host + "/again\u202e"
					}
					w.Header().Set("Location", loc)
					w.WriteHeader(http.StatusFound)
				}))
				defer idp.Close()
				s := newSession(t, oidctest.Config{})
				r := s.ctl(nil, "login", "--issuer", idp.URL, "--client-id", publicClient)
				if r.code != exitError {
					t.Errorf("exit %d, stderr %q: want exit 1", r.code, r.stderr)
				}
				check(t, r.stderr, tc.want)
			})
		}
	})
}

// TestMalformedRedirectShowsNoPassword: an answer redirecting to a
// Location that does not parse, from the API's address or from the
// identity provider at login, made net/http fail with an error quoting
// the Location whole, and lockboxctl printed it, password and all. It now
// says such a redirect was not followed, without the Location.
func TestMalformedRedirectShowsNoPassword(t *testing.T) {
	const location = "http://alice:s3cret@[::1/v1/requests"
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusFound)
	}))
	defer redirector.Close()
	// want is how the refusal is worded: the API's "not followed", as for
	// its other redirects; login's "refused", as for its own.
	check := func(t *testing.T, code int, stderr, want string) {
		t.Helper()
		if code != exitError || strings.Contains(stderr, "alice") || strings.Contains(stderr, "s3cret") || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q: want exit 1, the redirect %s, without its Location", code, stderr, want)
		}
	}

	t.Run("API", func(t *testing.T) {
		env := map[string]string{EnvAddr: redirector.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"get", "requests"}, func(k string) string { return env[k] }, &stdout, &stderr)
		check(t, code, stderr.String(), "not followed")
		// The API's address answered.
		if strings.Contains(stderr.String(), "cannot reach") {
			t.Errorf("stderr %q: the API's address answered", stderr.String())
		}
	})
	t.Run("login", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		r := s.ctl(nil, "login", "--issuer", redirector.URL, "--client-id", publicClient)
		check(t, r.code, r.stderr, "refused")
	})
}
