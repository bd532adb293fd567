package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/grants"
)

// TestEndedAtIsWhenTheRequestEnded: a revoked request keeps the
// expires_at of the window it was approved for, and a client reading it
// read access as lasting until then. Each way a request ends gives
// ended_at, the time of the event that ended it, in the action's answer,
// the request read alone and the listing; a request still pending or
// approved has none (absent, not null).
func TestEndedAtIsWhenTheRequestEnded(t *testing.T) {
	// approve takes r through the manager and the tenant's approver and
	// returns when it was approved.
	approve := func(e *env, id string) time.Time {
		e.t.Helper()
		e.clk.Advance(10 * time.Minute)
		decode[wire.Request](e.t, e.do(mia, "POST", "/v1/requests/"+id+"/approve", nil), http.StatusOK)
		e.clk.Advance(5 * time.Minute)
		r := decode[wire.Request](e.t, e.do(contosoApprover, "POST", "/v1/requests/"+id+"/approve", nil), http.StatusOK)
		if r.State != wire.StateApproved {
			e.t.Fatalf("after both approvals: %s", r.State)
		}
		return e.clk.Now()
	}
	for _, tc := range []struct {
		name  string
		state wire.State
		// end ends the request id and returns the answer of the action
		// that did (nil when time alone did) and when it ended.
		end func(e *env, id string) (*result, time.Time)
	}{
		{"revoked", wire.StateRevoked, func(e *env, id string) (*result, time.Time) {
			approve(e, id)
			e.clk.Advance(25 * time.Minute)
			r := e.do(contosoAdmin, "POST", "/v1/requests/"+id+"/revoke", map[string]string{"comment": "fixed"})
			return &r, e.clk.Now()
		}},
		{"denied by the manager", wire.StateDenied, func(e *env, id string) (*result, time.Time) {
			e.clk.Advance(40 * time.Minute)
			r := e.do(mia, "POST", "/v1/requests/"+id+"/deny", nil)
			return &r, e.clk.Now()
		}},
		{"denied by the tenant", wire.StateDenied, func(e *env, id string) (*result, time.Time) {
			decode[wire.Request](e.t, e.do(mia, "POST", "/v1/requests/"+id+"/approve", nil), http.StatusOK)
			e.clk.Advance(3 * time.Hour)
			r := e.do(contosoApprover, "POST", "/v1/requests/"+id+"/deny", nil)
			return &r, e.clk.Now()
		}},
		{"canceled", wire.StateCanceled, func(e *env, id string) (*result, time.Time) {
			e.clk.Advance(7 * time.Minute)
			r := e.do(alice, "POST", "/v1/requests/"+id+"/cancel", nil)
			return &r, e.clk.Now()
		}},
		{"expired at the manager", wire.StateExpired, func(e *env, id string) (*result, time.Time) {
			// Read well after: it ended when its 12 hours did, not when
			// it was read.
			e.clk.Advance(grants.DecisionWindow + 3*time.Hour)
			return nil, start.Add(grants.DecisionWindow)
		}},
		{"expired at the tenant", wire.StateExpired, func(e *env, id string) (*result, time.Time) {
			e.clk.Advance(20 * time.Minute)
			decode[wire.Request](e.t, e.do(mia, "POST", "/v1/requests/"+id+"/approve", nil), http.StatusOK)
			reached := e.clk.Now()
			e.clk.Advance(grants.DecisionWindow + time.Hour)
			return nil, reached.Add(grants.DecisionWindow)
		}},
		{"completed", wire.StateCompleted, func(e *env, id string) (*result, time.Time) {
			approvedAt := approve(e, id)
			e.clk.Advance(5 * time.Hour)
			return nil, approvedAt.Add(2 * time.Hour)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.assignApprover()
			id := e.file(alice, "contoso", "exchange").ID
			answer, want := tc.end(e, id)
			check := func(where string, r wire.Request) {
				t.Helper()
				if r.State != tc.state {
					t.Fatalf("%s: state %s, want %s", where, r.State, tc.state)
				}
				if r.EndedAt == nil || !r.EndedAt.Equal(want) || r.EndedAt.Location() != time.UTC {
					t.Errorf("%s: ended_at = %v, want %v, when it ended", where, r.EndedAt, want)
				}
				if last := r.History[len(r.History)-1]; r.EndedAt != nil && !r.EndedAt.Equal(last.At) {
					t.Errorf("%s: ended_at = %v, the last event of its history at %v", where, r.EndedAt, last.At)
				}
			}
			if answer != nil {
				check("the action's answer", decode[wire.Request](t, *answer, http.StatusOK))
			}
			// The engineer's view and the tenant's.
			for _, u := range []user{alice, contosoAdmin} {
				check("GET as "+u.sub, decode[wire.Request](t, e.do(u, "GET", "/v1/requests/"+id, nil), http.StatusOK))
				list := decode[wire.RequestList](t, e.do(u, "GET", "/v1/requests?tenant=contoso", nil), http.StatusOK)
				if len(list.Requests) != 1 {
					t.Fatalf("list as %s: %d requests", u.sub, len(list.Requests))
				}
				check("list as "+u.sub, list.Requests[0])
			}
		})
	}

	t.Run("not ended", func(t *testing.T) {
		e := newEnv(t)
		e.assignApprover()
		id := e.file(alice, "contoso", "exchange").ID
		noEnd := func(where string, r result) {
			t.Helper()
			var m map[string]json.RawMessage
			if err := json.Unmarshal(decode[json.RawMessage](t, r, http.StatusOK), &m); err != nil {
				t.Fatal(err)
			}
			if v, ok := m["ended_at"]; ok {
				t.Errorf("%s: ended_at %s on a request that has not ended", where, v)
			}
		}
		noEnd("pending_manager", e.do(alice, "GET", "/v1/requests/"+id, nil))
		decode[wire.Request](t, e.do(mia, "POST", "/v1/requests/"+id+"/approve", nil), http.StatusOK)
		noEnd("pending_customer", e.do(contosoAdmin, "GET", "/v1/requests/"+id, nil))
		noEnd("approval's answer", e.do(contosoApprover, "POST", "/v1/requests/"+id+"/approve", nil))
		// A minute before the window's end it is still approved.
		e.clk.Advance(2*time.Hour - time.Minute)
		noEnd("approved", e.do(alice, "GET", "/v1/requests/"+id, nil))
		var list struct {
			Requests []map[string]json.RawMessage `json:"requests"`
		}
		if err := json.Unmarshal(decode[json.RawMessage](t, e.do(contosoAdmin, "GET", "/v1/requests?tenant=contoso", nil), http.StatusOK), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Requests) != 1 || list.Requests[0]["ended_at"] != nil {
			t.Errorf("listing an approved request: %v, want it without ended_at", list.Requests)
		}
	})
}
