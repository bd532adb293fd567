package cli

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// TestUnknownCANamesLOCKBOX_CA_FILE: an https API whose certificate a
// private CA issued fails verification against the system's roots.
// lockboxctl said only "x509: certificate signed by unknown authority",
// though the remedy is its own variable, which only the help names. The
// one line now names $LOCKBOX_CA_FILE too, and when it is set, that the CA
// it holds did not issue the certificate; verification is never skipped.
func TestUnknownCANamesLOCKBOX_CA_FILE(t *testing.T) {
	f := &fakeAPI{}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	other := filepath.Join(t.TempDir(), "other-ca.crt")
	if err := os.WriteFile(other, tlstest.NewCA(t, "another").PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, caFile, want string
	}{
		{"the system's roots", "", "give the CA's PEM file as $" + EnvCAFile},
		{"another CA", other, "no CA in $" + EnvCAFile + " (" + other + ") issued its certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir(), EnvCAFile: tc.caFile}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), []string{"get", "requests"}, func(k string) string { return env[k] }, &stdout, &stderr)
			msg := stderr.String()
			if code != exitError || !strings.Contains(msg, "unknown authority") || !strings.Contains(msg, tc.want) {
				t.Errorf("exit %d, stderr %q: want exit 1 naming the unknown authority and %q", code, msg, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(msg), "\n"); n != 0 {
				t.Errorf("the error takes %d lines: %q", n+1, msg)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 0 {
		t.Errorf("the API was called: %v", f.calls)
	}
}
