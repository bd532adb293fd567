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

// TestTenantUpdateKeepsAChangeSavedMeanwhile: against a real Lockbox, a
// domain another Lockbox administrator adds after "tenant update
// --add-domain" read the entry and before it writes it is not dropped by
// the list the command read and sends back whole: the command is refused
// in one line (exit 3) and the other change stays; run again, it adds its
// domain on top. (A change to another field, the global administrators,
// is kept by the API's merge of the fields a PATCH names; a change to the
// same list is what only the ETag keeps.) The other change is made by a proxy in front of the API, right
// after the command's read was answered and before the command sees the
// answer.
func TestTenantUpdateKeepsAChangeSavedMeanwhile(t *testing.T) {
	addr, tokens := startLockbox(t, t.Cleanup)
	ctx := context.Background()
	other, err := client.New(addr, tokens["lockbox-admin"])
	if err != nil {
		t.Fatal(err)
	}
	before, err := other.Tenant(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	theirs := append(slices.Clone(before.Domains), "contoso.net")
	target, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	api := httputil.NewSingleHostReverseProxy(target)
	var interpose sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/tenants/contoso" {
			api.ServeHTTP(w, r)
			return
		}
		read := httptest.NewRecorder()
		api.ServeHTTP(read, r)
		interpose.Do(func() {
			if _, err := other.UpdateTenant(ctx, "contoso", wire.TenantUpdate{Domains: &theirs}); err != nil {
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

	env := map[string]string{EnvAddr: front.URL, EnvToken: tokens["lockbox-admin"], EnvConfigDir: t.TempDir()}
	run := func() (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Run(ctx, []string{"tenant", "update", "contoso", "--add-domain", "contoso.com"}, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	entry := func() wire.Tenant {
		t.Helper()
		e, err := other.Tenant(ctx, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	code, stdout, stderr := run()
	if code != exitRefused || stdout != "" || strings.Count(stderr, "\n") != 1 ||
		!strings.HasPrefix(stderr, "lockboxctl: the registry entry of tenant contoso changed while this command ran; nothing was saved: run it again") ||
		!strings.Contains(stderr, "(tenant_changed, HTTP 412") {
		t.Fatalf("exit %d\nstdout: %q\nstderr: %q\nwant exit 3 and one line saying the entry changed", code, stdout, stderr)
	}
	if e := entry(); !slices.Contains(e.Domains, "contoso.net") || slices.Contains(e.Domains, "contoso.com") {
		t.Fatalf("entry = %+v: the command undid the change saved meanwhile, or wrote its own", e)
	}

	if code, stdout, stderr := run(); code != exitOK {
		t.Fatalf("second run: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if e := entry(); !slices.Contains(e.Domains, "contoso.net") || !slices.Contains(e.Domains, "contoso.com") || len(e.Domains) != len(before.Domains)+2 {
		t.Fatalf("entry after the second run = %+v, want the domain added with the other one kept", e)
	}
}
