package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/cli"
	"github.com/lockbox-oss/lockbox/demo"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/policy"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

// deployment is a running "lockbox serve" binary with demo upstreams, its
// own redis-server and policy directory.
type deployment struct {
	t                   *testing.T
	api, proxy, metrics string
	redis               *redistest.Server
	policyDir           string
	jwksFile            string // LOCKBOX_PROXY_JWKS_FILE
	upstreams           *demo.Cluster
	tokens              map[string]string
}

func deploy(t *testing.T, lockbox string) *deployment {
	t.Helper()
	dir := t.TempDir()
	key, _ := identity.GenerateDevKey()
	if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
		t.Fatal(err)
	}
	grantKey, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cluster, err := startDemo(t, ctx, grantKey, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var ups []string
	for svc, u := range cluster.Upstreams() {
		ups = append(ups, svc+"="+u)
	}
	policyDir := filepath.Join(dir, "policy")
	if err := os.CopyFS(policyDir, lockboxrego.FS); err != nil {
		t.Fatal(err)
	}
	d := &deployment{
		t: t, api: freeAddr(t), proxy: freeAddr(t), metrics: freeAddr(t),
		redis: redistest.StartServer(t), policyDir: policyDir, upstreams: cluster, tokens: map[string]string{},
		jwksFile: filepath.Join(dir, "grant-jwks.json"),
	}
	env := scrubbedEnv(
		"LOCKBOX_REDIS_URL="+d.redis.URL,
		"LOCKBOX_JWT_JWKS_FILE="+filepath.Join(dir, identity.DevJWKSFile),
		"LOCKBOX_API_ADDR="+d.api, "LOCKBOX_PROXY_ADDR="+d.proxy, "LOCKBOX_METRICS_ADDR="+d.metrics,
		"LOCKBOX_UPSTREAMS="+strings.Join(ups, ","),
		"LOCKBOX_PROXY_SIGNING_KEY_FILE="+filepath.Join(dir, "grant.pem"),
		"LOCKBOX_PROXY_JWKS_FILE="+d.jwksFile,
		"LOCKBOX_POLICY_DIR="+policyDir,
		"LOCKBOX_POLICY_RELOAD_INTERVAL=1s",
		"LOCKBOX_REDIS_TIMEOUT=500ms",
		"LOCKBOX_LOG_LEVEL=warn",
	)
	var logs bytes.Buffer
	srv := exec(t, lockbox, "serve")
	srv.Env, srv.Stdout, srv.Stderr = env, &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("lockbox serve logs:\n%s", logs.String())
		}
	})
	waitReady(t, "http://"+d.metrics+"/readyz")
	for name, c := range map[string]identity.Claims{
		"operator": users["operator"], "manager": users["manager"], "admin": users["admin"], "lockbox-admin": users["lockbox-admin"],
	} {
		c.TTL = time.Hour
		tok, err := identity.Mint(key, "lockbox", "lockbox", c, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		d.tokens[name] = tok
	}
	// The provider's Lockbox administrator onboards the tenant over the API.
	la, err := client.New("http://"+d.api, d.tokens["lockbox-admin"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := la.Onboard(context.Background(), wire.Onboarding{ID: "contoso", DisplayName: "Contoso Ltd",
		Domains: []string{"contoso.example"}, GlobalAdmins: []string{"gina@contoso.example"}}); err != nil {
		t.Fatal(err)
	}
	return d
}

// call sends one operator call through the proxy.
func (d *deployment) call(method, path string) (int, string, map[string]any) {
	d.t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.proxy+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.tokens["operator"])
	// Identity a client might try to smuggle past the proxy.
	req.Header.Set("X-Lockbox-User", "alice@provider.example")
	req.Header.Set("X-Forwarded-For", "203.0.113.66")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	code := ""
	if e, ok := body["error"].(map[string]any); ok {
		code, _ = e["code"].(string)
	}
	return resp.StatusCode, code, body
}

func (d *deployment) ctl(user string, v any, args ...string) {
	d.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"LOCKBOX_ADDR": "http://" + d.api, "LOCKBOX_TOKEN": d.tokens[user]}
	if code := cli.Run(context.Background(), append([]string{"-o", "json"}, args...), func(k string) string { return env[k] }, &out, &errb); code != 0 {
		d.t.Fatalf("lockboxctl %v: %s", args, errb.String())
	}
	if v != nil {
		if err := json.Unmarshal(out.Bytes(), v); err != nil {
			d.t.Fatal(err)
		}
	}
}

