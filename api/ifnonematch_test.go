package api_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/grants"
)

// TestETagChangesHonourIfNoneMatch: a change of the settings or of a
// registry entry (PUT, PATCH, offboard) ignored If-None-Match, so a
// client that sent "*" (never overwrite: RFC 9110 13.1.2) or the ETag it
// had read (change it only if it is no longer that) had its change made
// whatever. The settings and an onboarded tenant's entry always exist, so
// "*" fails; a list fails when the current ETag is in it (weak comparison,
// as 13.1.2 asks), and the change is made otherwise. A failed condition is
// 412 precondition_failed with nothing written; a value that is neither
// "*" nor a list of our tags is 400 invalid_if_none_match. If-Match is
// judged first, and the right before either.
func TestETagChangesHonourIfNoneMatch(t *testing.T) {
	e := newEnv(t)
	for _, r := range []struct {
		name, method, path string
		who, nobody        user
		body               any
		get                string
	}{
		{"settings", "PUT", "/v1/tenants/contoso/settings", contosoAdmin, fabrikamAdmin,
			map[string]any{"lockbox_enabled": false}, "/v1/tenants/contoso/settings"},
		{"registry entry", "PATCH", "/v1/tenants/contoso", lara, mia,
			map[string]any{"display_name": "Contoso Ltd"}, "/v1/tenants/contoso"},
		// Last: once it succeeds contoso is offboarded.
		{"offboarding", "POST", "/v1/tenants/contoso/offboard", lara, mia,
			wire.Offboarding{Reason: "The contract ended"}, "/v1/tenants/contoso"},
	} {
		t.Run(r.name, func(t *testing.T) {
			etag := e.do(r.who, "GET", r.get, nil).header.Get("ETag")
			if etag == "" {
				t.Fatalf("GET %s answered no ETag", r.get)
			}
			weak := "W/" + etag
			for _, c := range []struct {
				name   string
				who    user
				hdr    []string // If-None-Match values, one header each
				ifm    string
				status int
				code   string
			}{
				{"star", r.who, []string{"*"}, "", http.StatusPreconditionFailed, "precondition_failed"},
				{"the current ETag", r.who, []string{etag}, "", http.StatusPreconditionFailed, "precondition_failed"},
				{"a list holding it", r.who, []string{`"998", ` + etag}, "", http.StatusPreconditionFailed, "precondition_failed"},
				{"a list with empty elements", r.who, []string{`"998",, ` + etag + ","}, "", http.StatusPreconditionFailed, "precondition_failed"},
				{"two headers, one holding it", r.who, []string{`"998"`, etag}, "", http.StatusPreconditionFailed, "precondition_failed"},
				{"the current ETag, weak", r.who, []string{weak}, "", http.StatusPreconditionFailed, "precondition_failed"},
				{"star with If-Match current", r.who, []string{"*"}, etag, http.StatusPreconditionFailed, "precondition_failed"},
				{"If-Match stale comes first", r.who, []string{"*"}, `"999"`, http.StatusPreconditionFailed, ""},
				{"empty", r.who, []string{""}, "", http.StatusBadRequest, "invalid_if_none_match"},
				{"no quotes", r.who, []string{"1"}, "", http.StatusBadRequest, "invalid_if_none_match"},
				{"not one of ours", r.who, []string{`"abc"`}, "", http.StatusBadRequest, "invalid_if_none_match"},
				{"a leading zero", r.who, []string{`"01"`}, "", http.StatusBadRequest, "invalid_if_none_match"},
				{"star in a list", r.who, []string{`*, "998"`}, "", http.StatusBadRequest, "invalid_if_none_match"},
				{"an empty tag", r.who, []string{`""`}, "", http.StatusBadRequest, "invalid_if_none_match"},
				{"only commas", r.who, []string{" , ,"}, "", http.StatusBadRequest, "invalid_if_none_match"},
				{"without the right", r.nobody, []string{"*"}, "", http.StatusForbidden, "forbidden"},
			} {
				t.Run(c.name, func(t *testing.T) {
					opts := []option{}
					for _, h := range c.hdr {
						opts = append(opts, withHeader("If-None-Match", h))
					}
					if c.ifm != "" {
						opts = append(opts, withHeader("If-Match", c.ifm))
					}
					res := e.do(c.who, r.method, r.path, r.body, opts...)
					if c.code == "" {
						// If-Match's own refusal: its code, not ours.
						if res.status != c.status || errorOf(t, res).Code == "precondition_failed" {
							t.Fatalf("status %d %s, want %d with If-Match's code", res.status, res.body, c.status)
						}
						return
					}
					wantError(t, res, c.status, c.code, "")
				})
			}
			// Nothing was written under a failed or refused condition.
			after := e.do(r.who, "GET", r.get, nil)
			if got := after.header.Get("ETag"); got != etag {
				t.Fatalf("ETag %s after refused changes, want %s unchanged", got, etag)
			}
			// A list without the current ETag holds: the change is made.
			res := e.do(r.who, r.method, r.path, r.body, withHeader("If-None-Match", `"998", W/"997"`))
			if res.status != http.StatusOK {
				t.Fatalf("with a list not holding %s: %d %s, want 200", etag, res.status, res.body)
			}
			if got := res.header.Get("ETag"); got == etag || got == "" {
				t.Fatalf("ETag %q after the change, want a new one (was %s)", got, etag)
			}
		})
	}
}

