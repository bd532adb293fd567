package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/rego"
	"github.com/lockbox-oss/lockbox/tenants"
)

const (
	testIssuer   = "https://idp.lockbox.test"
	testAudience = "lockbox-proxy"
)

// testStart is where every test's clock begins.
var testStart = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// The identities of the tests.
var (
	alice   = identity.Principal{Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}}
	bob     = identity.Principal{Subject: "bob@provider.example", Roles: []identity.Role{identity.RoleOperator}}
	manager = identity.Principal{Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}}
	// eve claims the operator role from inside a tenant: never an operator.
	eve = identity.Principal{Subject: "eve@contoso.example", Roles: []identity.Role{identity.RoleOperator}, TenantID: "contoso"}
)

// tenantAdmin is the global administrator of tenant.
func tenantAdmin(tenant string) identity.Principal {
	return identity.Principal{Subject: "admin@" + tenant + ".example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: tenant}
}

// services are the upstreams of every test environment.
var services = []string{"exchange", "onedrive", "sharepoint"}

// received is one request an upstream got.
type received struct {
	Method     string
	RequestURI string
	Path       string
	RawPath    string
	Host       string
	Header     http.Header
	Body       []byte
	BodyErr    error
	// ContentLength and TransferEncoding are the request's framing.
	ContentLength    int64
	TransferEncoding []string
}

// recorder is a real upstream that records what it receives and answers
// with a small JSON document and headers the proxy must filter.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
}

func newRecorder(t testing.TB) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, received{
			Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, RawPath: r.URL.RawPath,
			Host: r.Host, Header: r.Header.Clone(), Body: body, BodyErr: err,
			ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		})
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "upstream-session=1; Path=/")
		w.Header().Set(HeaderDecisionID, "forged-by-upstream")
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		for _, k := range upstreamCacheHeaders {
			w.Header().Set(k, "public, max-age=3600")
		}
		fmt.Fprintf(w, `{"ok":true,"path":%q}`+"\n", r.URL.Path)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// upstreamCacheHeaders are the cache directives besides Cache-Control the
// recorder answers with, every one of which the proxy must drop.
var upstreamCacheHeaders = []string{"Cdn-Cache-Control", "Cloudflare-Cdn-Cache-Control", "Surrogate-Control",
	"Pragma", "Age", "Expires", "X-Accel-Expires"}

func (r *recorder) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// testEnv is the proxy behind a real HTTP server, over a real Redis with
// the real grant, tenant and audit stores, a real token verifier, the real
// activity catalog, and real upstreams.
type testEnv struct {
	t         testing.TB
	clk       *clock.Fake
	rdb       *redis.Client
	catalog   *policy.Catalog
	audit     *audit.Log
	tenants   *tenants.Store
	grants    *grants.Store
	idKey     ed25519.PrivateKey // signs operators' tokens
	grantKeys *grantsig.KeySet   // verifies X-Lockbox-Grant
	up        map[string]*recorder
	reg       *prometheus.Registry
	logs      *syncBuffer
	h         *Handler
	srv       *httptest.Server
}

