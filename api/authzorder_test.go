package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestChangeRightJudgedBeforeItsInput: PUT tenant settings, PATCH tenant
// and POST /v1/tenants (and, like them, a tenant's offboarding) read If-Match and the body before the domain judged
// the caller's right, so a caller who may not make the change got 400 (or
// 413) for a bad one: they learned what a valid change looks like, and
// how the server reads If-Match, without the right to make one. The right
// comes first; to a caller who holds it the answers are unchanged.
func TestChangeRightJudgedBeforeItsInput(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	big := `{"display_name": "` + strings.Repeat("x", 128<<10) + `"}`
	for _, c := range []struct {
		name           string
		method, path   string
		body           any
		ifMatch        string
		allowed, other user
		status         int
		code           string
	}{
		{"settings without lockbox_enabled", "PUT", "/v1/tenants/contoso/settings", map[string]any{}, "",
			contosoAdmin, fabrikamAdmin, http.StatusBadRequest, "invalid_settings"},
		{"settings with an unknown field", "PUT", "/v1/tenants/contoso/settings", map[string]any{"lockbox_enabled": true, "x": 1}, "",
			contosoAdmin, contosoUser, http.StatusBadRequest, "invalid_json"},
		{"settings with a bad If-Match", "PUT", "/v1/tenants/contoso/settings", map[string]any{"lockbox_enabled": true}, `W/"1"`,
			contosoAdmin, mia, http.StatusBadRequest, "invalid_if_match"},
		{"settings without a body", "PUT", "/v1/tenants/contoso/settings", nil, "",
			contosoAdmin, alice, http.StatusBadRequest, "missing_body"},
		{"tenant with an unknown field", "PATCH", "/v1/tenants/contoso", map[string]any{"x": 1}, "",
			lara, contosoAdmin, http.StatusBadRequest, "invalid_json"},
		{"tenant with a bad If-Match", "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": "x"}, `"01"`,
			lara, mia, http.StatusBadRequest, "invalid_if_match"},
		{"tenant with a body too large", "PATCH", "/v1/tenants/contoso", big, "",
			lara, contosoAdmin, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"onboarding with an unknown field", "POST", "/v1/tenants", map[string]any{"id": "northwind", "x": 1}, "",
			lara, mia, http.StatusBadRequest, "invalid_json"},
		{"onboarding that is not JSON", "POST", "/v1/tenants", "{", "",
			lara, contosoAdmin, http.StatusBadRequest, "invalid_json"},
		{"offboarding without a reason", "POST", "/v1/tenants/contoso/offboard", map[string]any{}, "",
			lara, mia, http.StatusBadRequest, "invalid_reason"},
		{"offboarding with an unknown field", "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": "r", "x": 1}, "",
			lara, contosoAdmin, http.StatusBadRequest, "invalid_json"},
		{"offboarding without a body", "POST", "/v1/tenants/contoso/offboard", nil, "",
			lara, alice, http.StatusBadRequest, "missing_body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts []option
			if c.ifMatch != "" {
				opts = append(opts, withHeader("If-Match", c.ifMatch))
			}
			// Who may not make the change is told only that.
			wantError(t, e.do(c.other, c.method, c.path, c.body, opts...), http.StatusForbidden, "forbidden", "")
			// Who may is told what is wrong with it, as before.
			wantError(t, e.do(c.allowed, c.method, c.path, c.body, opts...), c.status, c.code, "")
		})
	}
}

// TestAuditRightJudgedBeforeItsFilters: a search or an export of the
// audit log parsed its dates, limit and format before the domain judged
// the caller's right, so a caller who may not read the log (an operator,
// another tenant's admin) got 400 for a bad filter instead of 403. The
// right comes first; to a caller who holds it the answers are unchanged.
func TestAuditRightJudgedBeforeItsFilters(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name  string
		path  string
		other user
		code  string
	}{
		{"search with a bad date", "/v1/audit?tenant=contoso&from=yesterday", alice, "invalid_from"},
		{"search with a bad limit", "/v1/audit?tenant=contoso&limit=many", fabrikamAdmin, "invalid_limit"},
		{"search with to before from", "/v1/audit?tenant=contoso&from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", mia, "invalid_range"},
		{"export with a bad format", "/v1/audit/export?tenant=contoso&format=xml", alice, "invalid_format"},
		{"export with a bad date", "/v1/audit/export?tenant=contoso&to=tomorrow", fabrikamAdmin, "invalid_to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do(c.other, "GET", c.path, nil), http.StatusForbidden, "forbidden", "")
			for _, allowed := range []user{contosoAdmin, auditor} {
				wantError(t, e.do(allowed, "GET", c.path, nil), http.StatusBadRequest, c.code, "")
			}
		})
	}
}

