package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// answerCase reaches one documented answer of one operation against the
// real server over a real Redis.
type answerCase struct {
	op     string // "METHOD /path" as openapi.yaml names the operation
	name   string
	status int
	// code is the error code the answer carries; empty for a success.
	code string
	// call sets e up and sends the call; it runs in an env of its own
	// unless store names a shared one whose Redis is out of service.
	call func(e *env) result
	// store is how the Redis under the case's server is out of service.
	store storeFault
	// config, when set, configures the case's server.
	config func(*api.Config)
	// check, when set, holds what else the answer must carry.
	check func(t *testing.T, r result)
}

// storeFault is how the Redis under a case's server fails.
type storeFault int

const (
	storeUp   storeFault = iota // a Redis of the case's own, working
	storeDown                   // killed: connections are refused
	// storeHung is stopped (SIGSTOP): connections are accepted and
	// nothing is answered, so only the deadlines of the call and of the
	// client end the wait, as production's LOCKBOX_REDIS_TIMEOUT does.
	storeHung
)

// notReachable are the documented answers no case reaches, each with why
// no client can make the server send it. Keep it short: an answer the
// document promises and nobody can reach is either a bug in the server or
// a lie in the document.
var notReachable = map[string]string{
	// Onboarding reads no record it can't do without: an id whose
	// registry entry does not decode is taken (409 tenant_exists), and
	// settings that do not decode are replaced. Only a bug in a handler or
	// a store, which the adapter answers 500 internal rather than cut the
	// connection (TestPanicIsAnInternalError), makes it answer 500.
	"POST /v1/tenants 500": "no stored record or input makes onboarding fail but as 503; only a bug answers 500",
}

// lara may onboard, change and offboard tenants.
var lara = user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}

// nosuchAdmin is a global administrator of a tenant never onboarded.
var nosuchAdmin = user{sub: "admin@nosuchtenant.example", roles: []identity.Role{identity.RoleGlobalAdmin}, tenant: "nosuchtenant"}

// absentID is a well-formed request id no request has.
const absentID = "01957a3c-0000-7000-8000-000000000000"

// bigBody is a request body one byte over api.DefaultMaxBodyBytes, valid
// JSON, so only its size is wrong.
var bigBody = `{"comment":"` + strings.Repeat("x", api.DefaultMaxBodyBytes-13) + `"}`

func createBody(tenant, service string) wire.CreateRequest {
	return wire.CreateRequest{Tenant: tenant, Service: service, ServiceRequest: "SR-1001",
		Reason: "Mailbox repair after a failed migration", Duration: wire.Duration(2 * time.Hour)}
}

var onboardBody = wire.Onboarding{ID: "northwind", DisplayName: "Northwind Traders",
	Domains: []string{"northwind.example"}, GlobalAdmins: []string{"nancy@northwind.example"}}

// chunked is a body sent without a Content-Length.
type chunked string

// fixture is a call of one operation that succeeds: who sends it, with
// which body, on which path once setup prepared the store for it.
type fixture struct {
	who    user
	status int
	body   any
	// query is the query the call needs (without "?"), if any.
	query string
	// setup prepares e and returns the path (with its query) to call;
	// nil means the operation's path with its wildcards filled by fill.
	setup func(e *env) string
}

// fill fills the wildcards of an operation's path: a request that does
// not exist (the store is asked before it could matter), contoso, and
// contoso's would-be approver.
func fill(path string) string {
	return strings.NewReplacer("{id}", absentID, "{tenant}", "contoso", "{user}", contosoApprover.sub).Replace(path)
}

// filed files a request of alice's for contoso's mail and returns its path.
func filed(e *env) string { return "/v1/requests/" + e.file(alice, "contoso", "exchange").ID }

// approved returns the path of a request both mia and contoso approved.
func approved(e *env) string {
	e.assignApprover()
	p := filed(e)
	decode[wire.Request](e.t, e.do(mia, "POST", p+"/approve", nil), http.StatusOK)
	decode[wire.Request](e.t, e.do(contosoApprover, "POST", p+"/approve", nil), http.StatusOK)
	return p
}

// offboarded offboards contoso.
func offboarded(e *env) {
	decode[wire.Tenant](e.t, e.do(lara, "POST", "/v1/tenants/contoso/offboard", wire.Offboarding{Reason: "The contract ended"}), http.StatusOK)
}

