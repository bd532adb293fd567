package proxy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// The tests here drive CallWatch's passes themselves, without Run: what a
// pass did is done once it returns, but for the cuts, which the calls'
// own goroutines carry out.

// heldEnv is a test env whose exchange upstream answers "first\n" at once,
// then holds each call until the proxy hangs up on it, reporting the
// call's lockbox request id on the returned channel (which has room for
// calls of them), or until release, which has it answer "last\n" and end.
// The test's end releases the calls left.
func heldEnv(t *testing.T, calls int, opts ...envOption) (e *testEnv, hungUp <-chan string, release func()) {
	t.Helper()
	hung, released := make(chan string, calls), make(chan struct{})
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			hung <- r.Header.Get(HeaderRequestID)
		case <-released:
			_, _ = io.WriteString(w, "last\n")
		}
	})
	opts = append([]envOption{withClientTimeout(30 * time.Second), patientStore}, opts...)
	e = newTestEnv(t, append(opts, upstreamAt(upstream))...)
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	// Before the upstream's Close, which waits for its calls.
	t.Cleanup(release)
	return e, hung, release
}

// startHeld makes p's call to target through e and returns its answer
// once the first bytes came: the call is forwarded, and watched.
func startHeld(t *testing.T, ctx context.Context, e *testEnv, client *http.Client, p identity.Principal, target string) *http.Response {
	t.Helper()
	res, err := client.Do(authorizedCall(t, ctx, e, p, http.MethodGet, e.srv.URL+target, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	got := make([]byte, len("first\n"))
	if _, err := io.ReadFull(res.Body, got); err != nil {
		t.Fatalf("%s's call to %s: %s %q %v", p.Subject, target, res.Status, got, err)
	}
	return res
}

// heldClient is a client of its own for a test's held calls, one
// connection each.
func heldClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// operators are n engineers of the provider, each with a grant of their
// own once approved.
func operators(n int) []identity.Principal {
	ps := make([]identity.Principal, n)
	for i := range ps {
		ps[i] = identity.Principal{Subject: fmt.Sprintf("engineer%d@provider.example", i), Roles: []identity.Role{identity.RoleOperator}}
	}
	return ps
}

// grantReads is a hook that counts, by key, the grants and their requests
// read (GET) through the client it is added to.
type grantReads struct {
	mu sync.Mutex
	n  map[string]int
}

// take returns the counts since the last take, and starts again.
func (h *grantReads) take() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.n
	h.n = map[string]int{}
	return n
}

func (h *grantReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *grantReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "get" && len(args) == 2 {
			h.mu.Lock()
			if h.n == nil {
				h.n = map[string]int{}
			}
			h.n[fmt.Sprint(args[1])]++
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (h *grantReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestStalledStoreCutsEveryCallInOnePass: with the grants' Redis stalled
// (stopped: it accepts connections and answers nothing, as a Redis blocked
// by a slow command or behind a black-holed network), a pass over calls
// under many engineers' grants reads those grants at once, each within
// its own GrantTimeout, and cuts every call (store_unavailable) in about
// one GrantTimeout, not one GrantTimeout per grant: 10 engineers'
// downloads would otherwise stream on for 2 s after the store stopped
// answering, and 20 under the default timeout for 6 s.
func TestStalledStoreCutsEveryCallInOnePass(t *testing.T) {
	const (
		calls        = 10
		grantTimeout = 200 * time.Millisecond
		// One pass reading the grants one after the other takes calls ×
		// grantTimeout; this bound leaves a loaded machine room.
		bound    = 5 * grantTimeout
		patience = 15 * time.Second
	)
	srv := redistest.StartServer(t)
	e, hungUp, _ := heldEnv(t, calls, func(e *testEnv, c *Config) {
		o, err := redis.ParseURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// As lockbox serve sets it up: a read gives up at its deadline,
		// and is sent once.
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		rdb := redis.NewClient(o)
		t.Cleanup(func() { rdb.Close() })
		// The requests live with their grants, and their records with
		// the tenant's registry entry.
		log := audit.NewLog(rdb, e.clk.Now)
		ts := tenants.NewStore(rdb, log, e.clk.Now)
		tenanttest.Onboard(t, ts, "contoso")
		if e.grants, err = grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: e.catalog, Now: e.clk.Now}); err != nil {
			t.Fatal(err)
		}
		c.Grants = e.grants
		c.GrantTimeout = grantTimeout
	})
	requests := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	client := heldClient(t)
	var answers []*http.Response
	for _, p := range operators(calls) {
		requests[e.grantFor(p, "contoso", "exchange", 2*time.Hour).ID] = true
		answers = append(answers, startHeld(t, ctx, e, client, p, mailboxes))
	}

	// Every grant was read a second ago: the pass reads them all again.
	e.clk.Advance(time.Second)
	thaw := srv.Freeze(t)
	start := time.Now()
	e.h.CallWatch().checkStale(ctx)
	took := time.Since(start)
	thaw()
	if took > bound {
		t.Errorf("the pass over %d grants, Redis stalled, took %v; want at most %v: the reads, each bounded by %v, wait together",
			calls, took, bound, grantTimeout)
	}
	for i, res := range answers {
		if n, err := io.Copy(io.Discard, res.Body); err == nil || ctx.Err() != nil {
			t.Fatalf("call %d: %d more bytes, %v: want it cut off within the test's patience:\n%s", i, n, err, e.logs)
		}
	}
	for range calls {
		id := waitHungUp(t, ctx, e, hungUp, "an upstream call")
		if !requests[id] {
			t.Errorf("the proxy hung up on a call under request %q, which no call was left to be cut under", id)
		}
		delete(requests, id)
	}
	waitCounted(t, ctx, e, calls, "the calls were never counted")
	if got := cutCount(t, e, "exchange", ReasonStoreUnavailable); got != calls {
		t.Errorf("lockbox_proxy_calls_cut_total{exchange,%s} = %v, want %d", ReasonStoreUnavailable, got, calls)
	}
	lines := e.logLines("proxy call cut: the grant could not be read again during the call")
	if len(lines) != calls {
		t.Errorf("%d log lines of cuts, want %d:\n%s", len(lines), calls, e.logs)
	}
	for _, l := range lines {
		if l["reason"] != string(ReasonStoreUnavailable) {
			t.Errorf("log line %v: want reason %s", l, ReasonStoreUnavailable)
		}
	}
}

// TestCallsUnderOneGrantShareARead: a pass reads each grant once, however
// many calls it checks under it: five of alice's calls and one of bob's
// cost two reads, whether the pass is the interval's (their grants read a
// second ago) or an invalidation's. The read confirms every call under the
// grant: a pass right after reads nothing.
func TestCallsUnderOneGrantShareARead(t *testing.T) {
	const patience = 15 * time.Second
	reads := &grantReads{}
	e, hungUp, release := heldEnv(t, 6, func(e *testEnv, c *Config) {
		rdb := redis.NewClient(e.rdb.Options())
		t.Cleanup(func() { rdb.Close() })
		rdb.AddHook(reads)
		c.Grants = grantStoreOn(t, e, rdb)
	})
	alices := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	bobs := e.grantFor(bob, "contoso", "exchange", 2*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	client := heldClient(t)
	var answers []*http.Response
	for range 5 {
		answers = append(answers, startHeld(t, ctx, e, client, alice, mailboxes))
	}
	answers = append(answers, startHeld(t, ctx, e, client, bob, mailboxes))
	reads.take()

	// Each grant is read with its request (grants.Store.Grant).
	once := map[string]int{keys.Grant("contoso", alice.Subject, "exchange"): 1, keys.Grant("contoso", bob.Subject, "exchange"): 1,
		keys.Request("contoso", alices.ID): 1, keys.Request("contoso", bobs.ID): 1}
	w := e.h.CallWatch()
	e.clk.Advance(time.Second)
	w.checkStale(ctx)
	if got := reads.take(); !maps.Equal(got, once) {
		t.Errorf("the interval's pass read %v; want each grant once: %v", got, once)
	}
	w.checkStale(ctx)
	if got := reads.take(); len(got) != 0 {
		t.Errorf("a pass right after read %v; want nothing: every call's grant was just confirmed", got)
	}
	w.Invalidate("contoso")
	w.checkInvalidated(ctx)
	if got := reads.take(); !maps.Equal(got, once) {
		t.Errorf("the invalidation's pass read %v; want each grant once: %v", got, once)
	}

	release()
	for i, res := range answers {
		if rest, err := io.ReadAll(res.Body); err != nil || string(rest) != "last\n" {
			t.Errorf("call %d: %q %v, want the rest of the answer", i, rest, err)
		}
	}
	waitCounted(t, ctx, e, 6, "the calls were never counted")
	select {
	case id := <-hungUp:
		t.Errorf("the proxy hung up on a call under request %s", id)
	default:
	}
}

// TestRevocationCutsOnlyItsGrantsCalls: with calls in flight under grants
// of several engineers on two tenants, the revocation of alice's grant on
// contoso, once its event has the tenant's calls read again, cuts her two
// calls there (no_grant, the reason a new call gets) and nothing else:
// bob's call on contoso, read again in the same pass, and the calls on
// fabrikam, read again by a pass over every call, go on to their end.
func TestRevocationCutsOnlyItsGrantsCalls(t *testing.T) {
	const patience = 15 * time.Second
	e, hungUp, release := heldEnv(t, 5)
	revoked := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	e.grantFor(bob, "contoso", "exchange", 2*time.Hour)
	e.grantFor(alice, "fabrikam", "exchange", 2*time.Hour)
	e.grantFor(bob, "fabrikam", "exchange", 2*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	client := heldClient(t)
	const fabrikam = "/exchange/tenants/fabrikam/mailboxes"
	cut := []*http.Response{startHeld(t, ctx, e, client, alice, mailboxes), startHeld(t, ctx, e, client, alice, mailboxes)}
	kept := []*http.Response{startHeld(t, ctx, e, client, bob, mailboxes),
		startHeld(t, ctx, e, client, alice, fabrikam), startHeld(t, ctx, e, client, bob, fabrikam)}

	if _, err := e.grants.Act(context.Background(), revoked.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso"), ClientIP: "203.0.113.5"}, "done"); err != nil {
		t.Fatal(err)
	}
	// What the revocation's event has the watch do (no cache here to
	// clear first).
	w := e.h.CallWatch()
	w.Invalidate("contoso")
	w.checkInvalidated(ctx)
	for i, res := range cut {
		if n, err := io.Copy(io.Discard, res.Body); err == nil || ctx.Err() != nil {
			t.Fatalf("alice's call %d on contoso: %d more bytes, %v: want it cut off within the test's patience:\n%s", i, n, err, e.logs)
		}
	}
	for range cut {
		if id := waitHungUp(t, ctx, e, hungUp, "alice's upstream call"); id != revoked.ID {
			t.Errorf("the proxy hung up on request %s's call, want only the revoked %s's", id, revoked.ID)
		}
	}
	// Every call left, read again.
	w.Reset()
	w.checkInvalidated(ctx)

	release()
	for i, res := range kept {
		if rest, err := io.ReadAll(res.Body); err != nil || string(rest) != "last\n" {
			t.Errorf("kept call %d: %q %v, want the rest of the answer:\n%s", i, rest, err, e.logs)
		}
	}
	waitCounted(t, ctx, e, 5, "the calls were never counted")
	lines := e.logLines("proxy call cut: the grant ended during the call")
	if len(lines) != len(cut) {
		t.Errorf("%d log lines of cuts, want %d, of request %s:\n%s", len(lines), len(cut), revoked.ID, e.logs)
	}
	for _, l := range lines {
		if l["request_id"] != revoked.ID || l["reason"] != string(ReasonNoGrant) {
			t.Errorf("log line %v: want request_id %s, reason %s", l, revoked.ID, ReasonNoGrant)
		}
	}
	if got := cutCount(t, e, "exchange", ReasonNoGrant); got != float64(len(cut)) {
		t.Errorf("lockbox_proxy_calls_cut_total{exchange,%s} = %v, want %d", ReasonNoGrant, got, len(cut))
	}
}

// readsSent is a hook that reports each GET sent through the client it is
// added to, as it is sent, once armed: on sent, which has room for all a
// pass may send.
type readsSent struct {
	armed atomic.Bool
	sent  chan struct{}
}

func (h *readsSent) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *readsSent) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "get" && h.armed.Load() {
			h.sent <- struct{}{}
		}
		return next(ctx, cmd)
	}
}
func (h *readsSent) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestStoppedPassCutsNothing: a pass over more grants than it reads at
// once, the grants' Redis stalled, has maxWatchReads reads waiting and
// starts no other; stopped then (its context ended, as lockbox serve
// stops), it returns once they gave up, starts none of the grants left,
// and cuts no call: a read that failed because the pass stopped says
// nothing of the grant.
func TestStoppedPassCutsNothing(t *testing.T) {
	const (
		calls    = maxWatchReads + 4
		patience = 15 * time.Second
	)
	srv := redistest.StartServer(t)
	reads := &readsSent{sent: make(chan struct{}, calls)}
	e, hungUp, release := heldEnv(t, calls, func(e *testEnv, c *Config) {
		o, err := redis.ParseURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// As lockbox serve sets it up, LOCKBOX_REDIS_TIMEOUT 2 s: a read
		// waiting on Redis gives up then, its context ended or not (go-redis
		// heeds a context's deadline, not its end). The grant timeout is
		// longer (patientStore), so the pass's reads give up for the stop
		// alone, if the test sends them all and stops within those 2 s.
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
		rdb := redis.NewClient(o)
		t.Cleanup(func() { rdb.Close() })
		rdb.AddHook(reads)
		log := audit.NewLog(rdb, e.clk.Now)
		ts := tenants.NewStore(rdb, log, e.clk.Now)
		tenanttest.Onboard(t, ts, "contoso")
		if e.grants, err = grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: e.catalog, Now: e.clk.Now}); err != nil {
			t.Fatal(err)
		}
		c.Grants = e.grants
	})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	client := heldClient(t)
	var answers []*http.Response
	for _, p := range operators(calls) {
		e.grantFor(p, "contoso", "exchange", 2*time.Hour)
		answers = append(answers, startHeld(t, ctx, e, client, p, mailboxes))
	}
	e.clk.Advance(time.Second)
	thaw := srv.Freeze(t)
	reads.armed.Store(true)
	pass, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.h.CallWatch().checkStale(pass) }()
	for range maxWatchReads {
		select {
		case <-reads.sent:
		case <-ctx.Done():
			t.Fatalf("fewer than %d reads were sent within the test's patience", maxWatchReads)
		}
	}
	stop()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the pass did not return once stopped")
	}
	thaw()
	// The reads waiting answered nothing: none had ended when the pass
	// stopped (each had patientStore's 10 s), so all it sent were waiting
	// together.
	reads.armed.Store(false)
	if n := len(reads.sent); n != 0 {
		t.Errorf("%d more reads were sent, beyond the %d a pass has waiting at once", n, maxWatchReads)
	}

	release()
	for i, res := range answers {
		if rest, err := io.ReadAll(res.Body); err != nil || string(rest) != "last\n" {
			t.Errorf("call %d: %q %v, want the rest of the answer:\n%s", i, rest, err, e.logs)
		}
	}
	waitCounted(t, ctx, e, calls, "the calls were never counted")
	select {
	case id := <-hungUp:
		t.Errorf("the proxy hung up on a call under request %s", id)
	default:
	}
	if lines := e.logLines("proxy call cut: the grant could not be read again during the call"); len(lines) != 0 {
		t.Errorf("%d calls cut for the store, want none: the pass was stopped", len(lines))
	}
}
