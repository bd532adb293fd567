package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/grantsig/grantsigtest"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/rego"
)

var testNow = time.Date(2026, 5, 12, 9, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// seeds are the ids the catalog's wildcards are replaced with, per tenant.
var seeds = map[string]map[string]string{
	"contoso": {
		"tenant": "contoso", "mailbox": "megan-bowen", "id": "msg-1001",
		"site": "support", "file": "file-101", "drive": "megan-bowen", "item": "item-1001",
	},
	"fabrikam": {
		"tenant": "fabrikam", "mailbox": "pradeep-gupta", "id": "msg-5001",
		"site": "engineering", "file": "file-301", "drive": "pradeep-gupta", "item": "item-5001",
	},
}

var wildcardRE = regexp.MustCompile(`\{([^}]*)\}`)

// fill replaces the pattern's wildcards with seeded ids, failing on one the
// test has no id for (a catalog route the seed doesn't cover).
func fill(t *testing.T, pattern string, ids map[string]string) string {
	t.Helper()
	return wildcardRE.ReplaceAllStringFunc(pattern, func(w string) string {
		name := w[1 : len(w)-1]
		v, ok := ids[name]
		if !ok {
			t.Fatalf("no seeded id for wildcard {%s} of %s", name, pattern)
		}
		return v
	})
}

func catalog(t *testing.T) *policy.Catalog {
	t.Helper()
	c, err := policy.LoadCatalog(rego.FS, "activities/data.json")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keys are a proxy's signing key and the key set its upstreams hold.
type keys struct {
	signer *grantsig.Signer
	set    *grantsig.KeySet
}

func newKeys(t *testing.T) keys {
	t.Helper()
	signer, set := grantsigtest.NewKey(t)
	return keys{signer, set}
}

// auditIDs numbers the test assertions: as the proxy's, each has an audit
// record of its own, and a service refuses a "jti" it has seen.
var auditIDs atomic.Uint64

// validClaims are the claims of the proxy's assertion for a call.
func validClaims(tenant, service, method, path string) grantsig.Claims {
	return grantsig.Claims{
		Issuer:    grantsig.DefaultIssuer,
		Subject:   Operator,
		Audience:  service,
		Tenant:    tenant,
		Service:   service,
		RequestID: "req-7f3a",
		AuditID:   fmt.Sprintf("0195a000-0000-7000-8000-%012x", auditIDs.Add(1)),
		Activity:  "Test-Activity",
		Method:    method,
		Path:      path,
		IssuedAt:  testNow.Add(-10 * time.Second).Unix(),
		ExpiresAt: testNow.Add(20 * time.Second).Unix(),
	}
}

func sign(t *testing.T, k keys, c grantsig.Claims) string {
	t.Helper()
	h, err := k.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newService(t *testing.T, k keys, name string) *Service {
	t.Helper()
	s, err := NewService(ServiceConfig{Name: name, GrantKeys: k.set, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// headers gives a call's request headers.
type headers func(method, target string) http.Header

// proxyHeaders is what the proxy sends with each call of tenant to service:
// the identity header and an assertion signed for that call.
func proxyHeaders(t *testing.T, k keys, tenant, service string) headers {
	return func(method, target string) http.Header {
		t.Helper()
		path, _, _ := strings.Cut(target, "?")
		h := http.Header{}
		h.Set(UserHeader, Operator)
		h.Set(grantsig.Header, sign(t, k, validClaims(tenant, service, method, path)))
		return h
	}
}

// fixed sends h with every call.
func fixed(h http.Header) headers { return func(string, string) http.Header { return h } }

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, h http.Handler, method, target, body string, hdrs headers) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	var hdr http.Header
	if hdrs != nil {
		hdr = hdrs(method, target)
	}
	for k, vs := range hdr {
		r.Header[k] = slices.Clone(vs)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if ct := w.Header().Get("Content-Type"); w.Code != http.StatusNoContent && ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", method, target, ct, res.raw)
	}
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, target, err, res.raw)
		}
	}
	return res
}

func errorCode(res response) string {
	e, _ := res.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// requestBody is a valid body for the catalog's write routes that take one.
var requestBody = map[string]string{
	"New-MailboxRepairRequest": `{"corruption_types":["FolderView","SearchFolder"],"detect_only":true}`,
	"Set-SPOSite":              `{"title":"Customer Support (EU)"}`,
}

// TestCatalogRoutes calls every route of the activity catalog, for both
// tenants, with a valid grant: a catalog route without a handler fails here.
func TestCatalogRoutes(t *testing.T) {
	cat := catalog(t)
	if got := cat.Services(); !slices.Equal(got, Names()) {
		t.Fatalf("catalog services %v, demo services %v", got, Names())
	}
	k := newKeys(t)
	for _, svc := range cat.Services() {
		names, _ := cat.Activities(svc)
		for _, name := range names {
			a, ok := cat.Lookup(svc, name)
			if !ok {
				t.Fatalf("Lookup(%s, %s) failed", svc, name)
			}
			for _, tenant := range []string{"contoso", "fabrikam"} {
				t.Run(svc+"/"+name+"/"+tenant, func(t *testing.T) {
					s := newService(t, k, svc) // fresh: writes change state
					target := fill(t, a.Pattern, seeds[tenant])
					res := call(t, s, a.Method, target, requestBody[name], proxyHeaders(t, k, tenant, svc))
					want := http.StatusOK
					if name == "New-MailboxRepairRequest" {
						want = http.StatusAccepted
					}
					if res.status != want {
						t.Fatalf("%s %s: status %d, want %d: %s", a.Method, target, res.status, want, res.raw)
					}
					// The route the catalog names is the one that served it.
					if _, vars, ok := cat.Match(svc, a.Method, target); !ok || vars["tenant"] != tenant {
						t.Fatalf("catalog does not match %s %s to %s", a.Method, target, name)
					}
					seen := s.Seen()
					if len(seen) != 1 || !seen[0].GrantOK || seen[0].Path != target || seen[0].Method != a.Method {
						t.Fatalf("Seen = %+v", seen)
					}
				})
			}
		}
	}
}

// TestRoutesAreTheCatalog checks the converse: the services serve nothing
// the catalog doesn't list, so the demo can't drift ahead of the policy.
func TestRoutesAreTheCatalog(t *testing.T) {
	cat := catalog(t)
	k := newKeys(t)
	for _, svc := range Names() {
		var want []string
		names, _ := cat.Activities(svc)
		for _, n := range names {
			a, _ := cat.Lookup(svc, n)
			want = append(want, a.Method+" "+a.Pattern)
		}
		got := newService(t, k, svc).routes
		slices.Sort(want)
		got = slices.Sorted(slices.Values(got))
		if !slices.Equal(got, want) {
			t.Errorf("%s: routes\n%v\ncatalog\n%v", svc, got, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	k := newKeys(t)
	other := newKeys(t)
	const target = "/tenants/contoso/mailboxes/megan-bowen/messages/msg-1001"
	valid := func() grantsig.Claims { return validClaims("contoso", Exchange, http.MethodDelete, target) }
	with := func(f func(c *grantsig.Claims)) string { c := valid(); f(&c); return sign(t, k, c) }
	tests := []struct {
		name     string
		header   func(h http.Header)
		code     string
		verified bool // whether the assertion's signature still verified
	}{
		{"missing grant header", func(h http.Header) { h.Del(grantsig.Header) }, CodeGrantInvalid, false},
		{"empty grant header", func(h http.Header) { h.Set(grantsig.Header, "") }, CodeGrantInvalid, false},
		{"malformed grant header", func(h http.Header) { h.Set(grantsig.Header, "not-a-grant") }, CodeGrantInvalid, false},
		{"bad signature", func(h http.Header) { h.Set(grantsig.Header, sign(t, other, valid())) }, CodeGrantInvalid, false},
		{"tampered claims", func(h http.Header) {
			good := sign(t, k, valid())
			forged := with(func(c *grantsig.Claims) { c.Tenant = "fabrikam" })
			_, claims, _ := strings.Cut(forged, ".")
			claims, _, _ = strings.Cut(claims, ".")
			parts := strings.Split(good, ".")
			h.Set(grantsig.Header, parts[0]+"."+claims+"."+parts[2])
		}, CodeGrantInvalid, false},
		{"expired", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) {
				c.IssuedAt, c.ExpiresAt = testNow.Add(-time.Minute).Unix(), testNow.Add(-grantsig.DefaultLeeway).Unix()
			}))
		}, CodeGrantInvalid, true},
		{"issued in the future", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) {
				c.IssuedAt, c.ExpiresAt = testNow.Add(10*time.Minute).Unix(), testNow.Add(10*time.Minute+30*time.Second).Unix()
			}))
		}, CodeGrantInvalid, true},
		// Replays: a genuine assertion, issued for another call.
		{"assertion for another path", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Path = "/tenants/contoso/mailboxes/megan-bowen/messages/msg-1002" }))
		}, CodeGrantInvalid, true},
		{"assertion for another method", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Method = http.MethodGet }))
		}, CodeGrantInvalid, true},
		{"assertion for an escaped spelling of the path", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Path = "/tenants/contoso/mailboxes/megan-bowen/messages/msg%2D1001" }))
		}, CodeGrantInvalid, true},
		{"assertion for another service", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Audience, c.Service = SharePoint, SharePoint }))
		}, CodeGrantInvalid, true},
		{"assertion of another issuer", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Issuer = "lockbox-staging" }))
		}, CodeGrantInvalid, true},
		{"tenant mismatch", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Tenant = "fabrikam" }))
		}, CodeGrantInvalid, true},
		{"service claim mismatch", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Service = SharePoint }))
		}, CodeGrantInvalid, true},
		{"grant for another operator", func(h http.Header) {
			h.Set(grantsig.Header, with(func(c *grantsig.Claims) { c.Subject = "alice@provider.example" }))
		}, CodeGrantInvalid, true},
		{"two grant headers", func(h http.Header) { h.Add(grantsig.Header, sign(t, k, valid())) }, CodeGrantInvalid, false},
		{"missing X-Lockbox-User", func(h http.Header) { h.Del(UserHeader) }, CodeGrantInvalid, false},
		{"wrong X-Lockbox-User", func(h http.Header) { h.Set(UserHeader, "alice@provider.example") }, CodeGrantInvalid, false},
		{"two X-Lockbox-User headers", func(h http.Header) { h.Add(UserHeader, "alice@provider.example") }, CodeGrantInvalid, false},
		{"Authorization present", func(h http.Header) { h.Set("Authorization", "Bearer eyJhbGciOi.operator.token") }, CodeCredentialLeak, false},
		{"empty Authorization present", func(h http.Header) { h["Authorization"] = []string{""} }, CodeCredentialLeak, false},
		{"Proxy-Authorization present", func(h http.Header) { h.Set("Proxy-Authorization", "Basic YWxpY2U6cHc=") }, CodeCredentialLeak, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, k, Exchange)
			h := proxyHeaders(t, k, "contoso", Exchange)(http.MethodDelete, target)
			tc.header(h)
			res := call(t, s, http.MethodDelete, target, "", fixed(h))
			if res.status != http.StatusForbidden || errorCode(res) != tc.code {
				t.Fatalf("status %d code %q, want 403 %q: %s", res.status, errorCode(res), tc.code, res.raw)
			}
			if msg, _ := res.body["error"].(map[string]any)["message"].(string); msg == "" {
				t.Error("refusal without a message")
			}
			// Refused writes change nothing.
			res = call(t, s, http.MethodGet, "/tenants/contoso/mailboxes/megan-bowen/messages", "", proxyHeaders(t, k, "contoso", Exchange))
			if !hasID(res.body["messages"], "msg-1001") {
				t.Fatalf("a refused DELETE removed the message: %s", res.raw)
			}
			seen := s.Seen()
			if len(seen) != 2 || seen[0].GrantOK || !seen[1].GrantOK {
				t.Fatalf("Seen = %+v", seen)
			}
			if got := seen[0].Claims.ExpiresAt != 0; got != tc.verified {
				t.Errorf("recorded claims %+v, want verified=%v", seen[0].Claims, tc.verified)
			}
		})
	}
}

