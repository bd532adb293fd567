package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// nonLoopbackIP is an address of this machine that is not loopback, or
// nil when it has none.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP
		}
	}
	return nil
}

// TestPlainHTTPKeepsTheToken: the bearer token is not sent in the clear
// over the network. An http:// API address that is not loopback is a
// wrong command line (exit 2, one line naming --insecure-http), and
// nothing is sent; loopback http (lockbox dev's) is fine, and
// --insecure-http sends it anyway.
func TestPlainHTTPKeepsTheToken(t *testing.T) {
	ctl := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		env := map[string]string{EnvToken: envToken, EnvConfigDir: t.TempDir()}
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, stderr.String()
	}
	refused := func(t *testing.T, code int, stderr string) {
		t.Helper()
		if code != exitUsage || !strings.Contains(stderr, "--insecure-http") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("exit %d, stderr %q: want exit 2 and one line naming --insecure-http", code, stderr)
		}
		if strings.Contains(stderr, envToken) {
			t.Errorf("stderr shows the token: %q", stderr)
		}
	}

	// .invalid never resolves (RFC 6761): a refusal must come before any
	// attempt to reach it.
	for _, addr := range []string{"http://lockbox.invalid:8080", "lockbox.invalid:8080", "HTTP://LOCKBOX.INVALID"} {
		t.Run(addr, func(t *testing.T) {
			code, stderr := ctl(t, "get", "requests", "--addr", addr)
			refused(t, code, stderr)
		})
	}
	t.Run("PowerShell verb", func(t *testing.T) {
		code, stderr := ctl(t, "Get-AccessToCustomerDataRequest", "-addr", "http://lockbox.invalid")
		refused(t, code, stderr)
	})

	t.Run("loopback", func(t *testing.T) {
		srv := httptest.NewServer(&fakeAPI{})
		defer srv.Close()
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		// A listen address copied from LOCKBOX_API_ADDR (":8080",
		// "0.0.0.0:8080") dials this machine too.
		for _, addr := range []string{srv.URL, "127.0.0.1:" + port, "http://localhost:" + port, ":" + port, "0.0.0.0:" + port} {
			if code, stderr := ctl(t, "get", "requests", "--addr", addr); code != 0 {
				t.Errorf("--addr %s: exit %d, %s", addr, code, stderr)
			}
		}
	})

	t.Run("a server on the network", func(t *testing.T) {
		ip := nonLoopbackIP(t)
		if ip == nil {
			t.Skip("this machine has no address but loopback")
		}
		var (
			mu   sync.Mutex
			auth []string
		)
		f := &fakeAPI{}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth = append(auth, r.Header.Get("Authorization"))
			mu.Unlock()
			f.ServeHTTP(w, r)
		}))
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			t.Skipf("listening on %s: %v", ip, err)
		}
		srv.Listener = l
		srv.Start()
		defer srv.Close()

		code, stderr := ctl(t, "get", "requests", "--addr", srv.URL)
		refused(t, code, stderr)
		mu.Lock()
		if len(auth) != 0 {
			t.Errorf("the server on the network got %q", auth)
		}
		mu.Unlock()

		if code, stderr := ctl(t, "--insecure-http", "get", "requests", "--addr", srv.URL); code != 0 {
			t.Fatalf("--insecure-http: exit %d, %s", code, stderr)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(auth) == 0 || auth[len(auth)-1] != "Bearer "+envToken {
			t.Errorf("--insecure-http: the server got %q, want the token", auth)
		}
	})
}

// TestInsecureHTTPFromTheEnvironment: LOCKBOX_INSECURE_HTTP is to
// --insecure-http what LOCKBOX_ADDR is to --addr: a true value lets the
// token go over plain http off loopback, the flag given false overrides
// it, and a value that is no boolean is a wrong command line (exit 2)
// naming the variable, with nothing sent. The help names it.
func TestInsecureHTTPFromTheEnvironment(t *testing.T) {
	ip := nonLoopbackIP(t)
	if ip == nil {
		t.Skip("this machine has no address but loopback")
	}
	var (
		mu   sync.Mutex
		auth []string
	)
	f := &fakeAPI{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		f.ServeHTTP(w, r)
	}))
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skipf("listening on %s: %v", ip, err)
	}
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	calls := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), auth...)
	}

	for _, tt := range []struct {
		name, value string
		args        []string
		want        int // exit code
		sent        bool
		stderr      string
	}{
		{"true", "true", []string{"get", "requests"}, 0, true, ""},
		{"1 and a PowerShell verb", "1", []string{"Get-AccessToCustomerDataRequest"}, 0, true, ""},
		{"false", "false", []string{"get", "requests"}, exitUsage, false, "--insecure-http"},
		{"the flag overrides it", "true", []string{"get", "requests", "--insecure-http=false"}, exitUsage, false, "--insecure-http"},
		{"not a boolean", "yes please", []string{"get", "requests"}, exitUsage, false, EnvInsecureHTTP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(calls())
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir(), EnvInsecureHTTP: tt.value}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), tt.args, func(k string) string { return env[k] }, &stdout, &stderr)
			if code != tt.want || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("%s=%q: exit %d, stderr %q: want exit %d mentioning %q", EnvInsecureHTTP, tt.value, code, stderr.String(), tt.want, tt.stderr)
			}
			got := calls()[before:]
			if tt.sent && (len(got) == 0 || got[len(got)-1] != "Bearer "+envToken) {
				t.Errorf("the server got %q, want the token", got)
			}
			if !tt.sent && len(got) != 0 {
				t.Errorf("the server got %q, want nothing", got)
			}
		})
	}

	var stdout, stderr bytes.Buffer
	Run(context.Background(), []string{"--help"}, func(string) string { return "" }, &stdout, &stderr)
	if !strings.Contains(stdout.String(), "$"+EnvInsecureHTTP) {
		t.Errorf("--help does not name $%s:\n%s", EnvInsecureHTTP, stdout.String())
	}
}