// TestFilingRightJudgedBeforeTheBody: POST /v1/requests decoded the body
// before the lifecycle judged whether the caller may file at all, so a
// tenant's admin or a support manager got 400 (or 413) for a bad body
// instead of 403, and learned what a valid request looks like. The right
// comes first; an operator's answers are unchanged.
func TestFilingRightJudgedBeforeTheBody(t *testing.T) {
	e := newEnv(t)
	big := `{"reason": "` + strings.Repeat("x", 128<<10) + `"}`
	for _, c := range []struct {
		name   string
		body   any
		other  user
		status int
		code   string
	}{
		{"unknown field", map[string]any{"tenant": "contoso", "x": 1}, contosoAdmin, http.StatusBadRequest, "invalid_json"},
		{"not JSON", "{", mia, http.StatusBadRequest, "invalid_json"},
		{"no body", nil, auditor, http.StatusBadRequest, "missing_body"},
		{"too large", big, contosoAdmin, http.StatusRequestEntityTooLarge, "body_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do(c.other, "POST", "/v1/requests", c.body), http.StatusForbidden, "forbidden", "")
			wantError(t, e.do(alice, "POST", "/v1/requests", c.body), c.status, c.code, "")
		})
	}
}

// TestListRightJudgedBeforeItsFilters: GET /v1/requests parsed state,
// created_after and limit before the lifecycle judged whether a tenant's
// user may list the tenant named, so another tenant's admin got 400 for a
// bad filter instead of 403. The right comes first; to a caller who holds
// it the answers are unchanged.
func TestListRightJudgedBeforeItsFilters(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		filter, code string
	}{
		{"state=bogus", "invalid_state"},
		{"created_after=yesterday", "invalid_created_after"},
		{"limit=0", "invalid_limit"},
	} {
		t.Run(c.filter, func(t *testing.T) {
			wantError(t, e.do(fabrikamAdmin, "GET", "/v1/requests?tenant=contoso&"+c.filter, nil), http.StatusForbidden, "forbidden", "")
			for _, allowed := range []user{contosoAdmin, mia} {
				wantError(t, e.do(allowed, "GET", "/v1/requests?tenant=contoso&"+c.filter, nil), http.StatusBadRequest, c.code, "")
			}
		})
	}
}

