package e2e

import (
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestOnboardingWithLockboxctl: the provider's Lockbox administrator
// onboards a tenant with lockboxctl; only then can requests name it, and
// only its own users can become its approvers.
func TestOnboardingWithLockboxctl(t *testing.T) {
	w := start(t)

	// A request for a tenant nobody onboarded is refused at once, by name.
	w.fails("operator", "tenant northwind is not onboarded", "request", "create", "--tenant", "northwind", "--service", "exchange",
		"--service-request", "SR-1", "--reason", "r", "--duration", "1h")
	// Only the Lockbox administrator onboards.
	w.fails("manager", "lockbox-admin", "tenant", "onboard", "northwind", "--name", "Northwind", "--domain", "northwind.example")

	var got client.OnboardedTenant
	w.ok("lockbox-admin", &got, "tenant", "onboard", "northwind", "--name", "Northwind Traders",
		"--domain", "northwind.example,northwind.test", "--global-admin", "nancy@northwind.example", "--lockbox", "off")
	if got.ID != "northwind" || got.Settings.LockboxEnabled || len(got.Domains) != 2 || len(got.OrganizationID) != 36 {
		t.Fatalf("onboarded %+v", got)
	}
	var r grants.Request
	w.ok("operator", &r, "request", "create", "--tenant", "northwind", "--service", "exchange",
		"--service-request", "SR-2", "--reason", "r", "--duration", "1h")
	if r.State != grants.StatePendingManager {
		t.Fatalf("request for the onboarded tenant: %+v", r)
	}

	var list struct{ Tenants []tenants.Tenant }
	w.ok("operator", &list, "tenant", "list")
	if len(list.Tenants) != 3 {
		t.Fatalf("tenants the operator sees: %+v", list.Tenants)
	}
	code, out, _ := w.ctl("admin", "tenant", "list")
	if code != 0 || strings.Contains(out, "northwind") || !strings.Contains(out, "contoso") {
		t.Fatalf("contoso's admin lists other tenants: %d\n%s", code, out)
	}

	var upd tenants.Tenant
	w.ok("lockbox-admin", &upd, "tenant", "update", "northwind", "--name", "Northwind")
	if upd.DisplayName != "Northwind" || len(upd.Domains) != 2 {
		t.Fatalf("updated %+v", upd)
	}

	// contoso's approvers are contoso's users: never the provider's staff.
	w.fails("admin", "not a user of tenant contoso", "approver", "add", "contoso", "mary@provider.example")
	w.fails("admin", "not a user of tenant contoso", "approver", "add", "contoso", "nancy@northwind.example")
}
