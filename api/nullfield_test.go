package api_test

import (
	"net/http"
	"testing"
)

// TestNullIsNoValueForAnOptionalField: a PATCH whose field is null
// ({"domains": null}: a script's unset variable, or a client speaking JSON
// Merge Patch that means "clear") was answered 200 as a change that
// changed nothing: encoding/json leaves the pointer nil, and the field was
// taken as not sent. openapi.yaml types each as a string or an array,
// never null. A field whose absence means something is now refused when
// null, in a PATCH as in an onboarding; a value, or leaving it out, works.
func TestNullIsNoValueForAnOptionalField(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{`{"domains": null}`, `{"global_admins": null}`, `{"display_name": null}`,
		`{"display_name": "Contoso", "domains": null}`} {
		r := e.do(lara, "PATCH", "/v1/tenants/contoso", body)
		wantError(t, r, http.StatusBadRequest, "invalid_json", "is null, which is no value for it")
	}
	r := e.do(lara, "POST", "/v1/tenants", `{"id": "adatum", "organization_id": "6f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", `+
		`"display_name": "Adatum", "domains": ["adatum.example"], "lockbox_enabled": null}`)
	wantError(t, r, http.StatusBadRequest, "invalid_json", `"lockbox_enabled" is null`)
	// The settings' switch: refused as null as it is when left out.
	r = e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", `{"lockbox_enabled": null, "notification_addresses": []}`)
	wantError(t, r, http.StatusBadRequest, "invalid_json", `"lockbox_enabled" is null`)
	// Values, nested ones included, and leaving a field out still work.
	if r := e.do(lara, "PATCH", "/v1/tenants/contoso", `{"display_name": "Contoso Ltd", "domains": ["contoso.example"]}`); r.status != http.StatusOK {
		t.Errorf("PATCH with values: %d %s", r.status, r.body)
	}
	if r := e.do(lara, "PATCH", "/v1/tenants/contoso", `{"global_admins": ["admin@contoso.example"]}`); r.status != http.StatusOK {
		t.Errorf("PATCH of one field: %d %s", r.status, r.body)
	}
}