// TestActionRightJudgedBeforeTheBody: approve, deny, cancel and revoke
// decoded the body before the lifecycle looked the request up, so a bad
// body got 400 (or 413, 415) for a request that does not exist, that the
// caller may not see (404 with a good body) or may never act on (403):
// the answer to a bad body depended on nothing the caller may know, and
// a caller without the right learned what a valid decision looks like.
// The request and the right come first; to a caller who holds it the
// answers are unchanged.
func TestActionRightJudgedBeforeTheBody(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	asText := func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }
	big := `{"comment": "` + strings.Repeat("x", 128<<10) + `"}`
	for _, b := range []struct {
		name   string
		body   any
		opts   []option
		status int
		code   string
	}{
		{"not JSON", "{", nil, http.StatusBadRequest, "invalid_json"},
		{"unknown field", map[string]any{"comment": "ok", "x": 1}, nil, http.StatusBadRequest, "invalid_json"},
		{"too large", big, nil, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"not declared JSON", `{"comment": "ok"}`, []option{asText}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	} {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range []struct {
				who        user
				id, action string
				status     int
				code       string
			}{
				{mia, "01a249e3-33f7-739b-b000-4e1edeb4d0f1", "approve", http.StatusNotFound, "not_found"},
				{fabrikamAdmin, req.ID, "approve", http.StatusNotFound, "not_found"},
				{fabrikamAdmin, req.ID, "deny", http.StatusNotFound, "not_found"},
				{bob, req.ID, "cancel", http.StatusNotFound, "not_found"},
				{auditor, req.ID, "approve", http.StatusForbidden, "forbidden"},
				{alice, req.ID, "deny", http.StatusForbidden, "forbidden"},
				{mia, req.ID, "cancel", http.StatusForbidden, "forbidden"},
				{auditor, req.ID, "revoke", http.StatusForbidden, "forbidden"},
			} {
				r := e.do(c.who, "POST", "/v1/requests/"+c.id+"/"+c.action, b.body, b.opts...)
				if r.status != c.status || errorOf(t, r).Code != c.code {
					t.Errorf("%s %s %s: %d %s, want %d %s", c.who.sub, c.action, c.id, r.status, r.body, c.status, c.code)
				}
			}
			// Who may act is told what is wrong with the body, and
			// nothing changed.
			wantError(t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", b.body, b.opts...), b.status, b.code, "")
			wantError(t, e.do(alice, "POST", "/v1/requests/"+req.ID+"/cancel", b.body, b.opts...), b.status, b.code, "")
		})
	}
	got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK)
	if got.State != grants.StatePendingManager {
		t.Errorf("state = %s after refused actions, want %s", got.State, grants.StatePendingManager)
	}
}

// TestRegistryChangeLooksTheTenantUpFirst: PATCH /v1/tenants/{tenant} and
// its offboarding read If-Match and the body before the tenant was looked
// up, so a change to a tenant never onboarded got 400 (or 413) for a
// flawed body and 404 only once the body was right: a script that
// onboards what answers 404 took a missing tenant for its own mistake. A
// Lockbox administrator is told the tenant does not exist whatever the
// change; the right still comes first, and a change to a tenant that
// exists is judged as before.
func TestRegistryChangeLooksTheTenantUpFirst(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	big := `{"reason": "` + strings.Repeat("x", 128<<10) + `"}`
	for _, c := range []struct {
		name         string
		method, path string
		body         any
		ifMatch      string
		status       int
		code         string
	}{
		{"tenant that is not JSON", "PATCH", "/v1/tenants/%s", "{", "", http.StatusBadRequest, "invalid_json"},
		{"tenant with an unknown field", "PATCH", "/v1/tenants/%s", map[string]any{"x": 1}, "", http.StatusBadRequest, "invalid_json"},
		{"tenant with a bad If-Match", "PATCH", "/v1/tenants/%s", map[string]any{"display_name": "x"}, `W/"1"`, http.StatusBadRequest, "invalid_if_match"},
		{"tenant without a body", "PATCH", "/v1/tenants/%s", nil, "", http.StatusBadRequest, "missing_body"},
		{"offboarding without a reason", "POST", "/v1/tenants/%s/offboard", map[string]any{}, "", http.StatusBadRequest, "invalid_reason"},
		{"offboarding that is not JSON", "POST", "/v1/tenants/%s/offboard", "{", "", http.StatusBadRequest, "invalid_json"},
		{"offboarding too large", "POST", "/v1/tenants/%s/offboard", big, "", http.StatusRequestEntityTooLarge, "body_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts []option
			if c.ifMatch != "" {
				opts = append(opts, withHeader("If-Match", c.ifMatch))
			}
			path := func(tenant string) string { return strings.Replace(c.path, "%s", tenant, 1) }
			wantError(t, e.do(lara, c.method, path("northwind"), c.body, opts...), http.StatusNotFound, "tenant_not_found", "northwind")
			wantError(t, e.do(contosoAdmin, c.method, path("northwind"), c.body, opts...), http.StatusForbidden, "forbidden", "")
			wantError(t, e.do(lara, c.method, path("contoso"), c.body, opts...), c.status, c.code, "")
		})
	}
	got := decode[struct{ State string }](t, e.do(lara, "GET", "/v1/tenants/contoso", nil), http.StatusOK)
	if got.State != "active" {
		t.Errorf("contoso is %q after refused changes, want active", got.State)
	}
}
