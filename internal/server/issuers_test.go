package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestWarnsOfIssuerOfTenantNotOnboarded: an issuer whose scope names a
// tenant that is not onboarded signs in users who are refused everything
// (tenant_not_found). A misspelt tenant there locked a tenant's users out
// without a word; start-up now warns, naming the issuer and the tenant,
// and goes on (the onboarding may follow). An onboarded tenant's issuer
// gets no warning.
func TestWarnsOfIssuerOfTenantNotOnboarded(t *testing.T) {
	url := redistest.URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, time.Now), time.Now), "contoso")

	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	issuers := filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(issuers, []byte(`issuers:
  - {name: provider, issuer: https://login.provider.example, audience: lockbox, scope: provider, jwks_file: `+jwks+`}
  - {name: contoso-idp, issuer: https://login.contoso.example, audience: lockbox, scope: {tenant: contoso}, jwks_file: `+jwks+`}
  - {name: typo-idp, issuer: https://login.typo.example, audience: lockbox, scope: {tenant: contosso}, jwks_file: `+jwks+`}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	lb := start(t, map[string]string{
		"LOCKBOX_REDIS_URL":     url,
		"LOCKBOX_JWT_JWKS_FILE": "",
		"LOCKBOX_ISSUERS_FILE":  issuers,
		"LOCKBOX_UPSTREAMS":     "exchange=http://127.0.0.1:1",
	})
	var warned []string
	for line := range strings.Lines(lb.logs.String()) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "not onboarded") {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "issuer=typo-idp") || !strings.Contains(warned[0], "tenant=contosso") {
		t.Errorf("want one warning, of issuer typo-idp and tenant contosso; got %q\nlogs:\n%s", warned, lb.logs)
	}
}
