package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLocationOnTheUpstreamRewritten: an upstream's Location or
// Content-Location that names the upstream itself (its scheme, host and
// port, under its base path) reaches the client as the proxy's path for
// the service, as nginx's "proxy_redirect default" does: the client never
// learns the internal host name, nor is sent there around the proxy. Any
// other value passes unchanged.
func TestLocationOnTheUpstreamRewritten(t *testing.T) {
	var origin string // the upstream's, once it runs
	type answer struct{ header, value, want string }
	var cases []answer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("case"))
		if err != nil || i < 0 || i >= len(cases) {
			http.Error(w, "no such case", http.StatusBadRequest)
			return
		}
		w.Header().Set(cases[i].header, cases[i].value)
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	origin = srv.URL
	host := strings.TrimPrefix(origin, "http://")
	cases = []answer{
		{"Location", origin + "/api/exchange/tenants/contoso/mailboxes/alice?top=1", "/exchange/tenants/contoso/mailboxes/alice?top=1"},
		{"Location", "HTTP://" + strings.ToUpper(host) + "/api/exchange/tenants/contoso#part", "/exchange/tenants/contoso#part"},
		{"Content-Location", origin + "/api/exchange/tenants/contoso/mailboxes", "/exchange/tenants/contoso/mailboxes"},
		// Not the upstream's own origin, or not a path the proxy serves.
		{"Location", "https://login.example/authorize?x=1", "https://login.example/authorize?x=1"},
		{"Location", "https://" + host + "/api/exchange/tenants", "https://" + host + "/api/exchange/tenants"},
		{"Location", "http://" + host + ".evil.example/api/exchange/x", "http://" + host + ".evil.example/api/exchange/x"},
		{"Location", origin + "/api/exchangeadmin/x", origin + "/api/exchangeadmin/x"},
		// A reference starting with "/" means the upstream's own path (Go's
		// http.Redirect writes relative targets so); one starting with "//"
		// its host, if it is the upstream's.
		{"Location", "/api/exchange/tenants/contoso/mailboxes/bob?top=2", "/exchange/tenants/contoso/mailboxes/bob?top=2"},
		{"Location", "/api/exchange", "/exchange/"},
		{"Content-Location", "/api/exchange/tenants/contoso#x", "/exchange/tenants/contoso#x"},
		{"Location", "//" + host + "/api/exchange/tenants", "/exchange/tenants"},
		{"Location", "//login.example/api/exchange/tenants", "//login.example/api/exchange/tenants"},
		{"Location", "/api/exchangeadmin/x", "/api/exchangeadmin/x"},
		{"Location", "/login", "/login"},
		// A relative path resolves against the proxy's path as the upstream
		// meant it against its own.
		{"Location", "bob?top=2", "bob?top=2"},
		{"Location", "../contoso", "../contoso"},
		{"Location", "mailto:ops@example.com", "mailto:ops@example.com"},
		{"Content-Location", "https://cdn.example/blob/1", "https://cdn.example/blob/1"},
	}
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		u, err := url.Parse(origin + "/api/exchange")
		if err != nil {
			t.Fatal(err)
		}
		c.Upstreams["exchange"] = u
	})
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s %s", tc.header, tc.value), func(t *testing.T) {
			res := e.send(as(alice, "GET", mailboxes+"?case="+strconv.Itoa(i))(e))
			if res.status != http.StatusFound {
				t.Fatalf("%d %s, want the upstream's 302", res.status, res.body)
			}
			if got := res.header.Values(tc.header); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s: %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

// TestRedirectToWithoutBasePath: behind an upstream URL with no path, every
// path on the upstream is the service's, so any reference starting with "/"
// gets the service's prefix, including one a browser would take as another
// host ("/\host"), which the prefix makes a path again.
func TestRedirectToWithoutBasePath(t *testing.T) {
	u := &upstream{service: "exchange", scheme: "http", host: "exchange.internal:8080"}
	for _, tc := range []struct{ loc, want string }{
		{"/login?next=%2Fx", "/exchange/login?next=%2Fx"},
		{"/", "/exchange/"},
		{`/\evil.example/x`, "/exchange/%5Cevil.example/x"},
		{"http://exchange.internal:8080/a", "/exchange/a"},
		{"//exchange.internal:8080/a", "/exchange/a"},
		{"//exchange.internal/a", ""},
		{"a/b", ""},
		{"", ""},
		{"?x=1", ""},
		{"http://u:p@exchange.internal:8080/a", ""},
	} {
		got, ok := u.redirectTo(tc.loc)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("redirectTo(%q) = %q, %v; want %q", tc.loc, got, ok, tc.want)
		}
	}
}