// TestReplayedAssertion: an assertion serves one call. Sent again, for the
// very call it was issued for but with another body (which it does not
// cover), it is refused until it expires, and nothing changes; the service
// forgets it once it could no longer verify anyway.
func TestReplayedAssertion(t *testing.T) {
	k := newKeys(t)
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := NewService(ServiceConfig{Name: Exchange, GrantKeys: k.set, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	const target = "/tenants/contoso/mailboxes/alex-wilber/repair"
	h := proxyHeaders(t, k, "contoso", Exchange)(http.MethodPost, target)
	if res := call(t, s, http.MethodPost, target, `{"detect_only":true}`, fixed(h)); res.status != http.StatusAccepted {
		t.Fatalf("first use: %d %s", res.status, res.raw)
	}
	res := call(t, s, http.MethodPost, target, `{"corruption_types":["MessageId"]}`, fixed(h))
	if res.status != http.StatusForbidden || errorCode(res) != CodeGrantInvalid {
		t.Fatalf("replay: status %d code %q, want 403 %q: %s", res.status, errorCode(res), CodeGrantInvalid, res.raw)
	}
	list := call(t, s, http.MethodGet, "/tenants/contoso/mailboxes", "", proxyHeaders(t, k, "contoso", Exchange))
	if rr := find(list.body["mailboxes"], "alex-wilber")["repair_requests"].([]any); len(rr) != 1 {
		t.Fatalf("repair requests after a replay: %s", list.raw)
	}
	seen := s.Seen()
	if len(seen) != 3 || !seen[0].GrantOK || seen[1].GrantOK || seen[1].Claims.AuditID != seen[0].Claims.AuditID || !seen[2].GrantOK {
		t.Fatalf("Seen = %+v", seen)
	}
	// Another assertion of the same grant is another call.
	if res := call(t, s, http.MethodPost, target, "", proxyHeaders(t, k, "contoso", Exchange)); res.status != http.StatusAccepted {
		t.Fatalf("a fresh assertion: %d %s", res.status, res.raw)
	}

	// Once every assertion seen so far has expired (leeway included), the
	// service remembers none of them.
	mu.Lock()
	now = testNow.Add(grantsig.MaxTTL + 2*grantsig.DefaultLeeway)
	mu.Unlock()
	fresh := validClaims("contoso", Exchange, http.MethodGet, "/tenants/contoso/mailboxes")
	fresh.IssuedAt, fresh.ExpiresAt = clock().Unix(), clock().Add(30*time.Second).Unix()
	hf := http.Header{}
	hf.Set(UserHeader, Operator)
	hf.Set(grantsig.Header, sign(t, k, fresh))
	if res := call(t, s, http.MethodGet, "/tenants/contoso/mailboxes", "", fixed(hf)); res.status != http.StatusOK {
		t.Fatalf("after the clock moved: %d %s", res.status, res.raw)
	}
	s.mu.Lock()
	remembered := len(s.spent)
	s.mu.Unlock()
	if remembered != 1 {
		t.Fatalf("%d assertions remembered, want only the one still in force", remembered)
	}
}

// The tenant is judged on the same segment the handler reads, even when a
// path spells it with escapes, and a path the mux would clean is refused
// rather than redirected.
func TestTenantEscapes(t *testing.T) {
	k := newKeys(t)
	s := newService(t, k, Exchange)
	h := proxyHeaders(t, k, "contoso", Exchange)
	tests := []struct {
		target string
		status int
	}{
		{"/tenants/fabrikam/mailboxes", http.StatusForbidden},
		{"/tenants/%66abrikam/mailboxes", http.StatusForbidden},
		{"/tenants/contoso%2F..%2Ffabrikam/mailboxes", http.StatusForbidden},
		{"/tenants/contoso/../fabrikam/mailboxes", http.StatusBadRequest},
		{"/tenants/contoso/%2e%2e/fabrikam/mailboxes", http.StatusBadRequest},
		{"/tenants/contoso//mailboxes", http.StatusBadRequest},
		{"/tenants/contoso/mailboxes/", http.StatusBadRequest},
		{"/mailboxes", http.StatusForbidden},
		{"/", http.StatusForbidden},
		{"/tenants/%63ontoso/mailboxes", http.StatusOK},
	}
	// An assertion binds the path as received: one issued for the decoded
	// path does not pass for an escaped spelling of it.
	res := call(t, s, http.MethodGet, "/tenants/%63ontoso/mailboxes", "",
		func(m, _ string) http.Header { return h(m, "/tenants/contoso/mailboxes") })
	if res.status != http.StatusForbidden {
		t.Errorf("an assertion for the decoded path passed for the escaped one: %d %s", res.status, res.raw)
	}
	for _, tc := range tests {
		res := call(t, s, http.MethodGet, tc.target, "", h)
		if res.status != tc.status {
			t.Errorf("%s with a contoso grant: %d, want %d: %s", tc.target, res.status, tc.status, res.raw)
		}
		if strings.Contains(res.raw, "pradeep") {
			t.Errorf("%s leaked fabrikam data: %s", tc.target, res.raw)
		}
		if tc.status == http.StatusOK && res.body["tenant"] != "contoso" {
			t.Errorf("%s: %s", tc.target, res.raw)
		}
	}
}

func TestNotFound(t *testing.T) {
	k := newKeys(t)
	tests := []struct {
		service, tenant, method, target string
	}{
		{Exchange, "northwind", "GET", "/tenants/northwind/mailboxes"},
		{Exchange, "contoso", "GET", "/tenants/contoso/mailboxes/nobody/messages"},
		{Exchange, "contoso", "GET", "/tenants/contoso/mailboxes/nobody/statistics"},
		{Exchange, "contoso", "POST", "/tenants/contoso/mailboxes/nobody/repair"},
		{Exchange, "contoso", "DELETE", "/tenants/contoso/mailboxes/megan-bowen/messages/msg-9999"},
		{Exchange, "contoso", "DELETE", "/tenants/contoso/mailboxes/megan-bowen/messages/msg-5001"}, // fabrikam's id
		{Exchange, "contoso", "GET", "/tenants/contoso/mailboxes/megan-bowen"},                      // no such route
		{Exchange, "contoso", "PUT", "/tenants/contoso/mailboxes"},                                  // no such method
		{SharePoint, "contoso", "GET", "/tenants/contoso/sites/engineering/files"},
		{SharePoint, "contoso", "GET", "/tenants/contoso/sites/support/files/file-999"},
		{SharePoint, "contoso", "PATCH", "/tenants/contoso/sites/nosite"},
		{SharePoint, "contoso", "DELETE", "/tenants/contoso/sites/support/files/file-301"},
		{OneDrive, "fabrikam", "GET", "/tenants/fabrikam/drives/megan-bowen/items"},
		{OneDrive, "contoso", "GET", "/tenants/contoso/drives/megan-bowen/items/item-999/content"},
		{OneDrive, "contoso", "DELETE", "/tenants/contoso/drives/megan-bowen/items/item-999"},
		{OneDrive, "contoso", "GET", "/tenants/contoso/mailboxes"}, // another service's route
	}
	for _, tc := range tests {
		t.Run(tc.service+" "+tc.method+" "+tc.target, func(t *testing.T) {
			s := newService(t, k, tc.service)
			res := call(t, s, tc.method, tc.target, `{"title":"x"}`, proxyHeaders(t, k, tc.tenant, tc.service))
			if res.status != http.StatusNotFound || errorCode(res) != CodeNotFound {
				t.Fatalf("status %d code %q, want 404 %q: %s", res.status, errorCode(res), CodeNotFound, res.raw)
			}
		})
	}
}

func hasID(list any, id string) bool {
	items, _ := list.([]any)
	for _, it := range items {
		if m, _ := it.(map[string]any); m["id"] == id {
			return true
		}
	}
	return false
}

func find(list any, id string) map[string]any {
	items, _ := list.([]any)
	for _, it := range items {
		if m, _ := it.(map[string]any); m["id"] == id {
			return m
		}
	}
	return nil
}

func TestWritesChangeState(t *testing.T) {
	k := newKeys(t)

	t.Run("Remove-MailboxMessage", func(t *testing.T) {
		s := newService(t, k, Exchange)
		h := proxyHeaders(t, k, "contoso", Exchange)
		before := call(t, s, "GET", "/tenants/contoso/mailboxes/megan-bowen/statistics", "", h)
		res := call(t, s, "DELETE", "/tenants/contoso/mailboxes/megan-bowen/messages/msg-1002", "", h)
		if res.status != http.StatusOK || res.body["deleted"] != "msg-1002" {
			t.Fatalf("delete: %d %s", res.status, res.raw)
		}
		res = call(t, s, "GET", "/tenants/contoso/mailboxes/megan-bowen/messages", "", h)
		if hasID(res.body["messages"], "msg-1002") || !hasID(res.body["messages"], "msg-1001") {
			t.Fatalf("messages after delete: %s", res.raw)
		}
		if res := call(t, s, "DELETE", "/tenants/contoso/mailboxes/megan-bowen/messages/msg-1002", "", h); res.status != http.StatusNotFound {
			t.Fatalf("second delete: %d %s", res.status, res.raw)
		}
		after := call(t, s, "GET", "/tenants/contoso/mailboxes/megan-bowen/statistics", "", h)
		if b, a := before.body["total_item_count"].(float64), after.body["total_item_count"].(float64); a != b-1 {
			t.Fatalf("total_item_count %v -> %v", b, a)
		}
		inbox := after.body["folders"].([]any)[0].(map[string]any)
		if inbox["name"] != "Inbox" || inbox["items_in_folder"].(float64) != 2 {
			t.Fatalf("Inbox after delete: %v", inbox)
		}
		// Other tenants and mailboxes are untouched.
		res = call(t, s, "GET", "/tenants/contoso/mailboxes", "", h)
		if m := find(res.body["mailboxes"], "megan-bowen"); m["item_count"].(float64) != 5 {
			t.Fatalf("mailboxes after delete: %s", res.raw)
		}
	})

	t.Run("New-MailboxRepairRequest", func(t *testing.T) {
		s := newService(t, k, Exchange)
		h := proxyHeaders(t, k, "contoso", Exchange)
		res := call(t, s, "POST", "/tenants/contoso/mailboxes/alex-wilber/repair", "", h)
		if res.status != http.StatusAccepted || res.body["id"] != "repair-000001" || res.body["status"] != "Queued" ||
			res.body["lockbox_request_id"] != "req-7f3a" || res.body["requested_by"] != Operator {
			t.Fatalf("repair: %d %s", res.status, res.raw)
		}
		if got := res.body["corruption_types"].([]any); len(got) != 4 {
			t.Fatalf("default corruption types: %v", got)
		}
		res = call(t, s, "POST", "/tenants/contoso/mailboxes/alex-wilber/repair", `{"corruption_types":["MessageId"],"detect_only":true}`, h)
		if res.status != http.StatusAccepted || res.body["id"] != "repair-000002" || res.body["detect_only"] != true {
			t.Fatalf("second repair: %d %s", res.status, res.raw)
		}
		res = call(t, s, "GET", "/tenants/contoso/mailboxes", "", h)
		if rr := find(res.body["mailboxes"], "alex-wilber")["repair_requests"].([]any); len(rr) != 2 {
			t.Fatalf("repair requests listed: %s", res.raw)
		}
		for _, body := range []string{`{"corruption_types":["Everything"]}`, `{"detect_only":"yes"}`, `{"force":true}`, `{} {}`, `[`} {
			if res := call(t, s, "POST", "/tenants/contoso/mailboxes/alex-wilber/repair", body, h); res.status != http.StatusBadRequest || errorCode(res) != CodeBadRequest {
				t.Errorf("body %s: %d %s", body, res.status, res.raw)
			}
		}
		big := `{"corruption_types":["` + strings.Repeat("A", maxBody) + `"]}`
		if res := call(t, s, "POST", "/tenants/contoso/mailboxes/alex-wilber/repair", big, h); res.status != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body: %d %s", res.status, res.raw)
		}
	})

	t.Run("Set-SPOSite", func(t *testing.T) {
		s := newService(t, k, SharePoint)
		h := proxyHeaders(t, k, "contoso", SharePoint)
		res := call(t, s, "PATCH", "/tenants/contoso/sites/support", `{"title":"Support (EU)","storage_quota_mb":2048,"sharing_capability":"Disabled","lock_state":"ReadOnly","owner":"adele.vance@contoso.example"}`, h)
		if res.status != http.StatusOK || res.body["title"] != "Support (EU)" || res.body["lock_state"] != "ReadOnly" {
			t.Fatalf("patch: %d %s", res.status, res.raw)
		}
		res = call(t, s, "GET", "/tenants/contoso/sites", "", h)
		site := find(res.body["sites"], "support")
		if site["title"] != "Support (EU)" || site["storage_quota_mb"].(float64) != 2048 || site["sharing_capability"] != "Disabled" || site["owner"] != "adele.vance@contoso.example" {
			t.Fatalf("sites after patch: %s", res.raw)
		}
		// A read-only site keeps its files.
		if res := call(t, s, "DELETE", "/tenants/contoso/sites/support/files/file-101", "", h); res.status != http.StatusLocked {
			t.Fatalf("delete on locked site: %d %s", res.status, res.raw)
		}
		for _, body := range []string{``, `{}`, `{"title":""}`, `{"lock_state":"Frozen"}`, `{"sharing_capability":"Everyone"}`,
			`{"storage_quota_mb":0}`, `{"owner":"not an address"}`, `{"url":"https://evil.example"}`, `{"title":"ok","lock_state":"Frozen"}`} {
			if res := call(t, s, "PATCH", "/tenants/contoso/sites/finance", body, h); res.status != http.StatusBadRequest {
				t.Errorf("body %q: %d %s", body, res.status, res.raw)
			}
		}
		// A refused patch changed nothing, not even its valid fields.
		res = call(t, s, "GET", "/tenants/contoso/sites", "", h)
		if f := find(res.body["sites"], "finance"); f["title"] != "Finance" {
			t.Fatalf("finance after refused patches: %v", f)
		}
	})

	t.Run("Remove-SPOFile", func(t *testing.T) {
		s := newService(t, k, SharePoint)
		h := proxyHeaders(t, k, "fabrikam", SharePoint)
		if res := call(t, s, "GET", "/tenants/fabrikam/sites/engineering/files/file-302", "", h); res.status != http.StatusOK || !strings.Contains(res.body["content"].(string), "max_temp_c") {
			t.Fatalf("content: %d %s", res.status, res.raw)
		}
		if res := call(t, s, "DELETE", "/tenants/fabrikam/sites/engineering/files/file-302", "", h); res.status != http.StatusOK {
			t.Fatalf("delete: %d %s", res.status, res.raw)
		}
		if res := call(t, s, "GET", "/tenants/fabrikam/sites/engineering/files/file-302", "", h); res.status != http.StatusNotFound {
			t.Fatalf("content after delete: %d %s", res.status, res.raw)
		}
		res := call(t, s, "GET", "/tenants/fabrikam/sites/engineering/files", "", h)
		if hasID(res.body["files"], "file-302") || !hasID(res.body["files"], "file-301") {
			t.Fatalf("files after delete: %s", res.raw)
		}
	})

	t.Run("Remove-OneDriveFile", func(t *testing.T) {
		s := newService(t, k, OneDrive)
		h := proxyHeaders(t, k, "contoso", OneDrive)
		if res := call(t, s, "DELETE", "/tenants/contoso/drives/alex-wilber/items/item-2002", "", h); res.status != http.StatusOK {
			t.Fatalf("delete: %d %s", res.status, res.raw)
		}
		if res := call(t, s, "GET", "/tenants/contoso/drives/alex-wilber/items/item-2002/content", "", h); res.status != http.StatusNotFound {
			t.Fatalf("content after delete: %d %s", res.status, res.raw)
		}
		res := call(t, s, "GET", "/tenants/contoso/drives", "", h)
		if d := find(res.body["drives"], "alex-wilber"); d["item_count"].(float64) != 1 {
			t.Fatalf("drives after delete: %s", res.raw)
		}
	})
}

func TestSeen(t *testing.T) {
	k := newKeys(t)
	s := newService(t, k, OneDrive)
	h := proxyHeaders(t, k, "contoso", OneDrive)("GET", "/tenants/contoso/drives/megan-bowen/items")
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	call(t, s, "GET", "/tenants/contoso/drives/megan-bowen/items?top=2", "", fixed(h))
	h2 := proxyHeaders(t, k, "contoso", OneDrive)("GET", "/tenants/contoso/drives")
	h2.Set("Authorization", "Bearer operator-token")
	call(t, s, "GET", "/tenants/contoso/drives", "", fixed(h2))

	seen := s.Seen()
	if len(seen) != 2 {
		t.Fatalf("Seen = %+v", seen)
	}
	first := seen[0]
	wantClaims := validClaims("contoso", OneDrive, "GET", "/tenants/contoso/drives/megan-bowen/items")
	wantClaims.AuditID = first.Claims.AuditID // each assertion has its own
	if first.Method != "GET" || first.Path != "/tenants/contoso/drives/megan-bowen/items" || first.Query != "top=2" ||
		!first.GrantOK || !first.At.Equal(testNow) || first.Claims.AuditID == "" || first.Claims != wantClaims {
		t.Fatalf("first = %+v", first)
	}
	if first.Header.Get(UserHeader) != Operator || first.Header.Get(grantsig.Header) != h.Get(grantsig.Header) || first.Header.Get("Traceparent") == "" {
		t.Fatalf("headers = %v", first.Header)
	}
	if seen[1].GrantOK || seen[1].Header.Get("Authorization") != "Bearer operator-token" {
		t.Fatalf("second = %+v", seen[1])
	}

	// The copy is the caller's.
	seen[0].Header.Set(UserHeader, "changed")
	if s.Seen()[0].Header.Get(UserHeader) != Operator {
		t.Fatal("Seen returned the service's own header map")
	}

	// The inspection endpoint serves the same, with secrets redacted, and is
	// neither guarded nor recorded.
	res := call(t, s, "GET", SeenPath, "", nil)
	if res.status != http.StatusOK || res.body["service"] != OneDrive {
		t.Fatalf("seen endpoint: %d %s", res.status, res.raw)
	}
	var got struct {
		Calls []Seen `json:"calls"`
	}
	if err := json.Unmarshal([]byte(res.raw), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Calls) != 2 || got.Calls[0].Path != first.Path || !got.Calls[0].GrantOK || got.Calls[0].Claims != first.Claims {
		t.Fatalf("endpoint calls = %+v", got.Calls)
	}
	a := h.Get(grantsig.Header)
	if g := got.Calls[0].Header.Get(grantsig.Header); g != a[:strings.LastIndexByte(a, '.')+1]+Redacted {
		t.Errorf("grant assertion served as %q, want its signature redacted", g)
	}
	if a := got.Calls[1].Header.Get("Authorization"); a != Redacted {
		t.Errorf("Authorization served as %q", a)
	}
	if strings.Contains(res.raw, "operator-token") {
		t.Error("the endpoint served a credential")
	}
	if n := len(s.Seen()); n != 2 {
		t.Fatalf("the inspection endpoint recorded itself: %d calls", n)
	}
	if res := call(t, s, "POST", SeenPath, "", nil); res.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST %s: %d", SeenPath, res.status)
	}
	if res := call(t, s, "DELETE", SeenPath, "", nil); res.status != http.StatusNoContent || len(s.Seen()) != 0 {
		t.Fatalf("DELETE %s: %d, %d left", SeenPath, res.status, len(s.Seen()))
	}

	call(t, s, "GET", "/tenants/contoso/drives", "", proxyHeaders(t, k, "contoso", OneDrive))
	s.Reset()
	if n := len(s.Seen()); n != 0 {
		t.Fatalf("after Reset: %d calls", n)
	}
	// Reset forgets calls, not data.
	if res := call(t, s, "GET", "/tenants/contoso/drives", "", proxyHeaders(t, k, "contoso", OneDrive)); !hasID(res.body["drives"], "megan-bowen") {
		t.Fatal("Reset dropped data")
	}
}

