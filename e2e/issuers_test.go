package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// idps are the identity providers of a deployment whose tenants bring
// their own: the provider's, contoso's and fabrikam's, each an OpenID
// Connect provider with a JWKS URL.
type idps struct {
	provider, contoso, fabrikam *oidctest.Provider
	file                        string // LOCKBOX_ISSUERS_FILE
}

// startIDPs starts the three providers, on the clock now returns, and
// writes the issuers file trusting them. Each tweak may change the
// configuration of the provider it is given the name of ("provider",
// "contoso", "fabrikam").
func startIDPs(t *testing.T, now func() time.Time, console bool, tweaks ...func(name string, c *oidctest.Config)) *idps {
	t.Helper()
	cfg := func(name, aud string) oidctest.Config {
		c := oidctest.Config{Audience: aud, TTL: time.Hour, Now: now}
		for _, tw := range tweaks {
			tw(name, &c)
		}
		return c
	}
	p := &idps{
		provider: oidctest.Start(t, cfg("provider", "lockbox")),
		contoso:  oidctest.Start(t, cfg("contoso", "api://lockbox")),
		fabrikam: oidctest.Start(t, cfg("fabrikam", "lockbox")),
	}
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("issuers:\n")
	for _, e := range []struct {
		name, scope string
		p           *oidctest.Provider
	}{
		{"provider", "provider", p.provider},
		{"contoso", "{tenant: contoso}", p.contoso},
		{"fabrikam", "{tenant: fabrikam}", p.fabrikam},
	} {
		fmt.Fprintf(&b, "  - name: %s\n    issuer: %s\n    audience: %s\n    scope: %s\n    jwks_url: %s\n",
			e.name, e.p.Issuer(), e.p.Audience(), e.scope, e.p.JWKSURL())
		if console {
			secret := filepath.Join(dir, e.name+"-secret")
			writeFile(t, secret, e.p.ClientSecret()+"\n")
			fmt.Fprintf(&b, "    console: {client_id: %s, client_secret_file: %s}\n", e.p.ClientID(), secret)
		}
	}
	p.file = filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(p.file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func user(sub string, claims map[string]any) oidctest.User {
	return oidctest.User{Subject: sub, Claims: claims}
}

// TestIssuerScopes: with an issuers file, each identity provider signs in
// the users of its scope and no one else, through the API and the proxy
// alike. contoso's identity provider can't make anyone act for fabrikam or
// as the provider's staff, whatever its tokens claim; the provider's can't
// make a tenant user. The keys come from each provider's JWKS URL, and a
// provider's rotation takes effect without a restart.
func TestIssuerScopes(t *testing.T) {
	var w *world
	now := func() time.Time { return w.clock.Now() }
	p := startIDPs(t, now, false)
	w = start(t, "LOCKBOX_JWT_JWKS_FILE", "", "LOCKBOX_ISSUERS_FILE", p.file)
	staffOperator := user("alice@provider.example", map[string]any{"roles": []string{"operator"}})
	roles := func(r ...string) map[string]any { return map[string]any{"roles": r} }
	w.tokens = map[string]string{
		"operator":  p.provider.AccessToken(staffOperator),
		"manager":   p.provider.AccessToken(user("mary@provider.example", roles("support-manager"))),
		"fab-admin": p.fabrikam.AccessToken(user("fay@fabrikam.example", roles("global-admin"))),
		"con-admin": p.contoso.AccessToken(user("gina@contoso.example", roles("global-admin"))),
		// contoso's identity provider, claiming more than its scope.
		"con-as-fabrikam": p.contoso.AccessToken(user("mallory@contoso.example", map[string]any{
			"tid": "fabrikam", "roles": []string{"global-admin", "lockbox-approver"}})),
		"con-as-staff": p.contoso.AccessToken(user("mallory@contoso.example",
			roles("operator", "support-manager", "lockbox-admin", "audit-reader"))),
		// The provider's, claiming a tenant.
		"staff-as-fabrikam": p.provider.AccessToken(user("eve@provider.example", map[string]any{
			"tid": "fabrikam", "roles": []string{"global-admin", "operator"}})),
	}
	forged, err := p.contoso.Sign(map[string]any{"iss": p.provider.Issuer(), "aud": "lockbox", "sub": "mallory@contoso.example",
		"roles": []string{"operator", "support-manager"}, "iat": now().Unix(), "exp": now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	w.tokens["forged-provider"] = forged

	// The provider's engineer files a request for fabrikam, its manager
	// approves it.
	var req grants.Request
	w.ok("operator", &req, "request", "create", "--tenant", "fabrikam", "--service", "exchange",
		"--service-request", "SR-7", "--reason", "mailbox will not open", "--duration", "1h", "--activity", "Get-Mailbox")
	w.ok("manager", nil, "request", "approve", req.ID)
	if s := w.state("manager", req.ID); s != grants.StatePendingCustomer {
		t.Fatalf("after the manager: %s", s)
	}

	t.Run("contoso's issuer can't act for fabrikam", func(t *testing.T) {
		// The token works, for contoso: the tid it claims is ignored.
		if code, _, b := w.api("con-as-fabrikam", "GET", "/v1/tenants/contoso/settings", nil); code != http.StatusOK {
			t.Fatalf("contoso's settings as contoso's admin: %d %s", code, b)
		}
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/tenants/fabrikam/settings"},
			{"PUT", "/v1/tenants/fabrikam/settings"},
			{"GET", "/v1/tenants/fabrikam/approvers"},
			{"GET", "/v1/requests/" + req.ID},
		} {
			var body any
			if c.method == "PUT" {
				body = map[string]any{"lockbox_enabled": false}
			}
			if code, _, b := w.api("con-as-fabrikam", c.method, c.path, body); code != http.StatusForbidden && code != http.StatusNotFound {
				t.Errorf("%s %s as contoso's user claiming fabrikam: %d %s", c.method, c.path, code, b)
			}
		}
		w.fails("con-as-fabrikam", "", "request", "approve", req.ID)
		if s := w.state("manager", req.ID); s != grants.StatePendingCustomer {
			t.Fatalf("fabrikam's request after contoso's try: %s", s)
		}
	})
	t.Run("contoso's issuer can't make provider staff", func(t *testing.T) {
		w.fails("con-as-staff", "", "request", "create", "--tenant", "contoso", "--service", "exchange",
			"--service-request", "SR-8", "--reason", "x", "--duration", "1h")
		w.fails("con-as-staff", "", "request", "approve", req.ID)
		if code, _, b := w.api("con-as-staff", "POST", "/v1/tenants", map[string]any{"id": "northwind", "display_name": "Northwind",
			"domains": []string{"northwind.example"}, "global_admins": []string{"nina@northwind.example"}}); code != http.StatusForbidden {
			t.Errorf("onboarding as contoso's user claiming lockbox-admin: %d %s", code, b)
		}
		// Its audit-reader role is a tenant's: contoso's log, no other.
		if code, _, b := w.api("con-as-staff", "GET", "/v1/audit?tenant=fabrikam", nil); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("fabrikam's audit log as contoso's audit reader: %d %s", code, b)
		}
		// Through the proxy: a tenant user, whatever roles it claims.
		if code, reason := w.get("con-as-staff", "/exchange/tenants/fabrikam/mailboxes"); code != http.StatusForbidden {
			t.Errorf("proxy call as contoso's user claiming operator: %d %s", code, reason)
		}
		if code, reason := w.get("con-as-fabrikam", "/exchange/tenants/fabrikam/mailboxes"); code != http.StatusForbidden {
			t.Errorf("proxy call as contoso's user claiming fabrikam: %d %s", code, reason)
		}
	})
	t.Run("contoso's keys can't sign for the provider", func(t *testing.T) {
		if code, _, b := w.api("forged-provider", "GET", "/v1/requests", nil); code != http.StatusUnauthorized {
			t.Errorf("API with a provider token signed by contoso's key: %d %s", code, b)
		}
		if code, reason := w.get("forged-provider", "/exchange/tenants/fabrikam/mailboxes"); code != http.StatusUnauthorized {
			t.Errorf("proxy with a provider token signed by contoso's key: %d %s", code, reason)
		}
	})
	t.Run("the provider's issuer can't make tenant users", func(t *testing.T) {
		if code, _, b := w.api("staff-as-fabrikam", "GET", "/v1/tenants/fabrikam/settings", nil); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("fabrikam's settings as provider staff claiming fabrikam: %d %s", code, b)
		}
		w.fails("staff-as-fabrikam", "", "request", "approve", req.ID)
	})

	// fabrikam's own administrator approves, through fabrikam's issuer;
	// the engineer's call goes through.
	w.ok("fab-admin", nil, "request", "approve", req.ID)
	if code, reason := w.get("operator", "/exchange/tenants/fabrikam/mailboxes"); code != http.StatusOK {
		t.Fatalf("the approved engineer's call: %d %s", code, reason)
	}

	t.Run("the provider rotates its key", func(t *testing.T) {
		// The forged token above named a key the provider's issuer does
		// not have, and so fetched its keys: the next fetch a token may
		// cause is 30 s later.
		w.clock.Advance(identity.DefaultMinRefreshInterval)
		if _, err := p.provider.RotateKey(); err != nil {
			t.Fatal(err)
		}
		p.provider.RetireKeys()
		fresh := p.provider.AccessToken(staffOperator)
		old := w.tokens["operator"]
		w.tokens["operator"] = fresh
		if code, reason := w.get("operator", "/exchange/tenants/fabrikam/mailboxes"); code != http.StatusOK {
			t.Fatalf("a token of the new key: %d %s", code, reason)
		}
		w.tokens["operator"] = old
		if code, reason := w.get("operator", "/exchange/tenants/fabrikam/mailboxes"); code != http.StatusUnauthorized {
			t.Fatalf("a token of the retired key: %d %s", code, reason)
		}
		if code, _, b := w.api("operator", "GET", "/v1/requests", nil); code != http.StatusUnauthorized {
			t.Fatalf("the API with a token of the retired key: %d %s", code, b)
		}
	})
}
