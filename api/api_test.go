package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/tenants"

	"go.yaml.in/yaml/v3"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()

	created := e.do(alice, "POST", "/v1/requests", grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1001",
		Reason: "Mailbox repair", Duration: grants.Duration(2 * time.Hour),
		Activities: []string{"Get-Mailbox", "New-MailboxRepairRequest"},
	})
	req := decode[grants.Request](t, created, http.StatusCreated)
	if got, want := created.header.Get("Location"), "/v1/requests/"+req.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if req.State != grants.StatePendingManager || req.Requester != "alice" || req.Tenant != "contoso" {
		t.Fatalf("created = %+v", req)
	}
	if req.DecideBy == nil || !req.DecideBy.Equal(start.Add(grants.DecisionWindow)) {
		t.Errorf("decide_by = %v, want %v", req.DecideBy, start.Add(grants.DecisionWindow))
	}

	e.clk.Advance(10 * time.Minute)
	req = decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", map[string]string{"comment": "case checked"}), http.StatusOK)
	if req.State != grants.StatePendingCustomer || req.ManagerApprover != "mia" {
		t.Fatalf("after manager approval: state %s, manager %q", req.State, req.ManagerApprover)
	}
	if want := e.clk.Now().Add(grants.DecisionWindow); req.DecideBy == nil || !req.DecideBy.Equal(want) {
		t.Errorf("decide_by = %v, want %v", req.DecideBy, want)
	}

	// The tenant approves with no body at all: the comment is optional.
	e.clk.Advance(5 * time.Minute)
	approvedAt := e.clk.Now()
	r := e.do(contosoApprover, "POST", "/v1/requests/"+req.ID+"/approve", nil, withoutHeader("Content-Type"))
	req = decode[grants.Request](t, r, http.StatusOK)
	if req.State != grants.StateApproved || req.Approver != contosoApprover.sub {
		t.Fatalf("after tenant approval: state %s, approver %q", req.State, req.Approver)
	}
	if req.ApprovedAt == nil || !req.ApprovedAt.Equal(approvedAt) {
		t.Errorf("approved_at = %v, want %v", req.ApprovedAt, approvedAt)
	}
	if want := approvedAt.Add(2 * time.Hour); req.ExpiresAt == nil || !req.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %v, want %v", req.ExpiresAt, want)
	}
	if req.DecideBy != nil {
		t.Errorf("decide_by = %v after the decision, want none", req.DecideBy)
	}
	// Tenant users see the engineer as "Microsoft Operator", the manager
	// as "Microsoft Support".
	if req.Requester != record.OperatorUserID || req.ManagerApprover != record.ProviderUserID {
		t.Errorf("tenant view: requester %q, manager %q", req.Requester, req.ManagerApprover)
	}
	if !strings.Contains(string(r.body), `"approved_at"`) || !strings.Contains(string(r.body), `"expires_at"`) {
		t.Errorf("body lacks approved_at/expires_at: %s", r.body)
	}

	// Retrying the same approval is safe and changes nothing.
	again := decode[grants.Request](t, e.do(contosoApprover, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)
	if len(again.History) != len(req.History) || again.State != grants.StateApproved {
		t.Errorf("retry changed the request: %d events, state %s", len(again.History), again.State)
	}

	// The requester sees the whole history with real names.
	mine := decode[grants.Request](t, e.do(alice, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK)
	var actors []string
	for _, ev := range mine.History {
		actors = append(actors, fmt.Sprintf("%s:%s:%s->%s", ev.Actor, ev.Action, ev.From, ev.To))
	}
	want := []string{
		"alice:create:->pending_manager",
		"mia:approve:pending_manager->pending_customer",
		"approver@contoso.example:approve:pending_customer->approved",
	}
	if !slices.Equal(actors, want) {
		t.Errorf("history = %v, want %v", actors, want)
	}
	if mine.History[1].Comment != "case checked" {
		t.Errorf("manager comment = %q", mine.History[1].Comment)
	}

	// The tenant revokes early.
	e.clk.Advance(30 * time.Minute)
	req = decode[grants.Request](t, e.do(contosoAdmin, "POST", "/v1/requests/"+req.ID+"/revoke", map[string]string{"comment": "fixed"}), http.StatusOK)
	if req.State != grants.StateRevoked {
		t.Errorf("after revoke: state %s", req.State)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	otherKey, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	mint := func(key []byte, aud string, now time.Time) string {
		tok, err := identity.Mint(key, issuer, aud, identity.Claims{Subject: "mia", Roles: []identity.Role{identity.RoleSupportManager}}, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	b64 := base64.RawURLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"mia","roles":["support-manager"],"exp":%d}`,
		issuer, audience, start.Add(time.Hour).Unix())
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(claims)) + "."
	good := e.token(mia)

	tests := []struct {
		name      string
		header    []string
		challenge string
	}{
		{"missing", nil, `Bearer realm="lockbox"`},
		// An empty header, or credentials of another scheme, carry no
		// bearer token: the challenge has no error (RFC 6750 §3.1).
		{"empty", []string{""}, `Bearer realm="lockbox"`},
		{"basic", []string{"Basic bWlhOnB3"}, `Bearer realm="lockbox"`},
		{"digest", []string{`Digest username="mia"`}, `Bearer realm="lockbox"`},
		{"scheme only", []string{"Bearer"}, `Bearer realm="lockbox", error="invalid_token"`},
		{"empty token", []string{"Bearer "}, `Bearer realm="lockbox", error="invalid_token"`},
		{"basic and bearer", []string{"Basic bWlhOnB3", "Bearer " + good}, `Bearer realm="lockbox", error="invalid_token"`},
		{"garbage", []string{"Bearer garbage"}, `Bearer realm="lockbox", error="invalid_token"`},
		{"alg none", []string{"Bearer " + algNone}, `Bearer realm="lockbox", error="invalid_token"`},
		{"unknown key", []string{"Bearer " + mint(otherKey, audience, start)}, `Bearer realm="lockbox", error="invalid_token"`},
		{"wrong audience", []string{"Bearer " + mint(e.key, "other-app", start)}, `Bearer realm="lockbox", error="invalid_token"`},
		{"expired", []string{"Bearer " + mint(e.key, audience, start.Add(-2*time.Hour))}, `Bearer realm="lockbox", error="invalid_token"`},
		{"two headers", []string{"Bearer " + good, "Bearer " + good}, `Bearer realm="lockbox", error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []option{}
			for _, h := range tc.header {
				opts = append(opts, withHeader("Authorization", h))
			}
			for _, target := range []struct{ method, path string }{
				{"GET", "/v1/requests"},
				{"POST", "/v1/requests/00000000-0000-7000-8000-000000000000/approve"},
				{"PUT", "/v1/tenants/contoso/approvers/mallory"},
				{"GET", "/v1/audit?tenant=contoso"},
			} {
				r := e.do(anonymous, target.method, target.path, nil, opts...)
				wantError(t, r, http.StatusUnauthorized, "unauthenticated", "")
				if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("%s %s: WWW-Authenticate = %q, want %q", target.method, target.path, got, tc.challenge)
				}
				if strings.Contains(string(r.body), "eyJ") {
					t.Errorf("error echoes the token: %s", r.body)
				}
			}
		})
	}

	t.Run("valid token", func(t *testing.T) {
		decode[map[string]any](t, e.do(mia, "GET", "/v1/requests", nil), http.StatusOK)
	})
	// The challenge belongs to the 401 alone: a verified token's answers,
	// whatever their status, must not tell the client the token is invalid.
	t.Run("no challenge once verified", func(t *testing.T) {
		for _, c := range []struct {
			who          user
			method, path string
			status       int
		}{
			{mia, "GET", "/v1/requests", http.StatusOK},
			{contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/zoe@contoso.example", http.StatusNoContent},
			{contosoApprover, "PUT", "/v1/tenants/contoso/approvers/mallory@contoso.example", http.StatusForbidden},
		} {
			r := e.do(c.who, c.method, c.path, nil)
			if r.status != c.status {
				t.Fatalf("%s %s as %s: %d %s, want %d", c.method, c.path, c.who.sub, r.status, r.body, c.status)
			}
			if got, ok := r.header["Www-Authenticate"]; ok {
				t.Errorf("%s %s as %s (%d): WWW-Authenticate = %q, want none", c.method, c.path, c.who.sub, r.status, got)
			}
		}
	})
	t.Run("lower-case scheme", func(t *testing.T) {
		decode[map[string]any](t, e.do(anonymous, "GET", "/v1/requests", nil, withHeader("Authorization", "bearer "+good)), http.StatusOK)
	})
	t.Run("grant keys need none", func(t *testing.T) {
		if set := decode[struct{ Keys []any }](t, e.do(anonymous, "GET", "/v1/keys", nil), http.StatusOK); set.Keys == nil || len(set.Keys) != 0 {
			t.Errorf("no keys configured: %+v, want an empty set", set)
		}
	})
	t.Run("openapi needs none", func(t *testing.T) {
		r := e.do(anonymous, "GET", "/v1/openapi.yaml", nil)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/yaml" || !strings.HasPrefix(string(r.body), "openapi: 3.0.3") {
			t.Errorf("openapi: %d %q %.40s", r.status, r.header.Get("Content-Type"), r.body)
		}
	})
}