func TestSeenIsBounded(t *testing.T) {
	k := newKeys(t)
	s := newService(t, k, Exchange)
	h := proxyHeaders(t, k, "contoso", Exchange)
	const n = MaxSeen + 25
	for i := range n {
		call(t, s, "GET", fmt.Sprintf("/tenants/contoso/mailboxes?call=%d", i), "", h)
	}
	seen := s.Seen()
	if len(seen) != MaxSeen {
		t.Fatalf("%d calls kept, want %d", len(seen), MaxSeen)
	}
	for i, c := range seen {
		if want := fmt.Sprintf("call=%d", n-MaxSeen+i); c.Query != want {
			t.Fatalf("seen[%d].Query = %q, want %q (oldest first)", i, c.Query, want)
		}
	}
}

func TestNewServiceErrors(t *testing.T) {
	k := newKeys(t)
	tests := []struct {
		name string
		cfg  ServiceConfig
		want string
	}{
		{"unknown service", ServiceConfig{Name: "teams", GrantKeys: k.set}, "unknown service"},
		{"empty name", ServiceConfig{GrantKeys: k.set}, "unknown service"},
		{"no keys", ServiceConfig{Name: Exchange}, "GrantKeys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewService(tc.cfg)
			if err == nil || s != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewService = %v, %v; want error containing %q", s, err, tc.want)
			}
		})
	}
}

