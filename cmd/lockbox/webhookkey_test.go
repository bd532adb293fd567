package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/notify"
)

// "lockbox webhook-key URL" prints the receiver's v2 key, derived as
// README says from LOCKBOX_WEBHOOK_SECRET_FILE's secret (without its line
// ending) and the URL as configured; a URL that is not configured is
// refused unless --any says it is meant.
func TestWebhookKeyCommand(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const a, b = "https://hooks.example.com/services/T0KEN", "https://chat.example.org/hook?k=1"
	keyOf := func(u string) string {
		h := hmac.New(sha256.New, []byte("s3cret"))
		h.Write([]byte("lockbox webhook key v2\n" + u))
		return hex.EncodeToString(h.Sum(nil)) + "\n"
	}
	env := map[string]string{"LOCKBOX_WEBHOOK_URLS": a + " , " + b, "LOCKBOX_WEBHOOK_SECRET_FILE": secretFile}
	noSecret := map[string]string{}
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		want     string // stdout for 0, stderr otherwise
	}{
		{"first URL", []string{"webhook-key", a}, env, 0, keyOf(a)},
		{"second URL, as listed after a space", []string{"webhook-key", b}, env, 0, keyOf(b)},
		{"a URL not configured", []string{"webhook-key", a + "/"}, env, 1, "not one of LOCKBOX_WEBHOOK_URLS"},
		{"a URL not configured, --any", []string{"webhook-key", "--any", a + "/"}, env, 0, keyOf(a + "/")},
		{"--any after the URL", []string{"webhook-key", a + "/", "--any"}, env, 0, keyOf(a + "/")},
		{"--any without webhooks", []string{"webhook-key", "--any", a}, map[string]string{"LOCKBOX_WEBHOOK_SECRET_FILE": secretFile}, 0, keyOf(a)},
		{"no secret", []string{"webhook-key", "--any", a}, noSecret, 1, "LOCKBOX_WEBHOOK_SECRET_FILE"},
		{"no URL", []string{"webhook-key"}, env, 2, "usage: lockbox webhook-key [--any] URL"},
		{"two URLs", []string{"webhook-key", a, b}, env, 2, "usage: lockbox webhook-key [--any] URL"},
		{"unknown flag", []string{"webhook-key", "-x", a}, env, 2, "flag provided but not defined: -x (lockbox webhook-key --help)"},
		{"help", []string{"webhook-key", "--help"}, env, 0, "usage: lockbox webhook-key [--any] URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, tc.env, &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			if code == 0 {
				if strings.HasPrefix(tc.want, "usage") {
					if !strings.Contains(out.String(), tc.want) {
						t.Errorf("stdout %q lacks %q", out.String(), tc.want)
					}
				} else if out.String() != tc.want {
					t.Errorf("stdout %q, want %q", out.String(), tc.want)
				}
				return
			}
			if out.Len() > 0 {
				t.Errorf("a refusal printed %q", out.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errb.String())
			}
			// The URL may hold the receiver's credential.
			if strings.Contains(errb.String(), "T0KEN") || strings.Contains(errb.String(), "s3cret") {
				t.Errorf("stderr shows a credential:\n%s", errb.String())
			}
		})
	}
}

// delivery is one webhook POST as a receiver got it.
type delivery struct {
	path string
	body []byte
	hdr  http.Header
}

// A whole "lockbox dev" with two webhooks and LOCKBOX_WEBHOOK_SIGNATURES=v2
// delivers a new request's event to both, signed v2 alone; the key
// "lockbox webhook-key" prints for each receiver verifies its delivery,
// and not the other receiver's.
func TestWebhookKeyVerifiesDevDeliveries(t *testing.T) {
	var mu sync.Mutex
	var got []delivery
	arrived := make(chan struct{}, 16)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.URL.Path, b, r.Header.Clone()})
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default: // more than the test waits for: kept, not signalled
		}
	}))
	t.Cleanup(hooks.Close)
	urlA, urlB := hooks.URL+"/hooks/a?token=T0KEN", hooks.URL+"/hooks/b"
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte("dev-webhook-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"LOCKBOX_DEV_DIR":             filepath.Join(dir, "dev"),
		"LOCKBOX_API_ADDR":            "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":          "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":        "127.0.0.1:0",
		"LOCKBOX_WEBHOOK_URLS":        urlA + ", " + urlB,
		"LOCKBOX_WEBHOOK_SECRET_FILE": secretFile,
		"LOCKBOX_WEBHOOK_SIGNATURES":  "v2",
	}
	stdout, stderr := runDev(t, env)
	api := regexp.MustCompile(`API +(http://\S+)/v1`)
	m := api.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("the banner names no API address:\n%s", stdout.String())
	}
	base := m[1]
	token, err := os.ReadFile(filepath.Join(env["LOCKBOX_DEV_DIR"], "operator.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/requests", strings.NewReader(
		`{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"mailbox will not open","duration":"1h"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	// The request's creation reaches both receivers.
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(30 * time.Second):
			t.Fatalf("no webhook delivery after 30s; logs:\n%s", stderr.String())
		}
	}
	mu.Lock()
	by := map[string]delivery{}
	for _, d := range got {
		by[d.path] = d
	}
	mu.Unlock()
	keyOf := func(u string) []byte {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"webhook-key", u}, env, &out, &errb); code != 0 {
			t.Fatalf("webhook-key: exit %d: %s", code, errb.String())
		}
		k, err := hex.DecodeString(strings.TrimSpace(out.String()))
		if err != nil || len(k) != 32 {
			t.Fatalf("webhook-key printed %q: %v", out.String(), err)
		}
		return k
	}
	keys := map[string][]byte{"/hooks/a": keyOf(urlA), "/hooks/b": keyOf(urlB)}
	for path, key := range keys {
		d, ok := by[path]
		if !ok {
			t.Fatalf("%s got nothing: %v", path, by)
		}
		sig := d.hdr.Get(notify.SignatureHeader)
		if !strings.HasPrefix(sig, "v2=") || strings.Contains(sig, ",") {
			t.Errorf("%s: %s = %q, want v2 alone", path, notify.SignatureHeader, sig)
		}
		verify := func(key []byte) error {
			return notify.VerifyKeys(notify.Keys{V2: key}, d.body, d.hdr.Get(notify.DeliveryHeader),
				d.hdr.Get(notify.TimestampHeader), sig, time.Now(), 0)
		}
		if err := verify(key); err != nil {
			t.Errorf("%s: its key from lockbox webhook-key: %v", path, err)
		}
		for other, k := range keys {
			if other != path {
				if err := verify(k); !errors.Is(err, notify.ErrBadSignature) {
					t.Errorf("%s: %s's key: %v, want %v", path, other, err, notify.ErrBadSignature)
				}
			}
		}
	}
}
