package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestRepeatedListFlagEmptyValue: a list flag given twice,
// the second time from a shell variable that is not set
// (--domain "$D1" --domain "$D2"), drops the empty value without a word,
// where the same values written "$D1,$D2" are refused (exit 2): the
// flag's help says repeating it and separating with commas mean the
// same. tenant update then replaced the tenant's domains with one, and
// the approvers of the other lost their rights, exit 0. It is refused now,
// whichever use is the empty one; an empty flag as its only use still
// means what the flag says (--notify "" removes every address).
func TestRepeatedListFlagEmptyValue(t *testing.T) {
	for _, args := range [][]string{
		{"tenant", "update", "contoso", "--domain", "contoso.com", "--domain", ""},
		{"tenant", "settings", "set", "contoso", "--notify", "sec@contoso.com", "--notify", ""},
		{"tenant", "update", "contoso", "--global-admin", "gina@contoso.com", "--global-admin", ""},
		{"tenant", "update", "contoso", "--domain", "", "--domain", "contoso.com"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := run(t, args, nil, nil)
			var writes []call
			for _, c := range res.calls {
				if c.Method != http.MethodGet {
					writes = append(writes, c)
				}
			}
			if res.code != exitUsage || len(writes) != 0 {
				t.Errorf("exit %d, writes %+v, stderr %q: want exit 2 and nothing saved, as for \"a,\"", res.code, writes, res.stderr)
			}
		})
	}
}

// TestRepeatedListFlagEmptyAlone: the one use of a list flag may be
// empty, as each flag documents (--notify "" removes every address).
func TestRepeatedListFlagEmptyAlone(t *testing.T) {
	var l listValue
	if err := l.Set(""); err != nil || l == nil || len(l) != 0 {
		t.Fatalf("an empty use alone: %v, %#v", err, l)
	}
	if err := l.Set(""); err != nil {
		t.Errorf("an empty use twice: %v", err)
	}
	var m listValue
	if err := m.Set("a,b"); err != nil || len(m) != 2 {
		t.Fatalf("a,b: %v, %v", err, m)
	}
	if err := m.Set("c"); err != nil || len(m) != 3 {
		t.Errorf("a second use: %v, %v", err, m)
	}
}

// TestEmptyIdempotencyKey: --idempotency-key "$KEY" with KEY
// unset was taken as no key, and a new random one made: the run that the
// script (or the hint "run the same command with --idempotency-key K")
// meant as a safe retry filed a second request. It is refused, exit 2,
// before anything is filed, as an empty value is elsewhere.
func TestEmptyIdempotencyKey(t *testing.T) {
	res := run(t, []string{"create", "request", "--tenant", "contoso", "--service", "exchange",
		"--service-request", "SR-1", "--reason", "r", "--duration", "1h", "--idempotency-key", ""}, nil, nil)
	if res.code != exitUsage || len(res.calls) != 0 {
		t.Errorf("exit %d, %d calls, stderr %q: want exit 2 and nothing filed", res.code, len(res.calls), res.stderr)
	}
}

// TestEmptyServiceName: Set-AccessToCustomerDataRequest
// -ServiceName "$S" with S unset is a command line error (exit 2, nothing
// sent), as every other empty filter is; it was sent (a GET of the
// request) and reported as the API's refusal, exit 3, "request ... is for
// exchange, not -ServiceName : nothing was decided".
func TestEmptyServiceName(t *testing.T) {
	id := sampleRequest().ID
	res := run(t, []string{"Set-AccessToCustomerDataRequest", "-RequestId", id, "-ApprovalDecision", "Approve", "-ServiceName", ""}, nil, nil)
	if res.code != exitUsage || len(res.calls) != 0 {
		t.Errorf("exit %d, calls %+v, stderr %q: want exit 2 and nothing sent", res.code, res.calls, res.stderr)
	}
}

// TestShowIfMatchesEscapesState: Get-AccessToCustomerDataRequest
// -RequestId ID -ApprovalStatus S printed the request's state, as the
// server sent it, on stderr without clean(): every other text of the
// server's is shown with its control characters escaped, and so is it now.
func TestShowIfMatchesEscapesState(t *testing.T) {
	r := sampleRequest()
	r.State = wire.State("approved\x1b]0;owned\x07\x1b[2J")
	replies := map[string]reply{"GET /v1/requests/" + r.ID: {http.StatusOK, mustJSON(r)}}
	res := run(t, []string{"Get-AccessToCustomerDataRequest", "-RequestId", r.ID, "-ApprovalStatus", "Denied"}, nil, replies)
	if strings.ContainsRune(res.stderr, 0x1b) || strings.ContainsRune(res.stderr, 0x07) {
		t.Errorf("exit %d, stderr %q: holds the server's terminal escapes as they are", res.code, res.stderr)
	}
}

// TestApproverRemoveKeepsTraceID: "approver remove" of a
// user who is no approver rewrote the API's 404 approver_not_found into
// lockboxctl's own refusal, and the trace id the server logged the call
// under (X-Request-Id) was lost with it: every other failure prints it
// (README: "A failure prints the server's message, its error code, the
// HTTP status ... and the call's trace id").
func TestApproverRemoveKeepsTraceID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "trace-7f3a")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"code":"approver_not_found","message":"zed@contoso.com is not an approver of tenant contoso: nothing was changed"}}`)
	}))
	defer srv.Close()
	env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"approver", "remove", "contoso", "zed@contoso.com"}, func(k string) string { return env[k] }, &out, &errOut)
	if code != exitRefused || !strings.Contains(errOut.String(), "trace-7f3a") {
		t.Errorf("exit %d, stderr %q: want exit 3 naming the trace id trace-7f3a", code, errOut.String())
	}
}