// Identity and client IP come from the token and the socket, whatever the
// client claims in headers.
func TestSpoofedHeadersIgnored(t *testing.T) {
	e := newEnv(t)
	spoof := []option{
		withHeader("X-User", "mia"),
		withHeader("X-Forwarded-User", "mia"),
		withHeader("X-Remote-User", "mia"),
		withHeader("X-Forwarded-For", "203.0.113.7"),
		withHeader("X-Real-IP", "203.0.113.7"),
		withHeader("Forwarded", "for=203.0.113.7"),
		withHeader("True-Client-IP", "203.0.113.7"),
	}
	req := decode[grants.Request](t, e.do(alice, "POST", "/v1/requests", grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1",
		Reason: "r", Duration: grants.Duration(time.Hour),
	}, spoof...), http.StatusCreated)
	if req.Requester != "alice" {
		t.Errorf("requester = %q, want alice", req.Requester)
	}
	if ip := req.History[0].ClientIP; ip != "127.0.0.1" {
		t.Errorf("history client_ip = %q, want the socket peer 127.0.0.1", ip)
	}

	// Claiming to be the manager does not make alice one.
	r := e.do(alice, "POST", "/v1/requests/"+req.ID+"/approve", nil, spoof...)
	wantError(t, r, http.StatusForbidden, "forbidden", "support manager")

	// Without a token, headers identify nobody.
	r = e.do(anonymous, "GET", "/v1/requests", nil, spoof...)
	wantError(t, r, http.StatusUnauthorized, "unauthenticated", "")

	// The decision's audit record carries the socket peer too.
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil, spoof...), http.StatusOK)
	recs := decode[struct{ Records []record.Record }](t, e.do(auditor, "GET", "/v1/audit?tenant=contoso", nil), http.StatusOK).Records
	if len(recs) == 0 {
		t.Fatal("no audit records")
	}
	for _, rec := range recs {
		if rec.Operation == record.OpOnboardTenant {
			continue // the test's set-up, not a call of this test
		}
		if rec.ClientIP != "127.0.0.1" {
			t.Errorf("%s: ClientIP = %q, want 127.0.0.1", rec.Operation, rec.ClientIP)
		}
	}
	if recs[0].Operation != record.OpManagerDecision || recs[0].ProviderUserId != "mia" {
		t.Errorf("newest record = %+v, want mia's decision", recs[0])
	}
}

// step is one call in a decision scenario; path is relative to the
// scenario's request ("/approve"), or absolute when it starts with /v1.
type step struct {
	who        user
	path       string
	body       any
	wantStatus int
	wantCode   string
	wantMsg    string
	wantState  grants.State
	advance    time.Duration // moved before the call
}

