package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// maxCallerLogLine bounds the log a refused request from anyone may cost.
// The caller's values it repeats are cut to a few hundred bytes each; the
// line itself is well under this.
const maxCallerLogLine = 4 << 10

// TestRefusalLogsBoundCallerValues: the console logs some refusals of
// requests nobody signed (a cross-origin form post, an identity provider's
// error brought back by the browser), repeating values the caller chose.
// Those values must be cut short in the log: a header or query of up to a
// megabyte, of bytes each logged as a four-byte escape, made every such
// request from anyone a multi-megabyte log line, a flood of them a flood
// of log volume shipped to the SIEM.
func TestRefusalLogsBoundCallerValues(t *testing.T) {
	parallel(t)
	// Bytes the log handlers escape: \xff in text, \ufffd in JSON.
	huge := strings.Repeat("\xff", 64<<10)
	e, m := newOIDCEnv(t)
	cases := []struct {
		name string
		do   func(b *browser) resp
		// logged is what the line must still say.
		logged string
	}{
		{"cross-origin post", func(b *browser) resp {
			return b.post("/console/approvers/"+strings.Repeat("p", 64<<10), url.Values{"user": {"eve"}},
				header("Origin", "https://"+huge), header("Sec-Fetch-Site", "cross-site"))
		}, "cross-origin request refused"},
		{"identity provider error, no sign-in", func(b *browser) resp {
			return b.get("/console/oidc/callback/provider?" + url.Values{"error": {huge}, "state": {"x"}}.Encode())
		}, "OIDC sign-in failed"},
		{"identity provider error of a sign-in", func(b *browser) resp {
			l := startLogin(t, e, m, b, ada)
			return b.get("/console/oidc/callback/provider?" + url.Values{"error": {huge}, "state": {l.state}}.Encode())
		}, "OIDC sign-in failed"},
		{"foreign issuer of a sign-in", func(b *browser) resp {
			l := startLogin(t, e, m, b, ada)
			cb, err := url.Parse(l.callback)
			if err != nil {
				t.Fatal(err)
			}
			q := cb.Query()
			q.Set("iss", "https://"+huge)
			return b.get("/console/oidc/callback/provider?" + q.Encode())
		}, "OIDC sign-in failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.logs.String())
			r := tc.do(e.browser())
			if r.status != http.StatusForbidden && r.status != http.StatusSeeOther {
				t.Fatalf("not refused: %s", r)
			}
			logged := e.logs.String()[before:]
			if !strings.Contains(logged, tc.logged) {
				t.Fatalf("the refusal was not logged (%q):\n%.2000s", tc.logged, logged)
			}
			if len(logged) > maxCallerLogLine {
				t.Errorf("the refusal logged %d bytes, want at most %d:\n%.600s…", len(logged), maxCallerLogLine, logged)
			}
		})
	}
}
