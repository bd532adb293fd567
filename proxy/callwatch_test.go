package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// testRecheckInterval is how often the tests' CallWatch looks for calls
// whose grant was read a second ago or more, by the injected clock: what
// the tests wait for is the clock moved on, not this interval, which only
// keeps the real wait short.
const testRecheckInterval = 20 * time.Millisecond

// withGrantCache serves e's grants from a cache as "lockbox serve" does,
// returned through cache.
func withGrantCache(cache **grants.GrantCache) envOption {
	return func(e *testEnv, c *Config) {
		*cache = grants.NewGrantCache(e.grants, time.Second, e.clk.Now)
		c.Grants = *cache
	}
}

// watchCalls wires e as "lockbox serve" does: a real subscription to the
// events, clearing the grant cache, then telling the handler's calls in
// flight, and the calls' watch running. With deaf, the subscription loses
// every event (Listener.Drop), as a replica whose connection broke does.
// The watch must stop when its context ends: the test fails if it does
// not.
func watchCalls(t *testing.T, e *testEnv, cache *grants.GrantCache, deaf bool) {
	t.Helper()
	l := events.NewListener(e.rdb, slog.New(slog.DiscardHandler), cache, e.h.CallWatch())
	if deaf {
		l.Drop = func(string) bool { return true }
	}
	ctx, cancel := context.WithCancel(context.Background())
	listened, watched := make(chan struct{}), make(chan struct{})
	go func() { defer close(listened); l.Run(ctx) }()
	go func() { defer close(watched); e.h.CallWatch().Run(ctx, testRecheckInterval) }()
	t.Cleanup(func() {
		cancel()
		<-listened
		select {
		case <-watched:
		case <-time.After(10 * time.Second):
			t.Error("CallWatch.Run did not return once its context ended")
		}
	})
	select {
	case <-l.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the events subscription never started")
	}
}

// TestRevocationCutsTheCall: a download under way when its grant ends
// early is cut within the bound a new call's refusal has, over HTTP/1.1 and
// HTTP/2, whether the upstream keeps the answer waiting or streams it to a
// client taking it all: revoked by the tenant, ended by the tenant switching
// Customer Lockbox on (a grant the provider's manager alone approved), or
// revoked by the tenant's offboarding; each through the real stores and a
// real subscription to their events. A replica that lost the revocation's
// event cuts the call once its cache may no longer serve the grant (a
// second by the injected clock) and the watch looks again. The client sees
// the call cut off, the upstream sees the proxy hang up, and the cut is
// logged and counted with the reason a new call gets (no_grant).
//
// The grant is judged, and ages, on the injected clock; the cut itself is
// the call's socket or stream deadline, which only real time passes, as at
// the grant's end (TestGrantEndCutsTheCall). The client timeout is far
// longer than the test's patience, so only the revocation can cut the call
// within it.
func TestRevocationCutsTheCall(t *testing.T) {
	const (
		timeout  = 30 * time.Second
		patience = 15 * time.Second
	)
	first := "first\n"
	revoke := func(t *testing.T, e *testEnv, req grants.Request) {
		if _, err := e.grants.Act(context.Background(), req.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso"), ClientIP: "203.0.113.5"}, "done"); err != nil {
			t.Fatal(err)
		}
	}
	for _, h2 := range []bool{false, true} {
		for _, shape := range []struct {
			name string
			// upstream answers; it reports on hungUp once the proxy hung
			// up on it, and lets go when release is closed, as the test
			// ends.
			upstream func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc
		}{
			{name: "upstream slow", upstream: func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
				return heldUpstream(first, hungUp, release)
			}},
			{name: "streaming", upstream: func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
				return streamingUpstream(first, 4<<10, hungUp, release)
			}},
		} {
			for _, tc := range []struct {
				name string
				// managerOnly: the tenant's lockbox is off as the grant
				// is approved, by the provider's manager alone.
				managerOnly bool
				// deaf: the replica loses every event.
				deaf bool
				end  func(t *testing.T, e *testEnv, req grants.Request)
			}{
				{name: "revoked", end: revoke},
				{name: "lockbox switched on", managerOnly: true, end: func(t *testing.T, e *testEnv, _ grants.Request) {
					e.setLockbox("contoso", true)
				}},
				{name: "offboarded", end: func(t *testing.T, e *testEnv, _ grants.Request) {
					if _, err := e.tenants.Offboard(context.Background(), tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
						t.Fatal(err)
					}
				}},
				{name: "revoked, event lost", deaf: true, end: func(t *testing.T, e *testEnv, req grants.Request) {
					revoke(t, e, req)
					// Until now the cache may serve the grant read as the
					// call was judged.
					e.clk.Advance(time.Second)
				}},
			} {
				t.Run(fmt.Sprintf("%s, %s, HTTP/2 %v", tc.name, shape.name, h2), func(t *testing.T) {
					t.Parallel()
					var cache *grants.GrantCache
					e, hungUp := cutEnv(t, timeout, shape.upstream, withGrantCache(&cache))
					watchCalls(t, e, cache, tc.deaf)
					if tc.managerOnly {
						e.setLockbox("contoso", false)
					}
					req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
					if g, err := e.grants.Grant(context.Background(), "contoso", alice.Subject, "exchange"); err != nil || g.TenantApproved() != !tc.managerOnly {
						t.Fatalf("grant %+v, %v: want it approved by the tenant unless managerOnly (%v)", g, err, tc.managerOnly)
					}
					addr, roots := e.tlsProxy()
					ctx, cancel := context.WithTimeout(context.Background(), patience)
					defer cancel()
					call := authorizedCall(t, ctx, e, alice, http.MethodGet, "https://"+addr+mailboxes, nil)
					res, err := clientFor(t, roots, h2).Do(call)
					if err != nil {
						t.Fatal(err)
					}
					defer res.Body.Close()
					if (res.ProtoMajor == 2) != h2 {
						t.Errorf("spoke %s", res.Proto)
					}
					got := make([]byte, len(first))
					if _, err := io.ReadFull(res.Body, got); err != nil || string(got) != first {
						t.Fatalf("%s: %q %v: want the download under way", res.Status, got, err)
					}

					tc.end(t, e, req)
					wantCutOff(t, ctx, e, res, hungUp)
					if l := cutLine(t, e, "proxy call cut: the grant ended during the call"); l["request_id"] != req.ID || l["decision_id"] == "" || l["reason"] != string(ReasonNoGrant) ||
						l["level"] != "WARN" || l["expires_at"] == nil || l["error"] == nil {
						t.Errorf("log line %v: want request_id %s, a decision_id, reason %s, expires_at and error, at WARN", l, req.ID, ReasonNoGrant)
					}
					wantCutOnce(t, e, ReasonNoGrant)
					if got := cutCount(t, e, "exchange", ReasonGrantExpired); got != 0 {
						t.Errorf("lockbox_proxy_calls_cut_total{exchange,%s} = %v, want 0", ReasonGrantExpired, got)
					}
				})
			}
		}
	}
}