func TestDecisions(t *testing.T) {
	tests := []struct {
		name  string
		filer user
		steps []step
	}{
		{name: "operator approving her own request", steps: []step{
			{who: alice, path: "/approve", wantStatus: 403, wantCode: "forbidden", wantMsg: "only a support manager"},
		}},
		{name: "manager approving his own request", filer: sam, steps: []step{
			{who: sam, path: "/approve", wantStatus: 403, wantCode: "self_approval", wantMsg: "two-person rule"},
			{who: sam, path: "/deny", wantStatus: 403, wantCode: "self_approval"},
		}},
		{name: "approve after deny", steps: []step{
			{who: mia, path: "/deny", body: map[string]string{"comment": "no case"}, wantStatus: 200, wantState: grants.StateDenied},
			{who: nina, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is denied"},
			{who: alice, path: "/cancel", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot cancel a request that is denied"},
		}},
		{name: "approve after the decision window", steps: []step{
			{advance: grants.DecisionWindow + time.Minute, who: mia, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is expired"},
		}},
		// The tenant decides after the manager: before, it is told the
		// request awaits the manager, as a second manager is told it no
		// longer does.
		{name: "tenant admin deciding before the manager", steps: []step{
			{who: contosoAdmin, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve it yet: the provider's support manager must approve the request first (it is pending_manager)"},
			{who: contosoApprover, path: "/deny", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot deny it yet: the provider's support manager must approve the request first (it is pending_manager)"},
		}},
		// Whoever may decide a request at all, but not in the state it is
		// in now, is told that state (409). Forbidden is for whoever may
		// never decide it.
		{name: "second manager after the first approved", steps: []step{
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{who: nina, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is pending_customer"},
			{who: nina, path: "/deny", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot deny a request that is pending_customer"},
			{who: contosoApprover, path: "/approve", wantStatus: 200, wantState: grants.StateApproved},
			{who: nina, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is approved"},
			{who: nina, path: "/deny", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot deny a request that is approved"},
		}},
		{name: "second manager after the first denied", steps: []step{
			{who: mia, path: "/deny", wantStatus: 200, wantState: grants.StateDenied},
			{who: nina, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is denied"},
			{who: nina, path: "/deny", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot deny a request that is denied"},
		}},
		{name: "second approver after the first approved", steps: []step{
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{who: contosoApprover, path: "/approve", wantStatus: 200, wantState: grants.StateApproved},
			{who: contosoAdmin, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is approved"},
			{who: contosoAdmin, path: "/deny", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot deny a request that is approved"},
		}},
		{name: "second approver after the first denied", steps: []step{
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{who: contosoAdmin, path: "/deny", wantStatus: 200, wantState: grants.StateDenied},
			{who: contosoApprover, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is denied"},
			{who: contosoApprover, path: "/deny", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot deny a request that is denied"},
		}},
		{name: "approver after the tenant's window", steps: []step{
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{advance: grants.DecisionWindow, who: contosoApprover, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is expired"},
			{who: contosoAdmin, path: "/deny", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot deny a request that is expired"},
			{who: nina, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is expired"},
		}},
		// Those who see a request but may never decide it are refused
		// whatever its state, so a 409 always means "not now".
		{name: "who may never decide is refused in every state", steps: []step{
			{who: alice, path: "/approve", wantStatus: 403, wantCode: "forbidden", wantMsg: "only a support manager"},
			{who: contosoAuditor, path: "/approve", wantStatus: 403, wantCode: "forbidden"},
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{who: alice, path: "/approve", wantStatus: 403, wantCode: "forbidden", wantMsg: "only a support manager"},
			{who: contosoAuditor, path: "/deny", wantStatus: 403, wantCode: "forbidden"},
			{who: contosoAdmin, path: "/approve", wantStatus: 200, wantState: grants.StateApproved},
			{who: alice, path: "/approve", wantStatus: 403, wantCode: "forbidden", wantMsg: "only a support manager"},
			{who: contosoAuditor, path: "/approve", wantStatus: 403, wantCode: "forbidden"},
		}},
		{name: "who may never decide is refused after expiry", filer: sam, steps: []step{
			{advance: grants.DecisionWindow, who: sam, path: "/approve", wantStatus: 403, wantCode: "self_approval"},
			{who: contosoAuditor, path: "/deny", wantStatus: 403, wantCode: "forbidden"},
			{who: mia, path: "/approve", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot approve a request that is expired"},
		}},
		{name: "approver of another tenant", steps: []step{
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{who: fabrikamAdmin, path: "/approve", wantStatus: 404, wantCode: "not_found"},
			{who: fabrikamAdmin, path: "", wantStatus: 404, wantCode: "not_found"},
		}},
		{name: "tenant user who is no approver", steps: []step{
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{who: contosoUser, path: "/approve", wantStatus: 404, wantCode: "not_found"},
		}},
		{name: "tenant denies", steps: []step{
			{who: mia, path: "/approve", wantStatus: 200, wantState: grants.StatePendingCustomer},
			{who: contosoApprover, path: "/deny", body: map[string]string{"comment": "not now"}, wantStatus: 200, wantState: grants.StateDenied},
			{who: contosoApprover, path: "/revoke", wantStatus: 409, wantCode: "invalid_transition", wantMsg: "cannot revoke a request that is denied"},
		}},
		{name: "another operator cancelling", steps: []step{
			{who: bob, path: "/cancel", wantStatus: 404, wantCode: "not_found"},
			{who: alice, path: "/cancel", wantStatus: 200, wantState: grants.StateCanceled},
		}},
		{name: "comment too long", steps: []step{
			{who: mia, path: "/approve", body: map[string]string{"comment": strings.Repeat("x", 1001)}, wantStatus: 400, wantCode: "invalid_comment"},
		}},
		{name: "unknown field in a decision", steps: []step{
			{who: mia, path: "/approve", body: `{"comment":"ok","approve":true}`, wantStatus: 400, wantCode: "invalid_json", wantMsg: `"approve"`},
		}},
		{name: "decision body that is not JSON", steps: []step{
			{who: mia, path: "/approve", body: `comment=ok`, wantStatus: 400, wantCode: "invalid_json"},
		}},
		{name: "bad and unknown request ids", steps: []step{
			{who: mia, path: "/v1/requests/not-a-uuid/approve", wantStatus: 400, wantCode: "invalid_request_id"},
			{who: mia, path: "/v1/requests/01957a3c-0000-7000-8000-000000000000", wantStatus: 404, wantCode: "not_found"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.assignApprover()
			filer := tc.filer
			if filer.sub == "" {
				filer = alice
			}
			req := e.file(filer, "contoso", "exchange")
			for i, s := range tc.steps {
				e.clk.Advance(s.advance)
				path := s.path
				if !strings.HasPrefix(path, "/v1/") {
					path = "/v1/requests/" + req.ID + path
				}
				method := "POST"
				if !strings.Contains(path[len("/v1/requests/"):], "/") {
					method = "GET"
				}
				r := e.do(s.who, method, path, s.body)
				if s.wantStatus != r.status {
					t.Fatalf("step %d (%s %s as %s): status %d, want %d; body %s", i, method, s.path, s.who.sub, r.status, s.wantStatus, r.body)
				}
				if s.wantCode != "" {
					wantError(t, r, s.wantStatus, s.wantCode, s.wantMsg)
				}
				if s.wantState != "" {
					if got := decode[grants.Request](t, r, s.wantStatus); got.State != s.wantState {
						t.Fatalf("step %d: state %s, want %s", i, got.State, s.wantState)
					}
				}
			}
		})
	}
}

func TestRequestBodies(t *testing.T) {
	valid := `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"repair","duration":"1h"}`
	tests := []struct {
		name       string
		body       any
		opts       []option
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "valid", body: valid, wantStatus: 201},
		{name: "charset utf-8", body: valid, opts: []option{withoutHeader("Content-Type"), withHeader("Content-Type", "application/json; charset=UTF-8")}, wantStatus: 201},
		{name: "unknown field", body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"1h","requester":"mia"}`,
			wantStatus: 400, wantCode: "invalid_json", wantMsg: `unknown field "requester"`},
		{name: "oversized", body: fmt.Sprintf(`{"tenant":"contoso","reason":%q}`, strings.Repeat("x", 70<<10)),
			wantStatus: 413, wantCode: "body_too_large"},
		{name: "oversized without length", body: io.MultiReader(strings.NewReader(`{"reason":"`), strings.NewReader(strings.Repeat("x", 70<<10)), strings.NewReader(`"}`)),
			wantStatus: 413, wantCode: "body_too_large"},
		{name: "text/plain", body: valid, opts: []option{withoutHeader("Content-Type"), withHeader("Content-Type", "text/plain")},
			wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "form", body: "tenant=contoso", opts: []option{withoutHeader("Content-Type"), withHeader("Content-Type", "application/x-www-form-urlencoded")},
			wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "no content type", body: valid, opts: []option{withoutHeader("Content-Type")},
			wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "other charset", body: valid, opts: []option{withoutHeader("Content-Type"), withHeader("Content-Type", "application/json; charset=latin1")},
			wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "empty", body: "", wantStatus: 400, wantCode: "missing_body"},
		{name: "two values", body: valid + valid, wantStatus: 400, wantCode: "invalid_json", wantMsg: "exactly one JSON value"},
		{name: "trailing garbage", body: valid + "x", wantStatus: 400, wantCode: "invalid_json"},
		{name: "malformed", body: `{"tenant":`, wantStatus: 400, wantCode: "invalid_json", wantMsg: "ends too early"},
		{name: "syntax error", body: `{"tenant" "contoso"}`, wantStatus: 400, wantCode: "invalid_json", wantMsg: "malformed JSON"},
		{name: "array", body: `[]`, wantStatus: 400, wantCode: "invalid_json", wantMsg: "JSON object"},
		{name: "wrong field type", body: `{"tenant":7}`, wantStatus: 400, wantCode: "invalid_json", wantMsg: `"tenant"`},
		{name: "numeric duration", body: `{"tenant":"contoso","duration":3600}`, wantStatus: 400, wantCode: "invalid_json", wantMsg: "duration"},
		{name: "bad tenant", body: `{"tenant":"Contoso!","service":"exchange","service_request":"SR-1","reason":"r","duration":"1h"}`,
			wantStatus: 400, wantCode: "invalid_tenant"},
		{name: "too long", body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"5h"}`,
			wantStatus: 400, wantCode: "invalid_duration"},
		{name: "unknown activity", body: `{"tenant":"contoso","service":"sharepoint","service_request":"SR-1","reason":"r","duration":"1h","activities":["Get-Mailbox"]}`,
			wantStatus: 400, wantCode: "invalid_activity"},
		{name: "unknown service", body: `{"tenant":"contoso","service":"teams","service_request":"SR-1","reason":"r","duration":"1h"}`,
			wantStatus: 400, wantCode: "invalid_service"},
		// A key twice, or one that matches a field only without regard to
		// case, is read differently by different JSON parsers: a gateway
		// that checks "tenant" sees contoso, Go took the last match,
		// fabrikam. Neither is a body a client means to send.
		{name: "duplicate key", body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"1h","tenant":"fabrikam"}`,
			wantStatus: 400, wantCode: "invalid_json", wantMsg: `"tenant" is given more than once`},
		{name: "key differing in case", body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"1h","Tenant":"fabrikam"}`,
			wantStatus: 400, wantCode: "invalid_json", wantMsg: `unknown field "Tenant"`},
		{name: "key in upper case", body: `{"TENANT":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"1h"}`,
			wantStatus: 400, wantCode: "invalid_json", wantMsg: `unknown field "TENANT"`},
		{name: "duplicate key, escaped", body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"1h","t\u0065nant":"fabrikam"}`,
			wantStatus: 400, wantCode: "invalid_json", wantMsg: `"tenant" is given more than once`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.do(alice, "POST", "/v1/requests", tc.body, tc.opts...)
			if tc.wantCode == "" {
				decode[grants.Request](t, r, tc.wantStatus)
				return
			}
			wantError(t, r, tc.wantStatus, tc.wantCode, tc.wantMsg)
		})
	}

	t.Run("only operators file", func(t *testing.T) {
		e := newEnv(t)
		wantError(t, e.do(mia, "POST", "/v1/requests", valid), 403, "forbidden", "operators")
		wantError(t, e.do(contosoAdmin, "POST", "/v1/requests", valid), 403, "forbidden", "operators")
	})
	t.Run("one open request per tenant and service", func(t *testing.T) {
		e := newEnv(t)
		decode[grants.Request](t, e.do(alice, "POST", "/v1/requests", valid), 201)
		wantError(t, e.do(alice, "POST", "/v1/requests", valid), 409, "open_request_exists", "")
	})
	t.Run("small configured limit", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config) { c.MaxBodyBytes = 64 })
		wantError(t, e.do(alice, "POST", "/v1/requests", valid), 413, "body_too_large", "64 bytes")
	})
}

// TestNullBody: a body of JSON null is refused like any other body that is
// not an object. encoding/json decodes null into a struct as nothing at
// all, so it was taken as {}: a change of a tenant's entry answered 200
// having read no fields, and a new request was refused for an empty
// tenant, as if the client had sent an object without one.
func TestNullBody(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	req := e.file(alice, "contoso", "exchange")
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	for _, c := range []struct {
		who          user
		method, path string
	}{
		{alice, "POST", "/v1/requests"},
		{mia, "POST", "/v1/requests/" + req.ID + "/approve"},
		{lara, "POST", "/v1/tenants"},
		{lara, "PATCH", "/v1/tenants/contoso"},
		{contosoAdmin, "PUT", "/v1/tenants/contoso/settings"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			for _, body := range []string{"null", " null\n"} {
				wantError(t, e.do(c.who, c.method, c.path, body), http.StatusBadRequest, "invalid_json", "JSON object")
			}
		})
	}
	// Nothing was decided or changed.
	if got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK); got.State != grants.StatePendingManager {
		t.Errorf("state %s after refused decisions", got.State)
	}
	if r := e.do(lara, "GET", "/v1/tenants/contoso", nil); r.header.Get("ETag") != `"1"` {
		t.Errorf("ETag %s after a refused change", r.header.Get("ETag"))
	}
}

// TestTextLimitsCountCharacters: the free-text fields take as many
// characters as openapi.yaml's maxLength says (JSON Schema counts
// characters, not bytes), whatever the script: a reason written in
// Japanese is as long as one written in English. One more is refused.
func TestTextLimitsCountCharacters(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					MaxLength int `yaml:"maxLength"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(e.do(anonymous, "GET", "/v1/openapi.yaml", nil).body, &doc); err != nil {
		t.Fatal(err)
	}
	maxLength := func(schema, field string) int {
		t.Helper()
		n := doc.Components.Schemas[schema].Properties[field].MaxLength
		if n == 0 {
			t.Fatalf("openapi.yaml gives %s.%s no maxLength", schema, field)
		}
		return n
	}
	// Three bytes in UTF-8, one character.
	text := func(n int) string { return strings.Repeat("日", n) }
	create := func(u user, field string, n int) result {
		in := map[string]any{"tenant": "contoso", "service": "exchange", "service_request": "SR-1", "reason": "repair", "duration": "1h"}
		in[field] = text(n)
		return e.do(u, "POST", "/v1/requests", in)
	}

	for _, field := range []string{"service_request", "reason"} {
		t.Run(field, func(t *testing.T) {
			n := maxLength("CreateRequest", field)
			wantError(t, create(bob, field, n+1), http.StatusBadRequest, "invalid_"+field, fmt.Sprint(n))
			req := decode[grants.Request](t, create(bob, field, n), http.StatusCreated)
			if got := map[string]string{"service_request": req.ServiceRequest, "reason": req.Reason}[field]; got != text(n) {
				t.Errorf("%s stored as %q", field, got)
			}
			decode[grants.Request](t, e.do(bob, "POST", "/v1/requests/"+req.ID+"/cancel", nil), http.StatusOK)
		})
	}
	t.Run("comment", func(t *testing.T) {
		n := maxLength("Decision", "comment")
		req := e.file(alice, "contoso", "exchange")
		path := "/v1/requests/" + req.ID + "/deny"
		wantError(t, e.do(mia, "POST", path, map[string]string{"comment": text(n + 1)}), http.StatusBadRequest, "invalid_comment", fmt.Sprint(n))
		got := decode[grants.Request](t, e.do(mia, "POST", path, map[string]string{"comment": text(n)}), http.StatusOK)
		if last := got.History[len(got.History)-1]; last.Comment != text(n) {
			t.Errorf("comment stored as %q", last.Comment)
		}
	})
	t.Run("display_name", func(t *testing.T) {
		n := maxLength("Onboarding", "display_name")
		if m := maxLength("TenantUpdate", "display_name"); m != n {
			t.Fatalf("maxLength of display_name: onboarding %d, update %d", n, m)
		}
		body := func(name string) map[string]any {
			return map[string]any{"id": "northwind", "display_name": name, "domains": []string{"northwind.example"}}
		}
		wantError(t, e.do(lara, "POST", "/v1/tenants", body(text(n+1))), http.StatusBadRequest, "invalid_tenant", fmt.Sprint(n))
		decode[tenants.Tenant](t, e.do(lara, "POST", "/v1/tenants", body(text(n))), http.StatusCreated)
		wantError(t, e.do(lara, "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": text(n + 1)}), http.StatusBadRequest, "invalid_tenant", fmt.Sprint(n))
		got := decode[tenants.Tenant](t, e.do(lara, "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": text(n)}), http.StatusOK)
		if got.DisplayName != text(n) {
			t.Errorf("display_name stored as %q", got.DisplayName)
		}
	})
}

func TestListRequests(t *testing.T) {
	e := newEnv(t)
	first := e.file(alice, "contoso", "exchange")
	e.clk.Advance(time.Minute)
	second := e.file(bob, "contoso", "sharepoint")
	e.clk.Advance(time.Minute)
	third := e.file(alice, "fabrikam", "onedrive")
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+second.ID+"/deny", nil), http.StatusOK)

	ids := func(r result) []string {
		t.Helper()
		var out []string
		for _, req := range decode[struct{ Requests []grants.Request }](t, r, http.StatusOK).Requests {
			out = append(out, req.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		who   user
		query string
		want  []string
	}{
		{"manager sees all, newest first", mia, "", []string{third.ID, second.ID, first.ID}},
		{"by tenant", mia, "?tenant=contoso", []string{second.ID, first.ID}},
		{"by state", mia, "?state=denied", []string{second.ID}},
		{"created after", mia, "?created_after=" + start.Add(30*time.Second).Format(time.RFC3339), []string{third.ID, second.ID}},
		{"limit", mia, "?limit=1", []string{third.ID}},
		{"operator sees her own", alice, "", []string{third.ID, first.ID}},
		{"tenant admin sees the tenant's", contosoAdmin, "", []string{second.ID, first.ID}},
		{"tenant admin naming the tenant", contosoAdmin, "?tenant=contoso&state=pending_manager", []string{first.ID}},
		{"nothing matches", mia, "?tenant=fabrikam&state=denied", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(e.do(tc.who, "GET", "/v1/requests"+tc.query, nil)); !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("empty list is an array", func(t *testing.T) {
		r := e.do(mia, "GET", "/v1/requests?tenant=fabrikam&state=denied", nil)
		if strings.TrimSpace(string(r.body)) != `{"requests":[]}` {
			t.Errorf("body = %s", r.body)
		}
	})
	t.Run("tenant view hides the provider's staff", func(t *testing.T) {
		for _, req := range decode[struct{ Requests []grants.Request }](t, e.do(contosoAdmin, "GET", "/v1/requests", nil), 200).Requests {
			if req.Requester != record.OperatorUserID {
				t.Errorf("requester = %q", req.Requester)
			}
		}
	})

	errs := []struct {
		name, who, query string
		status           int
		code             string
	}{
		{"bad state", "mia", "?state=bogus", 400, "invalid_state"},
		{"zero limit", "mia", "?limit=0", 400, "invalid_limit"},
		{"text limit", "mia", "?limit=ten", 400, "invalid_limit"},
		{"huge limit", "mia", "?limit=1001", 400, "invalid_limit"},
		{"bad time", "mia", "?created_after=yesterday", 400, "invalid_created_after"},
		{"date only", "mia", "?created_after=2025-03-01", 400, "invalid_created_after"},
		{"unknown parameter", "mia", "?tennant=contoso", 400, "invalid_query"},
		{"repeated parameter", "mia", "?tenant=contoso&tenant=fabrikam", 400, "invalid_query"},
		{"malformed query", "mia", "?tenant=%zz", 400, "invalid_query"},
		{"bad tenant", "mia", "?tenant=Contoso", 400, "invalid_tenant"},
		{"other tenant", "contosoAdmin", "?tenant=fabrikam", 403, "forbidden"},
		// "+01:00" unescaped in a query string reads as " 01:00".
		{"unescaped plus", "mia", "?created_after=2025-03-01T10:00:00+01:00", 400, "invalid_created_after"},
		// An empty filter is a script's unset variable ("?tenant=$T"),
		// not a wish to list every tenant's requests.
		{"empty tenant", "mia", "?tenant=", 400, "invalid_tenant"},
		{"empty state", "mia", "?state=&tenant=contoso", 400, "invalid_state"},
		{"empty created_after", "mia", "?created_after=", 400, "invalid_created_after"},
		{"empty limit", "mia", "?limit=", 400, "invalid_limit"},
	}
	users := map[string]user{"mia": mia, "contosoAdmin": contosoAdmin}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			msg := ""
			if tc.name == "unescaped plus" {
				msg = "send a '+' in a query string as %2B"
			}
			wantError(t, e.do(users[tc.who], "GET", "/v1/requests"+tc.query, nil), tc.status, tc.code, msg)
		})
	}
}

func TestSettings(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	const path = "/v1/tenants/contoso/settings"

	if got := decode[tenants.Settings](t, e.do(contosoAdmin, "GET", path, nil), 200); !got.LockboxEnabled || got.NotificationAddresses == nil || len(got.NotificationAddresses) != 0 {
		t.Errorf("defaults = %+v", got)
	}
	off := map[string]any{"lockbox_enabled": false}
	tests := []struct {
		name   string
		who    user
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"approver may read", contosoApprover, "GET", path, nil, 200, ""},
		{"manager may read", mia, "GET", path, nil, 200, ""},
		{"operator may not read", alice, "GET", path, nil, 403, "forbidden"},
		{"other tenant may not read", fabrikamAdmin, "GET", path, nil, 403, "forbidden"},
		// As in Microsoft 365, assigned approvers configure Customer Lockbox.
		{"approver may change", contosoApprover, "PUT", path, off, 200, ""},
		{"manager may not change", mia, "PUT", path, off, 403, "forbidden"},
		{"other tenant may not change", fabrikamAdmin, "PUT", path, off, 403, "forbidden"},
		{"switch is required", contosoAdmin, "PUT", path, map[string]any{"notification_addresses": []string{}}, 400, "invalid_settings"},
		{"switch must be a boolean", contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": "no"}, 400, "invalid_json"},
		{"bad address", contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": true, "notification_addresses": []string{"Boss <boss@contoso.example>"}}, 400, "invalid_settings"},
		{"unknown field", contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": true, "approvers": []string{"mallory"}}, 400, "invalid_json"},
		{"bad tenant", contosoAdmin, "GET", "/v1/tenants/Bad_Tenant/settings", nil, 400, "invalid_tenant"},
		{"bad tenant on put", contosoAdmin, "PUT", "/v1/tenants/contoso%7Bx%7D/settings", off, 400, "invalid_tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.who, tc.method, tc.path, tc.body)
			if tc.code == "" {
				decode[tenants.Settings](t, r, tc.status)
				return
			}
			wantError(t, r, tc.status, tc.code, "")
		})
	}

	t.Run("global admin changes them", func(t *testing.T) {
		got := decode[tenants.Settings](t, e.do(contosoAdmin, "PUT", path,
			map[string]any{"lockbox_enabled": true, "notification_addresses": []string{"sec@contoso.example", "sec@contoso.example"}}), 200)
		if !got.LockboxEnabled || !slices.Equal(got.NotificationAddresses, []string{"sec@contoso.example"}) {
			t.Errorf("put = %+v", got)
		}
		got = decode[tenants.Settings](t, e.do(contosoAdmin, "PUT", path, off), 200)
		if got.LockboxEnabled || got.NotificationAddresses == nil {
			t.Errorf("put without addresses = %+v", got)
		}
		if got = decode[tenants.Settings](t, e.do(contosoApprover, "GET", path, nil), 200); got.LockboxEnabled {
			t.Errorf("read back = %+v", got)
		}
	})
	t.Run("lockbox off makes the manager's approval final", func(t *testing.T) {
		req := e.file(alice, "contoso", "exchange")
		if got := decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), 200); got.State != grants.StateApproved {
			t.Errorf("state = %s, want approved", got.State)
		}
	})
}

// TestSettingsETag: GET answers the settings' revision as a strong ETag,
// and a PUT with If-Match writes only over that revision, so of two
// administrators who read the same settings, the second to write is told
// to read again instead of undoing the first one's change. No If-Match,
// or "*", writes as before.
func TestSettingsETag(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	const path = "/v1/tenants/contoso/settings"
	etag := func(r result) string {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("status = %d; body: %s", r.status, r.body)
		}
		return r.header.Get("ETag")
	}

	read := etag(e.do(contosoAdmin, "GET", path, nil))
	if read != `"1"` {
		t.Fatalf("ETag of the onboarded settings = %q, want \"1\"", read)
	}
	if got := etag(e.do(contosoApprover, "GET", path, nil)); got != read {
		t.Fatalf("another reader's ETag = %q, want %q", got, read)
	}
	// The approver, who read the same revision, adds an address...
	r := e.do(contosoApprover, "PUT", path, map[string]any{"lockbox_enabled": true, "notification_addresses": []string{"sec@contoso.example"}},
		withHeader("If-Match", read))
	if got := etag(r); got != `"2"` {
		t.Fatalf("ETag of the change = %q, want \"2\"", got)
	}
	// ...and the admin's change, based on what they read before it, would
	// take the address away again: refused.
	wantError(t, e.do(contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": false}, withHeader("If-Match", read)),
		http.StatusPreconditionFailed, "settings_changed", "read them again")
	r = e.do(contosoAdmin, "GET", path, nil)
	if got := decode[tenants.Settings](t, r, 200); !got.LockboxEnabled || !slices.Equal(got.NotificationAddresses, []string{"sec@contoso.example"}) || r.header.Get("ETag") != `"2"` {
		t.Fatalf("after the refused change: %+v, ETag %q", got, r.header.Get("ETag"))
	}
	// Read again, change again: it applies.
	r = e.do(contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": false, "notification_addresses": []string{"sec@contoso.example"}},
		withHeader("If-Match", `"2"`))
	if got := decode[tenants.Settings](t, r, 200); got.LockboxEnabled || r.header.Get("ETag") != `"3"` {
		t.Fatalf("change at the current revision: %+v, ETag %q", got, r.header.Get("ETag"))
	}
	// Scripts that send no If-Match, or "*", write whatever the revision.
	if got := etag(e.do(contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": false}, withHeader("If-Match", "*"))); got != `"4"` {
		t.Fatalf("If-Match * = ETag %q, want \"4\"", got)
	}
	if got := etag(e.do(contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": false, "notification_addresses": []string{"soc@contoso.example"}})); got != `"5"` {
		t.Fatalf("no If-Match = ETag %q, want \"5\"", got)
	}
	// Who may not change the settings learns nothing from a stale tag.
	wantError(t, e.do(fabrikamAdmin, "PUT", path, map[string]any{"lockbox_enabled": true}, withHeader("If-Match", `"1"`)),
		http.StatusForbidden, "forbidden", "")

	for _, bad := range []string{``, `5`, `W/"5"`, `"5", "6"`, `"05"`, `"-1"`, `"x"`, `""`} {
		t.Run("If-Match "+bad, func(t *testing.T) {
			wantError(t, e.do(contosoAdmin, "PUT", path, map[string]any{"lockbox_enabled": true}, withHeader("If-Match", bad)),
				http.StatusBadRequest, "invalid_if_match", `such as "7"`)
		})
	}
	if got := etag(e.do(contosoAdmin, "GET", path, nil)); got != `"5"` {
		t.Errorf("a refused If-Match wrote: ETag %q", got)
	}
}

// rewriteBeforeExec is a go-redis hook that, before every MULTI/EXEC of
// the client, writes key again with the value it has: nothing changes, but
// a transaction that WATCHes key fails, as when another replica saved a
// change between its read and its write each time it tried.
type rewriteBeforeExec struct {
	rdb *redis.Client
	key string
}

func (h rewriteBeforeExec) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h rewriteBeforeExec) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h rewriteBeforeExec) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			if v, err := h.rdb.Get(ctx, h.key).Bytes(); err == nil {
				h.rdb.Set(ctx, h.key, v, 0)
			}
		}
		return next(ctx, cmds)
	}
}

// TestSettingsConflictIsDocumented: a change to the settings that keeps
// meeting a concurrent one gives up with 409 conflict, a status
// openapi.yaml must list for the operation, as it does for the other
// changes that can meet one.
func TestSettingsConflictIsDocumented(t *testing.T) {
	e := newEnv(t)
	const path = "/v1/tenants/contoso/settings"
	decode[tenants.Settings](t, e.do(contosoAdmin, "GET", path, nil), http.StatusOK)
	other := redis.NewClient(e.rdb.Options())
	t.Cleanup(func() { _ = other.Close() })
	e.rdb.AddHook(rewriteBeforeExec{rdb: other, key: keys.Settings("contoso")})

	r := e.do(contosoAdmin, "PUT", path, `{"lockbox_enabled":false}`)
	wantError(t, r, http.StatusConflict, "conflict", "retry")

	var doc struct {
		Paths map[string]map[string]any // path item: operations, parameters
	}
	if err := yaml.Unmarshal(e.do(anonymous, "GET", "/v1/openapi.yaml", nil).body, &doc); err != nil {
		t.Fatal(err)
	}
	op, _ := doc.Paths["/v1/tenants/{tenant}/settings"]["put"].(map[string]any)
	responses, _ := op["responses"].(map[string]any)
	if len(responses) == 0 {
		t.Fatal("openapi.yaml documents no responses of PUT /v1/tenants/{tenant}/settings")
	}
	if _, ok := responses[strconv.Itoa(r.status)]; !ok {
		t.Errorf("openapi.yaml lists no %d for PUT /v1/tenants/{tenant}/settings", r.status)
	}
}

func TestApprovers(t *testing.T) {
	e := newEnv(t)
	const base = "/v1/tenants/contoso/approvers"
	list := func(who user) []string {
		t.Helper()
		r := e.do(who, "GET", base, nil)
		return decode[struct{ Approvers []string }](t, r, 200).Approvers
	}

	if r := e.do(contosoAdmin, "GET", base, nil); strings.TrimSpace(string(r.body)) != `{"approvers":[]}` {
		t.Errorf("empty list = %s", r.body)
	}
	for _, u := range []string{"zoe@contoso.example", "approver@contoso.example", "zoe@contoso.example"} {
		r := e.do(contosoAdmin, "PUT", base+"/"+u, nil)
		if r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Fatalf("add %s: %d %s", u, r.status, r.body)
		}
	}
	if got := list(contosoAdmin); !slices.Equal(got, []string{"approver@contoso.example", "zoe@contoso.example"}) {
		t.Errorf("approvers = %v", got)
	}
	if got := list(contosoApprover); len(got) != 2 {
		t.Errorf("approver's view = %v", got)
	}

	tests := []struct {
		name   string
		who    user
		method string
		path   string
		status int
		code   string
	}{
		{"approver may not add", contosoApprover, "PUT", base + "/mallory", 403, "forbidden"},
		{"approver may not remove", contosoApprover, "DELETE", base + "/zoe@contoso.example", 403, "forbidden"},
		{"manager may not add", mia, "PUT", base + "/mallory", 403, "forbidden"},
		{"other tenant may not list", fabrikamAdmin, "GET", base, 403, "forbidden"},
		{"other tenant may not add", fabrikamAdmin, "PUT", base + "/mallory", 403, "forbidden"},
		{"tenant user may not list", contosoUser, "GET", base, 403, "forbidden"},
		{"bad user", contosoAdmin, "PUT", base + "/bad%20user", 400, "invalid_user"},
		{"user with key syntax", contosoAdmin, "PUT", base + "/x%7D:settings", 400, "invalid_user"},
		{"bad tenant", contosoAdmin, "PUT", "/v1/tenants/-contoso/approvers/zoe", 400, "invalid_tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(tc.who, tc.method, tc.path, nil), tc.status, tc.code, "")
		})
	}

	if r := e.do(contosoAdmin, "DELETE", base+"/zoe@contoso.example", nil); r.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	// Removing again changes nothing, and says so
	// (TestRemovingANonApproverIsNotFound).
	wantError(t, e.do(contosoAdmin, "DELETE", base+"/zoe@contoso.example", nil), http.StatusNotFound, "approver_not_found", "")
	if got := list(contosoAdmin); !slices.Equal(got, []string{"approver@contoso.example"}) {
		t.Errorf("after remove = %v", got)
	}
}

// TestApproversOfARemovedDomain: an assignment whose user is no longer
// in one of the tenant's domains approves nothing (grants checks the
// domain), so the list does not show it among the approvers: it lists it
// apart, as not counting, with the domain that is missing, for the
// tenant's global admins to remove or the provider to register again.
func TestApproversOfARemovedDomain(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	const base = "/v1/tenants/contoso/approvers"
	type listing struct {
		Approvers   []string
		NotCounting []struct{ User, Reason string } `json:"not_counting"`
	}
	domains := func(d ...string) {
		t.Helper()
		decode[tenants.Tenant](t, e.do(lara, "PATCH", "/v1/tenants/contoso", map[string]any{"domains": d}), http.StatusOK)
	}
	domains("contoso.example", "contoso-old.example")
	for _, u := range []string{"zoe@contoso.example", "olly@contoso-old.example"} {
		if r := e.do(contosoAdmin, "PUT", base+"/"+u, nil); r.status != http.StatusNoContent {
			t.Fatalf("add %s: %d %s", u, r.status, r.body)
		}
	}
	domains("contoso.example")

	req := e.file(alice, "contoso", "exchange")
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)
	olly := user{sub: "olly@contoso-old.example", roles: []identity.Role{identity.RoleApprover}, tenant: "contoso"}
	if r := e.do(olly, "POST", "/v1/requests/"+req.ID+"/approve", nil); r.status == http.StatusOK {
		t.Fatalf("an approver of a removed domain approved: %s", r.body)
	}

	for _, who := range []user{contosoAdmin, mia} {
		got := decode[listing](t, e.do(who, "GET", base, nil), http.StatusOK)
		if !slices.Equal(got.Approvers, []string{"zoe@contoso.example"}) {
			t.Errorf("%s: approvers = %v, want only the one who counts", who.sub, got.Approvers)
		}
		if len(got.NotCounting) != 1 || got.NotCounting[0].User != "olly@contoso-old.example" ||
			!strings.Contains(got.NotCounting[0].Reason, "contoso-old.example") {
			t.Errorf("%s: not counting = %+v, want olly, naming the missing domain", who.sub, got.NotCounting)
		}
	}

	// Registered again, the domain's assignment counts again, and is
	// listed so.
	domains("contoso.example", "contoso-old.example")
	got := decode[listing](t, e.do(contosoAdmin, "GET", base, nil), http.StatusOK)
	if !slices.Equal(got.Approvers, []string{"olly@contoso-old.example", "zoe@contoso.example"}) || len(got.NotCounting) != 0 {
		t.Errorf("after the domain is back: %+v", got)
	}
	if r := e.do(contosoAdmin, "GET", base, nil); strings.Contains(string(r.body), "not_counting") {
		t.Errorf("a list where every approver counts names not_counting: %s", r.body)
	}
}

// TestApproverIDsIgnoreCase: user principal names are case-insensitive.
// An approver assigned as Approver@Contoso.Example is the user whose token
// names approver@contoso.example, and assigning both spellings assigns one
// person; removing any spelling removes them.
func TestApproverIDsIgnoreCase(t *testing.T) {
	e := newEnv(t)
	const base = "/v1/tenants/contoso/approvers"
	for _, u := range []string{"Approver@Contoso.Example", "approver@contoso.example", "APPROVER@contoso.example"} {
		if r := e.do(contosoAdmin, "PUT", base+"/"+u, nil); r.status != http.StatusNoContent {
			t.Fatalf("add %s: %d %s", u, r.status, r.body)
		}
	}
	list := decode[struct{ Approvers []string }](t, e.do(contosoAdmin, "GET", base, nil), http.StatusOK).Approvers
	if !slices.Equal(list, []string{"approver@contoso.example"}) {
		t.Fatalf("approvers = %v, want one, in lower case", list)
	}
	shouting := contosoApprover
	shouting.sub = "APPROVER@Contoso.Example"
	req := e.file(alice, "contoso", "exchange")
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)
	got := decode[grants.Request](t, e.do(shouting, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)
	if got.State != grants.StateApproved {
		t.Fatalf("state %s", got.State)
	}
	if r := e.do(contosoAdmin, "DELETE", base+"/aPPROVER@contoso.example", nil); r.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if list := decode[struct{ Approvers []string }](t, e.do(contosoAdmin, "GET", base, nil), http.StatusOK).Approvers; len(list) != 0 {
		t.Fatalf("after remove = %v", list)
	}
	wantError(t, e.do(contosoApprover, "POST", "/v1/requests/"+req.ID+"/revoke", nil), http.StatusNotFound, "not_found", "")
}

func TestAudit(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	req := e.file(alice, "contoso", "exchange")
	e.clk.Advance(time.Minute)
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), 200)
	e.clk.Advance(time.Minute)
	decode[grants.Request](t, e.do(contosoApprover, "POST", "/v1/requests/"+req.ID+"/approve", map[string]string{"comment": "go ahead"}), 200)

	records := func(r result) []record.Record {
		t.Helper()
		return decode[struct{ Records []record.Record }](t, r, 200).Records
	}

	t.Run("tenant view", func(t *testing.T) {
		r := e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso", nil)
		if strings.Contains(string(r.body), "ProviderUserId") || strings.Contains(string(r.body), `"mia"`) || strings.Contains(string(r.body), `"alice"`) {
			t.Errorf("tenant view names the provider's staff: %s", r.body)
		}
		recs := records(r)
		var ops []string
		for i, rec := range recs {
			ops = append(ops, rec.Operation)
			if i > 0 && rec.CreationTime.After(recs[i-1].CreationTime.Time) {
				t.Errorf("record %d is newer than record %d", i, i-1)
			}
		}
		want := []string{record.OpTenantDecision, record.OpManagerDecision, record.OpNewRequest, record.OpAddApprover, record.OpOnboardTenant}
		if !slices.Equal(ops, want) {
			t.Fatalf("operations = %v, want %v", ops, want)
		}
		d := recs[0]
		if d.ApprovalDecision != record.ApprovalApprove || d.UserId != contosoApprover.sub || d.ObjectId != req.ID ||
			d.LockboxRequestId != req.ID || d.Comment != "go ahead" || d.ClientIP != "127.0.0.1" ||
			!record.IsGUID(d.OrganizationId) || d.LockboxTenant != "contoso" || d.Workload != "exchange" || d.ResultStatus != record.ResultSucceeded ||
			!d.CreationTime.Equal(e.clk.Now().Truncate(time.Second)) {
			t.Errorf("tenant decision record = %+v", d)
		}
		if m := recs[1]; m.UserId != record.ProviderUserID || m.ApprovalDecision != record.ApprovalApprove || m.ClientIP != "" {
			t.Errorf("manager decision record = %+v", m)
		}
	})
	t.Run("provider auditor sees who the operator was", func(t *testing.T) {
		recs := records(e.do(auditor, "GET", "/v1/audit?tenant=contoso", nil))
		if len(recs) < 3 || recs[1].ProviderUserId != "mia" || recs[2].ProviderUserId != "alice" {
			t.Errorf("provider view = %+v", recs)
		}
	})
	t.Run("limit", func(t *testing.T) {
		if recs := records(e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso&limit=1", nil)); len(recs) != 1 || recs[0].Operation != record.OpTenantDecision {
			t.Errorf("limit=1: %+v", recs)
		}
	})
	t.Run("empty log is an array", func(t *testing.T) {
		if r := e.do(auditor, "GET", "/v1/audit?tenant=fabrikam&user=nobody", nil); strings.TrimSpace(string(r.body)) != `{"records":[]}` {
			t.Errorf("body = %s", r.body)
		}
	})

	errs := []struct {
		name   string
		who    user
		query  string
		status int
		code   string
	}{
		// A manager may read no audit log: told so before being asked
		// for a tenant.
		{"manager without a tenant is no auditor", mia, "", 403, "forbidden"},
		{"tenant required of the provider's auditors for verify", auditor, "/verify", 400, "invalid_query"},
		{"bad tenant", auditor, "?tenant=Contoso", 400, "invalid_tenant"},
		{"bad limit", contosoAdmin, "?tenant=contoso&limit=-1", 400, "invalid_limit"},
		{"unknown parameter", contosoAdmin, "?tenant=contoso&actor=mia", 400, "invalid_query"},
		{"other tenant's admin", fabrikamAdmin, "?tenant=contoso", 403, "forbidden"},
		{"approver is no auditor", contosoApprover, "?tenant=contoso", 403, "forbidden"},
		{"manager is no auditor", mia, "?tenant=contoso", 403, "forbidden"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(tc.who, "GET", "/v1/audit"+tc.query, nil), tc.status, tc.code, "")
		})
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		who    user
		method string
		path   string
		status int
		allow  string
	}{
		{"unknown route", mia, "GET", "/v1/nope", 404, ""},
		{"unknown route, no token", anonymous, "GET", "/v1/nope", 404, ""},
		{"root", anonymous, "GET", "/", 404, ""},
		{"trailing slash", mia, "GET", "/v1/requests/", 404, ""},
		{"double slash", mia, "GET", "/v1//requests", 404, ""},
		{"dot segment", mia, "GET", "/v1/x/../requests", 404, ""},
		{"wrong method", mia, "DELETE", "/v1/requests", 405, "GET, HEAD, POST"},
		{"wrong method on settings", contosoAdmin, "PATCH", "/v1/tenants/contoso/settings", 405, "GET, HEAD, PUT"},
		{"wrong method on an action", mia, "GET", "/v1/requests/01957a3c-0000-7000-8000-000000000000/approve", 405, "POST"},
		{"wrong method on approvers", contosoAdmin, "POST", "/v1/tenants/contoso/approvers/zoe", 405, "PUT, DELETE"},
		// A tenant's entry is read with GET and changed with PATCH: Allow
		// must name both, or a client following it never finds PATCH.
		{"wrong method on a tenant", mia, "POST", "/v1/tenants/contoso", 405, "GET, HEAD, PATCH"},
		{"wrong method on the tenant list", mia, "PATCH", "/v1/tenants", 405, "GET, HEAD, POST"},
		// Every GET route answers HEAD (net/http serves it with the GET
		// handler): Allow names it, as ServeMux's own 405 does.
		{"wrong method on a GET-only route", mia, "POST", "/v1/requests/01957a3c-0000-7000-8000-000000000000", 405, "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.who, tc.method, tc.path, nil)
			code := map[int]string{404: "not_found", 405: "method_not_allowed"}[tc.status]
			wantError(t, r, tc.status, code, "")
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			// Each method Allow names is served.
			for m := range strings.SplitSeq(tc.allow, ", ") {
				if m == "" {
					continue
				}
				if r := e.do(tc.who, m, tc.path, nil); r.status == http.StatusMethodNotAllowed {
					t.Errorf("Allow names %s, which gets 405", m)
				}
			}
		})
	}

	t.Run("request ids differ", func(t *testing.T) {
		a := e.do(mia, "GET", "/v1/requests", nil).header.Get("X-Request-Id")
		b := e.do(mia, "GET", "/v1/requests", nil).header.Get("X-Request-Id")
		c := e.do(anonymous, "GET", "/v1/requests", nil, withHeader("X-Request-Id", a)).header.Get("X-Request-Id")
		if a == b || c == a {
			t.Errorf("request ids %q %q %q", a, b, c)
		}
	})
}

// A store that fails answers 503 with a generic message, and the log names
// the cause under the response's request id.
func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	if err := e.rdb.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.do(mia, "GET", "/v1/requests", nil)
	wantError(t, r, http.StatusServiceUnavailable, "unavailable", "retry later")
	if strings.Contains(string(r.body), "redis") {
		t.Errorf("body leaks the cause: %s", r.body)
	}
	id := r.header.Get("X-Request-Id")
	logs := e.logs.String()
	if !strings.Contains(logs, `"trace_id":"`+id+`"`) || !strings.Contains(logs, "client is closed") {
		t.Errorf("log lacks the trace id %s or the cause:\n%s", id, logs)
	}
}

// TestUnavailableSaysWhenToRetry: a 503 is an answer to try again, and it
// says when (RFC 9110 10.2.3), whether the store failed or ran past the
// call's deadline; an answer no retry would change says nothing of the sort.
func TestUnavailableSaysWhenToRetry(t *testing.T) {
	retryAfter := func(t *testing.T, r result) {
		t.Helper()
		wantError(t, r, http.StatusServiceUnavailable, "unavailable", "retry later")
		v := r.header.Values("Retry-After")
		if len(v) != 1 {
			t.Fatalf("Retry-After = %q, want one value", v)
		}
		if n, err := strconv.Atoi(v[0]); err != nil || n < 1 {
			t.Errorf("Retry-After = %q, want a whole number of seconds, at least 1", v[0])
		}
	}
	t.Run("store down", func(t *testing.T) {
		e := newEnv(t)
		wantError(t, e.do(mia, "GET", "/v1/requests?state=bogus", nil), http.StatusBadRequest, "invalid_state", "")
		if err := e.rdb.Close(); err != nil {
			t.Fatal(err)
		}
		retryAfter(t, e.do(mia, "GET", "/v1/requests", nil))
		retryAfter(t, e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", `{"lockbox_enabled":false}`))
	})
	t.Run("past the deadline", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config) { c.Auth, c.Timeout = slowAuth{}, time.Millisecond })
		retryAfter(t, e.do(mia, "GET", "/v1/requests", nil))
	})
	t.Run("not on other errors", func(t *testing.T) {
		e := newEnv(t)
		for _, r := range []result{
			e.do(mia, "GET", "/v1/requests?state=bogus", nil),
			e.do(anonymous, "GET", "/v1/requests", nil),
			e.do(mia, "GET", "/v1/requests/01957a3c-0000-7000-8000-000000000000", nil),
		} {
			if v := r.header.Values("Retry-After"); len(v) != 0 {
				t.Errorf("%d answer has Retry-After %q", r.status, v)
			}
		}
	})
}

// brokenAuth fails without saying the token is bad: a broken verifier.
type brokenAuth struct{}

func (brokenAuth) Verify(context.Context, string) (identity.Principal, error) {
	return identity.Principal{}, errors.New("key store exploded")
}

func TestBrokenVerifierFailsClosed(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.Auth = brokenAuth{} })
	r := e.do(mia, "GET", "/v1/requests", nil)
	wantError(t, r, http.StatusInternalServerError, "internal", "internal error")
	if strings.Contains(string(r.body), "exploded") {
		t.Errorf("body leaks the cause: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "exploded") {
		t.Errorf("log lacks the cause: %s", e.logs.String())
	}
}

