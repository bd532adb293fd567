package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestRequestNoticeOnlyWhileTrue: the notice an action leaves in the
// request page's URL comes back with the browser's Back and reload, long
// after the request moved on. Shown then, "It now awaits the approvers of
// the tenant" on a denied request tells the user something false; the
// page shows a request's notice only while the request is still in the
// state the action left it in. One the request cannot move on from stays.
func TestRequestNoticeOnlyWhileTrue(t *testing.T) {
	parallel(t)
	const (
		forwarded = "It now awaits the approvers of the tenant"
		approved  = "The request was approved."
		filed     = "A support manager reviews it next."
		denied    = "The request was denied."
	)
	act := func(t *testing.T, e *env, p identity.Principal, id string, a grants.Action) {
		t.Helper()
		if _, err := e.reqs.Act(context.Background(), id, a, grants.Actor{Principal: p, ClientIP: "198.51.100.7"}, "later"); err != nil {
			t.Fatalf("%s takes %s: %v", p.Subject, a, err)
		}
	}
	// post has p take action on id in the console and returns the
	// browser and the page the redirect names, with its notice.
	post := func(t *testing.T, e *env, p identity.Principal, id, action string) (*browser, string) {
		t.Helper()
		b := e.signIn(p)
		r := b.post("/console/requests/"+id+"/"+action, b.form(url.Values{"comment": {"checked"}}))
		if r.status != http.StatusSeeOther {
			t.Fatalf("%s: %s", action, r)
		}
		return b, r.location()
	}
	for _, tc := range []struct {
		name string
		// run acts, checks the notice is shown at first, moves the
		// request on another way, and returns who reloads which page.
		run    func(t *testing.T, e *env) (*browser, string)
		notice string
		shown  bool // whether the reloaded page still shows the notice
	}{
		{"forwarded, then denied by the tenant", func(t *testing.T, e *env) (*browser, string) {
			req := e.file("contoso")
			b, page := post(t, e, mia, req.ID, "approve")
			mustContain(t, "first view", b.get(page), forwarded)
			act(t, e, contosoApprover, req.ID, grants.ActionDeny)
			return b, page
		}, forwarded, false},
		{"forwarded, then approved by the tenant", func(t *testing.T, e *env) (*browser, string) {
			req := e.file("contoso")
			b, page := post(t, e, mia, req.ID, "approve")
			mustContain(t, "first view", b.get(page), forwarded)
			act(t, e, contosoApprover, req.ID, grants.ActionApprove)
			return b, page
		}, forwarded, false},
		{"forwarded, then expired", func(t *testing.T, e *env) (*browser, string) {
			req := e.file("contoso")
			b, page := post(t, e, mia, req.ID, "approve")
			mustContain(t, "first view", b.get(page), forwarded)
			e.clk.Advance(grants.DecisionWindow + time.Minute)
			// The session has long ended: the user signs in again and
			// goes back to the page.
			return e.signIn(mia), page
		}, forwarded, false},
		{"approved, then revoked", func(t *testing.T, e *env) (*browser, string) {
			req := e.managerApproved("contoso")
			b, page := post(t, e, contosoApprover, req.ID, "approve")
			mustContain(t, "first view", b.get(page), approved)
			act(t, e, mia, req.ID, grants.ActionRevoke)
			return b, page
		}, approved, false},
		{"approved, then the access window ended", func(t *testing.T, e *env) (*browser, string) {
			req := e.managerApproved("contoso")
			b, page := post(t, e, contosoApprover, req.ID, "approve")
			mustContain(t, "first view", b.get(page), approved)
			e.clk.Advance(2*time.Hour + time.Minute)
			return e.signIn(contosoApprover), page
		}, approved, false},
		{"filed, then decided by the manager", func(t *testing.T, e *env) (*browser, string) {
			req := e.file("contoso")
			b, page := e.signIn(alice), "/console/requests/"+req.ID+"?done=created"
			mustContain(t, "first view", b.get(page), filed)
			act(t, e, mia, req.ID, grants.ActionDeny)
			return b, page
		}, filed, false},
		{"approved, still approved", func(t *testing.T, e *env) (*browser, string) {
			req := e.managerApproved("contoso")
			b, page := post(t, e, contosoApprover, req.ID, "approve")
			e.clk.Advance(time.Minute)
			return b, page
		}, approved, true},
		{"denied, which is final", func(t *testing.T, e *env) (*browser, string) {
			req := e.managerApproved("contoso")
			_, page := post(t, e, contosoApprover, req.ID, "deny")
			e.clk.Advance(grants.DecisionWindow + time.Minute)
			return e.signIn(contosoApprover), page
		}, denied, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e := newEnv(t)
			b, page := tc.run(t, e)
			r := b.get(page)
			if r.status != http.StatusOK {
				t.Fatalf("reload %s: %s", page, r)
			}
			if tc.shown {
				mustContain(t, "reloaded page", r, `data-testid="flash"`, tc.notice)
			} else {
				mustNotContain(t, "reloaded page", r, `data-testid="flash"`, tc.notice)
			}
		})
	}
}