// TestRevocationKeepsOtherCalls: an invalidation of a tenant reads again
// the grants of all its calls in flight, and cuts only those whose grant
// ended: bob's call is cut when his request is revoked, alice's, under her
// own request for the same tenant, goes on to its end, through the real
// subscription and Run. The watch reads the two grants at once, so bob's
// cut does not tell that alice's was read yet: that a pass reads again and
// keeps the other calls is TestRevocationCutsOnlyItsGrantsCalls's, which
// drives the passes itself.
func TestRevocationKeepsOtherCalls(t *testing.T) {
	const patience = 15 * time.Second
	hungUp, release := make(chan string, 2), make(chan struct{})
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			hungUp <- r.Header.Get(HeaderRequestID)
		case <-release:
			_, _ = io.WriteString(w, "last\n")
		}
	})
	var cache *grants.GrantCache
	e := newTestEnv(t, withClientTimeout(30*time.Second), patientStore, withGrantCache(&cache), upstreamAt(upstream))
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	watchCalls(t, e, cache, false)
	bobs := e.grantFor(bob, "contoso", "exchange", 2*time.Hour)
	alices := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	start := func(p string) *http.Response {
		t.Helper()
		principal := alice
		if p == "bob" {
			principal = bob
		}
		res, err := client.Do(authorizedCall(t, ctx, e, principal, http.MethodGet, e.srv.URL+mailboxes, nil))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len("first\n"))
		if _, err := io.ReadFull(res.Body, got); err != nil {
			t.Fatalf("%s's call: %s %q %v", p, res.Status, got, err)
		}
		return res
	}
	bobsCall := start("bob")
	defer bobsCall.Body.Close()
	alicesCall := start("alice")
	defer alicesCall.Body.Close()

	if _, err := e.grants.Act(context.Background(), bobs.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso"), ClientIP: "203.0.113.5"}, "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, bobsCall.Body); err == nil || ctx.Err() != nil {
		t.Fatalf("bob's call: %v, want it cut off within the test's patience:\n%s", err, e.logs)
	}
	if id := waitHungUp(t, ctx, e, hungUp, "bob's upstream call"); id != bobs.ID {
		t.Fatalf("the proxy hung up on request %s's call, want bob's, %s", id, bobs.ID)
	}
	released = true
	close(release)
	rest, err := io.ReadAll(alicesCall.Body)
	if err != nil || string(rest) != "last\n" {
		t.Errorf("alice's call (request %s): %q %v, want the rest of the answer", alices.ID, rest, err)
	}
	waitCounted(t, ctx, e, 2, "the calls were never counted")
	if lines := e.logLines("proxy call cut: the grant ended during the call"); len(lines) != 1 || lines[0]["request_id"] != bobs.ID {
		t.Errorf("log lines of cuts: %v, want one, of bob's request %s", lines, bobs.ID)
	}
	if got := cutCount(t, e, "exchange", ReasonNoGrant); got != 1 {
		t.Errorf("lockbox_proxy_calls_cut_total{exchange,%s} = %v, want 1", ReasonNoGrant, got)
	}
}
