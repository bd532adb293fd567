package api_test

import (
	"mime"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestAuditExportFileNames: an export's file name names its tenant, and the
// export of every tenant has a name no tenant's export can have. It was
// audit-all-tenants.csv, also the name of the export of a tenant whose id
// is all-tenants: saved side by side, one replaced the other.
func TestAuditExportFileNames(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		tenanttest.Onboard(t, c.Tenants.(*tenants.Store), "all-tenants")
	})
	names := map[string]string{}
	for _, q := range []string{"tenant=all-tenants", "tenant=contoso", "", "tenant=all-tenants&format=jsonl", "format=jsonl"} {
		r := e.do(auditor, "GET", "/v1/audit/export?"+q, nil)
		if r.status != 200 {
			t.Fatalf("export %q: %d %s", q, r.status, r.body)
		}
		_, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
		if err != nil || params["filename"] == "" {
			t.Fatalf("export %q: Content-Disposition %q: %v", q, r.header.Get("Content-Disposition"), err)
		}
		names[q] = params["filename"]
	}
	for q, want := range map[string]string{
		"tenant=all-tenants": "audit-all-tenants.csv", "tenant=contoso": "audit-contoso.csv",
		"tenant=all-tenants&format=jsonl": "audit-all-tenants.jsonl",
	} {
		if names[q] != want {
			t.Errorf("export %q is named %q, want %q", q, names[q], want)
		}
	}
	for _, q := range []string{"", "format=jsonl"} {
		name := names[q]
		// The name of a tenant's export is audit-<tenant>.<format>: what
		// stands in that place here must be no tenant id.
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".csv"), ".jsonl")
		if tenant, ok := strings.CutPrefix(base, "audit-"); ok && keys.IsTenant(tenant) {
			t.Errorf("the export of every tenant (%q) is named %q, as tenant %s's is", q, name, tenant)
		}
	}
}
