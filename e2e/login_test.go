package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/cli"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestLockboxctlLogin: users sign in with lockboxctl login, the provider's
// staff at the provider's identity provider and contoso's administrator at
// contoso's, through the device flow, and the commands that follow use the
// stored token without LOCKBOX_TOKEN: the server accepts it and maps it by
// its issuer's scope. After logout they can't.
func TestLockboxctlLogin(t *testing.T) {
	var w *world
	now := func() time.Time { return w.clock.Now() }
	cfg := oidctest.Config{TTL: time.Hour, Now: now, PublicClientID: "lockboxctl"}
	provider, contoso := oidctest.Start(t, cfg), oidctest.Start(t, cfg)
	dir := t.TempDir()
	issuers := filepath.Join(dir, "issuers.yaml")
	var b strings.Builder
	b.WriteString("issuers:\n")
	for _, e := range []struct {
		name, scope string
		p           *oidctest.Provider
	}{{"provider", "provider", provider}, {"contoso", "{tenant: contoso}", contoso}} {
		fmt.Fprintf(&b, "  - name: %s\n    issuer: %s\n    audience: %s\n    scope: %s\n    jwks_url: %s\n",
			e.name, e.p.Issuer(), e.p.Audience(), e.scope, e.p.JWKSURL())
	}
	writeFile(t, issuers, b.String())
	w = start(t, "LOCKBOX_JWT_JWKS_FILE", "", "LOCKBOX_ISSUERS_FILE", issuers)

	// Each user has their own config directory.
	ctl := func(configDir string, args ...string) (int, string) {
		t.Helper()
		env := map[string]string{"LOCKBOX_ADDR": w.addr, "LOCKBOX_CONFIG_DIR": configDir}
		var out strings.Builder
		code := cli.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &out)
		return code, out.String()
	}
	// login signs u in at p, approving the device code lockboxctl shows.
	login := func(configDir string, p *oidctest.Provider, u oidctest.User) {
		t.Helper()
		pr, pw := io.Pipe()
		env := map[string]string{"LOCKBOX_ADDR": w.addr, "LOCKBOX_CONFIG_DIR": configDir}
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(context.Background(), []string{"login", "--issuer", p.Issuer(), "--client-id", "lockboxctl"},
				func(k string) string { return env[k] }, io.Discard, pw)
			pw.Close()
		}()
		code := regexp.MustCompile(`enter the code ([A-Z0-9-]+)`)
		var out strings.Builder
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if m := code.FindStringSubmatch(sc.Text()); m != nil {
				if err := p.ApproveDevice(m[1], u); err != nil {
					t.Error(err)
				}
			}
		}
		if c := <-done; c != 0 {
			t.Fatalf("login at %s: exit %d\n%s", p.Issuer(), c, out.String())
		}
	}

	alice, gina := filepath.Join(dir, "alice"), filepath.Join(dir, "gina")
	login(alice, provider, oidctest.User{Subject: "alice@provider.example", Claims: map[string]any{"roles": []string{"operator"}}})
	login(gina, contoso, oidctest.User{Subject: "gina@contoso.example", Claims: map[string]any{"roles": []string{"global-admin"}}})
	if fi, err := os.Stat(filepath.Join(alice, "tokens")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("alice's token directory: %v %v", fi, err)
	}

	// alice files a request as the provider's engineer.
	code, out := ctl(alice, "request", "create", "--tenant", "contoso", "--service", "exchange",
		"--service-request", "SR-42", "--reason", "mailbox will not open", "--duration", "1h", "-o", "id")
	if code != 0 {
		t.Fatalf("request create with the stored token: exit %d\n%s", code, out)
	}
	id := strings.TrimSpace(out)
	code, out = ctl(alice, "request", "show", id, "-o", "json")
	if code != 0 || !strings.Contains(out, `"requester": "alice@provider.example"`) || !strings.Contains(out, string(grants.StatePendingManager)) {
		t.Fatalf("request show: exit %d\n%s", code, out)
	}
	// gina is contoso's administrator, by contoso's issuer, and no more.
	if code, out := ctl(gina, "tenant", "settings", "get", "contoso"); code != 0 {
		t.Fatalf("contoso's settings as gina: exit %d\n%s", code, out)
	}
	if code, out := ctl(gina, "request", "create", "--tenant", "contoso", "--service", "exchange",
		"--service-request", "SR-43", "--reason", "x", "--duration", "1h"); code != 3 { // refused by the API
		t.Fatalf("a request filed by a tenant's user: exit %d\n%s", code, out)
	}

	if code, out := ctl(alice, "logout"); code != 0 {
		t.Fatalf("logout: exit %d\n%s", code, out)
	}
	if code, out := ctl(alice, "request", "list"); code != 1 || !strings.Contains(out, "run lockboxctl login") {
		t.Fatalf("after logout: exit %d\n%s", code, out)
	}
}
