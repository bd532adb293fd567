package console_test

import (
	"regexp"
	"testing"
)

// draftOwnerRE finds the name a page gives its script for the user its
// drafts belong to.
var draftOwnerRE = regexp.MustCompile(`<body data-page="[a-z]+" data-draft-owner="([0-9a-f]+)">`)

// TestDraftsAreTheUsers: the forms whose typing the page's script keeps
// (console.js) are marked, and each signed-in page names its user to the
// script by a name that is another for each user and the same on each of
// their pages, and that holds none of their identifiers; the sign-in page
// names nobody. Only an action's confirmation tells the script that the
// form posted was performed: "you are signed in again" does not.
func TestDraftsAreTheUsers(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	owner := func(b *browser, path string) string {
		t.Helper()
		r := b.get(path)
		m := draftOwnerRE.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("%s names no user to its script: %s", path, r)
		}
		return m[1]
	}
	a := e.signIn(alice)
	mine := owner(a, "/console/requests")
	if again := owner(a, "/console/requests/new"); again != mine {
		t.Errorf("alice is %q on one page and %q on another", mine, again)
	}
	if other := owner(e.signIn(sam), "/console/requests/new"); other == mine {
		t.Errorf("alice and sam are both %q to the page's script", mine)
	}
	if other := owner(e.signIn(contosoAdmin), "/console/settings"); other == mine {
		t.Errorf("alice and contoso's admin are both %q to the page's script", mine)
	}
	mustNotContain(t, "alice's page", a.get("/console/requests/new"), `data-draft-owner="alice"`)
	mustContain(t, "New request", a.get("/console/requests/new"), `data-draft="new-request"`, `data-testid="draft-note"`)
	if r := e.browser().get("/console/signin"); draftOwnerRE.MatchString(r.body) {
		t.Errorf("the sign-in page names a user to its script: %s", r)
	}

	req := e.fileAs(alice, "contoso")
	mustContain(t, "the request after filing", a.get("/console/requests/"+req.ID+"?done=created"), `data-flash="created" data-done`)
	mustNotContain(t, "a page signed in to again", a.get("/console/requests/new?done=signed_in_again"), "data-done")
}
