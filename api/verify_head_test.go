package api_test

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// TestAuditVerifyHeadReadsNoRecord: HEAD of a verification answers what
// GET answers (the status, and its type), as HEAD does on every GET route,
// without reading the chain. net/http discards a HEAD's body, and a
// verification, bound by neither the call's deadline nor the write
// timeout, read and hashed the tenant's whole log for nothing, as a HEAD
// of an export did before it got the same rule.
func TestAuditVerifyHeadReadsNoRecord(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 20, "Get-Mailbox")
	var reads atomic.Int64
	e.rdb.AddHook(streamReads{n: &reads})

	for _, tc := range []struct {
		name   string
		who    user
		query  string
		status int
	}{
		{"tenant admin", contosoAdmin, "?tenant=contoso", 200},
		{"own tenant", contosoAdmin, "", 200},
		{"provider auditor", auditor, "?tenant=contoso", 200},
		{"provider auditor naming no tenant", auditor, "", 400},
		{"tenant not onboarded", auditor, "?tenant=northwind", 404},
		{"manager is no auditor", mia, "?tenant=contoso", 403},
		{"other tenant's admin", fabrikamAdmin, "?tenant=contoso", 403},
		{"bad tenant", auditor, "?tenant=Contoso", 400},
		{"no token", anonymous, "?tenant=contoso", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/v1/audit/verify" + tc.query
			get := e.do(tc.who, http.MethodGet, path, nil)
			reads.Store(0)
			head := e.do(tc.who, http.MethodHead, path, nil)
			if n := reads.Load(); n != 0 {
				t.Errorf("HEAD read the audit log: %d stream reads", n)
			}
			if get.status != tc.status || head.status != tc.status {
				t.Fatalf("GET answered %d, HEAD %d, want %d", get.status, head.status, tc.status)
			}
			if len(head.body) != 0 {
				t.Errorf("HEAD has a body: %q", head.body)
			}
			for _, h := range []string{"Content-Type", "Allow", "WWW-Authenticate", "Retry-After"} {
				if g, hd := get.header.Get(h), head.header.Get(h); g != hd {
					t.Errorf("%s: GET %q, HEAD %q", h, g, hd)
				}
			}
		})
	}
}