// TestConcurrent runs reads, writes and recording at once, for -race.
func TestConcurrent(t *testing.T) {
	k := newKeys(t)
	s := newService(t, k, Exchange)
	// serve, unlike call, is safe off the test goroutine: it reports a
	// failure to sign with t.Error, never t.Fatal. Each call has an
	// assertion of its own, as each call through the proxy does.
	serve := func(method, target string) int {
		a, err := k.signer.Sign(validClaims("contoso", Exchange, method, target))
		if err != nil {
			t.Error(err)
			return http.StatusInternalServerError
		}
		r := httptest.NewRequest(method, target, nil)
		r.Header.Set(UserHeader, Operator)
		r.Header.Set(grantsig.Header, a)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				var code int
				switch (i + j) % 4 {
				case 0:
					code = serve("GET", "/tenants/contoso/mailboxes")
				case 1:
					code = serve("POST", "/tenants/contoso/mailboxes/helpdesk/repair")
				case 2:
					code = serve("DELETE", fmt.Sprintf("/tenants/contoso/mailboxes/megan-bowen/messages/msg-100%d", j%6+1))
				default:
					_ = s.Seen()
				}
				if code >= 500 || code == http.StatusForbidden {
					t.Errorf("status %d", code)
				}
			}
		})
	}
	wg.Wait()
	if n := len(s.Seen()); n != 8*20-8*5 {
		t.Fatalf("%d calls recorded", n)
	}
}