// approved files a request for service and has it approved by both sides.
func (d *deployment) approved(service string, activities ...string) grants.Request {
	d.t.Helper()
	args := []string{"request", "create", "--tenant", "contoso", "--service", service, "--service-request", "SR-42",
		"--reason", "mailbox repair", "--duration", "1h"}
	for _, a := range activities {
		args = append(args, "--activity", a)
	}
	var r grants.Request
	d.ctl("operator", &r, args...)
	d.ctl("manager", nil, "request", "approve", r.ID)
	d.ctl("admin", &r, "request", "approve", r.ID, "--comment", "go ahead")
	if r.State != grants.StateApproved {
		d.t.Fatalf("not approved: %s", r.State)
	}
	return r
}

// metric reads one sample from the metrics endpoint (0 when absent).
func (d *deployment) metric(name string) float64 {
	d.t.Helper()
	resp, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func (d *deployment) waitMetric(name string, atLeast float64) {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.metric(name) < atLeast {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s never reached %v", name, atLeast)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProxyThroughBinaries is the enforcement proxy end to end: the real
// lockbox binary, a real redis-server, demo upstreams over real HTTP.
func TestProxyThroughBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	d := deploy(t, lockboxBinary(t))
	exchange := d.upstreams.Service(demo.Exchange)
	const mailboxes = "/exchange/tenants/contoso/mailboxes"
	noGrant := `lockbox_proxy_denials_total{reason="no_grant",service="exchange"}`

	// No grant: 403 no_grant, counted, and the upstream saw nothing.
	if status, code, _ := d.call("GET", mailboxes); status != 403 || code != "no_grant" {
		t.Fatalf("without a grant: %d %s", status, code)
	}
	if got := d.metric(noGrant); got != 1 {
		t.Fatalf("%s = %v", noGrant, got)
	}
	if n := len(exchange.Seen()); n != 0 {
		t.Fatalf("upstream reached %d times without a grant", n)
	}

	// Request → manager → tenant: the call goes through as Microsoft Operator.
	r := d.approved("exchange")
	status, code, body := d.call("GET", mailboxes)
	if status != 200 {
		t.Fatalf("with a grant: %d %s %v", status, code, body)
	}
	seen := exchange.Seen()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d calls", len(seen))
	}
	got := seen[0]
	if got.Path != "/tenants/contoso/mailboxes" || !got.GrantOK || got.Claims.RequestID != r.ID ||
		got.Header.Get("X-Lockbox-User") != "Microsoft Operator" || got.Header.Get("Authorization") != "" ||
		got.Header.Get("X-Forwarded-For") == "203.0.113.66" || len(got.Header.Values("X-Lockbox-User")) != 1 {
		t.Fatalf("upstream saw %+v", got)
	}
	var recs struct{ Records []record.Record }
	d.ctl("admin", &recs, "audit", "search", "--tenant", "contoso")
	op := recs.Records[0]
	// The tenant sees where the call came from (the engineer's machine),
	// never who made it.
	if op.Operation != "Get-Mailbox" || op.UserId != "Microsoft Operator" || op.UserType != record.UserTypeDcAdmin ||
		op.RecordType != record.RecordTypeDataCenterSecurityCmdlet || op.ObjectId != "exchange/tenants/contoso/mailboxes" ||
		op.LockboxRequestId != r.ID || op.Workload != "exchange" || op.ProviderUserId != "" || op.ClientIP != "127.0.0.1" {
		t.Fatalf("tenant's audit record = %+v", op)
	}
	// It names the policy version that judged the call, in the tenant's
	// view too: the revision of the directory the server serves.
	served, err := policy.NewEngine(policy.EngineConfig{Dir: d.policyDir})
	if err != nil {
		t.Fatal(err)
	}
	if op.LockboxPolicyRevision != served.Revision() {
		t.Fatalf("tenant's audit record names policy revision %q, want %s", op.LockboxPolicyRevision, served.Revision())
	}
	// The upstream's assertion verifies with a JWT library Lockbox does not
	// use and the key the API publishes, names this call and its record,
	// and is refused for another call.
	checkAssertion(t, d, got.Header.Get(grantsig.Header), "/tenants/contoso/mailboxes", op.Id)

	// A write activity the request did not name: 403.
	if status, code, _ := d.call("POST", "/exchange/tenants/contoso/mailboxes/megan-bowen/repair"); status != 403 || code != "policy_denied" {
		t.Fatalf("unrequested write: %d %s", status, code)
	}
	// The same grant on another tenant: 403.
	if status, code, _ := d.call("GET", "/exchange/tenants/fabrikam/mailboxes"); status != 403 || code != "no_grant" {
		t.Fatalf("other tenant: %d %s", status, code)
	}
	if n := len(exchange.Seen()); n != 1 {
		t.Fatalf("denied calls reached the upstream: %d", n)
	}

	// A broken policy is refused; the last good one keeps deciding.
	authz := filepath.Join(d.policyDir, "lockbox", "authz", "authz.rego")
	good, _ := os.ReadFile(authz)
	errors := `lockbox_policy_reloads_total{result="error"}`
	if err := os.WriteFile(authz, []byte("package lockbox.authz\n\ndecision := {"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitMetric(errors, 1)
	if status, _, _ := d.call("GET", mailboxes); status != 200 {
		t.Fatalf("after a broken policy: %d", status)
	}
	// A valid change takes effect without a restart.
	successes := `lockbox_policy_reloads_total{result="success"}`
	before := d.metric(successes)
	// Deny-all: the same policy with every allow turned off.
	if err := os.WriteFile(authz, []byte(strings.ReplaceAll(string(good), `"allow": true`, `"allow": false`)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitMetric(successes, before+1)
	if status, code, _ := d.call("GET", mailboxes); status != 403 || code != "policy_denied" {
		t.Fatalf("after a deny-all policy: %d %s", status, code)
	}
	if err := os.WriteFile(authz, good, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitMetric(successes, before+2)

	// Audit unwritable: 503 and nothing forwarded.
	rdb := redis.NewClient(mustParse(t, d.redis.URL))
	defer rdb.Close()
	ctx := context.Background()
	stream := "lockbox:{contoso}:audit"
	saved, err := rdb.Dump(ctx, stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, stream)
	rdb.Set(ctx, stream, "not a stream", 0)
	exchange.Reset()
	if status, code, _ := d.call("GET", mailboxes); status != 503 || code != "audit_unavailable" {
		t.Fatalf("audit unwritable: %d %s", status, code)
	}
	if n := len(exchange.Seen()); n != 0 {
		t.Fatal("a call whose audit failed reached the upstream")
	}
	rdb.Del(ctx, stream)
	if err := rdb.Restore(ctx, stream, 0, saved).Err(); err != nil {
		t.Fatal(err)
	}

	// Revoke: the next call is 403.
	d.ctl("admin", nil, "request", "revoke", r.ID)
	if status, code, _ := d.call("GET", mailboxes); status != 403 || code != "no_grant" {
		t.Fatalf("after revoke: %d %s", status, code)
	}

	// Redis stopped: 503, never 200.
	d.approved("onedrive")
	d.redis.Stop()
	start := time.Now()
	status, code, _ = d.call("GET", "/onedrive/tenants/contoso/drives")
	if status != 503 || code != "store_unavailable" {
		t.Fatalf("Redis down: %d %s", status, code)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a call with Redis down took %s", took)
	}
	if resp, err := http.Get("http://" + d.metrics + "/readyz"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("readyz with Redis down: %v %v", resp, err)
	}
}

func mustParse(t *testing.T, url string) *redis.Options {
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// assertionClaims are the claims an upstream built with golang-jwt reads.
type assertionClaims struct {
	jwt.RegisteredClaims
	Tenant, Method, Path string

	wantPath string
}

func (c *assertionClaims) Validate() error {
	if c.Method != http.MethodGet || c.Path != c.wantPath {
		return fmt.Errorf("issued for %s %s", c.Method, c.Path)
	}
	return nil
}

// checkAssertion verifies a GET's assertion as an upstream would: the JWKS
// from GET /v1/keys (which the JWKS file repeats), golang-jwt with the
// algorithm pinned, issuer and audience, and the call's path.
func checkAssertion(t *testing.T, d *deployment, assertion, path, auditID string) {
	t.Helper()
	resp, err := http.Get("http://" + d.api + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/keys: %d %v", resp.StatusCode, err)
	}
	if file, err := os.ReadFile(d.jwksFile); err != nil || !bytes.Equal(file, doc) {
		t.Errorf("LOCKBOX_PROXY_JWKS_FILE holds %s (%v), the API serves %s", file, err, doc)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg string }
	}
	if err := json.Unmarshal(doc, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Alg != "EdDSA" {
		t.Fatalf("JWKS %s: %v", doc, err)
	}
	x, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	keyfunc := func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != set.Keys[0].Kid {
			return nil, fmt.Errorf("unknown kid %v", tok.Header["kid"])
		}
		return ed25519.PublicKey(x), nil
	}
	verify := func(path string) (*assertionClaims, error) {
		c := &assertionClaims{wantPath: path}
		_, err := jwt.ParseWithClaims(assertion, c, keyfunc, jwt.WithValidMethods([]string{"EdDSA"}),
			jwt.WithIssuer("lockbox"), jwt.WithAudience("exchange"), jwt.WithExpirationRequired())
		return c, err
	}
	c, err := verify(path)
	if err != nil {
		t.Fatalf("golang-jwt refused the proxy's assertion: %v", err)
	}
	if c.ID != auditID || c.Tenant != "contoso" || c.Subject != "Microsoft Operator" {
		t.Errorf("assertion claims %+v: want audit record %s", c, auditID)
	}
	if _, err := verify(path + "/megan-bowen/messages"); err == nil {
		t.Error("the assertion verified for another path")
	}
}
