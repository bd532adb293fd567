package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestTenantChangesHonourOrRefuseIfMatch: onboarding, offboarding and
// assigning or removing an approver ignored If-Match, so a change its
// sender made conditional was made unconditionally. Offboarding changes
// the registry entry, whose ETag GET answers: a stale one is 412
// tenant_changed, as for PATCH. A new tenant and an approver have no ETag:
// any tag is 400 invalid_if_match. Either way nothing changes, "*" holds,
// and the right and the tenant are judged first.
func TestTenantChangesHonourOrRefuseIfMatch(t *testing.T) {
	e := newEnv(t)
	onboarding := wire.Onboarding{ID: "northwind", DisplayName: "Northwind", Domains: []string{"northwind.example"}, GlobalAdmins: []string{"admin@northwind.example"}}
	offboarding := wire.Offboarding{Reason: "The contract ended"}
	const (
		offboard = "/v1/tenants/contoso/offboard"
		zoe      = "/v1/tenants/contoso/approvers/zoe@contoso.example"
		approver = "/v1/tenants/contoso/approvers/approver@contoso.example"
	)
	noContent(t, e.do(contosoAdmin, "PUT", approver, nil))

	for _, c := range []struct {
		name, method, path string
		who                user
		body               any
		ifMatch            string
		status             int
		code               string
	}{
		{"onboard with a tag", "POST", "/v1/tenants", lara, onboarding, `"0"`, http.StatusBadRequest, "invalid_if_match"},
		{"onboard with a weak tag", "POST", "/v1/tenants", lara, onboarding, `W/"1"`, http.StatusBadRequest, "invalid_if_match"},
		{"onboard without the right", "POST", "/v1/tenants", mia, onboarding, `"0"`, http.StatusForbidden, "forbidden"},
		{"offboard a stale entry", "POST", offboard, lara, offboarding, `"999"`, http.StatusPreconditionFailed, "tenant_changed"},
		{"offboard with a weak tag", "POST", offboard, lara, offboarding, `W/"1"`, http.StatusBadRequest, "invalid_if_match"},
		{"offboard with a list", "POST", offboard, lara, offboarding, `"1", "2"`, http.StatusBadRequest, "invalid_if_match"},
		{"offboard without the right", "POST", offboard, mia, offboarding, `"999"`, http.StatusForbidden, "forbidden"},
		{"offboard a tenant not onboarded", "POST", "/v1/tenants/nosuchtenant/offboard", lara, offboarding, `"999"`, http.StatusNotFound, "tenant_not_found"},
		{"assign with a tag", "PUT", zoe, contosoAdmin, nil, `"1"`, http.StatusBadRequest, "invalid_if_match"},
		{"assign with an empty tag", "PUT", zoe, contosoAdmin, nil, `""`, http.StatusBadRequest, "invalid_if_match"},
		{"assign without the right", "PUT", zoe, fabrikamAdmin, nil, `"1"`, http.StatusForbidden, "forbidden"},
		{"remove with a tag", "DELETE", approver, contosoAdmin, nil, `"1"`, http.StatusBadRequest, "invalid_if_match"},
		{"remove without the right", "DELETE", approver, contosoApprover, nil, `"1"`, http.StatusForbidden, "forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do(c.who, c.method, c.path, c.body, withHeader("If-Match", c.ifMatch)), c.status, c.code, "")
		})
	}

	// Nothing changed under a refused or failed condition.
	wantError(t, e.do(lara, "GET", "/v1/tenants/northwind", nil), http.StatusNotFound, "tenant_not_found", "")
	r := e.do(lara, "GET", "/v1/tenants/contoso", nil)
	if got := decode[wire.Tenant](t, r, http.StatusOK); got.Offboarded != nil {
		t.Fatalf("contoso offboarded under a refused condition: %+v", got.Offboarded)
	}
	etag := r.header.Get("ETag")
	list := decode[wire.ApproverList](t, e.do(contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil), http.StatusOK)
	if want := []string{"approver@contoso.example"}; !slices.Equal(list.Approvers, want) {
		t.Fatalf("approvers %q after refused conditions, want %q", list.Approvers, want)
	}

	// "*" holds for each, and the entry's current ETag for offboarding.
	decode[wire.OnboardedTenant](t, e.do(lara, "POST", "/v1/tenants", onboarding, withHeader("If-Match", "*")), http.StatusCreated)
	noContent(t, e.do(contosoAdmin, "PUT", zoe, nil, withHeader("If-Match", "*")))
	noContent(t, e.do(contosoAdmin, "DELETE", approver, nil, withHeader("If-Match", "*")))
	off := e.do(lara, "POST", offboard, offboarding, withHeader("If-Match", etag))
	if got := decode[wire.Tenant](t, off, http.StatusOK); got.Offboarded == nil {
		t.Fatalf("not offboarded with If-Match %s, the current ETag", etag)
	}
	// A retry whose answer was lost finds it done, as a retry without
	// If-Match does, rather than 412 for its own change.
	again := decode[wire.Tenant](t, e.do(lara, "POST", offboard, offboarding, withHeader("If-Match", etag)), http.StatusOK)
	if again.Offboarded == nil || again.Offboarded.Reason != offboarding.Reason {
		t.Fatalf("retried offboarding = %+v", again.Offboarded)
	}
}

func noContent(t *testing.T, r result) {
	t.Helper()
	if r.status != http.StatusNoContent {
		t.Fatalf("status = %d, want 204; body: %s", r.status, r.body)
	}
}
