package api_test

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestConcurrentDecisions: tenant decisions sent at the same moment are
// judged one after the other. Of two approvers, one wins and the other is
// told the request moved on (409 invalid_transition, naming the state);
// the history holds one tenant decision. The same approver's call and its
// retry racing it both succeed, with one decision between them.
func TestConcurrentDecisions(t *testing.T) {
	type call struct {
		who  user
		path string
	}
	tests := []struct {
		name   string
		calls  [2]call
		wantOK int
	}{
		{"two approvers approve", [2]call{{contosoAdmin, "/approve"}, {contosoApprover, "/approve"}}, 1},
		{"one approves, one denies", [2]call{{contosoAdmin, "/approve"}, {contosoApprover, "/deny"}}, 1},
		{"an approval and its retry", [2]call{{contosoApprover, "/approve"}, {contosoApprover, "/approve"}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.assignApprover()
			req := e.file(alice, "contoso", "exchange")
			decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)

			// Tokens are minted first: the env's helpers are not for
			// concurrent use, the HTTP client is.
			var results [2]sent
			var wg sync.WaitGroup
			begin := make(chan struct{})
			for i, c := range tc.calls {
				hreq, err := http.NewRequest("POST", e.srv.URL+"/v1/requests/"+req.ID+c.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				hreq.Header.Set("Authorization", "Bearer "+e.token(c.who))
				wg.Go(func() {
					<-begin
					results[i] = send(hreq)
				})
			}
			close(begin)
			wg.Wait()

			ok := 0
			for i, r := range results {
				switch r.status {
				case http.StatusOK:
					ok++
				case http.StatusConflict:
					wantError(t, r.result, http.StatusConflict, "invalid_transition", "cannot "+tc.calls[i].path[1:]+" a request that is ")
				default:
					t.Errorf("call %d (%s as %s): status %d: %s (transport error: %s)", i, tc.calls[i].path, tc.calls[i].who.sub, r.status, r.body, r.err)
				}
			}
			if ok != tc.wantOK {
				t.Errorf("%d calls succeeded, want %d", ok, tc.wantOK)
			}
			got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK)
			decisions := 0
			for _, ev := range got.History {
				if ev.From == grants.StatePendingCustomer {
					decisions++
				}
			}
			if decisions != 1 || got.State.Pending() {
				t.Errorf("state %s after %d tenant decisions, want one: %+v", got.State, decisions, got.History)
			}
		})
	}
}

// sent is the answer to a request sent from a goroutine other than the
// test's, which must not call t.Fatal.
type sent struct {
	result
	err error
}

func send(req *http.Request) sent {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sent{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return sent{result: result{status: resp.StatusCode, header: resp.Header, body: b}, err: err}
}
