package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/rego"
)

// reloadingPolicy is the real policy engine with one reload staged inside
// the first call: Snapshot takes the engine's snapshot, then reloads the
// engine (whose directory already holds the next version) before handing
// the snapshot over. Every step of that call runs after the reload, as if
// the watcher had fired right after the call began: deterministic, with
// no sleeping and no racing.
type reloadingPolicy struct {
	engine *policy.Engine
	once   sync.Once
	// reloaded receives the staged reload's result. A channel, because the
	// reload runs on the server's goroutine.
	reloaded chan error
}

func (p *reloadingPolicy) Snapshot() PolicySnapshot {
	s := p.engine.Snapshot()
	p.once.Do(func() { p.reloaded <- p.engine.Reload() })
	return s
}

// testEvalTimeout bounds the real engine's evaluations in the tests that
// judge calls with it and do not test the timeout itself. Under
// policy.DefaultEvalTimeout (250 ms, for production) an evaluation on a
// loaded two-core machine running -race sometimes took longer, and
// TestReloadDuringCall's first call got 503 policy_error; what these tests
// prove does not depend on the timeout, which here only bounds a failure.
const testEvalTimeout = 10 * time.Second

// TestReloadDuringCall: a call is classified and decided by the policy
// version serving when it began, and its audit record and log lines name
// that version, even when the policy reloads in the middle of it. The next
// call is judged by the new version.
//
// Version A is the default: GET .../mailboxes is Get-Mailbox, a read the
// grant allows. Version B differs in both halves: its catalog calls the
// same route Find-Mailbox, and its policy denies every call ("frozen").
// Only A's catalog with A's policy forwards the call: A's catalog with B's
// policy is frozen, and B's catalog with A's policy is an activity A's
// policy does not know.
func TestReloadDuringCall(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, rego.FS); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.NewEngine(policy.EngineConfig{Dir: dir, EvalTimeout: testEvalTimeout})
	if err != nil {
		t.Fatal(err)
	}
	revA := engine.Revision()
	staged := &reloadingPolicy{engine: engine, reloaded: make(chan error, 1)}
	e := newTestEnv(t, func(_ *testEnv, c *Config) { c.Policy = staged })
	e.grantFor(alice, "contoso", "exchange", time.Hour)

	// Version B is on disk; the engine reads it only when it reloads.
	catalog := filepath.Join(dir, policy.CatalogPath)
	b, err := os.ReadFile(catalog)
	if err != nil {
		t.Fatal(err)
	}
	renamed := bytes.Replace(b, []byte(`"Get-Mailbox"`), []byte(`"Find-Mailbox"`), 1)
	if bytes.Equal(renamed, b) {
		t.Fatal("the default catalog has no Get-Mailbox to rename")
	}
	writeTestFile(t, catalog, renamed)
	writeTestFile(t, filepath.Join(dir, "lockbox", "authz", "authz.rego"),
		[]byte("package lockbox.authz\n\ndecision := {\"allow\": false, \"reasons\": [\"frozen\"]}\n"))

	// The first call: judged by A from start to end.
	res := e.send(as(alice, "GET", mailboxes)(e))
	select {
	case err := <-staged.reloaded:
		if err != nil {
			t.Fatalf("the staged reload failed: %v", err)
		}
	default:
		t.Fatal("the proxy never took a snapshot")
	}
	revB := engine.Revision()
	if revB == revA {
		t.Fatal("the reload did not change the revision")
	}
	if res.status != http.StatusOK {
		t.Fatalf("first call: %d %s; want 200, judged by version A", res.status, res.body)
	}
	if n := len(e.up["exchange"].requests()); n != 1 {
		t.Fatalf("upstream received %d requests, want 1", n)
	}
	recs := operatorRecords(t, e)
	if len(recs) != 1 {
		t.Fatalf("audit: %d operator records, want 1: %+v", len(recs), recs)
	}
	if r := recs[0]; r.Operation != "Get-Mailbox" || r.LockboxPolicyRevision != revA {
		t.Errorf("audit record Operation %q, LockboxPolicyRevision %q; want Get-Mailbox and A's %s", r.Operation, r.LockboxPolicyRevision, revA)
	}
	if lines := e.logLines("proxy call forwarded"); len(lines) != 1 ||
		lines[0]["policy_revision"] != revA || lines[0]["activity"] != "Get-Mailbox" {
		t.Errorf("forward log lines %v; want one naming Get-Mailbox and revision %s", lines, revA)
	}

	// The next call: judged by B.
	res = e.send(as(alice, "GET", mailboxes)(e))
	if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonPolicyDenied) || !strings.Contains(string(res.body), "frozen") {
		t.Fatalf("second call: %d %s; want 403 policy_denied (frozen), judged by version B", res.status, res.body)
	}
	lines := e.logLines("proxy call denied")
	if len(lines) != 1 || lines[0]["policy_revision"] != revB || lines[0]["activity"] != "Find-Mailbox" {
		t.Errorf("denial log lines %v; want one naming Find-Mailbox and revision %s", lines, revB)
	}
	if n := len(e.up["exchange"].requests()); n != 1 {
		t.Errorf("upstream received %d requests, want the first call's only", n)
	}
	if recs := operatorRecords(t, e); len(recs) != 1 {
		t.Errorf("audit after the denial: %d operator records, want the first call's only", len(recs))
	}
}

