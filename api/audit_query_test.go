package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// streamReads is a go-redis hook that counts the commands that read an
// audit stream's records (XRANGE, XREVRANGE, XREAD), alone or in a
// pipeline.
type streamReads struct{ n *atomic.Int64 }

func (h streamReads) count(cmd redis.Cmder) {
	switch cmd.Name() {
	case "xrange", "xrevrange", "xread":
		h.n.Add(1)
	}
}

func (h streamReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h streamReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}
func (h streamReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

// TestAuditExportHeadReadsNoRecord: HEAD of an export answers what GET
// answers (the status, and on 200 the type and file name of the
// attachment), as HEAD does on every GET route, without reading the log:
// net/http discards a HEAD's body, so an export run for it read the whole
// filtered range for nothing.
func TestAuditExportHeadReadsNoRecord(t *testing.T) {
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
		{"tenant admin, csv", contosoAdmin, "?tenant=contoso", 200},
		{"own tenant", contosoAdmin, "?format=csv", 200},
		{"provider auditor, jsonl", auditor, "?tenant=contoso&format=jsonl", 200},
		{"every tenant", auditor, "?operation=Get-Mailbox", 200},
		{"manager is no auditor", mia, "?tenant=contoso", 403},
		{"other tenant's admin", fabrikamAdmin, "?tenant=contoso", 403},
		{"bad format", auditor, "?tenant=contoso&format=xml", 400},
		{"bad range", auditor, "?tenant=contoso&from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", 400},
		{"bad tenant", auditor, "?tenant=Contoso", 400},
		{"no token", anonymous, "?tenant=contoso", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/v1/audit/export" + tc.query
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
			for _, h := range []string{"Content-Type", "Content-Disposition", "Allow", "WWW-Authenticate", "Retry-After"} {
				if g, hd := get.header.Get(h), head.header.Get(h); g != hd {
					t.Errorf("%s: GET %q, HEAD %q", h, g, hd)
				}
			}
			if tc.status == 200 && !strings.HasPrefix(head.header.Get("Content-Disposition"), "attachment; ") {
				t.Errorf("HEAD Content-Disposition = %q", head.header.Get("Content-Disposition"))
			}
		})
	}
}

// TestAuditSearchOfATenantNotOnboarded: searching or exporting the log of
// a tenant that was never onboarded answers what verifying it answers, 404
// tenant_not_found, rather than an empty log, to the provider's audit
// readers, who may read any tenant's log (and list the tenants). A tenant
// user may read only its own tenant's: any other, onboarded or not, is 403,
// so the 404 tells it nothing it could not learn. An onboarded tenant
// whose log holds nothing that matches, or nothing at all, is still 200.
func TestAuditSearchOfATenantNotOnboarded(t *testing.T) {
	e := newEnv(t)
	verify := e.do(auditor, http.MethodGet, "/v1/audit/verify?tenant=northwind", nil)
	want := errorOf(t, verify)
	if verify.status != http.StatusNotFound || want.Code != "tenant_not_found" {
		t.Fatalf("verify answered %d %+v", verify.status, want)
	}
	for _, path := range []string{
		"/v1/audit?tenant=northwind",
		"/v1/audit?tenant=northwind&operation=Get-Mailbox",
		"/v1/audit/export?tenant=northwind",
		"/v1/audit/export?tenant=northwind&format=jsonl",
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			r := e.do(auditor, method, path, nil)
			if r.status != http.StatusNotFound {
				t.Errorf("%s %s: %d %s, want 404", method, path, r.status, r.body)
				continue
			}
			if method == http.MethodGet {
				if got := errorOf(t, r); got != want {
					t.Errorf("GET %s: %+v, want verify's %+v", path, got, want)
				}
			}
		}
		// A tenant user is refused as for any other tenant's log.
		for _, who := range []user{contosoAdmin, contosoAuditor} {
			wantError(t, e.do(who, http.MethodGet, path, nil), http.StatusForbidden, "forbidden", "")
		}
	}
	wantError(t, e.do(contosoAdmin, http.MethodGet, "/v1/audit/verify?tenant=northwind", nil), http.StatusForbidden, "forbidden", "")

	// Onboarded, nothing matching: an empty page.
	if r := e.do(auditor, http.MethodGet, "/v1/audit?tenant=fabrikam&user=nobody", nil); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"records":[]}` {
		t.Errorf("onboarded tenant, no match: %d %s", r.status, r.body)
	}
	// Onboarded, every record gone (say, past retention): still the
	// tenant's log, empty.
	if err := e.rdb.Del(context.Background(), keys.Audit("fabrikam")).Err(); err != nil {
		t.Fatal(err)
	}
	for _, who := range []user{auditor, fabrikamAdmin} {
		if r := e.do(who, http.MethodGet, "/v1/audit?tenant=fabrikam", nil); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"records":[]}` {
			t.Errorf("onboarded tenant without records, as %s: %d %s", who.sub, r.status, r.body)
		}
		if r := e.do(who, http.MethodGet, "/v1/audit/export?tenant=fabrikam&format=jsonl", nil); r.status != 200 || len(r.body) != 0 {
			t.Errorf("export of an onboarded tenant without records, as %s: %d %q", who.sub, r.status, r.body)
		}
	}
}

