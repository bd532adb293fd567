package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestPipelinedByteCutAtGrantEnd: a body-less call over HTTP/1.1 whose
// grant ends while the upstream keeps the call waiting is let go of at the
// grant's end. It was so only through the server's background read, which
// fails at the pinned read deadline and cancels the call's context: a
// client that sends one byte more after its request (the start of a
// pipelined one) ends that read, nothing canceled the context, and the
// upstream call was held until ResponseBodyIdleTimeout (ClientTimeout),
// long after the grant ended. Every HTTP/1.1 call now has a cancel of its
// own, which the grant's end calls.
func TestPipelinedByteCutAtGrantEnd(t *testing.T) {
	const (
		grantLeft = 1500 * time.Millisecond
		timeout   = 30 * time.Second
		patience  = 10 * time.Second
	)
	for _, pipelined := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "one pipelined byte"}[pipelined], func(t *testing.T) {
			e, hungUp := cutEnv(t, timeout, func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
				return heldUpstream("first\n", hungUp, release)
			})
			req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox")
			e.clk.Set(req.ExpiresAt.Add(-grantLeft))

			c := heldCall(t, e, patience)
			if pipelined {
				// The first byte of the next request on the connection.
				if _, err := c.Write([]byte("G")); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			start := time.Now()
			select {
			case what := <-hungUp:
				t.Logf("upstream %s after %s", what, time.Since(start))
			case <-ctx.Done():
				t.Fatalf("the grant ended %s into the call, yet %s later the upstream still holds it: the proxy did not let go at the grant's end", grantLeft, patience)
			}
		})
	}
}

// TestPipelinedByteCutAtRevocation: the same with a revocation
// (CallWatch.revoke pins the deadlines at now): the revoked call's upstream
// request was held while the upstream kept it waiting, and the client's
// connection stayed open on a half-sent answer.
func TestPipelinedByteCutAtRevocation(t *testing.T) {
	const (
		timeout  = 30 * time.Second
		patience = 8 * time.Second
	)
	var cache *grants.GrantCache
	e, hungUp := cutEnv(t, timeout, func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
		return heldUpstream("first\n", hungUp, release)
	}, withGrantCache(&cache))
	watchCalls(t, e, cache, false)
	req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)

	c := heldCall(t, e, patience+5*time.Second)
	// The first byte of a pipelined request.
	if _, err := c.Write([]byte("G")); err != nil {
		t.Fatal(err)
	}
	// Time for the server's background read to take the byte; without
	// it the revocation may come first and the test pass without the fix.
	time.Sleep(100 * time.Millisecond)
	if _, err := e.grants.Act(context.Background(), req.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso"), ClientIP: "203.0.113.5"}, "done"); err != nil {
		t.Fatal(err)
	}
	select {
	case what := <-hungUp:
		t.Logf("upstream %s", what)
	case <-time.After(patience):
		t.Fatalf("revoked %s ago, the call's upstream request is still held, and the client still waits on its answer", patience)
	}
}

// heldCall sends alice's GET of her mailboxes on a connection of its own
// and reads its answer's header and the first line the held upstream
// sends, and returns the connection (closed when the test ends), reading
// for at most patience.
func heldCall(t *testing.T, e *testEnv, patience time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	q := rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", e.bearer(alice)}}}
	if _, err := c.Write(q.bytes()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(patience))
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("first\n"))
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatalf("%s: %v", res.Status, err)
	}
	return c
}