// operatorRecords returns contoso's audit records of operator actions
// through the proxy, leaving out those of the request's lifecycle.
func operatorRecords(t *testing.T, e *testEnv) []record.Record {
	t.Helper()
	recs, err := e.audit.List(context.Background(), "contoso", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []record.Record
	for _, r := range recs {
		if r.Operator() {
			out = append(out, r)
		}
	}
	return out
}

// writeTestFile replaces name whole, by a rename, as a deployment updating
// a policy directory should.
func writeTestFile(t *testing.T, name string, b []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// TestReloadDuringBody: a call whose body the proxy reads is judged when
// the body is complete, by the policy version serving then, not by the one
// serving when its header arrived. A body may take as long as the client
// likes to arrive; a policy the security team replaced meanwhile (say, to
// freeze every call) must not judge it. The version that decides it also
// classifies it, and its audit record and log line name that version.
func TestReloadDuringBody(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, rego.FS); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.NewEngine(policy.EngineConfig{Dir: dir, EvalTimeout: testEvalTimeout})
	if err != nil {
		t.Fatal(err)
	}
	revA := engine.Revision()
	// Version B on disk: its catalog names the repair Start-MailboxRepair,
	// and its policy denies every call.
	catalog := filepath.Join(dir, policy.CatalogPath)
	b, err := os.ReadFile(catalog)
	if err != nil {
		t.Fatal(err)
	}
	renamed := bytes.Replace(b, []byte(`"New-MailboxRepairRequest"`), []byte(`"Start-MailboxRepair"`), 1)
	if bytes.Equal(renamed, b) {
		t.Fatal("the default catalog has no New-MailboxRepairRequest to rename")
	}
	writeTestFile(t, catalog, renamed)
	writeTestFile(t, filepath.Join(dir, "lockbox", "authz", "authz.rego"),
		[]byte("package lockbox.authz\n\ndecision := {\"allow\": false, \"reasons\": [\"frozen\"]}\n"))
	var (
		readings atomic.Int32
		reloaded = make(chan error, 1)
	)
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		c.Policy = PolicyFunc(func() PolicySnapshot { return engine.Snapshot() })
		c.Now = func() time.Time {
			if readings.Add(1) == 2 {
				// The second reading: the body is complete, and the
				// watcher reloaded the policy while it arrived.
				reloaded <- engine.Reload()
			}
			return e.clk.Now()
		}
	})
	repairOnContoso(e)
	res := e.send(formPOST(formURLEncoded, "kind=index", false)(e))
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("the staged reload failed: %v", err)
		}
	default:
		t.Fatal("the clock was not read when the body was complete")
	}
	revB := engine.Revision()
	if revB == revA {
		t.Fatal("the reload did not change the revision")
	}
	if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonPolicyDenied) || !strings.Contains(string(res.body), "frozen") {
		t.Fatalf("%d %s: want 403 policy_denied (frozen), judged by the version serving when the body was complete", res.status, res.body)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstream received %d requests", n)
	}
	if lines := e.logLines("proxy call denied"); len(lines) != 1 || lines[0]["policy_revision"] != revB || lines[0]["activity"] != "Start-MailboxRepair" {
		t.Errorf("denial log lines %v; want one naming Start-MailboxRepair and revision %s", lines, revB)
	}
}

