package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestOnboardRefusesAnOrganizationIDInUse: a tenant's organization_id
// is its GUID "as Microsoft 365 names a tenant", the OrganizationId every
// audit record of the tenant carries (and by which a SIEM or a Microsoft
// 365-shaped consumer tells one organization's records from another's).
// Onboarding takes any GUID it is given, including one another tenant
// already has, live or offboarded, so two organizations end up with one
// OrganizationId; and since organization_id never changes afterwards
// (PATCH can't fix it), the mix-up is permanent. The same reasoning that
// makes an offboarded id impossible to onboard again ("a new customer under
// it would read that log as its own") applies to the GUID: it is now 409
// organization_exists, naming the tenant that has it.
func TestOnboardRefusesAnOrganizationIDInUse(t *testing.T) {
	e := newEnv(t)
	contoso := decode[wire.Tenant](t, e.do(lara, "GET", "/v1/tenants/contoso", nil), http.StatusOK)
	r := e.do(lara, "POST", "/v1/tenants", wire.Onboarding{ID: "northwind", OrganizationID: contoso.OrganizationID,
		DisplayName: "Northwind Traders", Domains: []string{"northwind.example"}})
	if r.status == http.StatusCreated {
		nw := decode[wire.OnboardedTenant](t, r, http.StatusCreated)
		t.Fatalf("northwind onboarded with contoso's organization_id %s (now both tenants have OrganizationId %s); want 409",
			contoso.OrganizationID, nw.OrganizationID)
	}
	wantError(t, r, http.StatusConflict, "organization_exists", "is tenant contoso")
	// Case does not make it another GUID.
	r = e.do(lara, "POST", "/v1/tenants", wire.Onboarding{ID: "northwind", OrganizationID: strings.ToUpper(contoso.OrganizationID),
		DisplayName: "Northwind Traders", Domains: []string{"northwind.example"}})
	wantError(t, r, http.StatusConflict, "organization_exists", "is tenant contoso")

	// The GUID of an offboarded tenant names the organization that left.
	fabrikam := decode[wire.Tenant](t, e.do(lara, "POST", "/v1/tenants/fabrikam/offboard", wire.Offboarding{Reason: "contract ended"}), http.StatusOK)
	r = e.do(lara, "POST", "/v1/tenants", wire.Onboarding{ID: "adatum", OrganizationID: fabrikam.OrganizationID,
		DisplayName: "Adatum", Domains: []string{"adatum.example"}})
	if r.status == http.StatusCreated {
		t.Fatalf("adatum onboarded with offboarded fabrikam's organization_id %s; want 409", fabrikam.OrganizationID)
	}
	wantError(t, r, http.StatusConflict, "organization_exists", "was offboarded")
	// A GUID of its own is onboarded, and onboarding contoso again with
	// its own GUID is still the conflict it was.
	if r := e.do(lara, "POST", "/v1/tenants", wire.Onboarding{ID: "northwind", DisplayName: "Northwind Traders",
		Domains: []string{"northwind.example"}}); r.status != http.StatusCreated {
		t.Fatalf("northwind with a GUID of its own: %d %s", r.status, r.body)
	}
	r = e.do(lara, "POST", "/v1/tenants", wire.Onboarding{ID: "contoso", OrganizationID: contoso.OrganizationID,
		DisplayName: contoso.DisplayName, Domains: contoso.Domains})
	if errorOf(t, r).Code == "organization_exists" {
		t.Errorf("contoso onboarded again with its own GUID: %s; want what onboarding an onboarded tenant answers", r.body)
	}
}
