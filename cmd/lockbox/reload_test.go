//go:build unix

package main

import (
	"bufio"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

// hupServe is a "lockbox serve" in a process of its own, with a policy
// directory, a grant signing key and an upstream that keeps the
// X-Lockbox-Grant of each call it receives.
type hupServe struct {
	t       *testing.T
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has ended; then waitErr is set
	waitErr error
	logs    *syncBuffer
	dir     string
	api     string
	proxy   string
	metrics string
	tokens  map[string]string

	mu       sync.Mutex
	received []upstreamCall
}

type upstreamCall struct{ method, path, assertion string }

// startHupServe starts "lockbox serve" (under nohup with nohup set) and
// returns once it is listening. Its policy is only read again when told:
// the watcher's interval is an hour.
func startHupServe(t *testing.T, nohup bool) *hupServe {
	t.Helper()
	p := &hupServe{t: t, dir: t.TempDir(), exited: make(chan struct{}), logs: &syncBuffer{}, tokens: map[string]string{}}
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := identity.WriteDevKeys(p.dir, key); err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(p.grantKeyFile(), filepath.Join(p.dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(p.policyDir(), lockboxrego.FS); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]identity.Claims{
		"operator":      {Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}},
		"manager":       {Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}},
		"admin":         {Subject: "gina@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"},
		"lockbox-admin": {Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}},
	} {
		c.TTL = time.Hour
		if p.tokens[name], err = identity.Mint(key, "lockbox", "lockbox", c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.received = append(p.received, upstreamCall{r.Method, r.URL.EscapedPath(), r.Header.Get("X-Lockbox-Grant")})
		p.mu.Unlock()
		io.WriteString(w, "{}")
	}))
	t.Cleanup(upstream.Close)

	args := []string{os.Args[0], "serve"}
	if nohup {
		// The real thing: nohup ignores SIGHUP and runs the command.
		path, err := exec.LookPath("nohup")
		if err != nil {
			t.Fatal(err)
		}
		args = append([]string{path}, args...)
	}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(scrubbedEnv(), runMainEnv+"=1",
		"LOCKBOX_REDIS_URL="+redistest.URL(t),
		"LOCKBOX_JWT_JWKS_FILE="+filepath.Join(p.dir, identity.DevJWKSFile),
		"LOCKBOX_API_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0",
		"LOCKBOX_UPSTREAMS=exchange="+upstream.URL,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE="+p.grantKeyFile(),
		"LOCKBOX_PROXY_JWKS_FILE="+p.jwksFile(),
		"LOCKBOX_POLICY_DIR="+p.policyDir(),
		"LOCKBOX_POLICY_RELOAD_INTERVAL=1h",
		"LOCKBOX_SIEM_SINK=off",
	)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return // the test failed already
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.waitErr != nil {
				t.Errorf("lockbox serve did not stop cleanly: %v\n%s", p.waitErr, p.logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("lockbox serve did not stop within 30s of SIGTERM\n%s", p.logs.String())
		}
	})
	listening := regexp.MustCompile(`msg="lockbox listening" .*api=(\S+) proxy=(\S+) metrics=(\S+)`)
	p.waitFor("listening", func(logs string) bool {
		if m := listening.FindStringSubmatch(logs); m != nil {
			p.api, p.proxy, p.metrics = "http://"+m[1], "http://"+m[2], "http://"+m[3]
			return true
		}
		return false
	})
	return p
}

func (p *hupServe) grantKeyFile() string { return filepath.Join(p.dir, "grant.pem") }
func (p *hupServe) jwksFile() string     { return filepath.Join(p.dir, "grant-jwks.json") }
func (p *hupServe) policyDir() string    { return filepath.Join(p.dir, "policy") }

