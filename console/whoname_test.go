package console_test

import (
	"html"
	"regexp"
	"strings"
	"testing"
)

// whoRE finds the header's signed-in user: name, role and tenant.
var whoRE = regexp.MustCompile(`(?s)<div class="who">(.*?)<form`)

// tagRE finds markup, to read a fragment's text.
var tagRE = regexp.MustCompile(`<[^>]*>`)

// TestHeaderIsolatesTheUsersName: the header's name is the identity
// provider's "name" claim, which a tenant's identity provider writes as it
// likes. A right-to-left override in it ends with the name: the role and
// tenant after it read as written, not reversed by it.
func TestHeaderIsolatesTheUsersName(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	u := ada
	u.name = "Ada \u202eAdmin"
	b := oidcSignIn(t, e, m, u)
	r := b.get("/console/requests")
	match := whoRE.FindStringSubmatch(r.body)
	if r.status != 200 || match == nil {
		t.Fatalf("requests page: %s", r)
	}
	text := html.UnescapeString(tagRE.ReplaceAllString(match[1], ""))
	name, _, ok := strings.Cut(text, "Global administrator")
	if !ok || !strings.Contains(name, "\u202e") {
		t.Fatalf("the header reads %+q", text)
	}
	if n := openBidi(name); n != 0 {
		t.Errorf("the header %+q leaves %d directional override(s) of the name open over the role after it", text, n)
	}
}
