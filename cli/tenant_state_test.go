package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestTenantTablesShowTheState: "tenant list" shows each tenant's state in
// a STATE column, the last, so that a script reading the earlier columns
// by position reads what it read before; "tenant show" shows the state
// and, for an offboarded tenant, when, by whom and why. A server from
// before offboarding sends no state: its tenants are active.
func TestTenantTablesShowTheState(t *testing.T) {
	active := sampleTenant()
	active.State = wire.TenantActive
	gone := sampleTenant()
	gone.ID, gone.DisplayName, gone.Domains, gone.OrganizationID = "fabrikam", "Fabrikam", []string{"fabrikam.example"}, "0f6c2c4e-7a8b-4c3d-9e1f-2a3b4c5d6e7f"
	gone.State = wire.TenantOffboarded
	gone.Offboarded = &wire.Offboarded{At: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC), By: "lara@provider.example", Reason: "contract ended"}
	old := sampleTenant()
	old.ID, old.Domains = "northwind", []string{"northwind.example"}

	for _, args := range [][]string{{"tenant", "list"}, {"get", "tenants"}} {
		res := run(t, args, nil, map[string]reply{"GET /v1/tenants": {200, mustJSON(wire.TenantList{Tenants: []wire.Tenant{active, gone, old}})}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) != 4 {
			t.Fatalf("%v: %d lines:\n%s", args, len(lines), res.stdout)
		}
		want := [][]string{
			{"ID", "NAME", "DOMAINS", "ORGANIZATION", "ID", "STATE"},
			{"contoso", "Contoso", "Ltd", "contoso.example", active.OrganizationID, "active"},
			{"fabrikam", "Fabrikam", "fabrikam.example", gone.OrganizationID, "offboarded"},
			{"northwind", "Contoso", "Ltd", "northwind.example", old.OrganizationID, "active"},
		}
		for i, l := range lines {
			if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(want[i], " ") {
				t.Errorf("%v: line %d = %q, want the fields %q", args, i, l, want[i])
			}
		}
	}

	res := run(t, []string{"tenant", "show", "fabrikam"}, nil, map[string]reply{"GET /v1/tenants/fabrikam": {200, mustJSON(gone)}})
	if res.code != 0 {
		t.Fatalf("tenant show: exit %d: %s", res.code, res.stderr)
	}
	for _, s := range []string{"State:", "offboarded", "Offboarded:", "2026-03-04 10:00:00Z by lara@provider.example", "Offboard reason:", "contract ended"} {
		if !strings.Contains(res.stdout, s) {
			t.Errorf("tenant show lacks %q:\n%s", s, res.stdout)
		}
	}
	res = run(t, []string{"tenant", "show", "contoso"}, nil, map[string]reply{"GET /v1/tenants/contoso": {200, mustJSON(active)}})
	if res.code != 0 || !strings.Contains(res.stdout, "State:") || !strings.Contains(res.stdout, "active") || strings.Contains(res.stdout, "Offboarded:") {
		t.Errorf("tenant show of an active tenant: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
}