// envOption changes the proxy's configuration before New; e is ready but
// for h and srv.
type envOption func(e *testEnv, c *Config)

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, clk: clock.NewFake(testStart), rdb: redistest.Client(t), up: map[string]*recorder{}, logs: &syncBuffer{}}
	var err error
	if e.catalog, err = policy.LoadCatalog(rego.FS, "activities/data.json"); err != nil {
		t.Fatal(err)
	}
	e.audit = audit.NewLog(e.rdb, e.clk.Now)
	e.tenants = tenants.NewStore(e.rdb, e.audit, e.clk.Now)
	if e.grants, err = grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.audit, Tenants: e.tenants, Catalog: e.catalog, Now: e.clk.Now}); err != nil {
		t.Fatal(err)
	}
	e.tenants.SetGuard(e.grants)
	tenanttest.Onboard(t, e.tenants, "contoso", "fabrikam")
	if e.idKey, err = identity.GenerateDevKey(); err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(t.TempDir(), e.idKey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(identity.Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: jwks, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	grantKey, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	if e.grantKeys, err = grantsig.NewKeySet(grantKey.Public()); err != nil {
		t.Fatal(err)
	}
	upstreams := map[string]*url.URL{}
	for _, s := range services {
		e.up[s] = newRecorder(t)
		// A base path, so the test sees it joined with the call's path.
		u, err := url.Parse(e.up[s].srv.URL + "/api/" + s)
		if err != nil {
			t.Fatal(err)
		}
		upstreams[s] = u
	}
	e.reg = prometheus.NewRegistry()
	cfg := Config{
		Upstreams:  upstreams,
		Auth:       verifier,
		Grants:     e.grants,
		Tenants:    e.tenants,
		Policy:     goPolicy{catalog: e.catalog, decider: ruleDecider{catalog: e.catalog}},
		Auditor:    e.audit,
		SigningKey: grantKey,
		Now:        e.clk.Now,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: e.reg,
	}
	for _, o := range opts {
		o(e, &cfg)
	}
	if e.h, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

// token mints a token for p, valid from the clock's current time.
func (e *testEnv) token(p identity.Principal) string {
	e.t.Helper()
	tok, err := identity.Mint(e.idKey, testIssuer, testAudience, identity.Claims{Subject: p.Subject, Roles: p.Roles, TenantID: p.TenantID}, e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// bearer returns the Authorization header value for p.
func (e *testEnv) bearer(p identity.Principal) string { return "Bearer " + e.token(p) }

// grantFor files a request for operator and has it approved: by the
// manager, then (if the tenant's lockbox is on) by the tenant's admin.
func (e *testEnv) grantFor(operator identity.Principal, tenant, service string, d time.Duration, activities ...string) grants.Request {
	e.t.Helper()
	ctx := context.Background()
	r, err := e.grants.Create(ctx, grants.Actor{Principal: operator, ClientIP: "198.51.100.1"}, grants.CreateInput{
		Tenant: tenant, Service: service, ServiceRequest: "SR-1001", Reason: "mailbox will not open",
		Duration: grants.Duration(d), Activities: activities,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if r, err = e.grants.Act(ctx, r.ID, grants.ActionApprove, grants.Actor{Principal: manager, ClientIP: "198.51.100.2"}, "case checked"); err != nil {
		e.t.Fatal(err)
	}
	if r.State == grants.StatePendingCustomer {
		if r, err = e.grants.Act(ctx, r.ID, grants.ActionApprove, grants.Actor{Principal: tenantAdmin(tenant), ClientIP: "203.0.113.5"}, "go ahead"); err != nil {
			e.t.Fatal(err)
		}
	}
	if r.State != grants.StateApproved {
		e.t.Fatalf("request %s is %s, not approved", r.ID, r.State)
	}
	return r
}

// setLockbox turns the tenant's Customer Lockbox on or off.
func (e *testEnv) setLockbox(tenant string, on bool) {
	e.t.Helper()
	if _, err := e.tenants.PutSettings(context.Background(), tenantAdmin(tenant), "203.0.113.5", tenant, tenants.Settings{LockboxEnabled: on}); err != nil {
		e.t.Fatal(err)
	}
}

// upstreamCalls is how many requests all upstreams received together.
func (e *testEnv) upstreamCalls() int {
	n := 0
	for _, r := range e.up {
		n += len(r.requests())
	}
	return n
}

// rawRequest is a request written byte for byte, so tests can send what
// Go's client never would: absolute-form targets, CONNECT, dot segments.
type rawRequest struct {
	method string
	target string
	header [][2]string // in order, duplicates allowed
	body   string
	// chunked sends body in one chunk, with no Content-Length.
	chunked bool
}

func (q rawRequest) bytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: proxy.test\r\n", q.method, q.target)
	for _, h := range q.header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	switch {
	case q.chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if q.body != "" {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(q.body), q.body)
		}
		b.WriteString("0\r\n\r\n")
		return b.Bytes()
	case q.body != "":
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(q.body))
	}
	b.WriteString("\r\n")
	b.WriteString(q.body)
	return b.Bytes()
}

// response is one answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the code of a JSON error body, failing the test if the
// body is not exactly the error shape with a non-empty message.
func (r response) errorCode(t testing.TB) string {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if body.Error.Message == "" {
		t.Errorf("error body %q has no message", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	return body.Error.Code
}

// conn is one client connection to the proxy, for raw requests and for
// several requests on one kept-alive connection.
type conn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (e *testEnv) dial() *conn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &conn{t: e.t, c: c, br: bufio.NewReader(c)}
}

func (c *conn) do(q rawRequest) response {
	c.t.Helper()
	if _, err := c.c.Write(q.bytes()); err != nil {
		c.t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, &http.Request{Method: q.method})
	if err != nil {
		c.t.Fatalf("%s %s: %v", q.method, q.target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// send sends q on a connection of its own.
func (e *testEnv) send(q rawRequest) response {
	e.t.Helper()
	return e.dial().do(q)
}

// logLines returns the JSON log lines with message msg.
func (e *testEnv) logLines(msg string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
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

// ruleRevision is the revision goPolicy reports.
const ruleRevision = "go-rule"

// decider is the decision half of a PolicySnapshot.
type decider interface {
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
}

// goPolicy is a policy that never reloads: its one version classifies with
// catalog and decides with decider, in Go. TestReloadDuringCall runs calls
// through the Rego engine and its reloads.
type goPolicy struct {
	catalog *policy.Catalog
	decider decider
}

func (p goPolicy) Snapshot() PolicySnapshot { return p }

func (p goPolicy) Classify(service, method, path string) (policy.Activity, string, bool) {
	return p.catalog.Classify(service, method, path)
}

func (p goPolicy) Decide(ctx context.Context, in policy.Input) (policy.Decision, error) {
	return p.decider.Decide(ctx, in)
}

func (goPolicy) Revision() string { return ruleRevision }

// withDecider has the environment decide with d, classifying with the
// default catalog.
func withDecider(d decider) envOption {
	return func(e *testEnv, c *Config) { c.Policy = goPolicy{catalog: e.catalog, decider: d} }
}

// ruleDecider applies in Go the rule of the default policy
// (rego/lockbox/authz/authz.rego), with its reasons: allow only a call under
// a grant for the call's tenant, service and operator, before the grant's
// expiry, for a catalog activity with the call's method and access, that
// the request named, or that reads when the request named none. The
// integration tests run the same calls through the Rego engine.
type ruleDecider struct{ catalog *policy.Catalog }

func (d ruleDecider) Decide(_ context.Context, in policy.Input) (policy.Decision, error) {
	entry, ok := d.catalog.Lookup(in.Call.Service, in.Call.Activity)
	known := ok && entry.Method == in.Call.Method && string(entry.Access) == in.Call.Access
	var reasons []string
	if !known {
		reasons = append(reasons, "unknown_activity")
	}
	g := in.Grant
	if g == nil {
		reasons = append(reasons, "no_grant")
		slices.Sort(reasons)
		return policy.Decision{Reasons: reasons}, nil
	}
	now, err := time.Parse(time.RFC3339Nano, in.Now)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("input.now: %w", err)
	}
	exp, err := time.Parse(time.RFC3339Nano, g.ExpiresAt)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("input.grant.expires_at: %w", err)
	}
	if in.Call.Tenant == "" || g.Tenant != in.Call.Tenant {
		reasons = append(reasons, "tenant_mismatch")
	}
	if in.Call.Service == "" || g.Service != in.Call.Service {
		reasons = append(reasons, "service_mismatch")
	}
	if in.Operator.ID == "" || g.Operator != in.Operator.ID {
		reasons = append(reasons, "operator_mismatch")
	}
	if !now.Before(exp) {
		reasons = append(reasons, "grant_expired")
	}
	switch {
	case len(g.Activities) > 0 && !slices.Contains(g.Activities, in.Call.Activity):
		reasons = append(reasons, "activity_not_requested")
	case len(g.Activities) == 0 && known && entry.Access != policy.AccessRead:
		reasons = append(reasons, "write_not_requested")
	}
	slices.Sort(reasons)
	return policy.Decision{Allow: len(reasons) == 0, Reasons: reasons}, nil
}

// deciderFunc adapts a function to decider.
type deciderFunc func(context.Context, policy.Input) (policy.Decision, error)

func (f deciderFunc) Decide(ctx context.Context, in policy.Input) (policy.Decision, error) {
	return f(ctx, in)
}

// auditorFunc adapts a function to Auditor.
type auditorFunc func(context.Context, record.Record) (record.Record, error)

func (f auditorFunc) Append(ctx context.Context, r record.Record) (record.Record, error) {
	return f(ctx, r)
}