// TestRoutesWithoutETagRefuseIfNoneMatch: filing a request, acting on
// one, and assigning or removing an approver ignored If-None-Match. None
// of them has an ETag to compare a tag with, so, as for If-Match there,
// any If-None-Match is 400 invalid_if_none_match rather than ignored, and
// nothing changes; the right (and the request) still come first.
func TestRoutesWithoutETagRefuseIfNoneMatch(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	approve := "/v1/requests/" + req.ID + "/approve"
	const (
		zoe      = "/v1/tenants/contoso/approvers/zoe@contoso.example"
		approver = "/v1/tenants/contoso/approvers/approver@contoso.example"
	)
	e.assignApprover()
	filing := map[string]any{"tenant": "fabrikam", "service": "exchange", "service_request": "SR-2", "reason": "repair", "duration": (time.Hour).String()}
	for _, v := range []string{"*", `"1"`, `W/"1"`} {
		for _, c := range []struct {
			name, method, path string
			who                user
			body               any
		}{
			{"file", "POST", "/v1/requests", alice, filing},
			{"approve", "POST", approve, mia, nil},
			{"assign", "PUT", zoe, contosoAdmin, nil},
			{"remove", "DELETE", approver, contosoAdmin, nil},
		} {
			t.Run(c.name+" "+v, func(t *testing.T) {
				wantError(t, e.do(c.who, c.method, c.path, c.body, withHeader("If-None-Match", v)),
					http.StatusBadRequest, "invalid_if_none_match", "no ETag")
			})
		}
	}
	wantError(t, e.do(auditor, "POST", approve, nil, withHeader("If-None-Match", "*")), http.StatusForbidden, "forbidden", "")
	wantError(t, e.do(contosoApprover, "PUT", zoe, nil, withHeader("If-None-Match", "*")), http.StatusForbidden, "forbidden", "")

	got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK)
	if got.State != grants.StatePendingManager {
		t.Fatalf("state %s after refused conditions, want %s", got.State, grants.StatePendingManager)
	}
	list := decode[struct{ Requests []grants.Request }](t, e.do(mia, "GET", "/v1/requests?tenant=fabrikam", nil), http.StatusOK)
	if len(list.Requests) != 0 {
		t.Fatalf("a request was filed under a refused condition: %+v", list.Requests)
	}
	apprs := decode[wire.ApproverList](t, e.do(contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil), http.StatusOK)
	if want := []string{"approver@contoso.example"}; !slices.Equal(apprs.Approvers, want) {
		t.Fatalf("approvers %q after refused conditions, want %q", apprs.Approvers, want)
	}
}