func TestStart(t *testing.T) {
	k := newKeys(t)
	ctx := t.Context()
	c, err := Start(ctx, ServiceConfig{GrantKeys: k.set, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ups := c.Upstreams()
	if got := slices.Sorted(maps.Keys(ups)); !slices.Equal(got, Names()) {
		t.Fatalf("Upstreams = %v", ups)
	}
	ups["exchange"] = "changed"
	if c.Upstreams()["exchange"] == "changed" {
		t.Fatal("Upstreams returned the cluster's own map")
	}
	if c.Service("teams") != nil {
		t.Fatal(`Service("teams") != nil`)
	}
	paths := map[string]string{
		Exchange:   "/tenants/contoso/mailboxes",
		SharePoint: "/tenants/contoso/sites",
		OneDrive:   "/tenants/contoso/drives",
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for name, base := range c.Upstreams() {
		if !strings.HasPrefix(base, "http://127.0.0.1:") {
			t.Fatalf("%s at %s", name, base)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", base+paths[name], nil)
		req.Header = proxyHeaders(t, k, "contoso", name)("GET", paths[name])
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
		// A request without a grant is refused over the wire too.
		resp, err = client.Get(base + paths[name])
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s without grant: %d", name, resp.StatusCode)
		}
		seen := c.Service(name).Seen()
		if len(seen) != 2 || !seen[0].GrantOK || seen[1].GrantOK || seen[0].Path != paths[name] {
			t.Fatalf("%s Seen = %+v", name, seen)
		}
		resp, err = client.Get(base + SeenPath)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Service string `json:"service"`
			Calls   []Seen `json:"calls"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if err != nil || body.Service != name || len(body.Calls) != 2 {
			t.Fatalf("%s%s: %v %+v", base, SeenPath, err, body)
		}
	}

	c.Close()
	c.Close() // idempotent
	client.CloseIdleConnections()
	for name, base := range c.Upstreams() {
		if resp, err := client.Get(base + paths[name]); err == nil {
			_ = resp.Body.Close()
			t.Fatalf("%s still serving after Close", name)
		}
	}
}

func TestStartStopsWithContext(t *testing.T) {
	k := newKeys(t)
	ctx, cancel := context.WithCancel(t.Context())
	c, err := Start(ctx, ServiceConfig{GrantKeys: k.set})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	c.Close() // returns once the servers stopped
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(c.Upstreams()[Exchange] + "/tenants/contoso/mailboxes"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("still serving after ctx ended")
	}
}

func TestStartRefusesBadKey(t *testing.T) {
	if c, err := Start(t.Context(), ServiceConfig{}); err == nil {
		c.Close()
		t.Fatal("Start without a key succeeded")
	}
}