// TestAuditZeroTimeIsABound: a from or to given is a bound, also when it
// is 0001-01-01T00:00:00Z, Go's zero time, which the search took for "no
// bound": to=0001-01-01T00:00:00Z asks for the records created before
// year 1 (none), not for every record, and a from after it is a range
// that ends before it begins.
func TestAuditZeroTimeIsABound(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 3, "Get-Mailbox")
	const zero = "0001-01-01T00:00:00Z"

	all := decode[page](t, e.do(contosoAdmin, http.MethodGet, "/v1/audit?tenant=contoso", nil), 200)
	if len(all.Records) != 5 { // 3 actions, the request, onboarding
		t.Fatalf("%d records without bounds", len(all.Records))
	}
	for _, who := range []user{contosoAdmin, auditor} {
		if got := decode[page](t, e.do(who, http.MethodGet, "/v1/audit?tenant=contoso&to="+zero, nil), 200); len(got.Records) != 0 || got.NextCursor != "" {
			t.Errorf("to=%s as %s: %d records, next %q; want none", zero, who.sub, len(got.Records), got.NextCursor)
		}
		if r := e.do(who, http.MethodGet, "/v1/audit/export?tenant=contoso&format=jsonl&to="+zero, nil); r.status != 200 || len(r.body) != 0 {
			t.Errorf("export to=%s as %s: %d %q; want an empty export", zero, who.sub, r.status, r.body)
		}
	}
	// Every tenant's log, bounded the same way.
	if got := decode[page](t, e.do(auditor, http.MethodGet, "/v1/audit?to="+zero, nil), 200); len(got.Records) != 0 {
		t.Errorf("to=%s across tenants: %d records", zero, len(got.Records))
	}
	// A from of the zero time bounds nothing away.
	if got := decode[page](t, e.do(contosoAdmin, http.MethodGet, "/v1/audit?tenant=contoso&from="+zero, nil), 200); len(got.Records) != len(all.Records) {
		t.Errorf("from=%s: %d records, want %d", zero, len(got.Records), len(all.Records))
	}
	for _, path := range []string{
		"/v1/audit?tenant=contoso&from=2025-01-01T00:00:00Z&to=" + zero,
		"/v1/audit/export?tenant=contoso&from=2025-01-01T00:00:00Z&to=" + zero,
	} {
		wantError(t, e.do(contosoAdmin, http.MethodGet, path, nil), http.StatusBadRequest, "invalid_range", "")
	}
}

// TestAuditExportHeadWhenTheStoreIsDown: with the store down, HEAD of an
// export answers 503 with Retry-After as GET does, for one tenant's log
// and for every tenant's, rather than a 200 for an export that could not
// run.
func TestAuditExportHeadWhenTheStoreIsDown(t *testing.T) {
	e := newEnv(t)
	if err := e.rdb.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who  user
		path string
	}{
		{auditor, "/v1/audit/export?tenant=contoso"},
		{auditor, "/v1/audit/export?format=jsonl"},
		{contosoAdmin, "/v1/audit/export?format=csv"},
	} {
		get := e.do(tc.who, http.MethodGet, tc.path, nil)
		head := e.do(tc.who, http.MethodHead, tc.path, nil)
		if get.status != http.StatusServiceUnavailable || head.status != get.status ||
			head.header.Get("Retry-After") == "" || head.header.Get("Retry-After") != get.header.Get("Retry-After") {
			t.Errorf("%s as %s: GET %d (Retry-After %q), HEAD %d (Retry-After %q)", tc.path, tc.who.sub,
				get.status, get.header.Get("Retry-After"), head.status, head.header.Get("Retry-After"))
		}
	}
}
