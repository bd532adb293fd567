package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/policy"
)

// TestPanicWhileJudgedIsInternalError: a call whose judging ends in a
// panic (here the policy's wiring; an Authenticator, a store or an auditor
// could do the same) never reaches the upstream, but net/http recovered
// the panic and dropped the connection, and the metrics counted the call
// as allowed, with no denial log line. It is now refused with 500
// internal_error, counted and logged as a denial with the panic's stack.
func TestPanicWhileJudgedIsInternalError(t *testing.T) {
	e := newTestEnv(t, withDecider(deciderFunc(func(context.Context, policy.Input) (policy.Decision, error) {
		panic("evaluation blew up")
	})))
	readsOnContoso(e)
	c := e.dial()
	if _, err := c.c.Write(as(alice, "GET", mailboxes)(e).bytes()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"code":"internal_error"`) || strings.Contains(string(body), "blew up") {
		t.Errorf("answer %d %s; want 500 internal_error without the panic's text", res.StatusCode, body)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Fatalf("the upstream received %d calls", n)
	}
	allowed := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed))
	denied := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionDenied))
	if allowed != 0 || denied != 1 {
		t.Errorf("lockbox_proxy_requests_total{exchange}: allowed=%v denied=%v; want allowed=0 denied=1 for a call that never reached the upstream", allowed, denied)
	}
	if n := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonInternalError))); n != 1 {
		t.Errorf("denials{exchange,internal_error} = %v, want 1", n)
	}
	lines := e.logLines("proxy call denied")
	if len(lines) != 1 || lines[0]["reason"] != string(ReasonInternalError) || !strings.Contains(fmt.Sprint(lines[0]["error"]), "evaluation blew up") ||
		!strings.Contains(fmt.Sprint(lines[0]["error"]), "judgeOrRecover") {
		t.Errorf("denial log lines %v; want one, internal_error, with the panic and its stack", lines)
	}
}

// TestExpectContinueOnlyOnceAuthorized: a client that asks "Expect:
// 100-continue" for a form body was told to send it, and had it read and
// buffered, before its grant was looked up: an operator without a grant
// could make the proxy hold bodies. The grant, settings and policy are now
// checked before any body is read; with a grant, 100 comes and the call
// passes.
func TestExpectContinueOnlyOnceAuthorized(t *testing.T) {
	e := newTestEnv(t)
	send := func() (first string, res *http.Response) {
		t.Helper()
		c := e.dial()
		head := "POST " + mailboxes + "/alice/repair HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: " + e.bearer(alice) +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
		if _, err := io.WriteString(c.c, head); err != nil {
			t.Fatal(err)
		}
		_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if strings.HasPrefix(line, "HTTP/1.1 100 ") {
			if _, err := c.br.ReadString('\n'); err != nil { // the blank line after 100
				t.Fatal(err)
			}
			if _, err := io.WriteString(c.c, "kind=index"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return line, res
		}
		res, err = http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), c.br)), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return line, res
	}
	// No grant for alice: refused without being asked for the body.
	if line, res := send(); strings.HasPrefix(line, "HTTP/1.1 100 ") || res.StatusCode != http.StatusForbidden {
		t.Errorf("no grant: first line %q, then %d; want 403 at once, no 100 Continue", line, res.StatusCode)
	}
	if n := e.h.bodies.inUse(); n != 0 {
		t.Errorf("%d body bytes held", n)
	}
	// With a grant the body is asked for, read and the call forwarded.
	repairOnContoso(e)
	if line, res := send(); !strings.HasPrefix(line, "HTTP/1.1 100 ") || res.StatusCode != http.StatusOK {
		t.Errorf("with a grant: first line %q, then %d; want 100 Continue, then 200", line, res.StatusCode)
	}
	if n := e.upstreamCalls(); n != 1 {
		t.Errorf("the upstream received %d calls, want 1", n)
	}
}

// TestHangUpDuringBodyReadIsClientCanceled: a client that hangs up while
// the proxy reads its form body to judge the call went away while the call
// was judged (ReasonClientCanceled's own definition), but was counted as
// its bad request: the read's io.ErrUnexpectedEOF was taken for broken
// framing.
func TestHangUpDuringBodyReadIsClientCanceled(t *testing.T) {
	e := newTestEnv(t)
	repairOnContoso(e)
	c := e.dial()
	head := "POST " + mailboxes + "/alice/repair HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: " + e.bearer(alice) +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nkind=abc"
	if _, err := io.WriteString(c.c, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	c.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	var bad, canceled float64
	for time.Now().Before(deadline) {
		bad = testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonBadRequest)))
		canceled = testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonClientCanceled)))
		if bad+canceled > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if bad != 0 || canceled != 1 {
		t.Errorf("denials{exchange}: bad_request=%v client_canceled=%v; want the hang-up counted as client_canceled", bad, canceled)
	}
}
