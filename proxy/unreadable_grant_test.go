package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// TestGrantOfAnUnreadableRequestRefused: a grant whose request's stored
// record no longer decodes is not honoured. Every ending finds a grant
// through its request: offboarding passed over the request, a revocation
// failed on it, and the proxy, which read the grant key alone, forwarded
// the engineer's calls to the tenant, offboarded or not, until the
// grant's own expires_at, up to 4 hours later. The call is refused (503
// store_unavailable: the store holds a record it can't read, which the
// operators are told of) and never reaches the upstream.
func TestGrantOfAnUnreadableRequestRefused(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
		t.Fatalf("before the damage: %d %s", res.status, res.body)
	}
	if err := e.rdb.Set(ctx, keys.Request("contoso", req.ID), "{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	refused := func(when string) {
		t.Helper()
		before := e.upstreamCalls()
		res := e.send(as(alice, "GET", mailboxes)(e))
		if res.status != http.StatusServiceUnavailable || res.errorCode(t) != string(ReasonStoreUnavailable) {
			t.Errorf("%s: %d %s; want 503 %s", when, res.status, res.body, ReasonStoreUnavailable)
		}
		if n := e.upstreamCalls() - before; n != 0 {
			t.Errorf("%s: the upstream was reached %d times", when, n)
		}
	}
	refused("the request's record damaged")
	if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
		t.Fatalf("offboarding: %v", err)
	}
	refused("offboarded")
	e.clk.Advance(time.Hour)
	refused("an hour later")
}

// TestCallUnderAnUnreadableRequestCut: a download under way when its
// request's record stops decoding is cut once the watch reads its grant
// again (its cache entry a second old), though no event says anything
// changed: the grant read again is refused, and the cut is logged and
// counted as store_unavailable.
func TestCallUnderAnUnreadableRequestCut(t *testing.T) {
	const (
		timeout  = 30 * time.Second
		patience = 15 * time.Second
	)
	first := "first\n"
	var cache *grants.GrantCache
	e, hungUp := cutEnv(t, timeout, func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
		return heldUpstream(first, hungUp, release)
	}, withGrantCache(&cache))
	watchCalls(t, e, cache, false)
	req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	addr, roots := e.tlsProxy()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	res, err := clientFor(t, roots, false).Do(authorizedCall(t, ctx, e, alice, http.MethodGet, "https://"+addr+mailboxes, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := make([]byte, len(first))
	if _, err := io.ReadFull(res.Body, got); err != nil || string(got) != first {
		t.Fatalf("%s: %q %v: want the download under way", res.Status, got, err)
	}
	if err := e.rdb.Set(context.Background(), keys.Request("contoso", req.ID), "{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second) // the cache may no longer serve the grant
	wantCutOff(t, ctx, e, res, hungUp)
	if l := cutLine(t, e, cutMessage(ReasonStoreUnavailable)); l["request_id"] != req.ID || l["reason"] != string(ReasonStoreUnavailable) {
		t.Errorf("log line %v: want request_id %s, reason %s", l, req.ID, ReasonStoreUnavailable)
	}
	wantCutOnce(t, e, ReasonStoreUnavailable)
}
