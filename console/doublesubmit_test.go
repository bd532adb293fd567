package console_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// hiddenRE finds a form's hidden fields.
var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// newRequestForm loads the new-request form as b and returns it filled in
// as an engineer would, with the form's hidden fields.
func newRequestForm(t *testing.T, b *browser, service string) url.Values {
	t.Helper()
	r := b.get("/console/requests/new")
	if r.status != http.StatusOK {
		t.Fatalf("form: %s", r)
	}
	v := url.Values{"tenant": {"contoso"}, "service": {service}, "service_request": {"SR-" + service},
		"reason": {"Mailbox will not sync"}, "duration": {"1h"}}
	for _, m := range hiddenRE.FindAllStringSubmatch(r.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// TestNewRequestFormFilesOnce: the same new-request form sent twice (a
// double click on "File request", or the browser sending it again after
// the answer was lost) files one request, and both answers lead to it.
// Before, the second answer, the one the browser shows, was a refusal:
// "you already have request … cancel it or wait for it to end", as if the
// engineer's request had not been filed by this form. A form refused and
// sent again corrected still files, and a form loaded again files another.
func TestNewRequestFormFilesOnce(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(alice)
	filed := func() []grants.Request {
		t.Helper()
		reqs, err := e.reqs.List(context.Background(), mia, grants.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return reqs
	}

	form := newRequestForm(t, b, "exchange")
	bad := mergeForm(form, url.Values{"duration": {"9h"}})
	if r := b.post("/console/requests", bad); r.status != http.StatusBadRequest {
		t.Fatalf("refused form: %s", r)
	}
	first := b.post("/console/requests", form)
	again := b.post("/console/requests", form)
	if first.status != http.StatusSeeOther || again.status != http.StatusSeeOther || again.location() != first.location() {
		t.Fatalf("the form sent twice: %s\nthen %s", first, again)
	}
	if reqs := filed(); len(reqs) != 1 {
		t.Fatalf("the form sent twice filed %d requests", len(reqs))
	}

	// Two at once, as a double click sends them (for another service:
	// an engineer has one live request for each).
	form = newRequestForm(t, b, "sharepoint")
	var wg sync.WaitGroup
	answers := make([]resp, 2)
	for i := range answers {
		wg.Go(func() { answers[i] = b.post("/console/requests", form) })
	}
	wg.Wait()
	if answers[0].status != http.StatusSeeOther || answers[1].location() != answers[0].location() {
		t.Fatalf("the form sent twice at once: %s\nthen %s", answers[0], answers[1])
	}
	if reqs := filed(); len(reqs) != 2 {
		t.Fatalf("two forms, one of them sent twice at once, filed %d requests", len(reqs))
	}
}
