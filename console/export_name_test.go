package console_test

import (
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// TestAuditExportFileNames: the admin center's export names its file after
// its tenant, and the export of every tenant has a name no tenant's export
// can have. It was audit-all-tenants.csv, also the name of the export of a
// tenant whose id is all-tenants: saved side by side, one replaced the
// other.
func TestAuditExportFileNames(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	tenanttest.Onboard(t, e.ten, "all-tenants")
	b := e.signIn(auditor)
	names := map[string]string{}
	for _, q := range []string{"tenant=all-tenants", "tenant=contoso", ""} {
		r := b.get("/console/audit/export.csv?" + q)
		if r.status != http.StatusOK {
			t.Fatalf("export %q: %s", q, r)
		}
		_, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
		if err != nil || params["filename"] == "" {
			t.Fatalf("export %q: Content-Disposition %q: %v", q, r.header.Get("Content-Disposition"), err)
		}
		names[q] = params["filename"]
	}
	if names["tenant=all-tenants"] != "audit-all-tenants.csv" || names["tenant=contoso"] != "audit-contoso.csv" {
		t.Errorf("the tenants' exports are named %q and %q, want audit-all-tenants.csv and audit-contoso.csv",
			names["tenant=all-tenants"], names["tenant=contoso"])
	}
	// The name of a tenant's export is audit-<tenant>.csv: what stands in
	// that place here must be no tenant id.
	all := names[""]
	if tenant, ok := strings.CutPrefix(strings.TrimSuffix(all, ".csv"), "audit-"); ok && keys.IsTenant(tenant) {
		t.Errorf("the export of every tenant is named %q, as tenant %s's is", all, tenant)
	}
}
