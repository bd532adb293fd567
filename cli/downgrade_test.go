package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// TestRedirectToPlainHTTPIsNamedAsARedirect: an https API on the network
// that redirects to plain http on its own host is not followed (the
// token would cross the network in the clear), and like every other
// redirect that is not followed, it is reported as the API's answer,
// naming where it pointed. It was reported as "cannot reach the Lockbox
// API", blaming a network that had carried the answer, with the Go
// client's advice to "pass the option AllowInsecureHTTP".
func TestRedirectToPlainHTTPIsNamedAsARedirect(t *testing.T) {
	ip := nonLoopbackIP(t)
	if ip == nil {
		t.Skip("this machine has no address but loopback")
	}
	listen := func(t *testing.T) net.Listener {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			t.Skipf("listening on %s: %v", ip, err)
		}
		return l
	}
	var (
		mu    sync.Mutex
		plain []string // the Authorization the plain http server saw
	)
	plainSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		plain = append(plain, r.Header.Get("Authorization"))
		mu.Unlock()
		(&fakeAPI{}).ServeHTTP(w, r)
	}))
	plainSrv.Listener = listen(t)
	plainSrv.Start()
	defer plainSrv.Close()

	ca := tlstest.NewCA(t, "serving")
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plainSrv.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	api.Listener = listen(t)
	api.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "lockbox", ip.String()).TLS}}
	api.Config.ErrorLog = log.New(io.Discard, "", 0)
	api.StartTLS()
	defer api.Close()
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{EnvAddr: api.URL, EnvToken: envToken, EnvConfigDir: t.TempDir(), EnvCAFile: caFile}
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"get", "requests"}, func(k string) string { return env[k] }, &stdout, &stderr)
	msg := stderr.String()
	if code != exitError || !strings.Contains(msg, "redirects to "+plainSrv.URL) || !strings.Contains(msg, "not followed") {
		t.Errorf("exit %d, stderr %q: want exit 1 naming the redirect to %s, not followed", code, msg, plainSrv.URL)
	}
	if strings.Contains(msg, "cannot reach") || strings.Contains(msg, "AllowInsecureHTTP") {
		t.Errorf("stderr blames the network or speaks of the Go client's option: %q", msg)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range plain {
		if a != "" {
			t.Errorf("the plain http server got Authorization %q", a)
		}
	}
}