// slowAuth answers only when the call's deadline has passed, like a
// dependency that hangs.
type slowAuth struct{}

func (slowAuth) Verify(ctx context.Context, _ string) (identity.Principal, error) {
	<-ctx.Done()
	return identity.Principal{}, fmt.Errorf("fetch keys: %w", ctx.Err())
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.Auth, c.Timeout = slowAuth{}, 50*time.Millisecond })
	began := time.Now()
	r := e.do(mia, "GET", "/v1/requests", nil)
	wantError(t, r, http.StatusServiceUnavailable, "unavailable", "retry later")
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestConfig(t *testing.T) {
	full := func() api.Config {
		return api.Config{Auth: brokenAuth{}, Requests: &grants.Store{}, Tenants: &tenants.Store{}, Audit: &audit.Log{}}
	}
	tests := []struct {
		name    string
		mutate  func(*api.Config)
		wantErr string
	}{
		{"complete", func(*api.Config) {}, ""},
		{"no auth", func(c *api.Config) { c.Auth = nil }, "Auth"},
		{"no requests", func(c *api.Config) { c.Requests = nil }, "Requests"},
		{"no tenants", func(c *api.Config) { c.Tenants = nil }, "Tenants"},
		{"no audit", func(c *api.Config) { c.Audit = nil }, "Audit"},
		{"negative body limit", func(c *api.Config) { c.MaxBodyBytes = -1 }, "MaxBodyBytes"},
		{"negative timeout", func(c *api.Config) { c.Timeout = -time.Second }, "Timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full()
			tc.mutate(&cfg)
			_, err := api.New(cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.CheckAndSetDefaults() != nil || cfg.MaxBodyBytes != api.DefaultMaxBodyBytes || cfg.Timeout != api.DefaultTimeout || cfg.Logger == nil {
					t.Errorf("defaults not set: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

// The request and audit JSON the API serves keeps the documented names.
func TestResponseFieldNames(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(e.do(alice, "GET", "/v1/requests/"+req.ID, nil).body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "tenant", "service", "service_request", "reason", "duration", "activities", "requester", "state", "created_at", "decide_by", "history"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("request lacks %q: %s", k, raw)
		}
	}
	var events []map[string]any
	if err := json.Unmarshal(raw["history"], &events); err != nil || len(events) != 1 {
		t.Fatalf("history: %v %s", err, raw["history"])
	}
	for _, k := range []string{"action", "actor", "actor_kind", "to", "at", "client_ip"} {
		if _, ok := events[0][k]; !ok {
			t.Errorf("event lacks %q: %v", k, events[0])
		}
	}
}

// TestTenantRegistry: the provider's Lockbox administrators onboard tenants;
// requests, settings and approvers exist only for onboarded tenants, and
// approvers are users of their tenant.
func TestTenantRegistry(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	body := map[string]any{"id": "northwind", "display_name": "Northwind Traders", "domains": []string{"northwind.example"},
		"global_admins": []string{"nancy@northwind.example"}}

	for _, who := range []user{alice, mia, auditor, contosoAdmin} {
		wantError(t, e.do(who, "POST", "/v1/tenants", body), http.StatusForbidden, "forbidden", "lockbox-admin")
	}
	wantError(t, e.do(lara, "POST", "/v1/tenants", map[string]any{"id": "northwind", "display_name": "N"}), http.StatusBadRequest, "invalid_tenant", "domains")
	r := e.do(lara, "POST", "/v1/tenants", body)
	got := decode[struct {
		tenants.Tenant
		Settings tenants.Settings `json:"settings"`
	}](t, r, http.StatusCreated)
	if got.ID != "northwind" || got.DisplayName != "Northwind Traders" || len(got.OrganizationID) != 36 ||
		!got.Settings.LockboxEnabled || r.header.Get("Location") != "/v1/tenants/northwind" {
		t.Fatalf("onboarded = %+v, location %q", got, r.header.Get("Location"))
	}
	wantError(t, e.do(lara, "POST", "/v1/tenants", body), http.StatusConflict, "tenant_exists", "northwind")

	// Anyone may file only for onboarded tenants; the refusal names the
	// tenant.
	wantError(t, e.do(alice, "POST", "/v1/requests", map[string]any{"tenant": "nosuchtenant", "service": "exchange",
		"service_request": "SR-1", "reason": "r", "duration": "1h"}), http.StatusNotFound, "tenant_not_found", "nosuchtenant")
	e.do(alice, "POST", "/v1/requests", map[string]any{"tenant": "northwind", "service": "exchange",
		"service_request": "SR-1", "reason": "r", "duration": "1h"})

	list := decode[struct{ Tenants []tenants.Tenant }](t, e.do(alice, "GET", "/v1/tenants", nil), http.StatusOK).Tenants
	if len(list) != 3 || list[0].ID != "contoso" || list[2].ID != "northwind" {
		t.Fatalf("operator's tenant list = %+v", list)
	}
	// A page at a time.
	first := decode[wire.TenantList](t, e.do(alice, "GET", "/v1/tenants?limit=2", nil), http.StatusOK)
	if len(first.Tenants) != 2 || first.NextCursor == "" {
		t.Fatalf("a page of 2: %+v", first)
	}
	rest := decode[wire.TenantList](t, e.do(alice, "GET", "/v1/tenants?limit=2&cursor="+url.QueryEscape(first.NextCursor), nil), http.StatusOK)
	if len(rest.Tenants) != 1 || rest.Tenants[0].ID != "northwind" || rest.NextCursor != "" {
		t.Fatalf("the page after: %+v", rest)
	}
	wantError(t, e.do(alice, "GET", "/v1/tenants?limit=1001", nil), http.StatusBadRequest, "invalid_limit", "")
	wantError(t, e.do(alice, "GET", "/v1/tenants?cursor=x", nil), http.StatusBadRequest, "invalid_cursor", "")
	own := decode[struct{ Tenants []tenants.Tenant }](t, e.do(contosoAdmin, "GET", "/v1/tenants", nil), http.StatusOK).Tenants
	if len(own) != 1 || own[0].ID != "contoso" {
		t.Fatalf("tenant admin's list = %+v", own)
	}
	wantError(t, e.do(contosoAdmin, "GET", "/v1/tenants/northwind", nil), http.StatusNotFound, "tenant_not_found", "")

	// Approvers are users of the tenant: the provider's manager is refused.
	wantError(t, e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/mary@provider.example", nil),
		http.StatusBadRequest, "not_tenant_user", "contoso.example")
	wantError(t, e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/fay@fabrikam.example", nil),
		http.StatusBadRequest, "not_tenant_user", "")

	upd := decode[tenants.Tenant](t, e.do(lara, "PATCH", "/v1/tenants/northwind", map[string]any{"display_name": "Northwind"}), http.StatusOK)
	if upd.DisplayName != "Northwind" || upd.OrganizationID != got.OrganizationID {
		t.Fatalf("updated = %+v", upd)
	}
	wantError(t, e.do(lara, "PATCH", "/v1/tenants/northwind", map[string]any{"id": "other"}), http.StatusBadRequest, "invalid_json", "")
	wantError(t, e.do(contosoAdmin, "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": "x"}), http.StatusForbidden, "forbidden", "")
}

// TestRemovingANonApproverIsNotFound: removing a user who is not an
// approver answered 204, as a removal does, so a typo in the name
// ("approver remove contoso zed@...") looked like success. It is 404
// approver_not_found, naming the user, with nothing changed or audited; a
// real removal, in another case than assigned, is still 204.
func TestRemovingANonApproverIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	before, err := e.rdb.XLen(context.Background(), keys.Audit("contoso")).Result()
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/zed@contoso.example", nil),
		http.StatusNotFound, "approver_not_found", "zed@contoso.example is not an approver of tenant contoso")
	if after, err := e.rdb.XLen(context.Background(), keys.Audit("contoso")).Result(); err != nil || after != before {
		t.Errorf("audit records: %d, was %d (%v): the refused removal wrote one", after, before, err)
	}
	if r := e.do(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/"+strings.ToUpper(contosoApprover.sub), nil); r.status != http.StatusNoContent {
		t.Fatalf("removing the approver: %d %s", r.status, r.body)
	}
	// Removed, the approver is no approver: a second removal is told so.
	wantError(t, e.do(contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/"+contosoApprover.sub, nil),
		http.StatusNotFound, "approver_not_found", "")
}

// TestTenantETag: GET of a registry entry answers its revision as a strong
// ETag, and a PATCH with If-Match writes only over that revision: of two
// Lockbox administrators who read the same entry, one adds a domain and
// the other, sending the lists as read plus a global administrator, is
// told to read again instead of dropping the domain. No If-Match, or "*",
// writes as before.
func TestTenantETag(t *testing.T) {
	e := newEnv(t)
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	const path = "/v1/tenants/contoso"
	etag := func(r result) string {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("status = %d; body: %s", r.status, r.body)
		}
		return r.header.Get("ETag")
	}

	r := e.do(lara, "GET", path, nil)
	read := decode[tenants.Tenant](t, r, http.StatusOK)
	if got := r.header.Get("ETag"); got != `"1"` {
		t.Fatalf("ETag of the onboarded entry = %q, want \"1\"", got)
	}
	if got := etag(e.do(contosoAdmin, "GET", path, nil)); got != `"1"` {
		t.Fatalf("the tenant's own admin reads ETag %q, want \"1\"", got)
	}
	// One administrator adds a domain...
	r = e.do(lara, "PATCH", path, map[string]any{"domains": append(slices.Clone(read.Domains), "contoso.com")}, withHeader("If-Match", `"1"`))
	if got := etag(r); got != `"2"` {
		t.Fatalf("ETag of the change = %q, want \"2\"", got)
	}
	// ...and the other's change, the lists as read with a global admin
	// added, would drop it: refused.
	wantError(t, e.do(lara, "PATCH", path, map[string]any{"domains": read.Domains,
		"global_admins": append(slices.Clone(read.GlobalAdmins), "gina@contoso.example")}, withHeader("If-Match", `"1"`)),
		http.StatusPreconditionFailed, "tenant_changed", "read it again")
	r = e.do(lara, "GET", path, nil)
	if got := decode[tenants.Tenant](t, r, http.StatusOK); !slices.Equal(got.Domains, []string{"contoso.com", "contoso.example"}) ||
		!slices.Equal(got.GlobalAdmins, read.GlobalAdmins) || r.header.Get("ETag") != `"2"` {
		t.Fatalf("after the refused change: %+v, ETag %q", got, r.header.Get("ETag"))
	}
	// Read again, change again: it applies.
	r = e.do(lara, "PATCH", path, map[string]any{"global_admins": append(slices.Clone(read.GlobalAdmins), "gina@contoso.example")},
		withHeader("If-Match", `"2"`))
	if got := decode[tenants.Tenant](t, r, http.StatusOK); len(got.Domains) != 2 || len(got.GlobalAdmins) != len(read.GlobalAdmins)+1 || r.header.Get("ETag") != `"3"` {
		t.Fatalf("change at the current revision: %+v, ETag %q", got, r.header.Get("ETag"))
	}
	// A change that changes nothing keeps the ETag.
	if got := etag(e.do(lara, "PATCH", path, map[string]any{"display_name": read.DisplayName}, withHeader("If-Match", `"3"`))); got != `"3"` {
		t.Fatalf("no-op change = ETag %q, want \"3\"", got)
	}
	// Scripts that send no If-Match, or "*", write whatever the revision.
	if got := etag(e.do(lara, "PATCH", path, map[string]any{"display_name": "Contoso"}, withHeader("If-Match", "*"))); got != `"4"` {
		t.Fatalf("If-Match * = ETag %q, want \"4\"", got)
	}
	if got := etag(e.do(lara, "PATCH", path, map[string]any{"display_name": "Contoso Ltd"})); got != `"5"` {
		t.Fatalf("no If-Match = ETag %q, want \"5\"", got)
	}
	// Who may not change the entry learns nothing from a stale tag, and
	// an unknown tenant is not found, whatever the tag.
	wantError(t, e.do(contosoAdmin, "PATCH", path, map[string]any{"display_name": "x"}, withHeader("If-Match", `"1"`)),
		http.StatusForbidden, "forbidden", "")
	wantError(t, e.do(lara, "PATCH", "/v1/tenants/nosuchtenant", map[string]any{"display_name": "x"}, withHeader("If-Match", `"1"`)),
		http.StatusNotFound, "tenant_not_found", "")

	for _, bad := range []string{``, `5`, `W/"5"`, `"5", "6"`, `"05"`, `"-1"`, `"x"`, `""`} {
		t.Run("If-Match "+bad, func(t *testing.T) {
			wantError(t, e.do(lara, "PATCH", path, map[string]any{"display_name": "x"}, withHeader("If-Match", bad)),
				http.StatusBadRequest, "invalid_if_match", `ETag a GET of the tenant answered, quotes included, such as "7"`)
		})
	}
	if got := etag(e.do(lara, "GET", path, nil)); got != `"5"` {
		t.Errorf("a refused If-Match wrote: ETag %q", got)
	}
}

// TestGrantKeys: GET /v1/keys serves the configured JWKS as it is, to
// anyone, with the JSON content type JWKS clients accept.
func TestGrantKeys(t *testing.T) {
	jwks := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k","alg":"EdDSA","use":"sig"}]}`
	e := newEnv(t, func(c *api.Config) { c.GrantKeys = []byte(jwks) })
	for _, u := range []user{anonymous, mia} {
		r := e.do(u, "GET", "/v1/keys", nil)
		if r.status != http.StatusOK || string(r.body) != jwks || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("as %q: %d %q %s", u.sub, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	if r := e.do(anonymous, "POST", "/v1/keys", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/keys: %d", r.status)
	}
}

// An engineer whose subject is no address has their token's e-mail kept on
// the request for their notifications: the provider sees it, a tenant's
// users never do (single request or list).
func TestRequesterEmailIsProviderOnly(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	opaque := user{sub: "00u1a2b3c4d5", roles: []identity.Role{identity.RoleOperator}, email: "opaque.alice@provider.example"}
	req := decode[grants.Request](t, e.do(opaque, "POST", "/v1/requests", grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour),
	}), http.StatusCreated)
	if req.RequesterEmail != opaque.email {
		t.Errorf("requester_email = %q in the engineer's view, want %q", req.RequesterEmail, opaque.email)
	}
	if got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK); got.RequesterEmail != opaque.email {
		t.Errorf("requester_email = %q in the manager's view, want %q", got.RequesterEmail, opaque.email)
	}
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)
	for _, path := range []string{"/v1/requests/" + req.ID, "/v1/requests", "/v1/requests?tenant=contoso"} {
		for _, u := range []user{contosoAdmin, contosoApprover} {
			r := e.do(u, "GET", path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("%s as %s: %d %s", path, u.sub, r.status, r.body)
			}
			if strings.Contains(string(r.body), "provider.example") || strings.Contains(string(r.body), "requester_email") {
				t.Errorf("%s as %s shows the requester's e-mail: %s", path, u.sub, r.body)
			}
		}
	}
}

