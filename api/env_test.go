package api_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

const (
	issuer   = "https://idp.lockbox.test"
	audience = "lockbox-api"
)

// start is where every test's clock begins.
var start = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// catalog is the activity catalog of the tests.
type catalog map[string][]string

func (c catalog) Activities(service string) ([]string, bool) {
	a, ok := c[service]
	return a, ok
}

var testCatalog = catalog{
	"exchange":   {"Get-Mailbox", "Get-MailboxMessage", "New-MailboxRepairRequest"},
	"sharepoint": {"Get-SPOSite"},
	"onedrive":   {"Get-OneDriveFile"},
}

// user is someone the tests mint tokens for.
type user struct {
	sub    string
	roles  []identity.Role
	tenant string
	email  string // the token's email claim, when set
}

var (
	alice = user{sub: "alice", roles: []identity.Role{identity.RoleOperator}}
	bob   = user{sub: "bob", roles: []identity.Role{identity.RoleOperator}}
	mia   = user{sub: "mia", roles: []identity.Role{identity.RoleSupportManager}}
	nina  = user{sub: "nina", roles: []identity.Role{identity.RoleSupportManager}}
	// sam is both an operator and a manager: the two-person rule case.
	sam     = user{sub: "sam", roles: []identity.Role{identity.RoleOperator, identity.RoleSupportManager}}
	auditor = user{sub: "audrey", roles: []identity.Role{identity.RoleAuditReader}}

	contosoAdmin = user{sub: "admin@contoso.example", roles: []identity.Role{identity.RoleGlobalAdmin}, tenant: "contoso"}
	// contosoApprover becomes an approver only once contosoAdmin assigns
	// them; the role claim alone grants nothing.
	contosoApprover = user{sub: "approver@contoso.example", roles: []identity.Role{identity.RoleApprover}, tenant: "contoso"}
	contosoUser     = user{sub: "user@contoso.example", tenant: "contoso"}
	// contosoAuditor reads contoso's requests and decides none.
	contosoAuditor = user{sub: "auditor@contoso.example", roles: []identity.Role{identity.RoleAuditReader}, tenant: "contoso"}
	fabrikamAdmin  = user{sub: "admin@fabrikam.example", roles: []identity.Role{identity.RoleGlobalAdmin}, tenant: "fabrikam"}

	anonymous = user{}
)

// env is a whole control plane over a real Redis, served by a real HTTP
// server, with a clock the test moves.
type env struct {
	t    *testing.T
	srv  *httptest.Server
	clk  *clock.Fake
	key  ed25519.PrivateKey
	rdb  *redis.Client
	logs *syncBuffer
	// reg counts what the registry and the audit log report of the
	// records they can't read (lockbox_unreadable_records_total).
	reg *prometheus.Registry
}

func newEnv(t *testing.T, opts ...func(*api.Config)) *env {
	t.Helper()
	return newEnvOn(t, redistest.Client(t), opts...)
}

