package api_test

import (
	"net/http"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestBodyMustBeUTF8: encoding/json turns a byte that is no UTF-8, and a
// \u escape of half a UTF-16 surrogate pair, into U+FFFD without a word,
// so a request's reason, a decision's comment or a settings change was
// stored, audited and shown to approvers as something other than what was
// sent (and a notification address was refused naming a character its
// sender never wrote). Such a body is refused, naming where; a character
// written whole, or as a surrogate pair, is kept as it was sent.
func TestBodyMustBeUTF8(t *testing.T) {
	e := newEnv(t)
	create := func(reason string) string {
		return `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"` + reason + `","duration":"1h"}`
	}
	for _, c := range []struct {
		name         string
		who          user
		method, path string
		body         string
		msg          string
	}{
		{"a byte that is no UTF-8", alice, "POST", "/v1/requests", create("bad \xff byte"), "byte 80 is not UTF-8"},
		{"a sequence cut short", alice, "POST", "/v1/requests", create("cut \xe2\x82"), "is not UTF-8"},
		{"an encoded surrogate", alice, "POST", "/v1/requests", create("\xed\xa0\x80"), "is not UTF-8"},
		{"a lone high surrogate", alice, "POST", "/v1/requests", create(`r \ud83d lone`), "escape at byte 78 is half a UTF-16 surrogate pair"},
		{"a high surrogate before no low one", alice, "POST", "/v1/requests", create(`\ud83d\u0041`), "half a UTF-16 surrogate pair"},
		{"a high surrogate ending the string", alice, "POST", "/v1/requests", create(`\ud83d`), "half a UTF-16 surrogate pair"},
		{"a lone low surrogate", alice, "POST", "/v1/requests", create(`\\\ude00`), "half a UTF-16 surrogate pair"},
		{"in a comment", mia, "POST", "/v1/requests/01a249e3-33f7-739b-b000-4e1edeb4d0f1/approve", "{\"comment\":\"ok \xc0\"}", "is not UTF-8"},
		{"in a settings change", contosoAdmin, "PUT", "/v1/tenants/contoso/settings",
			"{\"lockbox_enabled\":true,\"notification_addresses\":[\"a\xff@contoso.example\"]}", "is not UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.who, c.method, c.path, c.body)
			if c.who.sub == mia.sub {
				// The right and the request come first: a bad body
				// on a request that does not exist is 404.
				wantError(t, r, http.StatusNotFound, "not_found", "")
				req := e.file(bob, "contoso", "sharepoint")
				r = e.do(c.who, c.method, "/v1/requests/"+req.ID+"/approve", c.body)
			}
			wantError(t, r, http.StatusBadRequest, "invalid_json", c.msg)
		})
	}
	// Nothing was filed with a replaced character.
	list := decode[struct{ Requests []grants.Request }](t, e.do(mia, "GET", "/v1/requests?tenant=contoso&state=pending_manager", nil), http.StatusOK)
	for _, r := range list.Requests {
		if r.Requester == alice.sub {
			t.Errorf("request %s was filed with reason %q", r.ID, r.Reason)
		}
	}
	// Characters sent whole, escaped, or as a surrogate pair are kept, and
	// an escaped backslash before a u is no escape.
	got := decode[grants.Request](t, e.do(alice, "POST", "/v1/requests", create(`ok \ud83d\ude00 😀 \u00e9 é \\ud800 \"\\\"`)), http.StatusCreated)
	if want := `ok 😀 😀 é é \ud800 "\"`; got.Reason != want {
		t.Errorf("reason %q, want %q", got.Reason, want)
	}
}
