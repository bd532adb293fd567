package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/policy"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
	"github.com/lockbox-oss/lockbox/tenants"
)

// start is where the clock of every dev-sign-in test begins.
var start = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

const (
	idle   = 30 * time.Minute
	maxAge = 8 * time.Hour
)

// The people of the tests. Each is offered as a dev identity, so a test
// signs in as one with the same one-click form "lockbox dev" shows.
var (
	alice = identity.Principal{Subject: "alice", Roles: []identity.Role{identity.RoleOperator}}
	mia   = identity.Principal{Subject: "mia", Roles: []identity.Role{identity.RoleSupportManager}}
	// sam both files and manages: the two-person rule case.
	sam     = identity.Principal{Subject: "sam", Roles: []identity.Role{identity.RoleOperator, identity.RoleSupportManager}}
	auditor = identity.Principal{Subject: "audrey", Roles: []identity.Role{identity.RoleAuditReader}}

	contosoAdmin = identity.Principal{Subject: "admin@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"}
	// contosoApprover is assigned by contosoAdmin in newEnv; the role
	// alone would grant nothing.
	contosoApprover  = identity.Principal{Subject: "approver@contoso.example", Roles: []identity.Role{identity.RoleApprover}, TenantID: "contoso"}
	fabrikamApprover = identity.Principal{Subject: "approver@fabrikam.example", Roles: []identity.Role{identity.RoleApprover}, TenantID: "fabrikam"}
	fabrikamAdmin    = identity.Principal{Subject: "admin@fabrikam.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "fabrikam"}
	lara             = identity.Principal{Subject: "lara", Roles: []identity.Role{identity.RoleLockboxAdmin}}
)

var people = []identity.Principal{alice, mia, sam, auditor, contosoAdmin, contosoApprover, fabrikamApprover, fabrikamAdmin, lara}

func newClock() *clock.Fake { return clock.NewFake(start) }

// env is the console over the real stores on a real Redis, served over
// HTTP, with a clock the test moves.
type env struct {
	t    *testing.T
	clk  *clock.Fake
	rdb  redis.UniversalClient
	reqs *grants.Store
	ten  *tenants.Store
	log  *audit.Log
	srv  *httptest.Server
	cfg  console.Config
	logs *syncBuffer // the console's log
}

// syncBuffer is a log sink the server's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testCatalog is the catalog shipped in the binary, as "lockbox dev" uses.
func testCatalog(t *testing.T) *policy.Catalog {
	t.Helper()
	cat, err := policy.LoadCatalog(lockboxrego.FS, "activities/data.json")
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// newEnv builds the stores and the console; opts change its Config before
// New. Approvers are assigned as the tenants' admins would.
func newEnv(t *testing.T, opts ...func(*console.Config)) *env {
	t.Helper()
	e := newStores(t, clock.NewFake(start))
	cfg := e.consoleConfig()
	var devs []console.DevIdentity
	for _, p := range people {
		devs = append(devs, console.DevIdentity{Principal: p, Description: string(p.Roles[0])})
	}
	cfg.DevIdentities = devs
	for _, o := range opts {
		o(&cfg)
	}
	e.serve(cfg, false)
	return e
}

// testRedis returns the Redis of a test: a database of the package's
// redis-server, or the shared cluster within TestOnRedisCluster.
var testRedis = func(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

// onCluster is set while TestOnRedisCluster runs: its tests share the
// cluster's one database, so they run one at a time.
var onCluster bool

// parallel marks t as a test that runs in parallel with others, except on
// the cluster.
func parallel(t *testing.T) {
	if !onCluster {
		t.Parallel()
	}
}

// newStores builds the domain over a fresh Redis database.
func newStores(t *testing.T, clk *clock.Fake) *env {
	t.Helper()
	return newStoresOn(t, clk, testRedis(t))
}

// newStoresOn builds the domain over rdb.
func newStoresOn(t *testing.T, clk *clock.Fake, rdb redis.UniversalClient) *env {
	t.Helper()
	log := audit.NewLog(rdb, clk.Now)
	ten := tenants.NewStore(rdb, log, clk.Now)
	reqs, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ten, Catalog: testCatalog(t), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ten.SetGuard(reqs)
	log.SetTenantDirectory(ten)
	tenanttest.Onboard(t, ten, "contoso", "fabrikam")
	e := &env{t: t, clk: clk, rdb: rdb, reqs: reqs, ten: ten, log: log, logs: &syncBuffer{}}
	ctx := context.Background()
	if err := ten.AddApprover(ctx, contosoAdmin, "192.0.2.1", "contoso", contosoApprover.Subject); err != nil {
		t.Fatal(err)
	}
	if err := ten.AddApprover(ctx, fabrikamAdmin, "192.0.2.1", "fabrikam", fabrikamApprover.Subject); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) consoleConfig() console.Config {
	cat := testCatalog(e.t)
	return console.Config{
		Requests: e.reqs, Tenants: e.ten, Audit: e.log, Redis: e.rdb,
		Catalog:     func() console.Catalog { return cat },
		IdleTimeout: idle, MaxAge: maxAge, Now: e.clk.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
}

// serve starts the console. The listener exists before the console is
// built, so PublicURL can name the server's own address when it is empty.
func (e *env) serve(cfg console.Config, tls bool) {
	e.t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	}
	c, err := console.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	srv.Config.Handler = c
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	e.t.Cleanup(srv.Close)
	e.srv, e.cfg = srv, cfg
}

// file has alice file a request for tenant's exchange, straight through
// the store.
func (e *env) file(tenant string) grants.Request {
	e.t.Helper()
	return e.fileAs(alice, tenant)
}

func (e *env) fileAs(p identity.Principal, tenant string) grants.Request {
	e.t.Helper()
	r, err := e.reqs.Create(context.Background(), grants.Actor{Principal: p, ClientIP: "192.0.2.10"}, grants.CreateInput{
		Tenant: tenant, Service: "exchange", ServiceRequest: "SR-" + tenant, Reason: "Mailbox of " + tenant + " will not sync",
		Duration: grants.Duration(2 * time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// managerApproved files a request for tenant and has mia approve it, so it
// waits for the customer.
func (e *env) managerApproved(tenant string) grants.Request {
	e.t.Helper()
	r := e.file(tenant)
	r, err := e.reqs.Act(context.Background(), r.ID, grants.ActionApprove, grants.Actor{Principal: mia, ClientIP: "192.0.2.11"}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	if r.State != grants.StatePendingCustomer {
		e.t.Fatalf("after the manager: %s", r.State)
	}
	return r
}

// request reads a request as the provider's manager sees it.
func (e *env) request(id string) grants.Request {
	e.t.Helper()
	r, err := e.reqs.Get(context.Background(), mia, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// records returns tenant's audit records, newest first.
func (e *env) records(tenant string) []record.Record {
	e.t.Helper()
	recs, err := e.log.List(context.Background(), tenant, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// sessionKeys lists the console's session keys in Redis.
func (e *env) sessionKeys() []string {
	e.t.Helper()
	return e.keys(keys.ConsoleSession("*"))
}

// keys lists the keys matching pattern; on a cluster, of every master.
func (e *env) keys(pattern string) []string {
	e.t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var out []string
	list := func(ctx context.Context, c redis.Cmdable) error {
		ks, err := c.Keys(ctx, pattern).Result()
		mu.Lock()
		out = append(out, ks...)
		mu.Unlock()
		return err
	}
	var err error
	if c, ok := e.rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return list(ctx, m) })
	} else {
		err = list(ctx, e.rdb)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// dump returns every key of the test's database with its value as text,
// whatever its type.
func (e *env) dump() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range e.keys("*") {
		typ, err := e.rdb.Type(ctx, k).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = e.rdb.Get(ctx, k).Result()
		case "hash":
			v, err = e.rdb.HGetAll(ctx, k).Result()
		case "set":
			v, err = e.rdb.SMembers(ctx, k).Result()
		case "zset":
			v, err = e.rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, err = e.rdb.LRange(ctx, k, 0, -1).Result()
		case "stream":
			v, err = e.rdb.XRange(ctx, k, "-", "+").Result()
		default:
			e.t.Fatalf("key %s has type %s, which dump does not read", k, typ)
		}
		if err != nil {
			e.t.Fatal(err)
		}
		out[k] = fmt.Sprint(v)
	}
	return out
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// browser is one user agent: a cookie jar, and no redirect following, so
// each test sees every status and Location.
type browser struct {
	t *testing.T
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	// Server.Client returns one shared client: each browser gets its own,
	// over the server's transport (which trusts its TLS certificate).
	c := &http.Client{
		Transport:     e.srv.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	return &browser{t: e.t, e: e, c: c}
}

// signIn returns a browser signed in as p with the dev sign-in.
func (e *env) signIn(p identity.Principal) *browser {
	e.t.Helper()
	b := e.browser()
	r := b.post("/console/signin/dev", url.Values{"subject": {p.Subject}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/requests" {
		e.t.Fatalf("dev sign-in as %s: %d %s", p.Subject, r.status, r.header.Get("Location"))
	}
	return b
}

// resp is one response, read whole.
type resp struct {
	status int
	header http.Header
	body   string
}

func (r resp) String() string {
	return fmt.Sprintf("%d %v\n%.2000s", r.status, r.header, r.body)
}

// location is where a redirect goes.
func (r resp) location() string { return r.header.Get("Location") }

type reqOpt func(*http.Request)

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func (b *browser) do(method, path string, body io.Reader, opts ...reqOpt) resp {
	b.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.e.srv.URL + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: string(raw)}
}

func (b *browser) get(path string, opts ...reqOpt) resp {
	b.t.Helper()
	return b.do(http.MethodGet, path, nil, opts...)
}

func (b *browser) post(path string, form url.Values, opts ...reqOpt) resp {
	b.t.Helper()
	return b.do(http.MethodPost, path, strings.NewReader(form.Encode()), opts...)
}

// csrfRE finds the form token in a page.
var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the session's form token from a page, as a browser's form
// would carry it.
func (b *browser) csrf() string {
	b.t.Helper()
	r := b.get("/console/requests")
	m := csrfRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		b.t.Fatalf("no form token on the requests page: %s", r)
	}
	return html.UnescapeString(m[1])
}

// form returns v with the session's form token added.
func (b *browser) form(v url.Values) url.Values {
	b.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf_token", b.csrf())
	return v
}

// cookie returns the value of the browser's cookie name for the server.
func (b *browser) cookie(name string) string {
	b.t.Helper()
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// withCookie is a fresh browser that presents only the given session cookie.
func (e *env) withCookie(name, value string) *browser {
	b := e.browser()
	u, _ := url.Parse(e.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
	return b
}

// signedOut reports whether r is the redirect to sign-in that a page
// answers without a session: the sign-in page, going on to a page of the
// console's own when it names one (see TestSessionEndedComesBackToThePage).
func signedOut(r resp) bool {
	u, err := url.Parse(r.location())
	if r.status != http.StatusSeeOther || err != nil || u.Host != "" || u.Path != "/console/signin" {
		return false
	}
	ret := u.Query().Get("return")
	return ret == "" || strings.HasPrefix(ret, "/console/")
}

// setCookie returns the Set-Cookie of name in r.
func setCookie(t *testing.T, r resp, name string) *http.Cookie {
	t.Helper()
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name {
			return c
		}
	}
	return nil
}

// mustContain fails t unless body contains every one of want.
func mustContain(t *testing.T, what string, r resp, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.body, w) {
			t.Errorf("%s lacks %q: %s", what, w, r)
		}
	}
}

func mustNotContain(t *testing.T, what string, r resp, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(r.body, w) {
			t.Errorf("%s contains %q: %s", what, w, r)
		}
	}
}