// newEnvOn is newEnv over rdb, for tests that stop the Redis under it.
func newEnvOn(t *testing.T, rdb *redis.Client, opts ...func(*api.Config)) *env {
	t.Helper()
	clk := clock.NewFake(start)
	log := audit.NewLog(rdb, clk.Now)
	ten := tenants.NewStore(rdb, log, clk.Now)
	reqs, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ten, Catalog: testCatalog, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ten.SetGuard(reqs)
	log.SetTenantDirectory(ten)
	reg := prometheus.NewRegistry()
	if err := log.ReportUnreadable(reg, nil); err != nil {
		t.Fatal(err)
	}
	if err := ten.ReportUnreadable(reg, nil); err != nil {
		t.Fatal(err)
	}
	tenanttest.Onboard(t, ten, "contoso", "fabrikam")
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(t.TempDir(), key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.NewVerifier(identity.Config{Issuer: issuer, Audience: audience, JWKSFile: jwks, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := api.Config{
		Auth:     v,
		Requests: reqs,
		Tenants:  ten,
		Audit:    log,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, clk: clk, key: key, rdb: rdb, logs: logs, reg: reg}
}

// token mints a token for u, valid from the env's current time.
func (e *env) token(u user) string {
	e.t.Helper()
	tok, err := identity.Mint(e.key, issuer, audience, identity.Claims{Subject: u.sub, Roles: u.roles, TenantID: u.tenant, Email: u.email}, e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// result is one response, read whole.
type result struct {
	status int
	header http.Header
	body   []byte
}

// option changes a request before it is sent.
type option func(*http.Request)

func withHeader(k, v string) option { return func(r *http.Request) { r.Header.Add(k, v) } }
func withoutHeader(k string) option { return func(r *http.Request) { r.Header.Del(k) } }

// do sends a request as u (anonymous sends no token). body is JSON-encoded
// unless it is a string or []byte, which are sent as they are.
func (e *env) do(u user, method, path string, body any, opts ...option) result {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.sub != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(u))
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	res := result{status: resp.StatusCode, header: resp.Header, body: b}
	e.checkInvariants(method, path, res)
	return res
}

// checkInvariants holds for every response of the API.
func (e *env) checkInvariants(method, path string, r result) {
	e.t.Helper()
	if id := r.header.Get("X-Request-Id"); len(id) < 16 {
		e.t.Errorf("%s %s: X-Request-Id = %q", method, path, id)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("%s %s: Cache-Control = %q, want no-store", method, path, cc)
	}
	for _, msg := range openAPISpec(e.t).check(method, path, r) {
		e.t.Errorf("%s %s: %d answer does not match openapi.yaml: %s", method, path, r.status, msg)
	}
	if r.status == http.StatusNoContent || r.status == http.StatusNotModified || method == http.MethodHead || strings.HasSuffix(path, "/openapi.yaml") ||
		(r.status == http.StatusOK && strings.HasPrefix(path, "/v1/audit/export?")) {
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	if !json.Valid(r.body) {
		e.t.Errorf("%s %s: body is not JSON: %s", method, path, r.body)
	}
	if r.status >= 400 {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		var b httperr.Body
		if err := dec.Decode(&b); err != nil || b.Error.Code == "" || b.Error.Message == "" {
			e.t.Errorf("%s %s: %d body is not the error document: %s", method, path, r.status, r.body)
		}
	}
}

// errorOf returns the error document of r.
func errorOf(t *testing.T, r result) httperr.Detail {
	t.Helper()
	var b httperr.Body
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("not an error document: %s", r.body)
	}
	return b.Error
}

// decode decodes r's body, failing the test unless r has status want.
func decode[T any](t *testing.T, r result, want int) T {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body: %s", r.status, want, r.body)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T: %v; body: %s", v, err, r.body)
	}
	return v
}

// wantError fails the test unless r is an error with status and code whose
// message contains msg.
func wantError(t *testing.T, r result, status int, code, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	got := errorOf(t, r)
	if got.Code != code {
		t.Errorf("code = %q, want %q (message %q)", got.Code, code, got.Message)
	}
	if !strings.Contains(got.Message, msg) {
		t.Errorf("message = %q, want it to contain %q", got.Message, msg)
	}
}

// file creates a request as u and returns it.
func (e *env) file(u user, tenant, service string) grants.Request {
	e.t.Helper()
	return decode[grants.Request](e.t, e.do(u, "POST", "/v1/requests", grants.CreateInput{
		Tenant: tenant, Service: service, ServiceRequest: "SR-1001",
		Reason: "Mailbox repair after a failed migration", Duration: grants.Duration(2 * time.Hour),
	}), http.StatusCreated)
}

// assignApprover makes contosoApprover an approver of contoso.
func (e *env) assignApprover() {
	e.t.Helper()
	if r := e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/approvers/"+contosoApprover.sub, nil); r.status != http.StatusNoContent {
		e.t.Fatalf("assign approver: %d %s", r.status, r.body)
	}
}

// syncBuffer is a bytes.Buffer the server's goroutines can log into while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
