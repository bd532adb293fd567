package console_test

import (
	"strings"
	"testing"
)

// TestNoticeOnlyOnItsPage: the notice a redirect names in the page's URL
// (?done=) is shown only on the page that redirect goes to. Before, any
// page showed any notice its URL named, so a link from anyone to
// /console/approvers?done=approver_removed said "Approver removed." above
// the list that still names the approver, /console/settings?done=settings
// "Settings saved." of nothing saved, and an error page "The request was
// approved."; the notices of a sign-in confirmed or renewed, which go
// with any page, still show on any page.
func TestNoticeOnlyOnItsPage(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.file("contoso")
	admin, lockboxAdmin := e.signIn(contosoAdmin), e.signIn(lara)
	const (
		approved    = "The request was approved."
		saved       = "Settings saved."
		removed     = "Approver removed."
		updated     = "The tenant&#39;s entry was saved."
		resubmitted = "Your sign-in was confirmed with your identity provider."
		again       = "You are signed in again."
	)
	for _, tc := range []struct {
		b      *browser
		page   string
		notice string
		shown  bool
	}{
		{admin, "/console/settings?done=settings", saved, true},
		{admin, "/console/approvers?done=approver_removed", removed, true},
		{admin, "/console/settings?done=resubmit", resubmitted, true},
		{admin, "/console/approvers?done=signed_in_again", again, true},
		{lockboxAdmin, "/console/tenants/contoso?done=tenant_updated", updated, true},

		{admin, "/console/approvers?done=settings", saved, false},
		{admin, "/console/settings?done=approver_removed", removed, false},
		{admin, "/console/requests?done=approve", approved, false},
		{admin, "/console/requests/" + req.ID + "/deny?done=approve", approved, false},
		{admin, "/console/requests/00000000-0000-4000-8000-000000000000?done=approve", approved, false},
		{admin, "/console/audit?done=approver_removed", removed, false},
		{lockboxAdmin, "/console/tenants?done=tenant_updated", updated, false},
	} {
		r := tc.b.get(tc.page)
		if got := strings.Contains(r.body, tc.notice); got != tc.shown {
			t.Errorf("%s shows %q: %v, want %v\n%s", tc.page, tc.notice, got, tc.shown, r)
		}
	}
}
