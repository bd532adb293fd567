package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestSettingsSetKeepsAChangeSavedMeanwhile: against a real Lockbox, a
// change another administrator saves after "tenant settings set" read the
// settings and before it writes them is not undone: the command is
// refused in one line (exit 3) and the other change stays; run again, it
// applies its own change on top. The other change is made by a proxy in
// front of the API, right after the command's read was answered and before
// the command sees the answer.
func TestSettingsSetKeepsAChangeSavedMeanwhile(t *testing.T) {
	addr, tokens := startLockbox(t, t.Cleanup)
	ctx := context.Background()
	other, err := client.New(addr, tokens["admin"])
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	api := httputil.NewSingleHostReverseProxy(target)
	var interpose sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/tenants/contoso/settings" {
			api.ServeHTTP(w, r)
			return
		}
		read := httptest.NewRecorder()
		api.ServeHTTP(read, r)
		interpose.Do(func() {
			if _, err := other.PutSettings(ctx, "contoso", wire.Settings{LockboxEnabled: true, NotificationAddresses: []string{"soc@contoso.example"}}); err != nil {
				t.Errorf("the other administrator's change: %v", err)
			}
		})
		for k, v := range read.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(read.Code)
		_, _ = w.Write(read.Body.Bytes())
	}))
	t.Cleanup(front.Close)

	env := map[string]string{EnvAddr: front.URL, EnvToken: tokens["admin"], EnvConfigDir: t.TempDir()}
	run := func() (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Run(ctx, []string{"tenant", "settings", "set", "contoso", "--lockbox", "off"}, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	settings := func() wire.Settings {
		t.Helper()
		s, err := other.Settings(ctx, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	code, stdout, stderr := run()
	if code != exitRefused || stdout != "" || strings.Count(stderr, "\n") != 1 ||
		!strings.HasPrefix(stderr, "lockboxctl: the settings of tenant contoso changed while this command ran; nothing was saved: run it again") ||
		!strings.Contains(stderr, "(settings_changed, HTTP 412") {
		t.Fatalf("exit %d\nstdout: %q\nstderr: %q\nwant exit 3 and one line saying the settings changed", code, stdout, stderr)
	}
	if s := settings(); !s.LockboxEnabled || !slices.Equal(s.NotificationAddresses, []string{"soc@contoso.example"}) {
		t.Fatalf("settings = %+v: the command undid the change saved meanwhile, or wrote its own", s)
	}

	if code, stdout, stderr := run(); code != exitOK {
		t.Fatalf("second run: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if s := settings(); s.LockboxEnabled || !slices.Equal(s.NotificationAddresses, []string{"soc@contoso.example"}) {
		t.Fatalf("settings after the second run = %+v, want off with the other change kept", s)
	}
}
