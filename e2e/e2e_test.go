// Package e2e walks the whole request lifecycle the way users do: lockboxctl
// against a running Lockbox (the same wiring as "lockbox serve") over real
// HTTP and a real redis-server. Time is a fake clock, so the 12 h expiry is
// tested without waiting.
package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/cli"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/demo"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// world is one running Lockbox and tokens for its users.
type world struct {
	t      *testing.T
	dir    string             // the keys' folder
	key    ed25519.PrivateKey // signs the users' tokens
	redis  map[string]string  // the LOCKBOX_REDIS_* settings naming its Redis
	srv    *server.Server
	siem   string // the SIEM sink file
	mail   string // where notification e-mails are written
	addr   string
	proxy  string
	clock  *clock.Fake
	tokens map[string]string
	// upstreams are the demo services behind its proxy.
	upstreams *demo.Cluster
}

var users = map[string]identity.Claims{
	"operator":      {Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}},
	"operator2":     {Subject: "bob@provider.example", Roles: []identity.Role{identity.RoleOperator}},
	"manager":       {Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}},
	"manager-op":    {Subject: "sam@provider.example", Roles: []identity.Role{identity.RoleOperator, identity.RoleSupportManager}},
	"admin":         {Subject: "gina@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"},
	"approver":      {Subject: "adam@contoso.example", Roles: []identity.Role{identity.RoleApprover}, TenantID: "contoso"},
	"fab-approver":  {Subject: "fay@fabrikam.example", Roles: []identity.Role{identity.RoleApprover, identity.RoleGlobalAdmin}, TenantID: "fabrikam"},
	"tenant-sneaky": {Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}, TenantID: "contoso"},
	"lockbox-admin": {Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}},
	"auditor":       {Subject: "sue@provider.example", Roles: []identity.Role{identity.RoleAuditReader}},
}

func start(t *testing.T, extra ...string) *world {
	t.Helper()
	return startWith(t, nil, extra...)
}

// startWith is start with server options the test adjusts (the clock and
// the mail directory are start's).
func startWith(t *testing.T, adjust func(*server.Options), extra ...string) *world {
	t.Helper()
	return startOn(t, testRedis(t), adjust, extra...)
}

// startOn is startWith on the Redis rdb names (LOCKBOX_REDIS_URL and kin).
func startOn(t *testing.T, rdb map[string]string, adjust func(*server.Options), extra ...string) *world {
	t.Helper()
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}
	return startIn(t, dir, key, rdb, clock.NewFake(time.Now().UTC().Truncate(time.Second)), adjust, extra...)
}

// testRedis returns the settings naming the Redis of a world: a fresh
// database of the package's redis-server, or the shared cluster (flushed)
// within TestOnRedisCluster.
var testRedis = func(t *testing.T) map[string]string {
	return map[string]string{"LOCKBOX_REDIS_URL": redistest.URL(t)}
}

// replica starts another Lockbox sharing w's Redis, keys and clock, as a
// second replica of one deployment would; adjust and extra configure it as
// for startWith.
func (w *world) replica(t *testing.T, adjust func(*server.Options), extra ...string) *world {
	t.Helper()
	r := startIn(t, w.dir, w.key, w.redis, w.clock, adjust, extra...)
	r.tokens = w.tokens
	return r
}

