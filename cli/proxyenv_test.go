package cli_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/cli"
)

// proxyEnvChild marks the re-executed test binary: it runs lockboxctl
// once and ends. A process of its own, because net/http reads the proxy
// variables once per process.
const proxyEnvChild = "LOCKBOX_TEST_PROXYENV_CHILD"

// TestTokenNeverReachesAProxyInTheClear: lockboxctl sends the token over
// plain http without --insecure-http to a listen address copied from
// LOCKBOX_API_ADDR (http://0.0.0.0:PORT, [::], :PORT), since it dials
// this machine. net/http hands a call to HTTP_PROXY unless its host is
// localhost or a loopback address, so the call went, Authorization and
// all, across the network to the proxy the environment names. Run in a
// process of its own: net/http reads the proxy variables once a process.
func TestTokenNeverReachesAProxyInTheClear(t *testing.T) {
	if os.Getenv(proxyEnvChild) == "1" {
		code := cli.Run(context.Background(), []string{"--addr", os.Getenv("LOCKBOX_ADDR"), "get", "requests"}, os.Getenv, io.Discard, io.Discard)
		_ = code
		return
	}
	const token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2VjcmV0LXNpZ25hdHVyZQ"
	for _, addr := range []string{"http://0.0.0.0:1", "0.0.0.0:1", "http://[::]:1", ":1"} {
		t.Run(addr, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Method+" "+r.URL.String()+" Authorization: "+r.Header.Get("Authorization"))
				mu.Unlock()
				http.Error(w, "proxy", http.StatusBadGateway)
			}))
			defer proxy.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTokenNeverReachesAProxyInTheClear$", "-test.count=1")
			var env []string
			for _, kv := range os.Environ() {
				name, _, _ := strings.Cut(kv, "=")
				switch strings.ToUpper(name) {
				case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD":
					continue
				}
				if strings.HasPrefix(name, "LOCKBOX_") {
					continue
				}
				env = append(env, kv)
			}
			env = append(env, proxyEnvChild+"=1", "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL,
				"LOCKBOX_TOKEN="+token, "LOCKBOX_ADDR="+addr, "LOCKBOX_CONFIG_DIR="+t.TempDir())
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range seen {
				if strings.Contains(s, token) {
					t.Errorf("lockboxctl --addr %s (no --insecure-http) sent the bearer token in clear text to the HTTP proxy of the environment:\n  %s", addr, s)
				}
			}
		})
	}
}
