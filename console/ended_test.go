package console_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// endedRE finds when the request page says the request ended.
var endedRE = regexp.MustCompile(`<dt>Ended</dt><dd>([^<]*)`)

// TestRequestPageSaysWhenItEnded: the request page of a request that ended
// says when, as lockboxctl's "Ended:" and the API's ended_at do, and no
// longer gives a completed request's window as when access "ends"; a
// request denied, canceled or expired, which said nothing of its end,
// says it too. An approved request gives the end of its window, and no end
// yet.
func TestRequestPageSaysWhenItEnded(t *testing.T) {
	parallel(t)
	ctx := context.Background()
	act := func(e *env, id string, a grants.Action, p identity.Principal) {
		t.Helper()
		if _, err := e.reqs.Act(ctx, id, a, grants.Actor{Principal: p, ClientIP: "192.0.2.14"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	when := func(at time.Time) string { return at.UTC().Format("2006-01-02 15:04 UTC") }
	for _, tc := range []struct {
		name  string
		state string
		// end ends a request for contoso and returns its id and when it ended.
		end func(e *env) (string, time.Time)
	}{
		{"denied", "Denied", func(e *env) (string, time.Time) {
			id := e.managerApproved("contoso").ID
			e.clk.Advance(47 * time.Minute)
			act(e, id, grants.ActionDeny, contosoApprover)
			return id, e.clk.Now()
		}},
		{"canceled", "Canceled", func(e *env) (string, time.Time) {
			id := e.file("contoso").ID
			e.clk.Advance(13 * time.Minute)
			act(e, id, grants.ActionCancel, alice)
			return id, e.clk.Now()
		}},
		{"expired", "Expired", func(e *env) (string, time.Time) {
			id := e.managerApproved("contoso").ID
			reached := e.clk.Now()
			e.clk.Advance(grants.DecisionWindow + 2*time.Hour)
			return id, reached.Add(grants.DecisionWindow)
		}},
		{"completed", "Completed", func(e *env) (string, time.Time) {
			id := e.managerApproved("contoso").ID
			e.clk.Advance(3 * time.Minute)
			act(e, id, grants.ActionApprove, contosoApprover)
			approvedAt := e.clk.Now()
			e.clk.Advance(5 * time.Hour)
			return id, approvedAt.Add(2 * time.Hour)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id, ended := tc.end(e)
			for _, p := range []identity.Principal{contosoAdmin, mia} {
				r := e.signIn(p).get("/console/requests/" + id)
				if r.status != http.StatusOK {
					t.Fatalf("request page as %s: %s", p.Subject, r)
				}
				mustContain(t, tc.name+" request's page", r, `data-testid="state">`+tc.state+`<`)
				mustNotContain(t, tc.name+" request's page", r, "<dt>Access ends</dt>")
				m := endedRE.FindStringSubmatch(r.body)
				if m == nil {
					t.Fatalf("the page as %s does not say when the request ended: %s", p.Subject, r)
				}
				if got := strings.TrimSpace(m[1]); got != when(ended) {
					t.Errorf("as %s, ended %q; want %q", p.Subject, got, when(ended))
				}
			}
		})
	}
	t.Run("approved", func(t *testing.T) {
		e := newEnv(t)
		id := e.managerApproved("contoso").ID
		act(e, id, grants.ActionApprove, contosoApprover)
		r := e.signIn(contosoAdmin).get("/console/requests/" + id)
		mustContain(t, "approved request's page", r, "<dt>Access ends</dt><dd>"+when(e.clk.Now().Add(2*time.Hour)))
		mustNotContain(t, "approved request's page", r, "<dt>Ended</dt>")
	})
}
