package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// writeSecret writes a fresh secret as "openssl rand -base64 48 > path"
// does, line ending included, and returns the secret.
func writeSecret(t *testing.T, path string) []byte {
	t.Helper()
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	secret := []byte(base64.StdEncoding.EncodeToString(b))
	if err := os.WriteFile(path, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestAssertionSecretFromItsFile: with LOCKBOX_PROXY_ASSERTION_SECRET_FILES,
// the upstream gets assertions it checks with the secret in its file, as
// grantsig.LoadSecret reads it; SIGHUP's reload puts a new secret to work,
// and keeps the one in use when the new file can't be used.
func TestAssertionSecretFromItsFile(t *testing.T) {
	var mu sync.Mutex
	var last string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Get(grantsig.Header)
		mu.Unlock()
	}))
	t.Cleanup(up.Close)
	file := filepath.Join(t.TempDir(), "exchange-assertion.secret")
	writeSecret(t, file)
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":                    "exchange=" + up.URL,
		"LOCKBOX_PROXY_ASSERTION_SECRET_FILES": "exchange=" + file,
	})
	lb.grant(t)
	// checked calls the proxy and checks the assertion the upstream got
	// with the secret the upstream would read from file now.
	checked := func(when string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, lb.srv.ProxyURL()+"/exchange/tenants/contoso/mailboxes", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+lb.token)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s: proxy call: %v", when, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: proxy call: %s", when, resp.Status)
		}
		secret, err := grantsig.LoadSecret(file)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := grantsig.NewSecretKeySet(secret)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		a := last
		mu.Unlock()
		if _, err := grantsig.Verify(keys, a, grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET",
			Path: "/tenants/contoso/mailboxes"}, time.Now()); err != nil {
			t.Fatalf("%s: the upstream can't check its assertion with its file: %v", when, err)
		}
	}
	checked("at start-up")
	first, _ := grantsig.LoadSecret(file)
	// Run logs it once it has started everything.
	want := "assertion_kids=map[exchange:" + grantsig.SecretKeyID(first) + "]"
	waitFor(t, "the start-up line naming exchange's key ("+want+")", func() bool { return strings.Contains(lb.logs.String(), want) })

	writeSecret(t, file)
	if err := lb.srv.Reload(); err != nil {
		t.Fatalf("Reload: %v\n%s", err, lb.logs)
	}
	if !strings.Contains(lb.logs.String(), `msg="assertion secrets reloaded"`) {
		t.Errorf("no reload line:\n%s", lb.logs)
	}
	checked("after a new secret and SIGHUP")

	kid := lb.srv.Proxy.AssertionKeyIDs()["exchange"]
	secret, _ := grantsig.LoadSecret(file)
	if err := os.WriteFile(file, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lb.srv.Reload(); err == nil {
		t.Fatal("Reload took a 9-byte secret")
	}
	if !strings.Contains(lb.logs.String(), "assertion secret reload failed; the secrets loaded before stay in use") {
		t.Errorf("no failure line:\n%s", lb.logs)
	}
	if got := lb.srv.Proxy.AssertionKeyIDs()["exchange"]; got != kid || got != grantsig.SecretKeyID(secret) {
		t.Fatalf("kid %s after a refused file, want %s still", got, kid)
	}
}