// Every route refuses query parameters it does not take, as the listings
// always did. Ignored, a parameter misleads: a limit that limits nothing,
// a comment on a decision that is never recorded.
func TestUnknownQueryParameters(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	for _, tc := range []struct {
		who          user
		method, path string
		body         any
	}{
		{mia, "POST", "/v1/requests/" + req.ID + "/approve?comment=checked", nil},
		{mia, "GET", "/v1/requests/" + req.ID + "?history=false", nil},
		{alice, "POST", "/v1/requests?tenant=fabrikam", grants.CreateInput{Tenant: "contoso", Service: "sharepoint",
			ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)}},
		{mia, "GET", "/v1/tenants?state=active", nil},
		{mia, "GET", "/v1/tenants/contoso?expand=settings", nil},
		{lara, "PATCH", "/v1/tenants/contoso?dry_run=true", map[string]any{"display_name": "Contoso"}},
		{contosoAdmin, "GET", "/v1/tenants/contoso/settings?x=1", nil},
		{contosoAdmin, "PUT", "/v1/tenants/contoso/settings?lockbox_enabled=false", map[string]any{"lockbox_enabled": true}},
		{contosoAdmin, "GET", "/v1/tenants/contoso/approvers?limit=1", nil},
		{contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/zoe@contoso.example?notify=false", nil},
		{contosoAdmin, "DELETE", "/v1/tenants/contoso/approvers/zoe@contoso.example?x=1", nil},
		{contosoAdmin, "GET", "/v1/audit/verify?tenant=contoso&full=1", nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			wantError(t, e.do(tc.who, tc.method, tc.path, tc.body), http.StatusBadRequest, "invalid_query", "unknown query parameter")
		})
	}
	// Nothing was done: the request still awaits its manager.
	if got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK); got.State != grants.StatePendingManager {
		t.Errorf("state = %s after refused calls, want pending_manager", got.State)
	}
	// The token is checked first: an anonymous caller learns nothing about
	// the parameters.
	wantError(t, e.do(anonymous, "GET", "/v1/tenants?limit=1", nil), http.StatusUnauthorized, "unauthenticated", "")
}