// corrupt overwrites key with what a partial write leaves.
func corrupt(e *env, key string) {
	e.t.Helper()
	if err := e.rdb.Set(context.Background(), key, `{"id":"`, 0).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// newer rewrites the JSON record at key with a field this version does
// not know, as a newer version of Lockbox writes it during a rolling
// upgrade.
func newer(e *env, key string) {
	e.t.Helper()
	ctx := context.Background()
	var v map[string]any
	b, err := e.rdb.Get(ctx, key).Bytes()
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	v["added_in_a_later_version"] = true
	if b, err = json.Marshal(v); err == nil {
		err = e.rdb.Set(ctx, key, b, 0).Err()
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// fixtures holds one call of every operation that succeeds.
var fixtures = map[string]fixture{
	"POST /v1/requests":                         {who: alice, status: 201, body: createBody("contoso", "exchange")},
	"GET /v1/requests":                          {who: mia, status: 200},
	"GET /v1/requests/{id}":                     {who: mia, status: 200, setup: filed},
	"POST /v1/requests/{id}/approve":            {who: mia, status: 200, body: wire.Decision{Comment: "case checked"}, setup: func(e *env) string { return filed(e) + "/approve" }},
	"POST /v1/requests/{id}/deny":               {who: mia, status: 200, body: wire.Decision{Comment: "no case"}, setup: func(e *env) string { return filed(e) + "/deny" }},
	"POST /v1/requests/{id}/cancel":             {who: alice, status: 200, body: wire.Decision{Comment: "fixed"}, setup: func(e *env) string { return filed(e) + "/cancel" }},
	"POST /v1/requests/{id}/revoke":             {who: mia, status: 200, body: wire.Decision{Comment: "done"}, setup: func(e *env) string { return approved(e) + "/revoke" }},
	"GET /v1/requests/{id}/activity":            {who: mia, status: 200, setup: func(e *env) string { return filed(e) + "/activity" }},
	"POST /v1/tenants":                          {who: lara, status: 201, body: onboardBody},
	"GET /v1/tenants":                           {who: mia, status: 200},
	"GET /v1/tenants/{tenant}":                  {who: mia, status: 200},
	"PATCH /v1/tenants/{tenant}":                {who: lara, status: 200, body: map[string]string{"display_name": "Contoso Ltd"}},
	"POST /v1/tenants/{tenant}/offboard":        {who: lara, status: 200, body: wire.Offboarding{Reason: "The contract ended"}},
	"GET /v1/tenants/{tenant}/settings":         {who: contosoAdmin, status: 200},
	"PUT /v1/tenants/{tenant}/settings":         {who: contosoAdmin, status: 200, body: map[string]bool{"lockbox_enabled": true}},
	"GET /v1/tenants/{tenant}/approvers":        {who: contosoAdmin, status: 200},
	"PUT /v1/tenants/{tenant}/approvers/{user}": {who: contosoAdmin, status: 204},
	"DELETE /v1/tenants/{tenant}/approvers/{user}": {who: contosoAdmin, status: 204, setup: func(e *env) string {
		e.assignApprover()
		return fill("/v1/tenants/{tenant}/approvers/{user}")
	}},
	"GET /v1/audit":        {who: auditor, status: 200, query: "tenant=contoso"},
	"GET /v1/audit/export": {who: auditor, status: 200, query: "tenant=contoso"},
	"GET /v1/audit/verify": {who: auditor, status: 200, query: "tenant=contoso"},
	"GET /v1/openapi.yaml": {who: anonymous, status: 200},
	"GET /v1/keys":         {who: anonymous, status: 200},
}

// path returns the path the fixture of op calls, after its setup.
func (f fixture) path(e *env, op string) string {
	if f.setup != nil {
		return f.setup(e)
	}
	_, p, _ := strings.Cut(op, " ")
	return f.filled(p)
}

// filled is path with its wildcards filled, and the fixture's query.
func (f fixture) filled(path string) string {
	if f.query != "" {
		return fill(path) + "?" + f.query
	}
	return fill(path)
}

// call sends op as its fixture does, with body instead of the fixture's
// own unless body is nil, and opts.
func (f fixture) call(op string, body any, opts ...option) func(e *env) result {
	return func(e *env) result {
		p := f.path(e, op)
		b := body
		if b == nil {
			b = f.body
		}
		if c, ok := b.(chunked); ok {
			// A reader of no known length goes out chunked, with no
			// Content-Length to refuse it by.
			b = io.MultiReader(strings.NewReader(string(c)))
		}
		m, _, _ := strings.Cut(op, " ")
		return e.do(f.who, m, p, b, opts...)
	}
}

// as sends method path as who with body, once setup (when set) ran.
func as(who user, method, path string, body any, setup func(e *env), opts ...option) func(e *env) result {
	return func(e *env) result {
		if setup != nil {
			setup(e)
		}
		return e.do(who, method, path, body, opts...)
	}
}

// onFiled sends method, the path of a request setup returns plus suffix,
// as who with body.
func onFiled(who user, method, suffix string, body any, setup func(e *env) string) func(e *env) result {
	return func(e *env) result {
		return e.do(who, method, setup(e)+suffix, body)
	}
}

// answerCases lists a case for each documented answer: the generic ones
// (every operation's success, 400 for an unknown parameter, 401, 413 and
// 415 for every body, 503 with the store down) and those of one operation.
func answerCases() []answerCase {
	var cases []answerCase
	for _, op := range slices.Sorted(maps.Keys(fixtures)) {
		f := fixtures[op]
		cases = append(cases, answerCase{op: op, name: "success", status: f.status, call: f.call(op, nil)})
		if f.who.sub == "" {
			continue
		}
		method, path, _ := strings.Cut(op, " ")
		cases = append(cases,
			answerCase{op: op, name: "unknown query parameter", status: 400, code: "invalid_query",
				call: func(e *env) result { return e.do(f.who, method, fill(path)+"?bogus=1", f.body) }},
			answerCase{op: op, name: "no token", status: 401, code: "unauthenticated",
				call:  as(anonymous, method, fill(path), f.body, nil),
				check: challenge(`Bearer realm="lockbox"`)},
			answerCase{op: op, name: "another scheme", status: 401, code: "unauthenticated",
				call:  as(anonymous, method, fill(path), f.body, nil, withHeader("Authorization", "Basic bWlhOnB3")),
				check: challenge(`Bearer realm="lockbox"`)},
			answerCase{op: op, name: "bad token", status: 401, code: "unauthenticated",
				call:  as(anonymous, method, fill(path), f.body, nil, withHeader("Authorization", "Bearer garbage")),
				check: challenge(`Bearer realm="lockbox", error="invalid_token"`)},
		)
		if method == http.MethodGet {
			continue
		}
		// Every route that changes something reads its body under the
		// same limit, taking one or not.
		cases = append(cases,
			answerCase{op: op, name: "body over the limit", status: 413, code: "body_too_large",
				call: f.call(op, bigBody)},
			answerCase{op: op, name: "body over the limit, no length", status: 413, code: "body_too_large",
				call: f.call(op, chunked(bigBody))},
		)
		if f.body != nil {
			cases = append(cases,
				answerCase{op: op, name: "not JSON", status: 415, code: "unsupported_media_type",
					call:  f.call(op, nil, withoutHeader("Content-Type"), withHeader("Content-Type", "application/merge-patch+json")),
					check: acceptPatch(method)},
				answerCase{op: op, name: "compressed", status: 415, code: "unsupported_media_type",
					call: f.call(op, nil, withHeader("Content-Encoding", "gzip")),
					check: func(t *testing.T, r result) {
						if got := r.header.Get("Accept-Encoding"); got != "identity" {
							t.Errorf("Accept-Encoding = %q, want identity", got)
						}
					}},
			)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(fixtures)) {
		f := fixtures[op]
		if f.who.sub == "" {
			continue
		}
		method, path, _ := strings.Cut(op, " ")
		call := func(e *env) result { return e.do(f.who, method, f.filled(path), f.body) }
		cases = append(cases,
			answerCase{op: op, name: "store down", status: 503, code: "unavailable", store: storeDown, call: call},
			answerCase{op: op, name: "store hangs", status: 503, code: "unavailable", store: storeHung, call: call})
	}
	return append(cases, operationCases()...)
}

// acceptPatch checks that a 415 to a PATCH, and only to one, names the
// patch formats the API takes (RFC 5789 §2.2).
func acceptPatch(method string) func(t *testing.T, r result) {
	return func(t *testing.T, r result) {
		want := []string(nil)
		if method == http.MethodPatch {
			want = []string{"application/json"}
		}
		if got := r.header.Values("Accept-Patch"); !slices.Equal(got, want) {
			t.Errorf("Accept-Patch = %q, want %q", got, want)
		}
	}
}

// challenge checks the WWW-Authenticate of a 401 (RFC 6750 §3).
func challenge(want string) func(t *testing.T, r result) {
	return func(t *testing.T, r result) {
		if got := r.header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != want {
			t.Errorf("WWW-Authenticate = %q, want %q", got, want)
		}
	}
}

// operationCases are the answers one operation gives for reasons of its
// own.
func operationCases() []answerCase {
	const (
		create   = "POST /v1/requests"
		list     = "GET /v1/requests"
		get      = "GET /v1/requests/{id}"
		approve  = "POST /v1/requests/{id}/approve"
		deny     = "POST /v1/requests/{id}/deny"
		cancel   = "POST /v1/requests/{id}/cancel"
		revoke   = "POST /v1/requests/{id}/revoke"
		activity = "GET /v1/requests/{id}/activity"
		onboard  = "POST /v1/tenants"
		tenants  = "GET /v1/tenants"
		tenant   = "GET /v1/tenants/{tenant}"
		update   = "PATCH /v1/tenants/{tenant}"
		offboard = "POST /v1/tenants/{tenant}/offboard"
		settings = "GET /v1/tenants/{tenant}/settings"
		putSet   = "PUT /v1/tenants/{tenant}/settings"
		apprs    = "GET /v1/tenants/{tenant}/approvers"
		assign   = "PUT /v1/tenants/{tenant}/approvers/{user}"
		unassign = "DELETE /v1/tenants/{tenant}/approvers/{user}"
		search   = "GET /v1/audit"
		export   = "GET /v1/audit/export"
		verify   = "GET /v1/audit/verify"
	)
	canceled := func(e *env) string {
		p := filed(e)
		decode[wire.Request](e.t, e.do(alice, "POST", p+"/cancel", nil), http.StatusOK)
		return p
	}
	unreadable := func(e *env) string {
		p := filed(e)
		corrupt(e, keys.Request("contoso", strings.TrimPrefix(p, "/v1/requests/")))
		return p
	}
	// contended is a filed request whose every transaction then meets a
	// concurrent change of the tenant's registry entry.
	contended := func(e *env) string {
		p := filed(e)
		concurrently(keys.Tenant("contoso"))(e)
		return p
	}
	brokenTenant := func(e *env) { corrupt(e, keys.Tenant("contoso")) }
	brokenSettings := func(e *env) { corrupt(e, keys.Settings("contoso")) }
	stale := withHeader("If-Match", `"999"`)
	exists := withHeader("If-None-Match", "*")
	return []answerCase{
		{op: create, name: "If-None-Match", status: 400, code: "invalid_if_none_match", call: as(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), nil, exists)},
		{op: create, name: "no body", status: 400, code: "missing_body", call: as(alice, "POST", "/v1/requests", nil, nil)},
		{op: create, name: "a manager files", status: 403, code: "forbidden", call: as(mia, "POST", "/v1/requests", createBody("contoso", "exchange"), nil)},
		{op: create, name: "tenant not onboarded", status: 404, code: "tenant_not_found", call: as(alice, "POST", "/v1/requests", createBody("nosuchtenant", "exchange"), nil)},
		{op: create, name: "open request exists", status: 409, code: "open_request_exists", call: as(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), func(e *env) { filed(e) })},
		{op: create, name: "tenant entry unreadable", status: 500, code: "record_unreadable", call: as(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), brokenTenant)},
		{op: create, name: "concurrent changes", status: 409, code: "conflict", call: as(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), concurrently(keys.Tenant("contoso")))},
		{op: create, name: "Idempotency-Key malformed", status: 400, code: "invalid_idempotency_key", call: as(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), nil, withHeader("Idempotency-Key", "two words"))},
		{op: create, name: "Idempotency-Key reused", status: 422, code: "idempotency_key_reused", call: as(alice, "POST", "/v1/requests", createBody("contoso", "sharepoint"), func(e *env) {
			decode[wire.Request](e.t, e.do(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), withHeader("Idempotency-Key", "k1")), http.StatusCreated)
		}, withHeader("Idempotency-Key", "k1"))},

		{op: list, name: "bad state", status: 400, code: "invalid_state", call: as(mia, "GET", "/v1/requests?state=bogus", nil, nil)},
		{op: list, name: "another tenant's", status: 403, code: "forbidden", call: as(contosoAdmin, "GET", "/v1/requests?tenant=fabrikam", nil, nil)},
		{op: list, name: "tenant not onboarded", status: 404, code: "tenant_not_found", call: as(mia, "GET", "/v1/requests?tenant=nosuchtenant", nil, nil)},
		{op: list, name: "tenant entry unreadable", status: 500, code: "record_unreadable", call: as(mia, "GET", "/v1/requests?tenant=contoso", nil, brokenTenant)},

		{op: get, name: "malformed id", status: 400, code: "invalid_request_id", call: as(mia, "GET", "/v1/requests/not-an-id", nil, nil)},
		{op: get, name: "no such request", status: 404, code: "not_found", call: as(mia, "GET", "/v1/requests/"+absentID, nil, nil)},
		{op: get, name: "record unreadable", status: 500, code: "record_unreadable", call: onFiled(mia, "GET", "", nil, unreadable)},

		{op: approve, name: "If-Match", status: 400, code: "invalid_if_match", call: func(e *env) result {
			return e.do(mia, "POST", filed(e)+"/approve", nil, withHeader("If-Match", `"1"`))
		}},
		{op: approve, name: "own request", status: 403, code: "self_approval", call: func(e *env) result {
			p := "/v1/requests/" + e.file(sam, "contoso", "exchange").ID
			return e.do(sam, "POST", p+"/approve", nil)
		}},
		{op: approve, name: "no such request", status: 404, code: "not_found", call: as(mia, "POST", "/v1/requests/"+absentID+"/approve", nil, nil)},
		{op: approve, name: "canceled", status: 409, code: "invalid_transition", call: onFiled(mia, "POST", "/approve", nil, canceled)},
		{op: approve, name: "record unreadable", status: 500, code: "record_unreadable", call: onFiled(mia, "POST", "/approve", nil, unreadable)},
		{op: approve, name: "concurrent changes", status: 409, code: "conflict", call: onFiled(mia, "POST", "/approve", nil, contended)},

		{op: deny, name: "comment not text", status: 400, code: "invalid_json", call: onFiled(mia, "POST", "/deny", `{"comment":7}`, filed)},
		{op: deny, name: "an operator denies", status: 403, code: "forbidden", call: onFiled(alice, "POST", "/deny", nil, filed)},
		{op: deny, name: "no such request", status: 404, code: "not_found", call: as(mia, "POST", "/v1/requests/"+absentID+"/deny", nil, nil)},
		{op: deny, name: "canceled", status: 409, code: "invalid_transition", call: onFiled(mia, "POST", "/deny", nil, canceled)},
		{op: deny, name: "record unreadable", status: 500, code: "record_unreadable", call: onFiled(mia, "POST", "/deny", nil, unreadable)},

		{op: cancel, name: "unknown field", status: 400, code: "invalid_json", call: onFiled(alice, "POST", "/cancel", `{"reason":"x"}`, filed)},
		{op: cancel, name: "a manager cancels", status: 403, code: "forbidden", call: onFiled(mia, "POST", "/cancel", nil, filed)},
		{op: cancel, name: "no such request", status: 404, code: "not_found", call: as(alice, "POST", "/v1/requests/"+absentID+"/cancel", nil, nil)},
		{op: cancel, name: "approved", status: 409, code: "invalid_transition", call: onFiled(alice, "POST", "/cancel", nil, approved)},
		{op: cancel, name: "record unreadable", status: 500, code: "record_unreadable", call: onFiled(alice, "POST", "/cancel", nil, unreadable)},

		{op: revoke, name: "malformed id", status: 400, code: "invalid_request_id", call: as(mia, "POST", "/v1/requests/not-an-id/revoke", nil, nil)},
		{op: revoke, name: "an operator revokes", status: 403, code: "forbidden", call: onFiled(alice, "POST", "/revoke", nil, approved)},
		{op: revoke, name: "no such request", status: 404, code: "not_found", call: as(mia, "POST", "/v1/requests/"+absentID+"/revoke", nil, nil)},
		{op: revoke, name: "pending", status: 409, code: "invalid_transition", call: onFiled(mia, "POST", "/revoke", nil, filed)},
		{op: revoke, name: "record unreadable", status: 500, code: "record_unreadable", call: onFiled(mia, "POST", "/revoke", nil, unreadable)},

		{op: activity, name: "malformed id", status: 400, code: "invalid_request_id", call: as(mia, "GET", "/v1/requests/not-an-id/activity", nil, nil)},
		{op: activity, name: "no such request", status: 404, code: "not_found", call: as(mia, "GET", "/v1/requests/"+absentID+"/activity", nil, nil)},
		// Seeing the request is the one right to its activity: a caller who
		// may not see it is told it is not there, not that it is forbidden.
		{op: activity, name: "another operator's request", status: 404, code: "not_found", call: onFiled(bob, "GET", "/activity", nil, filed)},
		{op: activity, name: "another tenant's request", status: 404, code: "not_found", call: onFiled(fabrikamAdmin, "GET", "/activity", nil, filed)},
		{op: activity, name: "record unreadable", status: 500, code: "record_unreadable", call: onFiled(mia, "GET", "/activity", nil, unreadable)},

		{op: onboard, name: "no domains", status: 400, code: "invalid_tenant", call: as(lara, "POST", "/v1/tenants", map[string]any{"id": "northwind", "display_name": "N"}, nil)},
		{op: onboard, name: "If-None-Match a tag", status: 400, code: "invalid_if_none_match", call: as(lara, "POST", "/v1/tenants", onboardBody, nil, withHeader("If-None-Match", `"1"`))},
		{op: onboard, name: "a manager onboards", status: 403, code: "forbidden", call: as(mia, "POST", "/v1/tenants", onboardBody, nil)},
		{op: onboard, name: "onboarded already", status: 409, code: "tenant_exists", call: as(lara, "POST", "/v1/tenants", onboardBody, func(e *env) {
			decode[wire.OnboardedTenant](e.t, e.do(lara, "POST", "/v1/tenants", onboardBody), http.StatusCreated)
		})},
		{op: onboard, name: "If-None-Match * for an id onboarded", status: 412, code: "tenant_exists", call: as(lara, "POST", "/v1/tenants", onboardBody, func(e *env) {
			decode[wire.OnboardedTenant](e.t, e.do(lara, "POST", "/v1/tenants", onboardBody), http.StatusCreated)
		}, withHeader("If-None-Match", "*"))},

		// The provider's staff see the others, and the entry named under
		// "unreadable" (TestTenantListNamesUnreadableEntry); a tenant's
		// user can't be told whether it is one of the tenant's.
		{op: tenants, name: "tenant entry unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "GET", "/v1/tenants", nil, brokenTenant)},

		{op: tenant, name: "If-None-Match the current ETag", status: 304, call: func(e *env) result {
			etag := e.do(mia, "GET", "/v1/tenants/contoso", nil).header.Get("ETag")
			return e.do(mia, "GET", "/v1/tenants/contoso", nil, withHeader("If-None-Match", etag))
		}},
		{op: tenant, name: "malformed tenant", status: 400, code: "invalid_tenant", call: as(mia, "GET", "/v1/tenants/Not_A_Tenant", nil, nil)},
		{op: tenant, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(mia, "GET", "/v1/tenants/nosuchtenant", nil, nil)},
		{op: tenant, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(mia, "GET", "/v1/tenants/contoso", nil, brokenTenant)},

		{op: update, name: "If-Match weak", status: 400, code: "invalid_if_match", call: as(lara, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, nil, withHeader("If-Match", `W/"1"`))},
		{op: update, name: "a manager changes it", status: 403, code: "forbidden", call: as(mia, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, nil)},
		{op: update, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(lara, "PATCH", "/v1/tenants/nosuchtenant", map[string]string{"display_name": "C"}, nil)},
		{op: update, name: "offboarded", status: 409, code: "tenant_offboarded", call: as(lara, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, offboarded)},
		{op: update, name: "stale If-Match", status: 412, code: "tenant_changed", call: as(lara, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, nil, stale)},
		{op: update, name: "If-None-Match *", status: 412, code: "precondition_failed", call: as(lara, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, nil, exists)},
		{op: update, name: "If-None-Match no tag", status: 400, code: "invalid_if_none_match", call: as(lara, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, nil, withHeader("If-None-Match", "1"))},
		// A record a newer version wrote is not acted on without the
		// fields it holds: the store answers as if unavailable, and the
		// retry likely reaches an upgraded replica (docs/operations.md).
		{op: tenant, name: "entry of a newer version", status: 503, code: "unavailable", check: retryAfter,
			call: as(mia, "GET", "/v1/tenants/contoso", nil, func(e *env) { newer(e, keys.Tenant("contoso")) })},
		{op: update, name: "entry of a newer version", status: 503, code: "unavailable",
			call: as(lara, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, func(e *env) { newer(e, keys.Tenant("contoso")) })},
		{op: update, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(lara, "PATCH", "/v1/tenants/contoso", map[string]string{"display_name": "C"}, brokenTenant)},

		{op: offboard, name: "no reason", status: 400, code: "missing_body", call: as(lara, "POST", "/v1/tenants/contoso/offboard", nil, nil)},
		{op: offboard, name: "a manager offboards", status: 403, code: "forbidden", call: as(mia, "POST", "/v1/tenants/contoso/offboard", wire.Offboarding{Reason: "r"}, nil)},
		{op: offboard, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(lara, "POST", "/v1/tenants/nosuchtenant/offboard", wire.Offboarding{Reason: "r"}, nil)},
		{op: offboard, name: "concurrent changes", status: 409, code: "conflict", call: as(lara, "POST", "/v1/tenants/contoso/offboard", wire.Offboarding{Reason: "r"}, concurrently(keys.Tenant("contoso")))},
		{op: offboard, name: "stale If-Match", status: 412, code: "tenant_changed", call: as(lara, "POST", "/v1/tenants/contoso/offboard", wire.Offboarding{Reason: "r"}, nil, stale)},
		{op: offboard, name: "If-None-Match the current ETag", status: 412, code: "precondition_failed", call: func(e *env) result {
			etag := e.do(lara, "GET", "/v1/tenants/contoso", nil).header.Get("ETag")
			return e.do(lara, "POST", "/v1/tenants/contoso/offboard", wire.Offboarding{Reason: "r"}, withHeader("If-None-Match", etag))
		}},
		{op: offboard, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(lara, "POST", "/v1/tenants/contoso/offboard", wire.Offboarding{Reason: "r"}, brokenTenant)},

		{op: settings, name: "If-None-Match the current ETag", status: 304, call: func(e *env) result {
			etag := e.do(contosoAdmin, "GET", "/v1/tenants/contoso/settings", nil).header.Get("ETag")
			return e.do(contosoAdmin, "GET", "/v1/tenants/contoso/settings", nil, withHeader("If-None-Match", etag))
		}},
		{op: settings, name: "If-None-Match no tag", status: 400, code: "invalid_if_none_match", call: as(contosoAdmin, "GET", "/v1/tenants/contoso/settings", nil, nil, withHeader("If-None-Match", "0"))},
		{op: settings, name: "malformed tenant", status: 400, code: "invalid_tenant", call: as(mia, "GET", "/v1/tenants/Not_A_Tenant/settings", nil, nil)},
		{op: settings, name: "another tenant's", status: 403, code: "forbidden", call: as(fabrikamAdmin, "GET", "/v1/tenants/contoso/settings", nil, nil)},
		{op: settings, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(mia, "GET", "/v1/tenants/nosuchtenant/settings", nil, nil)},
		{op: settings, name: "settings unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "GET", "/v1/tenants/contoso/settings", nil, brokenSettings)},

		{op: putSet, name: "no switch", status: 400, code: "invalid_settings", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]any{}, nil)},
		{op: putSet, name: "another tenant's", status: 403, code: "forbidden", call: as(fabrikamAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}, nil)},
		{op: putSet, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(nosuchAdmin, "PUT", "/v1/tenants/nosuchtenant/settings", map[string]bool{"lockbox_enabled": true}, nil)},
		{op: putSet, name: "offboarded", status: 409, code: "tenant_offboarded", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}, offboarded)},
		{op: putSet, name: "stale If-Match", status: 412, code: "settings_changed", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}, nil, stale)},
		{op: putSet, name: "If-None-Match *", status: 412, code: "precondition_failed", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}, nil, exists)},
		{op: putSet, name: "If-None-Match a tag not ours", status: 400, code: "invalid_if_none_match", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}, nil, withHeader("If-None-Match", `"x"`))},
		{op: putSet, name: "tenant entry unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}, brokenTenant)},
		{op: putSet, name: "settings unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}, brokenSettings)},

		{op: apprs, name: "malformed tenant", status: 400, code: "invalid_tenant", call: as(mia, "GET", "/v1/tenants/Not_A_Tenant/approvers", nil, nil)},
		{op: apprs, name: "another tenant's", status: 403, code: "forbidden", call: as(fabrikamAdmin, "GET", "/v1/tenants/contoso/approvers", nil, nil)},
		{op: apprs, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(mia, "GET", "/v1/tenants/nosuchtenant/approvers", nil, nil)},
		{op: apprs, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil, brokenTenant)},

		{op: assign, name: "If-None-Match", status: 400, code: "invalid_if_none_match", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, nil, exists)},
		{op: assign, name: "not a user of the tenant", status: 400, code: "not_tenant_user", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/mary@provider.example", nil, nil)},
		{op: assign, name: "an approver assigns", status: 403, code: "forbidden", call: as(contosoApprover, "PUT", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, nil)},
		{op: assign, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(nosuchAdmin, "PUT", "/v1/tenants/nosuchtenant/approvers/zoe@nosuchtenant.example", nil, nil)},
		{op: assign, name: "offboarded", status: 409, code: "tenant_offboarded", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, offboarded)},
		{op: assign, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, brokenTenant)},

		{op: unassign, name: "If-None-Match", status: 400, code: "invalid_if_none_match", call: as(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, nil, exists)},
		{op: unassign, name: "malformed user", status: 400, code: "invalid_user", call: as(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/Zoe!", nil, nil)},
		{op: unassign, name: "an approver removes", status: 403, code: "forbidden", call: as(contosoApprover, "DELETE", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, nil)},
		{op: unassign, name: "not an approver", status: 404, code: "approver_not_found", call: as(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, nil)},
		{op: unassign, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(nosuchAdmin, "DELETE", "/v1/tenants/nosuchtenant/approvers/zoe@nosuchtenant.example", nil, nil)},
		{op: unassign, name: "offboarded", status: 409, code: "tenant_offboarded", call: as(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, offboarded)},
		{op: unassign, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/zoe@contoso.example", nil, brokenTenant)},

		{op: search, name: "bad from", status: 400, code: "invalid_from", call: as(auditor, "GET", "/v1/audit?tenant=contoso&from=yesterday", nil, nil)},
		{op: search, name: "an operator searches", status: 403, code: "forbidden", call: as(alice, "GET", "/v1/audit?tenant=contoso", nil, nil)},
		{op: search, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(auditor, "GET", "/v1/audit?tenant=nosuchtenant", nil, nil)},
		{op: search, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "GET", "/v1/audit?tenant=contoso", nil, brokenTenant)},

		{op: export, name: "bad format", status: 400, code: "invalid_format", call: as(auditor, "GET", "/v1/audit/export?tenant=contoso&format=xml", nil, nil)},
		{op: export, name: "an operator exports", status: 403, code: "forbidden", call: as(alice, "GET", "/v1/audit/export?tenant=contoso", nil, nil)},
		{op: export, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(auditor, "GET", "/v1/audit/export?tenant=nosuchtenant", nil, nil)},
		{op: export, name: "too many reads", status: 429, code: "too_many_reads", config: busyReads, call: as(auditor, "GET", "/v1/audit/export?tenant=contoso", nil, nil)},
		{op: export, name: "record unreadable", status: 500, code: "record_unreadable", call: as(auditor, "GET", "/v1/audit/export?tenant=contoso", nil, func(e *env) {
			filed(e)
			if err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":"x","CreationTime":"20`}}).Err(); err != nil {
				e.t.Fatal(err)
			}
		})},

		{op: verify, name: "malformed tenant", status: 400, code: "invalid_tenant", call: as(auditor, "GET", "/v1/audit/verify?tenant=Not_A_Tenant", nil, nil)},
		{op: verify, name: "a kept seal that can't be checked", status: 400, code: "invalid_since_seal", call: as(auditor, "GET", "/v1/audit/verify?tenant=contoso&since_seal=x.y.z", nil, nil)},
		{op: verify, name: "an operator verifies", status: 403, code: "forbidden", call: as(alice, "GET", "/v1/audit/verify?tenant=contoso", nil, nil)},
		{op: verify, name: "not onboarded", status: 404, code: "tenant_not_found", call: as(auditor, "GET", "/v1/audit/verify?tenant=nosuchtenant", nil, nil)},
		{op: verify, name: "too many reads", status: 429, code: "too_many_reads", config: busyReads, call: as(auditor, "GET", "/v1/audit/verify?tenant=contoso", nil, nil)},
		{op: verify, name: "entry unreadable", status: 500, code: "record_unreadable", call: as(contosoAdmin, "GET", "/v1/audit/verify?tenant=contoso", nil, brokenTenant)},
	}
}

// concurrently makes every transaction of e that watches key meet a
// concurrent change of it, as when another replica saves one between its
// read and its write each time it tries.
func concurrently(key string) func(e *env) {
	return func(e *env) {
		other := redis.NewClient(e.rdb.Options())
		e.t.Cleanup(func() { _ = other.Close() })
		e.rdb.AddHook(rewriteBeforeExec{rdb: other, key: key})
	}
}

// busyReads is a server whose one long read at once is taken by another
// caller's, which has not ended.
func busyReads(c *api.Config) {
	lim, err := readlimit.New(1, 1)
	if err != nil {
		panic(err)
	}
	if _, err := lim.Acquire(identity.Principal{Subject: "someone-else"}); err != nil {
		panic(err)
	}
	c.LongReads = lim
}

// retryAfter checks the Retry-After of a 429 or 503: whole seconds, at
// least one, as openapi.yaml declares it.
func retryAfter(t *testing.T, r result) {
	t.Helper()
	v := r.header.Values("Retry-After")
	if len(v) != 1 {
		t.Fatalf("Retry-After = %q, want one value", v)
	}
	if n, err := strconv.Atoi(v[0]); err != nil || n < 1 {
		t.Errorf("Retry-After = %q, want a whole number of seconds, at least 1", v[0])
	}
}

// documentedStatuses returns, for each operation of openapi.yaml ("METHOD
// /path"), the statuses it declares.
func documentedStatuses(t *testing.T) map[string][]int {
	t.Helper()
	s := openAPISpec(t)
	out := map[string][]int{}
	paths, _ := s.doc["paths"].(map[string]any)
	for p, item := range paths {
		for m, op := range item.(map[string]any) {
			op, ok := op.(map[string]any)
			if !ok {
				continue
			}
			responses, ok := op["responses"].(map[string]any)
			if !ok {
				continue
			}
			for k := range responses {
				n, err := strconv.Atoi(k)
				if err != nil {
					t.Fatalf("%s %s: response %q is no status", m, p, k)
				}
				out[strings.ToUpper(m)+" "+p] = append(out[strings.ToUpper(m)+" "+p], n)
			}
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

// backticked matches what openapi.yaml writes as code: `name`.
var backticked = regexp.MustCompile("`([a-z_]+)`")

// documentedCodes returns the error codes op's answer with status names,
// in its description or the operation's.
func documentedCodes(t *testing.T, op string, status int) []string {
	t.Helper()
	s := openAPISpec(t)
	m, p, _ := strings.Cut(op, " ")
	paths, _ := s.doc["paths"].(map[string]any)
	item, _ := paths[p].(map[string]any)
	o, _ := item[strings.ToLower(m)].(map[string]any)
	responses, _ := o["responses"].(map[string]any)
	desc, _ := s.resolve(responses[strconv.Itoa(status)])["description"].(string)
	opDesc, _ := o["description"].(string)
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(desc+"\n"+opDesc, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestEveryDocumentedAnswerIsReached: each status openapi.yaml declares for
// an operation is reached by a case against the real server over a real
// Redis (stopped, for 503), with the error code the document names for it,
// Retry-After on 429 and 503, and the challenge on 401; an answer the
// document declares that no case reaches fails the test, unless
// notReachable says why nobody can reach it.
func TestEveryDocumentedAnswerIsReached(t *testing.T) {
	documented := documentedStatuses(t)
	cases := answerCases()
	reached := map[string]bool{}

	// A Redis of the test's own, killed, serves every case of a store
	// that is down, and another, stopped, those of one that hangs: a
	// store out of service changes no more.
	outOfService := func(configure func(*redis.Options), opts ...func(*api.Config)) (*env, *redistest.Server) {
		srv := redistest.StartServer(t)
		o, err := redis.ParseURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Given up at once, not tried again and again: the answer is
		// the same, and comes sooner.
		o.MaxRetries, o.DialerRetries = -1, 1
		configure(o)
		rdb := redis.NewClient(o)
		t.Cleanup(func() { rdb.Close() })
		return newEnvOn(t, rdb, opts...), srv
	}
	down, srv := outOfService(func(*redis.Options) {})
	srv.Stop()
	// As lockbox serve sets it up: the client honours the call's
	// deadline, and a read or write waits at most LOCKBOX_REDIS_TIMEOUT,
	// which also ends the exports and verifications the call's deadline
	// does not bound.
	const patience = 200 * time.Millisecond
	hung, srv := outOfService(func(o *redis.Options) {
		o.ContextTimeoutEnabled = true
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = patience, patience, patience
	}, func(c *api.Config) { c.Timeout = patience })
	srv.Freeze(t)

	for _, c := range cases {
		key := fmt.Sprintf("%s %d", c.op, c.status)
		statuses, ok := documented[c.op]
		if !ok {
			t.Errorf("case %q: openapi.yaml has no operation %s", c.name, c.op)
			continue
		}
		if !slices.Contains(statuses, c.status) {
			t.Errorf("case %q: %s does not declare %d", c.name, c.op, c.status)
		}
		reached[key] = true
		t.Run(c.op+"/"+strconv.Itoa(c.status)+"/"+c.name, func(t *testing.T) {
			var e *env
			switch c.store {
			case storeDown:
				e = down
			case storeHung:
				e = hung
			default:
				var opts []func(*api.Config)
				if c.config != nil {
					opts = append(opts, c.config)
				}
				e = newEnv(t, opts...)
			}
			e.t = t
			r := c.call(e)
			if c.code == "" {
				if r.status != c.status {
					t.Fatalf("status = %d, want %d; body: %s", r.status, c.status, r.body)
				}
			} else {
				wantError(t, r, c.status, c.code, "")
				if codes := documentedCodes(t, c.op, c.status); !slices.Contains(codes, c.code) {
					t.Errorf("code %q is not one openapi.yaml names for %s %d (%v)", c.code, c.op, c.status, codes)
				}
			}
			switch r.status {
			case http.StatusServiceUnavailable, http.StatusTooManyRequests:
				retryAfter(t, r)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}

	for _, op := range slices.Sorted(maps.Keys(documented)) {
		for _, status := range documented[op] {
			key := fmt.Sprintf("%s %d", op, status)
			why, excused := notReachable[key]
			switch {
			case reached[key] && excused:
				t.Errorf("%s is reached, yet notReachable says %q", key, why)
			case !reached[key] && !excused:
				t.Errorf("%s is documented, but no case reaches it", key)
			}
		}
	}
	for key := range notReachable {
		i := strings.LastIndex(key, " ")
		n, err := strconv.Atoi(key[i+1:])
		if err != nil || !slices.Contains(documented[key[:i]], n) {
			t.Errorf("notReachable names %s, which openapi.yaml does not declare", key)
		}
	}
}

// TestEveryPathAnswers405WithItsMethods: openapi.yaml promises that a
// method a path does not serve gets 405 method_not_allowed with an Allow
// header listing the ones it does, HEAD wherever GET is. For every path it
// documents, a method it documents none of gets that answer, and Allow
// names exactly the methods the document gives the path.
func TestEveryPathAnswers405WithItsMethods(t *testing.T) {
	e := newEnv(t)
	order := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	documented := documentedStatuses(t)
	methods := map[string][]string{} // path → its documented methods
	for op := range documented {
		m, p, _ := strings.Cut(op, " ")
		methods[p] = append(methods[p], m)
		if m == http.MethodGet {
			methods[p] = append(methods[p], http.MethodHead)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(methods)) {
		ms := methods[p]
		slices.SortFunc(ms, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
		allow := strings.Join(ms, ", ")
		for _, m := range order {
			if slices.Contains(ms, m) {
				continue
			}
			for _, who := range []user{anonymous, mia} {
				r := e.do(who, m, fill(p), nil)
				if m == http.MethodHead {
					// The answer to HEAD has no body to hold the error.
					if r.status != http.StatusMethodNotAllowed {
						t.Errorf("%s %s: status %d, want 405", m, p, r.status)
					}
				} else {
					wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed", "")
				}
				if got := r.header.Values("Allow"); len(got) != 1 || got[0] != allow {
					t.Errorf("%s %s: Allow = %q, want %q", m, p, got, allow)
				}
			}
		}
	}
}
