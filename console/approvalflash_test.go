package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestManagerApprovalSaysWhatHappened: a support manager's approval is
// final only while the tenant has Customer Lockbox off. With it on, the
// request is not approved but awaits the tenant's approvers, and the
// confirmation says so rather than "The request was approved."
func TestManagerApprovalSaysWhatHappened(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ten.PutSettings(ctx, fabrikamAdmin, "192.0.2.1", "fabrikam", tenants.Settings{LockboxEnabled: false, NotificationAddresses: []string{}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tenant, flash, not string
		state              grants.State
	}{
		{"contoso", "You approved the request for the provider. It now awaits the approvers of the tenant: access starts only with their approval.", "The request was approved.", grants.StatePendingCustomer},
		{"fabrikam", "The request was approved.", "awaits the approvers", grants.StateApproved},
	} {
		t.Run(tc.tenant, func(t *testing.T) {
			req := e.file(tc.tenant)
			b := e.signIn(mia)
			r := b.post("/console/requests/"+req.ID+"/approve", b.form(url.Values{"comment": {"checked"}}))
			if r.status != http.StatusSeeOther {
				t.Fatalf("approve: %s", r)
			}
			if got := e.request(req.ID).State; got != tc.state {
				t.Fatalf("state after the manager's approval = %s, want %s", got, tc.state)
			}
			page := b.get(r.location())
			mustContain(t, "request page after the manager's approval", page, tc.flash)
			mustNotContain(t, "request page after the manager's approval", page, tc.not)
		})
	}
}