// TestETagReadsAnswerNotModified: a GET of the settings or a registry
// entry with If-None-Match naming the current ETag answered 200 with the
// whole body, so a client polling for a change re-read it each time. RFC
// 9110 13.1.2 and 15.4.5: a matching If-None-Match ("*", the ETag, a list
// holding it, weakly compared) on a GET is 304 with no body, keeping the
// ETag and Cache-Control; another list is the 200 it was, a change since
// is read whole, and a malformed value is 400 invalid_if_none_match. Who
// may not read them is told so first, not 304.
func TestETagReadsAnswerNotModified(t *testing.T) {
	e := newEnv(t)
	for _, r := range []struct {
		name, path  string
		who, nobody user
		nobodyCode  int
		change      func()
	}{
		{"settings", "/v1/tenants/contoso/settings", contosoAdmin, fabrikamAdmin, http.StatusForbidden, func() {
			decode[wire.Settings](t, e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]any{"lockbox_enabled": false}), http.StatusOK)
		}},
		{"registry entry", "/v1/tenants/contoso", mia, fabrikamAdmin, http.StatusNotFound, func() {
			decode[wire.Tenant](t, e.do(lara, "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": "Contoso Ltd"}), http.StatusOK)
		}},
	} {
		t.Run(r.name, func(t *testing.T) {
			etag := e.do(r.who, "GET", r.path, nil).header.Get("ETag")
			for _, c := range []struct {
				name string
				hdr  []string
			}{
				{"the current ETag", []string{etag}},
				{"weak", []string{"W/" + etag}},
				{"a list holding it", []string{`"998", ` + etag}},
				{"two headers", []string{`"998"`, etag}},
				{"star", []string{"*"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					var opts []option
					for _, h := range c.hdr {
						opts = append(opts, withHeader("If-None-Match", h))
					}
					for _, method := range []string{"GET", "HEAD"} {
						res := e.do(r.who, method, r.path, nil, opts...)
						if res.status != http.StatusNotModified || len(res.body) != 0 {
							t.Fatalf("%s: %d %q, want 304 with no body", method, res.status, res.body)
						}
						if got := res.header.Get("ETag"); got != etag {
							t.Errorf("%s: ETag %q on 304, want %s", method, got, etag)
						}
						if got := res.header.Get("Content-Type"); got != "" {
							t.Errorf("%s: Content-Type %q on a 304", method, got)
						}
					}
				})
			}
			// Another list is read whole.
			res := e.do(r.who, "GET", r.path, nil, withHeader("If-None-Match", `"998"`))
			if res.status != http.StatusOK || len(res.body) == 0 || res.header.Get("ETag") != etag {
				t.Fatalf("with another ETag: %d %q (ETag %q), want 200 with the body", res.status, res.body, res.header.Get("ETag"))
			}
			wantError(t, e.do(r.who, "GET", r.path, nil, withHeader("If-None-Match", "1")), http.StatusBadRequest, "invalid_if_none_match", "")
			if res := e.do(r.nobody, "GET", r.path, nil, withHeader("If-None-Match", "*")); res.status != r.nobodyCode {
				t.Fatalf("who may not read it: %d %s, want %d", res.status, res.body, r.nobodyCode)
			}
			// Once changed, the ETag read before no longer holds.
			r.change()
			res = e.do(r.who, "GET", r.path, nil, withHeader("If-None-Match", etag))
			if res.status != http.StatusOK || res.header.Get("ETag") == etag {
				t.Fatalf("after a change: %d (ETag %q), want 200 with a new ETag", res.status, res.header.Get("ETag"))
			}
		})
	}
}