// TestUnknownQueryParameterSaysWhatTheRouteTakes: the refusal of a
// parameter ended "allowed: " with nothing after it on every route that
// takes none (a decision, a request, the tenant routes), as if the list had
// been lost. It says the route takes none, and lists them where it takes
// some.
func TestUnknownQueryParameterSaysWhatTheRouteTakes(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	for _, tc := range []struct {
		who          user
		method, path string
		want         string
	}{
		{mia, "POST", "/v1/requests/" + req.ID + "/approve?comment=checked",
			`unknown query parameter "comment": this route takes no query parameters`},
		{contosoAdmin, "GET", "/v1/tenants/contoso/settings?x=1",
			`unknown query parameter "x": this route takes no query parameters`},
		{mia, "GET", "/v1/requests?page=2",
			`unknown query parameter "page"; allowed: tenant, state, created_after, cursor, limit`},
		{contosoAdmin, "GET", "/v1/audit/verify?tenant=contoso&full=1",
			`unknown query parameter "full"; allowed: tenant, since_seal`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := e.do(tc.who, tc.method, tc.path, nil)
			wantError(t, r, http.StatusBadRequest, "invalid_query", "")
			if got := errorOf(t, r).Message; got != tc.want {
				t.Errorf("message = %q, want %q", got, tc.want)
			}
		})
	}
}