// TestPolicyTimeout: a policy that does not decide within its deadline (a
// risk service it asks with http.send hangs) denies the call with a fast
// 503 policy_error, like any dependency that hangs, not a 403 that tells
// the engineer the call is forbidden; nothing reaches the upstream. A
// policy that fails otherwise still answers 403.
func TestPolicyTimeout(t *testing.T) {
	hang := make(chan struct{})
	risk := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer risk.Close()
	defer close(hang)
	for _, tt := range []struct {
		name, rego string
		// timeout is the engine's EvalTimeout: short where the policy
		// hangs, so the test need not wait; generous where it fails at
		// once, so a slow evaluation on a loaded machine does not time
		// out and answer 503 instead.
		timeout time.Duration
		status  int
	}{
		{"a hanging http.send", `decision := {"allow": http.send({"method": "GET", "url": "` + risk.URL + `"}).status_code == 200, "reasons": []}`, 50 * time.Millisecond, http.StatusServiceUnavailable},
		{"an evaluation error", `decision := {"allow": to_number(input.call.method) > 0, "reasons": []}`, testEvalTimeout, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, rego.FS); err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, filepath.Join(dir, "lockbox", "authz", "authz.rego"), []byte("package lockbox.authz\n\n"+tt.rego+"\n"))
			engine, err := policy.NewEngine(policy.EngineConfig{Dir: dir, EvalTimeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			e := newTestEnv(t, func(_ *testEnv, c *Config) {
				c.Policy = PolicyFunc(func() PolicySnapshot { return engine.Snapshot() })
			})
			readsOnContoso(e)
			start := time.Now()
			res := e.send(as(alice, "GET", mailboxes)(e))
			if res.status != tt.status || res.errorCode(t) != string(ReasonPolicyError) {
				t.Fatalf("%d %s: want %d %s", res.status, res.body, tt.status, ReasonPolicyError)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("answered after %s", d)
			}
			if n := e.upstreamCalls(); n != 0 {
				t.Errorf("upstream received %d requests", n)
			}
		})
	}
}

// TestHalfCloseWhilePolicyDecides: a client that goes away while the policy
// evaluates its call (here, waiting on a risk service the policy asks with
// http.send) cancels the evaluation, which then fails; that failure is the
// client's doing, not a policy in trouble. The call is answered and counted
// as client_canceled, never as policy_error, which the runbook reads as a
// policy to fix; nothing reaches the upstream or the audit log.
func TestHalfCloseWhilePolicyDecides(t *testing.T) {
	arrived := make(chan struct{}, 1)
	risk := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		// The bound only ends a test whose evaluation was never canceled.
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer risk.Close()
	dir := t.TempDir()
	if err := os.CopyFS(dir, rego.FS); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "lockbox", "authz", "authz.rego"), []byte("package lockbox.authz\n\n"+
		`decision := {"allow": http.send({"method": "GET", "url": "`+risk.URL+`"}).status_code == 200, "reasons": []}`+"\n"))
	engine, err := policy.NewEngine(policy.EngineConfig{Dir: dir, EvalTimeout: testEvalTimeout})
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, func(_ *testEnv, c *Config) {
		c.Policy = PolicyFunc(func() PolicySnapshot { return engine.Snapshot() })
	})
	readsOnContoso(e)
	records := auditEntries(t, e)
	c := e.dial()
	_ = c.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.c.Write(as(alice, "GET", mailboxes)(e).bytes()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the policy never asked the risk service")
	}
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	got := response{status: res.StatusCode, header: res.Header, body: body}
	if got.status != StatusClientClosedRequest || got.errorCode(t) != string(ReasonClientCanceled) {
		t.Fatalf("answered %d %q, want 499 client_canceled", got.status, body)
	}
	// Counted as the handler returns, after its answer.
	for deadline := time.Now().Add(10 * time.Second); sumMetric(t, e, "lockbox_proxy_requests_total") < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the call was never counted; log:\n%s", e.logs)
		}
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonPolicyError))); got != 0 {
		t.Errorf("denials{exchange,policy_error} = %v, want 0; log:\n%s", got, e.logs)
	}
	if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonClientCanceled))); got != 1 {
		t.Errorf("denials{exchange,client_canceled} = %v, want 1", got)
	}
	if lines := e.logLines("proxy call canceled by the client"); len(lines) != 1 || lines[0]["reason"] != string(ReasonClientCanceled) ||
		lines[0]["decision_id"] != res.Header.Get(HeaderDecisionID) {
		t.Errorf("log lines %v, want one with reason client_canceled and the answer's decision id", lines)
	}
	if n := len(e.logLines("proxy call denied")); n != 0 {
		t.Errorf("%d denial log lines, want none", n)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstreams received %d requests", n)
	}
	if n := auditEntries(t, e); n != records {
		t.Errorf("the audit streams hold %d entries after the call, want %d", n, records)
	}
}