// waitFor waits until done holds of the logs, failing the test if the
// process ends first or 30s pass: the deadline only bounds a failure.
func (p *hupServe) waitFor(what string, done func(logs string) bool) {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for !done(p.logs.String()) {
		select {
		case <-p.exited:
			p.t.Fatalf("lockbox serve ended waiting for %s: %v\n%s", what, p.waitErr, p.logs.String())
		case <-deadline:
			p.t.Fatalf("no %s after 30s\n%s", what, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// hangup sends SIGHUP and waits for the reload's lines: the n-th of each
// msg in want.
func (p *hupServe) hangup(n int, want ...string) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		p.t.Fatal(err)
	}
	for _, msg := range want {
		p.waitFor(fmt.Sprintf("log line %d of %s", n, msg), func(logs string) bool {
			return strings.Count(logs, `msg="`+msg+`"`) >= n
		})
	}
}

// approveGrant has alice's request for contoso's exchange approved by the
// manager and the tenant's global administrator.
func (p *hupServe) approveGrant(ctx context.Context) {
	p.t.Helper()
	as := func(name string) *client.Client {
		c, err := client.New(p.api, p.tokens[name])
		if err != nil {
			p.t.Fatal(err)
		}
		return c
	}
	if _, err := as("lockbox-admin").Onboard(ctx, wire.Onboarding{ID: "contoso", DisplayName: "Contoso Ltd",
		Domains: []string{"contoso.example"}, GlobalAdmins: []string{"gina@contoso.example"}}); err != nil {
		p.t.Fatalf("onboard: %v", err)
	}
	r, err := as("operator").CreateRequest(ctx, wire.CreateRequest{Tenant: "contoso", Service: "exchange",
		ServiceRequest: "SR-42", Reason: "mailbox repair", Duration: wire.Duration(time.Hour)})
	if err != nil {
		p.t.Fatalf("create request: %v", err)
	}
	if _, err := as("manager").Approve(ctx, r.ID, "ok"); err != nil {
		p.t.Fatalf("manager approval: %v", err)
	}
	if _, err := as("admin").Approve(ctx, r.ID, "go ahead"); err != nil {
		p.t.Fatalf("tenant approval: %v", err)
	}
}

// call sends alice's call through the proxy, and returns its status, its
// error code, and the assertion the upstream received (empty if none).
func (p *hupServe) call(ctx context.Context) (status int, code, assertion string) {
	p.t.Helper()
	p.mu.Lock()
	before := len(p.received)
	p.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.proxy+"/exchange/tenants/contoso/mailboxes", nil)
	req.Header.Set("Authorization", "Bearer "+p.tokens["operator"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("proxy: %v\n%s", err, p.logs.String())
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.received) > before {
		last := p.received[len(p.received)-1]
		if last.method != "GET" || last.path != "/tenants/contoso/mailboxes" {
			p.t.Fatalf("the upstream received %s %s", last.method, last.path)
		}
		assertion = last.assertion
	}
	return resp.StatusCode, body.Error.Code, assertion
}

// verifies reports whether key's public half verifies assertion as the
// upstream of the call would.
func verifies(t *testing.T, assertion string, key crypto.PublicKey) bool {
	t.Helper()
	ks, err := grantsig.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = grantsig.Verify(ks, assertion, grantsig.Expect{Issuer: grantsig.DefaultIssuer, Audience: "exchange",
		Method: "GET", Path: "/tenants/contoso/mailboxes"}, time.Now())
	return err == nil
}

// publishes reports whether the JWKS b holds key.
func publishes(t *testing.T, b []byte, key crypto.PublicKey) bool {
	t.Helper()
	ks, err := grantsig.ParseJWKS(b)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	kid, err := grantsig.KeyID(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks.KeyIDs() {
		if k == kid {
			return true
		}
	}
	return false
}

// TestServeReloadsOnHangup: "lockbox serve" died on the spot of a SIGHUP
// (the Go runtime's default), cutting off the calls it served, where
// operators send it to have a daemon re-read its files (systemd's
// ExecReload). Now it keeps serving and re-reads, at once, the files that
// can change under it: a new grant signing key signs the next call's
// X-Lockbox-Grant and is published (GET /v1/keys, LOCKBOX_PROXY_JWKS_FILE),
// and a new policy decides the next call, though the policy watcher would
// not look for an hour. A broken file keeps what was loaded before in
// force, with an error naming it.
func TestServeReloadsOnHangup(t *testing.T) {
	p := startHupServe(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p.approveGrant(ctx)
	oldKey, err := grantsig.LoadPublicKey(p.grantKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	status, code, assertion := p.call(ctx)
	if status != http.StatusOK || !verifies(t, assertion, oldKey) {
		t.Fatalf("before SIGHUP: %d %s, assertion verified by the key: %v\n%s", status, code, verifies(t, assertion, oldKey), p.logs.String())
	}

	// A new signing key, swapped in as a rotation does (a rename), and
	// SIGHUP.
	newFile := filepath.Join(p.dir, "next.pem")
	newSigner, err := grantsig.EnsureKeyFiles(newFile, filepath.Join(p.dir, "next.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(newFile, p.grantKeyFile()); err != nil {
		t.Fatal(err)
	}
	p.hangup(1, "grant keys reloaded", "policy reloaded", "token key files reloaded")
	if !strings.Contains(p.logs.String(), `level=WARN msg="SIGHUP re-reads only`) {
		t.Errorf("no warning of what SIGHUP does not re-read:\n%s", p.logs.String())
	}
	status, code, assertion = p.call(ctx)
	if status != http.StatusOK {
		t.Fatalf("after SIGHUP: %d %s\n%s", status, code, p.logs.String())
	}
	if !verifies(t, assertion, newSigner.Public()) || verifies(t, assertion, oldKey) {
		t.Errorf("after a new key and SIGHUP: the assertion verifies with the new key: %v, with the old: %v; want the new only",
			verifies(t, assertion, newSigner.Public()), verifies(t, assertion, oldKey))
	}
	jwks, err := os.ReadFile(p.jwksFile())
	if err != nil {
		t.Fatal(err)
	}
	if !publishes(t, jwks, newSigner.Public()) {
		t.Errorf("LOCKBOX_PROXY_JWKS_FILE lacks the new key: %s", jwks)
	}
	resp, err := http.Get(p.api + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !publishes(t, served, newSigner.Public()) {
		t.Errorf("GET /v1/keys lacks the new key: %s", served)
	}

	// A policy that denies every call, and SIGHUP: the next call is
	// decided by it.
	freeze := filepath.Join(p.policyDir(), "lockbox", "authz", "freeze.rego")
	if err := os.WriteFile(freeze, []byte("package lockbox.authz\n\ndenials contains \"activity_not_requested\" if true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.hangup(2, "policy reloaded")
	if status, code, _ := p.call(ctx); status != http.StatusForbidden || code != "policy_denied" {
		t.Errorf("after a denying policy and SIGHUP: %d %s, want 403 policy_denied\n%s", status, code, p.logs.String())
	}

	// Broken files: a key that is no key, a policy that does not
	// compile. Each is refused, naming it; the last good ones stay in
	// force, and the process serves on.
	if err := os.WriteFile(p.grantKeyFile(), []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(freeze, []byte("package lockbox.authz\n\ndenials contains if\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.hangup(1, "grant key reload failed; the keys loaded before stay in use", "policy reload failed; the last good policy keeps serving")
	logs := p.logs.String()
	if !regexp.MustCompile(`level=ERROR msg="grant key reload failed; the keys loaded before stay in use" .*file=` + regexp.QuoteMeta(p.grantKeyFile())).MatchString(logs) {
		t.Errorf("the refused key's line does not name its file:\n%s", logs)
	}
	if !regexp.MustCompile(`level=ERROR msg="policy reload failed; the last good policy keeps serving" .*freeze\.rego`).MatchString(logs) {
		t.Errorf("the refused policy's line does not name its file:\n%s", logs)
	}
	if status, code, _ := p.call(ctx); status != http.StatusForbidden || code != "policy_denied" {
		t.Errorf("after a broken policy and SIGHUP: %d %s, want the last good policy's 403 policy_denied", status, code)
	}
	// The last good policy allows the call again: it is signed with the
	// last good key.
	if err := os.Remove(freeze); err != nil {
		t.Fatal(err)
	}
	p.hangup(3, "policy reloaded")
	status, code, assertion = p.call(ctx)
	if status != http.StatusOK || !verifies(t, assertion, newSigner.Public()) {
		t.Errorf("after a broken key and SIGHUP: %d %s, assertion verified by the last good key: %v\n%s",
			status, code, verifies(t, assertion, newSigner.Public()), p.logs.String())
	}
	if jwks, err := os.ReadFile(p.jwksFile()); err != nil || !publishes(t, jwks, newSigner.Public()) {
		t.Errorf("LOCKBOX_PROXY_JWKS_FILE after a broken key: %v %s, want the last good key's", err, jwks)
	}
	if reloads := metricValue(t, p.metrics, `lockbox_policy_reloads_total{result="error"}`); reloads != 1 {
		t.Errorf("lockbox_policy_reloads_total{result=\"error\"} = %v, want 1", reloads)
	}
}

// TestServeUnderNohupKeepsIgnoringHangup: started with SIGHUP ignored
// (nohup), "lockbox serve" leaves it ignored, as the one who started it
// asked: it neither dies of it nor reloads on it.
func TestServeUnderNohupKeepsIgnoringHangup(t *testing.T) {
	p := startHupServe(t, true)
	ignored, caught := signalMasks(t, p.cmd.Process.Pid)
	const hup = 1 << (syscall.SIGHUP - 1)
	if ignored&hup == 0 || caught&hup != 0 {
		t.Errorf("under nohup: SIGHUP ignored %v, caught %v; want ignored only", ignored&hup != 0, caught&hup != 0)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.metrics + "/livez")
	if err != nil {
		t.Fatalf("after SIGHUP under nohup: %v\n%s", err, p.logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/livez after SIGHUP under nohup: %s", resp.Status)
	}
}

// signalMasks reads the signals process pid ignores and catches, from
// /proc/PID/status.
func signalMasks(t *testing.T, pid int) (ignored, caught uint64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "SigIgn" && name != "SigCgt") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if name == "SigIgn" {
			ignored = mask
		} else {
			caught = mask
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ignored, caught
}

// metricValue reads one sample from the metrics address (0 when absent).
func metricValue(t *testing.T, metrics, name string) float64 {
	t.Helper()
	resp, err := http.Get(metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}
