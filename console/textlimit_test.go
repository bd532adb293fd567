package console_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestTextLimitsShown: a field with a length limit says what the limit is,
// in a hint read with the field, and the browser holds it to that limit.
// The fields said nothing: the browser stopped typing at the limit, and cut
// a longer text pasted in without a word, so an engineer's pasted
// justification could be filed short of its end unnoticed.
func TestTextLimitsShown(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	pending := e.managerApproved("contoso")
	for _, tc := range []struct {
		who        identity.Principal
		path, id   string
		max        int
		lineBreaks bool // a textarea's: the hint says how they count
	}{
		{alice, "/console/requests/new", "reason", 2000, true},
		{alice, "/console/requests/new", "service_request", 64, false},
		{contosoApprover, "/console/requests/" + pending.ID + "/approve", "comment", 1000, true},
		{lara, "/console/tenants/fabrikam/offboard", "reason", 1000, false},
	} {
		t.Run(tc.path+"#"+tc.id, func(t *testing.T) {
			r := e.signIn(tc.who).get(tc.path)
			if r.status != http.StatusOK {
				t.Fatalf("page: %s", r)
			}
			fields, _, _ := controls(t, r)
			f, ok := fields[tc.id]
			if !ok {
				t.Fatalf("no #%s on the page", tc.id)
			}
			if got := f.attrs["maxlength"]; got != fmt.Sprint(tc.max) {
				t.Errorf("#%s has maxlength %q, want %d", tc.id, got, tc.max)
			}
			var hint string
			for _, id := range strings.Fields(f.attrs["aria-describedby"]) {
				if m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(r.body); m != nil {
					hint += m[1]
				}
			}
			wants := []string{fmt.Sprintf("At most %d characters", tc.max)}
			if tc.lineBreaks {
				wants = append(wants, "a line break counts as one")
			}
			if slices.ContainsFunc(wants, func(w string) bool { return !strings.Contains(hint, w) }) {
				t.Errorf("#%s is described by %q, want it to say %q", tc.id, hint, wants)
			}
		})
	}
}