// created_after is exact to the nanosecond, as created_at is: a client
// polling with the created_at of the newest request it saw gets every
// request created after it, also one in the same millisecond.
func TestListCreatedAfterWithinAMillisecond(t *testing.T) {
	e := newEnv(t)
	e.clk.Advance(100 * time.Microsecond)
	first := e.file(alice, "contoso", "exchange")
	e.clk.Advance(300 * time.Microsecond)
	second := e.file(bob, "contoso", "exchange")
	e.clk.Advance(time.Millisecond)
	third := e.file(alice, "contoso", "sharepoint")
	ids := func(q string) []string {
		t.Helper()
		list := decode[struct{ Requests []grants.Request }](t, e.do(mia, "GET", "/v1/requests?created_after="+url.QueryEscape(q), nil), http.StatusOK)
		var out []string
		for _, r := range list.Requests {
			out = append(out, r.ID)
		}
		return out
	}
	if got, want := ids(first.CreatedAt.Format(time.RFC3339Nano)), []string{third.ID, second.ID}; !slices.Equal(got, want) {
		t.Errorf("created after the first: %v, want %v", got, want)
	}
	if got, want := ids(second.CreatedAt.Format(time.RFC3339Nano)), []string{third.ID}; !slices.Equal(got, want) {
		t.Errorf("created after the second: %v, want %v", got, want)
	}
	if got, want := ids(first.CreatedAt.Add(-time.Nanosecond).Format(time.RFC3339Nano)), []string{third.ID, second.ID, first.ID}; !slices.Equal(got, want) {
		t.Errorf("created after just before the first: %v, want %v", got, want)
	}
}
