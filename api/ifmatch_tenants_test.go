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

// TestOnboardingHonoursIfNoneMatch: onboarding ignored If-None-Match, so
// a client that sent "*" (create, never overwrite: RFC 9110 13.1.2) got
// 409 for an id already taken, not the 412 its condition failing is, and
// one that sent a tag had it ignored. "*" now onboards only an id without
// a registry entry (412 tenant_exists otherwise, offboarded or not, with
// nothing written); any other value is 400 invalid_if_none_match, as a
// tag in If-Match is, since a tenant not yet onboarded has no ETag. The
// right and the body are judged first.
func TestOnboardingHonoursIfNoneMatch(t *testing.T) {
	e := newEnv(t)
	northwind := wire.Onboarding{ID: "northwind", DisplayName: "Northwind", Domains: []string{"northwind.example"}, GlobalAdmins: []string{"admin@northwind.example"}}
	again := northwind
	again.DisplayName = "Northwind Traders"
	contoso := wire.Onboarding{ID: "contoso", DisplayName: "Contoso", Domains: []string{"contoso.example"}}
	offboardedOne := wire.Onboarding{ID: "tailspin", DisplayName: "Tailspin", Domains: []string{"tailspin.example"}}
	decode[wire.OnboardedTenant](t, e.do(lara, "POST", "/v1/tenants", offboardedOne), http.StatusCreated)
	decode[wire.Tenant](t, e.do(lara, "POST", "/v1/tenants/tailspin/offboard", wire.Offboarding{Reason: "The contract ended"}), http.StatusOK)

	for _, c := range []struct {
		name        string
		who         user
		body        wire.Onboarding
		ifNoneMatch string
		status      int
		code        string
	}{
		{"a tag", lara, northwind, `"1"`, http.StatusBadRequest, "invalid_if_none_match"},
		{"a weak tag", lara, northwind, `W/"1"`, http.StatusBadRequest, "invalid_if_none_match"},
		{"star and a tag", lara, northwind, `*, "1"`, http.StatusBadRequest, "invalid_if_none_match"},
		{"without the right", mia, contoso, "*", http.StatusForbidden, "forbidden"},
		{"an invalid body for a taken id", lara, wire.Onboarding{ID: "contoso"}, "*", http.StatusBadRequest, "invalid_tenant"},
		{"an id onboarded", lara, contoso, "*", http.StatusPreconditionFailed, "tenant_exists"},
		{"an id offboarded", lara, offboardedOne, "*", http.StatusPreconditionFailed, "tenant_exists"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do(c.who, "POST", "/v1/tenants", c.body, withHeader("If-None-Match", c.ifNoneMatch)), c.status, c.code, "")
		})
	}
	// Nothing was onboarded under a refused condition, and without the
	// header a taken id is the conflict it was.
	wantError(t, e.do(lara, "GET", "/v1/tenants/northwind", nil), http.StatusNotFound, "tenant_not_found", "")
	wantError(t, e.do(lara, "POST", "/v1/tenants", contoso), http.StatusConflict, "tenant_exists", "")

	// "*" onboards an id that has no entry, once: the second is refused
	// and leaves the first as it was.
	decode[wire.OnboardedTenant](t, e.do(lara, "POST", "/v1/tenants", northwind, withHeader("If-None-Match", "*")), http.StatusCreated)
	wantError(t, e.do(lara, "POST", "/v1/tenants", again, withHeader("If-None-Match", "*")), http.StatusPreconditionFailed, "tenant_exists", "northwind")
	if got := decode[wire.Tenant](t, e.do(lara, "GET", "/v1/tenants/northwind", nil), http.StatusOK); got.DisplayName != northwind.DisplayName {
		t.Fatalf("northwind is %q after a refused onboarding, want %q", got.DisplayName, northwind.DisplayName)
	}
}