// startIn starts a Lockbox whose keys are in dir (identity key and JWKS,
// grant.pem), on the Redis the LOCKBOX_REDIS_* settings rdb name, with
// clock c.
func startIn(t *testing.T, dir string, key ed25519.PrivateKey, rdb map[string]string, c *clock.Fake, adjust func(*server.Options), extra ...string) *world {
	t.Helper()
	jwks := filepath.Join(dir, identity.DevJWKSFile)
	grantKey, err := grantsig.LoadPrivateKey(filepath.Join(dir, "grant.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := startDemo(t, context.Background(), grantKey, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	env := map[string]string{
		"LOCKBOX_UPSTREAMS":              "exchange=" + cluster.Upstreams()["exchange"],
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
		"LOCKBOX_JWT_JWKS_FILE":          jwks,
		"LOCKBOX_API_ADDR":               "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":             "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":           "127.0.0.1:0",
		"LOCKBOX_SIEM_SINK":              "file:" + filepath.Join(dir, "siem.jsonl"),
	}
	maps.Copy(env, rdb)
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(config.ModeServe); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The fake clock doesn't tick: the sweeper finds work only once a
	// test moves the clock past a deadline, and then within 10 ms (a test
	// that checks what happens before any sweep runs without jobs:
	// TestProxyGrantWindow). LOCKBOX_SWEEP_INTERVAL can't be so short.
	opts := server.Options{Now: c.Now, DevMailDir: filepath.Join(dir, "mail"), SweepInterval: 10 * time.Millisecond}
	if adjust != nil {
		adjust(&opts)
	}
	srv, err := server.New(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	tenanttest.Onboard(t, srv.Tenants, "contoso", "fabrikam")
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	w := &world{t: t, dir: dir, key: key, redis: rdb, srv: srv, mail: filepath.Join(dir, "mail"), siem: filepath.Join(dir, "siem.jsonl"), addr: "http://" + srv.APIAddr(), proxy: "http://" + srv.ProxyAddr(), clock: c, tokens: map[string]string{}, upstreams: cluster}
	for name, claims := range users {
		claims.TTL = 48 * time.Hour
		tok, err := identity.Mint(key, cfg.JWTIssuer, cfg.JWTAudience, claims, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[name] = tok
	}
	// Readiness on the metrics address, never the API's. Waited for: a
	// Redis check timing out on a loaded machine answers 503 once.
	waitReady(t, "http://"+srv.MetricsAddr()+"/readyz")
	return w
}

// ctl runs lockboxctl as user and returns its exit code, stdout and stderr.
func (w *world) ctl(user string, args ...string) (int, string, string) {
	w.t.Helper()
	var out, errb bytes.Buffer
	// LOCKBOX_CONFIG_DIR: never the real user's stored token.
	env := map[string]string{"LOCKBOX_ADDR": w.addr, "LOCKBOX_TOKEN": w.tokens[user], "LOCKBOX_CONFIG_DIR": filepath.Join(w.dir, "lockboxctl")}
	code := cli.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

// ok runs lockboxctl -o json and decodes its output into v.
func (w *world) ok(user string, v any, args ...string) {
	w.t.Helper()
	code, out, errs := w.ctl(user, append([]string{"-o", "json"}, args...)...)
	if code != 0 {
		w.t.Fatalf("lockboxctl %s (as %s): exit %d: %s", strings.Join(args, " "), user, code, errs)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			w.t.Fatalf("lockboxctl %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// fails runs lockboxctl and checks it fails with stderr containing want.
func (w *world) fails(user, want string, args ...string) {
	w.t.Helper()
	code, _, errs := w.ctl(user, args...)
	if code == 0 || !strings.Contains(errs, want) {
		w.t.Fatalf("lockboxctl %s (as %s): exit %d, stderr %q; want failure mentioning %q", strings.Join(args, " "), user, code, errs, want)
	}
}

func (w *world) create(user string) grants.Request {
	w.t.Helper()
	var r grants.Request
	w.ok(user, &r, "request", "create", "--tenant", "contoso", "--service", "exchange",
		"--service-request", "SR-1001", "--reason", "mailbox will not open", "--duration", "2h",
		"--activity", "Get-Mailbox")
	if r.State != grants.StatePendingManager || r.ID == "" {
		w.t.Fatalf("created %+v", r)
	}
	return r
}

func (w *world) state(user, id string) grants.State {
	w.t.Helper()
	var r grants.Request
	w.ok(user, &r, "request", "show", id)
	return r.State
}

func (w *world) assignApprover() {
	w.t.Helper()
	w.ok("admin", nil, "approver", "add", "contoso", users["approver"].Subject)
}

func (w *world) auditOps(user string) []record.Record {
	w.t.Helper()
	var out struct{ Records []record.Record }
	w.ok(user, &out, "audit", "search", "--tenant", "contoso")
	return out.Records
}

func TestLifecycleWithLockboxctl(t *testing.T) {
	t.Run("happy path", func(t *testing.T) {
		w := start(t)
		w.assignApprover()
		r := w.create("operator")
		var got grants.Request
		w.ok("manager", &got, "request", "approve", r.ID, "--comment", "case checked")
		if got.State != grants.StatePendingCustomer {
			t.Fatalf("after manager: %s", got.State)
		}
		w.clock.Advance(30 * time.Minute)
		approvedAt := w.clock.Now()
		w.ok("approver", &got, "request", "approve", r.ID, "--comment", "go ahead")
		if got.State != grants.StateApproved || got.ApprovedAt == nil || !got.ApprovedAt.Equal(approvedAt) || !got.ExpiresAt.Equal(approvedAt.Add(2*time.Hour)) {
			t.Fatalf("after tenant: %+v", got)
		}
		recs := w.auditOps("admin")
		dec := recs[0]
		if dec.Operation != "Set-AccessToCustomerDataRequest" || dec.ApprovalDecision != "Approve" ||
			dec.UserId != users["approver"].Subject || dec.ObjectId != r.ID || dec.Comment != "go ahead" ||
			dec.LockboxTenant != "contoso" || !record.IsGUID(dec.OrganizationId) || dec.ClientIP != "127.0.0.1" || dec.ProviderUserId != "" {
			t.Fatalf("decision record = %+v", dec)
		}
		if recs[1].UserId != "Microsoft Support" || recs[1].ProviderUserId != "" {
			t.Fatalf("tenant sees provider staff: %+v", recs[1])
		}
		// The grant ends exactly 2h after the approval: completed.
		w.clock.Advance(2*time.Hour - time.Second)
		if s := w.state("operator", r.ID); s != grants.StateApproved {
			t.Fatalf("a second before the end: %s", s)
		}
		w.clock.Advance(time.Second)
		if s := w.state("operator", r.ID); s != grants.StateCompleted {
			t.Fatalf("at the end: %s", s)
		}
		// The audit chain verifies, and catches a record deleted in Redis.
		var v audit.Verification
		w.ok("admin", &v, "audit", "verify", "--tenant", "contoso")
		if !v.OK || v.Records != len(recs)+1 { // + the completion record
			t.Fatalf("verification = %+v, %d records searched", v, len(recs))
		}
		ctx := context.Background()
		entries := w.srv.Redis.XRange(ctx, "lockbox:{contoso}:audit", "-", "+").Val()
		w.srv.Redis.XDel(ctx, "lockbox:{contoso}:audit", entries[2].ID)
		if code, out, _ := w.ctl("admin", "audit", "verify", "--tenant", "contoso"); code != 4 || !strings.Contains(out, "BROKEN") || !strings.Contains(out, entries[3].ID) {
			t.Fatalf("tampered chain: exit %d\n%s", code, out)
		}
		// The approver was e-mailed, with the request's details and no link.
		deadline := time.Now().Add(10 * time.Second)
		var mail string
		for mail == "" {
			files, _ := filepath.Glob(filepath.Join(w.mail, "*", "*.eml"))
			files2, _ := filepath.Glob(filepath.Join(w.mail, "*.eml"))
			for _, f := range append(files, files2...) {
				b, _ := os.ReadFile(f)
				if strings.Contains(string(b), users["approver"].Subject) && strings.Contains(string(b), "SR-1001") {
					mail = string(b)
				}
			}
			if mail == "" && time.Now().After(deadline) {
				t.Fatalf("no e-mail to the approver in %s", w.mail)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(mail, r.ID) || regexp.MustCompile(`(?i)https?|://|www\.`).MatchString(mail) {
			t.Fatalf("approver's e-mail:\n%s", mail)
		}
		// Every record also reaches the SIEM sink, once.
		deadline = time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(w.siem)
			if n := strings.Count(string(b), `"Operation":"Set-AccessToCustomerDataRequest"`); n == 1 {
				break
			} else if n > 1 || time.Now().After(deadline) {
				t.Fatalf("SIEM sink has the decision %d times:\n%s", n, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The table output names the state too.
		if code, out, _ := w.ctl("admin", "request", "list"); code != 0 || !strings.Contains(out, "completed") {
			t.Fatalf("table list: %d %s", code, out)
		}
	})

	t.Run("tenant denies", func(t *testing.T) {
		w := start(t)
		r := w.create("operator")
		w.ok("manager", nil, "request", "approve", r.ID)
		w.ok("admin", nil, "Set-AccessToCustomerDataRequest", "--request-id", r.ID, "--approval-decision", "Deny", "--comment", "not now")
		if s := w.state("operator", r.ID); s != grants.StateDenied {
			t.Fatalf("state %s", s)
		}
		recs := w.auditOps("admin")
		if recs[0].Operation != "Set-AccessToCustomerDataRequest" || recs[0].ApprovalDecision != "Deny" {
			t.Fatalf("record %+v", recs[0])
		}
		w.fails("admin", "denied", "request", "approve", r.ID)
	})

	t.Run("manager denies", func(t *testing.T) {
		w := start(t)
		r := w.create("operator")
		w.ok("manager", nil, "request", "deny", r.ID, "--comment", "no case")
		if s := w.state("operator", r.ID); s != grants.StateDenied {
			t.Fatalf("state %s", s)
		}
		w.fails("admin", "cannot approve a request that is denied", "request", "approve", r.ID)
	})

	t.Run("self-approval refused", func(t *testing.T) {
		w := start(t)
		r := w.create("manager-op")
		w.fails("manager-op", "two-person rule", "request", "approve", r.ID)
		if s := w.state("manager", r.ID); s != grants.StatePendingManager {
			t.Fatalf("state %s", s)
		}
	})

	t.Run("cross-tenant approver refused", func(t *testing.T) {
		w := start(t)
		r := w.create("operator")
		w.ok("manager", nil, "request", "approve", r.ID)
		w.fails("fab-approver", "not found", "request", "approve", r.ID)
		// A provider manager claiming contoso's tid is a tenant user, not
		// a manager, and not an approver either.
		w.fails("tenant-sneaky", "not found", "request", "approve", r.ID)
		// Another manager may decide the request, but the manager's
		// decision is made: told the state, not refused a right.
		w.fails("manager-op", "cannot approve a request that is pending_customer", "request", "approve", r.ID)
		if s := w.state("manager", r.ID); s != grants.StatePendingCustomer {
			t.Fatalf("state %s", s)
		}
	})

	t.Run("12 hour expiry", func(t *testing.T) {
		w := start(t)
		r := w.create("operator")
		w.ok("manager", nil, "request", "approve", r.ID)
		w.clock.Advance(12*time.Hour - time.Second)
		if s := w.state("admin", r.ID); s != grants.StatePendingCustomer {
			t.Fatalf("before 12h: %s", s)
		}
		w.clock.Advance(time.Second)
		w.fails("admin", "cannot approve a request that is expired", "request", "approve", r.ID)
		recs := w.auditOps("admin")
		if recs[0].Operation != "Expire-AccessToCustomerDataRequest" || recs[0].UserId != "Customer Lockbox" {
			t.Fatalf("record %+v", recs[0])
		}
	})

	t.Run("revoke", func(t *testing.T) {
		w := start(t)
		w.assignApprover()
		r := w.create("operator")
		w.ok("manager", nil, "request", "approve", r.ID)
		w.ok("approver", nil, "request", "approve", r.ID)
		w.fails("operator", "only an approver", "request", "revoke", r.ID)
		w.ok("approver", nil, "request", "revoke", r.ID, "--comment", "done")
		if s := w.state("operator", r.ID); s != grants.StateRevoked {
			t.Fatalf("state %s", s)
		}
		if recs := w.auditOps("admin"); recs[0].Operation != "Revoke-AccessToCustomerDataRequest" {
			t.Fatalf("record %+v", recs[0])
		}
		// The engineer may file again once the request ended.
		w.create("operator")
	})

	t.Run("lockbox off", func(t *testing.T) {
		w := start(t)
		w.assignApprover()
		// Approvers configure Customer Lockbox, as in Microsoft 365; a user
		// of the tenant who is not one may not.
		w.fails("fab-approver", "", "tenant", "settings", "set", "contoso", "--lockbox", "off")
		w.ok("approver", nil, "tenant", "settings", "set", "contoso", "--lockbox", "on", "--notify", "soc@contoso.example")
		w.ok("admin", nil, "tenant", "settings", "set", "contoso", "--lockbox", "off")
		var st tenants.Settings
		w.ok("admin", &st, "tenant", "settings", "get", "contoso")
		if st.LockboxEnabled {
			t.Fatal("lockbox still on")
		}
		r := w.create("operator")
		var got grants.Request
		w.ok("manager", &got, "request", "approve", r.ID)
		if got.State != grants.StateApproved || got.Approver != users["manager"].Subject {
			t.Fatalf("manager's approval not final: %+v", got)
		}
	})
}

// TestBinaries builds lockbox and lockboxctl and walks the happy path with
// the real binaries: "lockbox serve" against a real Redis.
func TestBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	bin := t.TempDir()
	build := func(pkg string) string {
		out := filepath.Join(bin, filepath.Base(pkg))
		cmd := goBuild(t, out, "../"+pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return out
	}
	lockbox, ctl := lockboxBinary(t), build("cmd/lockboxctl")
	runBinaries(t, lockbox, ctl)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// api calls the API as user with body (JSON, when not nil) and returns the
// status, the headers and the raw body.
func (w *world) api(user, method, path string, body any) (int, http.Header, []byte) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			w.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.addr+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+w.tokens[user])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// get sends an operator call through the proxy and returns the status and
// the error code of a denial.
func (w *world) get(user, path string) (int, string) {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.proxy+path, nil)
	req.Header.Set("Authorization", "Bearer "+w.tokens[user])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Code
}

// TestProxyGrantWindow: access through the proxy ends exactly when the
// approved window does, whether or not anything swept the request. No
// jobs run here: the sweeper, which reads the same clock every 10 ms,
// would otherwise complete the request as the clock reaches the window's
// end, at times before the last call, which then finds no grant at all.
func TestProxyGrantWindow(t *testing.T) {
	w := start(t, "LOCKBOX_SERVE", "api,proxy")
	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.clock.Advance(10 * time.Minute)
	w.ok("admin", nil, "request", "approve", r.ID)
	// The request named Get-Mailbox only: other reads are refused.
	if status, code := w.get("operator", "/exchange/tenants/contoso/mailboxes/megan-bowen/messages"); status != 403 || code != "policy_denied" {
		t.Fatalf("an activity the request did not name: %d %s", status, code)
	}
	const path = "/exchange/tenants/contoso/mailboxes"
	if status, code := w.get("operator", path); status != 200 {
		t.Fatalf("inside the window: %d %s", status, code)
	}
	if status, code := w.get("operator2", path); status != 403 || code != "no_grant" {
		t.Fatalf("another operator: %d %s", status, code)
	}
	// A second before the end, not a nanosecond: a call permitted that
	// close to the end is cut at the end, mid-call (proxy's
	// TestGrantEndCutsTheCallJudgedJustBefore).
	w.clock.Advance(2*time.Hour - time.Second)
	if status, code := w.get("operator", path); status != 200 {
		t.Fatalf("a second before the end: %d %s", status, code)
	}
	w.clock.Advance(time.Second)
	if status, code := w.get("operator", path); status != 403 || code != "grant_expired" {
		t.Fatalf("at the end of the window: %d %s", status, code)
	}
	// The whole exposition passes the linter promtool check metrics uses.
	if problems, err := testutil.GatherAndLint(w.srv.Registry); err != nil || len(problems) > 0 {
		t.Fatalf("metrics lint: %v %v", problems, err)
	}
	if got := testutil.ToFloat64(counterOf(t, w.srv.Registry, "lockbox_proxy_denials_total", "grant_expired", "exchange")); got != 1 {
		t.Fatalf("grant_expired denials = %v", got)
	}
}

// counterOf reads one sample of a {reason,service} counter family.
func counterOf(t *testing.T, reg *prometheus.Registry, name, reason, service string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["reason"] == reason && labels["service"] == service {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sample"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no %s{reason=%q,service=%q}", name, reason, service)
	return nil
}

// TestAuditRetention: the server's sweep trims records past
// LOCKBOX_AUDIT_RETENTION and the rest of the chain still verifies.
func TestAuditRetention(t *testing.T) {
	w := start(t, "LOCKBOX_AUDIT_RETENTION", "28h")
	w.create("operator")
	w.clock.Advance(29 * time.Hour)
	w.ok("admin", nil, "approver", "add", "contoso", users["approver"].Subject)
	// The sweeper runs every 10ms of real time; wait for it to trim.
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := w.auditOps("admin")
		ops := []string{}
		for _, r := range recs {
			ops = append(ops, r.Operation)
		}
		// The create (25h old) is past retention. The expiry the sweep
		// recorded (stamped at the 12h deadline, 13h ago) and the approver
		// change are not.
		if len(recs) == 2 && !slices.Contains(ops, "New-AccessToCustomerDataRequest") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records never trimmed: %v", ops)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var v audit.Verification
	w.ok("admin", &v, "audit", "verify", "--tenant", "contoso")
	if !v.OK || v.Records != 2 {
		t.Fatalf("after retention: %+v", v)
	}
}

// startDemo starts the demo upstreams, verifying assertions with the public
// half of grantKey, the proxy's signing key, at now.
func startDemo(t *testing.T, ctx context.Context, grantKey crypto.Signer, now func() time.Time) (*demo.Cluster, error) {
	t.Helper()
	keys, err := grantsig.NewKeySet(grantKey.Public())
	if err != nil {
		return nil, err
	}
	return demo.Start(ctx, demo.ServiceConfig{GrantKeys: keys, Now: now})
}
