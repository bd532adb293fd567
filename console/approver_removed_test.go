package console_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestSessionEndsWhenTheApproverIsRemoved: the Customer Lockbox access
// approver role is the tenant's assignment, which the global
// administrators can remove at any moment. A session held as an approver
// ends at its next request after the removal: whether the role came from
// the assignment alone or also from the token's claim (which grants
// nothing by itself, so re-verifying the identity would never end it), and
// for a dev session, which is never verified again. Before, such a session
// went on saying "Customer Lockbox access approver" over pages that
// refused everything, until the session's next verification, or its
// absolute limit.
func TestSessionEndsWhenTheApproverIsRemoved(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name    string
		signIn  func(t *testing.T) (*env, *browser)
		advance bool // past the re-verification interval
	}{
		{"dev sign-in", func(t *testing.T) (*env, *browser) {
			e := newEnv(t)
			return e, e.signIn(contosoApprover)
		}, false},
		{"assignment alone, before re-verification", func(t *testing.T) (*env, *browser) {
			e, m, _ := newReverifyEnv(t, oidctest.Config{})
			return e, oidcSignIn(t, e, m, oidcUser{sub: contosoApprover.Subject, tid: "contoso"})
		}, false},
		{"role claim too, after re-verification", func(t *testing.T) (*env, *browser) {
			e, m, _ := newReverifyEnv(t, oidctest.Config{})
			return e, oidcSignIn(t, e, m, oidcUser{sub: contosoApprover.Subject, tid: "contoso", roles: []string{"lockbox-approver"}})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e, b := tc.signIn(t)
			req := e.managerApproved("contoso")
			mustContain(t, "requests page", b.get("/console/requests"), "Customer Lockbox access approver · contoso", req.ID)
			csrf, tok := b.csrf(), b.cookie(sessionCookie)

			if err := e.ten.RemoveApprover(context.Background(), contosoAdmin, "192.0.2.1", "contoso", contosoApprover.Subject); err != nil {
				t.Fatal(err)
			}
			if tc.advance {
				e.clk.Advance(reverify)
			}
			wantEnded(t, e, b.get("/console/requests"))
			// The cookie the browser had is refused too, and its form
			// is not acted on.
			old := e.withCookie(sessionCookie, tok)
			if r := old.post("/console/requests/"+req.ID+"/approve", url.Values{"csrf_token": {csrf}}); !signedOut(r) {
				t.Errorf("the old session's approval: %s", r)
			}
			if got := e.request(req.ID); got.State != grants.StatePendingCustomer {
				t.Errorf("the request is %s", got.State)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "approver") || !strings.Contains(logs, "session ended") {
				t.Errorf("the log does not tell why the session ended:\n%s", logs)
			}
		})
	}
}

// TestApproverRoleClaimAloneSignsNobodyIn: a token's lockbox-approver
// claim grants nothing without the tenant's assignment, so a user it is
// the only role of is refused at sign-in as one with no role; before, the
// sign-in made a session that named the user an approver on pages that
// showed them nothing. With the assignment the same user signs in.
func TestApproverRoleClaimAloneSignsNobodyIn(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	bob := oidcUser{sub: "bob@contoso.example", tid: "contoso", roles: []string{"lockbox-approver"}}
	b := e.browser()
	l := startLogin(t, e, m, b, bob)
	wantProblem(t, e, b.get(l.callback), "no_roles")
	if ks := e.sessionKeys(); len(ks) != 0 {
		t.Errorf("sessions in Redis: %v", ks)
	}

	if err := e.ten.AddApprover(context.Background(), contosoAdmin, "192.0.2.1", "contoso", bob.sub); err != nil {
		t.Fatal(err)
	}
	b = oidcSignIn(t, e, m, bob)
	mustContain(t, "requests page", b.get("/console/requests"), "Customer Lockbox access approver · contoso")
}
