package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// TestTLS: lockboxctl reaches an API served with a private CA that
// requires client certificates, given LOCKBOX_CA_FILE and a client
// certificate; without them the call fails, never falling back to plain
// HTTP or skipping verification.
func TestTLS(t *testing.T) {
	serving, clients := tlstest.NewCA(t, "serving"), tlstest.NewCA(t, "clients")
	f := &fakeAPI{}
	srv := httptest.NewUnstartedServer(f)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving.Server(t, "lockbox").TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients.Pool()}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := clients.Client(t, "ops-laptop")
	ca, cert, key := write("ca.crt", serving.PEM), write("tls.crt", leaf.CertPEM), write("tls.key", leaf.KeyPEM)

	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // "" means success
	}{
		{"CA and client certificate", map[string]string{EnvCAFile: ca, EnvClientCertFile: cert, EnvClientKeyFile: key}, ""},
		{"no client certificate", map[string]string{EnvCAFile: ca}, "certificate"},
		{"system roots", map[string]string{EnvClientCertFile: cert, EnvClientKeyFile: key}, "certificate"},
		{"certificate without key", map[string]string{EnvCAFile: ca, EnvClientCertFile: cert}, "LOCKBOX_CLIENT_CERT_FILE and LOCKBOX_CLIENT_KEY_FILE go together"},
		{"CA file holding a key", map[string]string{EnvCAFile: key}, "LOCKBOX_CA_FILE: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), []string{"request", "list"}, func(k string) string { return env[k] }, &stdout, &stderr)
			if tt.wantErr == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				return
			}
			if code != 1 || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want a failure mentioning %q", code, stderr.String(), tt.wantErr)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 || len(f.auth) != 1 || f.auth[0] != "Bearer "+envToken {
		t.Errorf("the API saw calls %v with %v, want one, with the token", f.calls, f.auth)
	}
}
