package console_test

import (
	"regexp"
	"testing"
	"time"
)

// TestTenantIsShownItsOwnDeadline: a tenant's 12 hours to decide count
// from when the request reaches it, the manager's approval, not from its
// filing. While a request awaits the provider's manager, a tenant user is
// not shown the manager's deadline as a time left to decide; the manager
// is, and the tenant's own deadline shows once the request reaches it.
func TestTenantIsShownItsOwnDeadline(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.file("contoso")
	e.clk.Advance(2 * time.Hour)

	admin := e.signIn(contosoAdmin)
	// The pending row's time left: none while the manager decides.
	left := func(b *browser, path string) string {
		t.Helper()
		row := regexp.MustCompile(`(?s)<tr data-request="` + req.ID + `">.*?<td data-label="Time left">(.*?)</td>`)
		m := row.FindStringSubmatch(b.get(path).body)
		if m == nil {
			t.Fatalf("no pending row of %s", req.ID)
		}
		return m[1]
	}
	if got := left(admin, "/console/requests"); regexp.MustCompile(`\d`).MatchString(got) {
		t.Errorf("the tenant's pending row of a request awaiting the manager shows a time left to decide: %q", got)
	}
	// So does the list the page refreshes itself with.
	if got := left(admin, "/console/requests/pending"); regexp.MustCompile(`\d`).MatchString(got) {
		t.Errorf("the tenant's refreshed pending row of a request awaiting the manager shows a time left to decide: %q", got)
	}
	page := admin.get("/console/requests/" + req.ID)
	mustContain(t, "tenant's page of a request awaiting the manager", page, "Manager decides by", "start when the manager approves")
	mustNotContain(t, "tenant's page of a request awaiting the manager", page, "<dt>Decide by</dt>", "10h left")

	// The manager is shown their own deadline.
	mgr := e.signIn(mia)
	mustContain(t, "manager's page", mgr.get("/console/requests/"+req.ID), "<dt>Decide by</dt>", "(10h left)")
	if got := left(mgr, "/console/requests"); !regexp.MustCompile(`>10h<`).MatchString(got) {
		t.Errorf("the manager's pending row lacks the time left to decide: %q", got)
	}

	// Reached the tenant, the tenant's 12 hours start.
	mgr.post("/console/requests/"+req.ID+"/approve", mgr.form(nil))
	page = admin.get("/console/requests/" + req.ID)
	mustContain(t, "tenant's page of a request awaiting it", page, "<dt>Decide by</dt>", "(12h left)")
	if got := left(admin, "/console/requests"); !regexp.MustCompile(`>12h<`).MatchString(got) {
		t.Errorf("the tenant's pending row lacks its time left to decide: %q", got)
	}
}
