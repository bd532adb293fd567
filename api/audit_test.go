package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/tenants"
)

// page is the body of GET /v1/audit.
type page struct {
	Records    []record.Record `json:"records"`
	NextCursor string          `json:"next_cursor"`
}

// operatorActions appends n operator actions under req, one a second.
func (e *env) operatorActions(req grants.Request, n int, ops ...string) {
	e.t.Helper()
	log := audit.NewLog(e.rdb, e.clk.Now)
	for i := range n {
		e.clk.Advance(time.Second)
		_, err := log.Append(context.Background(), record.Record{
			Operation: ops[i%len(ops)], LockboxTenant: req.Tenant, Workload: req.Service,
			RecordType: record.RecordTypeDataCenterSecurityCmdlet,
			UserId:     record.OperatorUserID, UserType: record.UserTypeDcAdmin, ProviderUserId: req.Requester,
			ClientIP: "10.0.0.9", LockboxRequestId: req.ID, ObjectId: fmt.Sprintf("item-%d", i),
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// A tenant user's token names its tenant: leaving the tenant out of a
// search, an export or a verification means that tenant, so the API, the
// console and lockboxctl don't make tenant admins repeat it.
func TestAuditWithoutTenantIsTheTokensTenant(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 3, "Get-Mailbox")
	e.file(bob, "fabrikam", "exchange")

	named := decode[page](t, e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso", nil), 200)
	implied := decode[page](t, e.do(contosoAdmin, "GET", "/v1/audit", nil), 200)
	if len(implied.Records) == 0 || len(implied.Records) != len(named.Records) {
		t.Fatalf("without tenant: %d records, with it: %d", len(implied.Records), len(named.Records))
	}
	for i, r := range implied.Records {
		if r.Id != named.Records[i].Id || r.LockboxTenant != "contoso" || r.ProviderUserId != "" {
			t.Errorf("record %d = %+v", i, r)
		}
	}
	for _, r := range decode[page](t, e.do(fabrikamAdmin, "GET", "/v1/audit", nil), 200).Records {
		if r.LockboxTenant != "fabrikam" {
			t.Errorf("fabrikam's admin read %+v", r)
		}
	}

	exp := e.do(contosoAdmin, "GET", "/v1/audit/export?format=jsonl", nil)
	if exp.status != 200 || bytes.Count(exp.body, []byte("\n")) != len(named.Records) ||
		exp.header.Get("Content-Disposition") != `attachment; filename="audit-contoso.jsonl"` {
		t.Errorf("export: %d %q\n%s", exp.status, exp.header.Get("Content-Disposition"), exp.body)
	}

	v := decode[audit.Verification](t, e.do(contosoAdmin, "GET", "/v1/audit/verify", nil), 200)
	if !v.OK || v.Tenant != "contoso" || v.Records != len(named.Records) {
		t.Errorf("verification = %+v", v)
	}
	// A chain is one tenant's: provider auditors name it.
	wantError(t, e.do(auditor, "GET", "/v1/audit/verify", nil), 400, "invalid_query", "")
	if v := decode[audit.Verification](t, e.do(auditor, "GET", "/v1/audit/verify?tenant=contoso", nil), 200); !v.OK || v.Tenant != "contoso" {
		t.Errorf("auditor's verification = %+v", v)
	}
	// A tenant that was never onboarded has no chain to verify (openapi.yaml's 404).
	wantError(t, e.do(auditor, "GET", "/v1/audit/verify?tenant=northwind", nil), 404, "tenant_not_found", "")
	wantError(t, e.do(contosoApprover, "GET", "/v1/audit/verify", nil), 403, "forbidden", "")
}

func TestAuditSearchFiltersAndPaging(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	req := e.file(alice, "contoso", "exchange")
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), 200)
	decode[grants.Request](t, e.do(contosoApprover, "POST", "/v1/requests/"+req.ID+"/approve", nil), 200)
	mid := e.clk.Now()
	e.operatorActions(req, 25, "Get-Mailbox", "Get-MailboxMessage")
	other := e.file(bob, "contoso", "exchange")

	search := func(u user, q string) page {
		t.Helper()
		return decode[page](t, e.do(u, "GET", "/v1/audit?"+q, nil), 200)
	}

	t.Run("cursor pages without duplicates or gaps", func(t *testing.T) {
		all := search(auditor, "tenant=contoso&limit=1000")
		if all.NextCursor != "" {
			t.Fatalf("one page should hold everything: %q", all.NextCursor)
		}
		var got []record.Record
		cursor, pages := "", 0
		for {
			q := "tenant=contoso&limit=7"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			p := search(auditor, q)
			got = append(got, p.Records...)
			pages++
			if p.NextCursor == "" {
				break
			}
			if len(p.Records) != 7 {
				t.Fatalf("page %d has %d records", pages, len(p.Records))
			}
			cursor = p.NextCursor
		}
		if len(got) != len(all.Records) {
			t.Fatalf("paged %d records, want %d", len(got), len(all.Records))
		}
		for i := range got {
			if got[i].Id != all.Records[i].Id {
				t.Fatalf("record %d = %s, want %s", i, got[i].Id, all.Records[i].Id)
			}
		}
		if want := (len(all.Records) + 6) / 7; pages != want {
			t.Errorf("pages = %d, want %d", pages, want)
		}
	})
	t.Run("filters", func(t *testing.T) {
		from := mid.Add(5 * time.Second).Format(time.RFC3339)
		to := mid.Add(10 * time.Second).Format(time.RFC3339)
		tests := []struct {
			name  string
			who   user
			query string
			n     int
			check func(record.Record) bool
		}{
			{"operation", contosoAdmin, "operation=get-mailbox", 13, func(r record.Record) bool { return r.Operation == "Get-Mailbox" }},
			// The 25 actions and the engineers' 2 requests; the manager's
			// decision is "Microsoft Support".
			{"user", contosoAdmin, "user=" + url.QueryEscape("Microsoft Operator"), 27, func(r record.Record) bool { return r.UserId == record.OperatorUserID }},
			{"request id", contosoAdmin, "request_id=" + other.ID, 1, func(r record.Record) bool { return r.LockboxRequestId == other.ID }},
			{"time range, inclusive", contosoAdmin, "from=" + from + "&to=" + to, 6, func(r record.Record) bool {
				return !r.CreationTime.Before(mid.Add(5*time.Second)) && !r.CreationTime.After(mid.Add(10*time.Second))
			}},
			{"combined", contosoAdmin, "from=" + from + "&operation=Get-MailboxMessage&request_id=" + req.ID, 10, func(r record.Record) bool { return r.Operation == "Get-MailboxMessage" }},
			{"provider auditor finds the operator", auditor, "user=alice", 26, func(r record.Record) bool { return r.ProviderUserId == "alice" }},
			{"tenant users can't search by the provider-only field", contosoAdmin, "user=alice", 0, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := search(tc.who, "tenant=contoso&"+tc.query)
				if len(p.Records) != tc.n || p.NextCursor != "" {
					t.Fatalf("%d records (next %q), want %d", len(p.Records), p.NextCursor, tc.n)
				}
				for _, r := range p.Records {
					if !tc.check(r) {
						t.Errorf("record does not match: %+v", r)
					}
					// Tenants see where an operator action came from
					// (the engineer's machine), never who it was.
					if tc.who.tenant != "" && (r.ProviderUserId != "" || (r.Operator() && r.ClientIP != "10.0.0.9")) {
						t.Errorf("tenant view: %+v", r)
					}
				}
			})
		}
	})
	t.Run("tenant users get the tenant view", func(t *testing.T) {
		r := e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso&request_id="+req.ID, nil)
		if bytes.Contains(r.body, []byte("ProviderUserId")) || bytes.Contains(r.body, []byte(`"alice"`)) || bytes.Contains(r.body, []byte(`"mia"`)) {
			t.Errorf("tenant view names the provider's staff: %s", r.body)
		}
	})

	errs := []struct {
		name   string
		who    user
		path   string
		code   string
		status int
	}{
		{"bad from", contosoAdmin, "/v1/audit?tenant=contoso&from=yesterday", "invalid_from", 400},
		{"bad to", contosoAdmin, "/v1/audit?tenant=contoso&to=2026-01-02", "invalid_to", 400},
		{"unescaped plus", contosoAdmin, "/v1/audit?tenant=contoso&from=2026-01-02T10:00:00+01:00", "invalid_from", 400},
		{"reversed range", contosoAdmin, "/v1/audit?tenant=contoso&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "invalid_range", 400},
		{"forged cursor", contosoAdmin, "/v1/audit?tenant=contoso&cursor=MTIz", "invalid_cursor", 400},
		{"non-canonical cursor", contosoAdmin, "/v1/audit?tenant=contoso&cursor=MDEtMQ", "invalid_cursor", 400},
		{"garbage cursor", contosoAdmin, "/v1/audit?tenant=contoso&cursor=%21%21", "invalid_cursor", 400},
		{"limit too large", contosoAdmin, "/v1/audit?tenant=contoso&limit=1001", "invalid_limit", 400},
		{"export format", contosoAdmin, "/v1/audit/export?tenant=contoso&format=xml", "invalid_format", 400},
		{"export unknown parameter", contosoAdmin, "/v1/audit/export?tenant=contoso&limit=3", "invalid_query", 400},
		// Managers may read no audit log: that comes before the tenant
		// they left out.
		{"export by a manager without a tenant", mia, "/v1/audit/export", "forbidden", 403},
		{"search by a manager without a tenant", mia, "/v1/audit", "forbidden", 403},
		{"verify by a manager without a tenant", mia, "/v1/audit/verify", "forbidden", 403},
		{"empty tenant", auditor, "/v1/audit?tenant=", "invalid_tenant", 400},
		{"empty user", contosoAdmin, "/v1/audit?tenant=contoso&user=", "invalid_user", 400},
		{"empty operation", contosoAdmin, "/v1/audit?tenant=contoso&operation=", "invalid_operation", 400},
		{"empty request id", contosoAdmin, "/v1/audit/export?tenant=contoso&request_id=", "invalid_request_id", 400},
		{"empty export tenant", auditor, "/v1/audit/export?tenant=", "invalid_tenant", 400},
		{"empty verify tenant", auditor, "/v1/audit/verify?tenant=", "invalid_tenant", 400},
		{"empty format", contosoAdmin, "/v1/audit/export?tenant=contoso&format=", "invalid_format", 400},
		{"single-tenant cursor for all tenants", auditor, "/v1/audit?cursor=MS0x", "invalid_cursor", 400},
		{"export other tenant", fabrikamAdmin, "/v1/audit/export?tenant=contoso", "forbidden", 403},
		{"activity of a request another tenant's", fabrikamAdmin, "/v1/requests/" + req.ID + "/activity", "", 0},
		{"activity takes only a cursor and a limit", contosoAdmin, "/v1/requests/" + req.ID + "/activity?x=1", "invalid_query", 400},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.who, "GET", tc.path, nil)
			if tc.status == 0 {
				if r.status != 403 && r.status != 404 {
					t.Fatalf("status = %d: %s", r.status, r.body)
				}
				return
			}
			msg := ""
			if tc.name == "unescaped plus" {
				msg = "send a '+' in a query string as %2B"
			}
			wantError(t, r, tc.status, tc.code, msg)
		})
	}
	// An empty cursor is the first page, so a loop may start with one.
	t.Run("empty cursor", func(t *testing.T) {
		first := decode[map[string]any](t, e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso&limit=2", nil), http.StatusOK)
		again := decode[map[string]any](t, e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso&limit=2&cursor=", nil), http.StatusOK)
		if !reflect.DeepEqual(first, again) {
			t.Errorf("with an empty cursor: %v, want the first page %v", again, first)
		}
	})
}

func TestAuditExport(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 600, "Get-Mailbox")

	t.Run("csv", func(t *testing.T) {
		r := e.do(contosoAdmin, "GET", "/v1/audit/export?tenant=contoso&operation=Get-Mailbox", nil)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
			r.header.Get("Content-Disposition") != `attachment; filename="audit-contoso.csv"` {
			t.Fatalf("status %d, headers %v", r.status, r.header)
		}
		rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 601 || strings.Join(rows[0], ",") != "CreationDate,UserIds,Operations,AuditData" {
			t.Fatalf("%d rows, header %v", len(rows), rows[0])
		}
		var rec record.Record
		if err := json.Unmarshal([]byte(rows[1][3]), &rec); err != nil {
			t.Fatal(err)
		}
		if rows[1][1] != record.OperatorUserID || rows[1][2] != "Get-Mailbox" || rec.ObjectId != "item-599" ||
			rows[1][0] != rec.CreationTime.Format(time.RFC3339Nano) || rec.ProviderUserId != "" || rec.ClientIP != "10.0.0.9" {
			t.Errorf("first row = %v", rows[1])
		}
	})
	t.Run("jsonl for the provider", func(t *testing.T) {
		r := e.do(auditor, "GET", "/v1/audit/export?tenant=contoso&format=jsonl", nil)
		if r.status != 200 || r.header.Get("Content-Type") != "application/jsonl" {
			t.Fatalf("status %d, headers %v", r.status, r.header)
		}
		lines := strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n")
		if len(lines) != 603 { // 600 actions, the request, the approver, onboarding
			t.Fatalf("%d lines", len(lines))
		}
		var rec record.Record
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec.ProviderUserId != "alice" {
			t.Errorf("first line = %s (%v)", lines[0], err)
		}
	})
	t.Run("empty range is just the header", func(t *testing.T) {
		r := e.do(contosoAdmin, "GET", "/v1/audit/export?tenant=contoso&user=nobody", nil)
		if r.status != 200 || string(r.body) != "CreationDate,UserIds,Operations,AuditData\n" {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
	})
}

func TestRequestActivity(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	req := e.file(alice, "contoso", "exchange")
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), 200)
	decode[grants.Request](t, e.do(contosoApprover, "POST", "/v1/requests/"+req.ID+"/approve", nil), 200)
	e.operatorActions(req, 3, "Get-Mailbox")
	e.file(bob, "contoso", "exchange") // another request's records stay out

	activity := func(u user) []record.Record {
		t.Helper()
		return decode[wire.RecordPage](t, e.do(u, "GET", "/v1/requests/"+req.ID+"/activity", nil), http.StatusOK).Records
	}
	var ops []string
	recs := activity(contosoApprover)
	for i, r := range recs {
		ops = append(ops, r.Operation)
		if r.LockboxRequestId != req.ID || r.ProviderUserId != "" {
			t.Errorf("record %d = %+v", i, r)
		}
		if i > 0 && r.CreationTime.After(recs[i-1].CreationTime.Time) {
			t.Errorf("not newest first at %d", i)
		}
	}
	want := []string{"Get-Mailbox", "Get-Mailbox", "Get-Mailbox", record.OpTenantDecision, record.OpManagerDecision, record.OpNewRequest}
	if strings.Join(ops, " ") != strings.Join(want, " ") {
		t.Fatalf("operations = %v, want %v", ops, want)
	}
	if recs := activity(alice); len(recs) != 6 || recs[2].ProviderUserId != "alice" {
		t.Errorf("the requester's view = %+v", recs)
	}

	// A page at a time: the cursors lead through the trail and back.
	page := func(query string) wire.RecordPage {
		t.Helper()
		return decode[wire.RecordPage](t, e.do(contosoApprover, "GET", "/v1/requests/"+req.ID+"/activity?"+query, nil), http.StatusOK)
	}
	var got []string
	p := page("limit=4")
	if len(p.Records) != 4 || p.NextCursor == "" || p.PrevCursor != "" {
		t.Fatalf("first page of 4: %d records, next %q, prev %q", len(p.Records), p.NextCursor, p.PrevCursor)
	}
	for _, r := range p.Records {
		got = append(got, r.Operation)
	}
	p2 := page("limit=4&cursor=" + url.QueryEscape(p.NextCursor))
	for _, r := range p2.Records {
		got = append(got, r.Operation)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") || p2.NextCursor != "" || p2.PrevCursor == "" {
		t.Errorf("two pages of 4: %v, next %q, prev %q; want %v, the end, and a way back", got, p2.NextCursor, p2.PrevCursor, want)
	}
	if back := page("limit=4&cursor=" + url.QueryEscape(p2.PrevCursor)); len(back.Records) != 4 || back.Records[0].Id != p.Records[0].Id {
		t.Errorf("back from the second page: %d records", len(back.Records))
	}
	wantError(t, e.do(contosoApprover, "GET", "/v1/requests/"+req.ID+"/activity?limit=1001", nil), http.StatusBadRequest, "invalid_limit", "")
	wantError(t, e.do(contosoApprover, "GET", "/v1/requests/"+req.ID+"/activity?cursor=MS0x", nil), http.StatusBadRequest, "invalid_cursor", "")
	// A cursor of another request's trail is not this one's.
	other := decode[wire.RecordPage](t, e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso&limit=1", nil), http.StatusOK)
	if other.NextCursor == "" {
		t.Fatal("no cursor from a search of contoso's log")
	}
	wantError(t, e.do(contosoApprover, "GET", "/v1/requests/"+req.ID+"/activity?cursor="+url.QueryEscape(other.NextCursor), nil), http.StatusBadRequest, "invalid_cursor", "")
}

// failingAudit fails an export after some records.
type failingAudit struct {
	api.AuditSearcher
	after int
}

func (f failingAudit) Export(ctx context.Context, p identity.Principal, q audit.Query, w func(record.Record) error) error {
	n := 0
	err := f.AuditSearcher.Export(ctx, p, q, func(r record.Record) error {
		if n++; n > f.after {
			return errors.New("redis went away")
		}
		return w(r)
	})
	return err
}

func TestAuditExportFailureAfterTheFirstByteCutsTheStream(t *testing.T) {
	for _, after := range []int{0, 500} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			e := newEnv(t, func(c *api.Config) { c.Audit = failingAudit{AuditSearcher: c.Audit, after: after} })
			e.assignApprover()
			req := e.file(alice, "contoso", "exchange")
			e.operatorActions(req, 600, "Get-Mailbox")
			hreq, err := http.NewRequest("GET", e.srv.URL+"/v1/audit/export?tenant=contoso&format=jsonl", nil)
			if err != nil {
				t.Fatal(err)
			}
			hreq.Header.Set("Authorization", "Bearer "+e.token(auditor))
			resp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if after == 0 {
				// Nothing was sent yet: an ordinary error response.
				if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusInternalServerError {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != 200 || err == nil {
				t.Fatalf("status %d, read error %v: a cut-off export must not look complete", resp.StatusCode, err)
			}
			if n := bytes.Count(body, []byte("\n")); n == 0 || n > after {
				t.Errorf("%d lines before the cut", n)
			}
			if !strings.Contains(e.logs.String(), "audit export ended early") {
				t.Errorf("failure not logged: %s", e.logs.String())
			}
		})
	}
}

func TestAuditSearchAcrossTenants(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	c := e.file(alice, "contoso", "exchange")
	e.operatorActions(c, 4, "Get-Mailbox")
	f := e.file(bob, "fabrikam", "exchange")
	e.operatorActions(f, 4, "Get-Mailbox")
	e.operatorActions(c, 4, "Get-MailboxMessage")

	all := decode[page](t, e.do(auditor, "GET", "/v1/audit?limit=1000", nil), 200)
	// Across tenants the order is that of commit (to the millisecond);
	// within a tenant it is exact.
	tenantsSeen := map[string]int{}
	prev := map[string]time.Time{}
	for i, r := range all.Records {
		tenantsSeen[r.LockboxTenant]++
		if p, ok := prev[r.LockboxTenant]; ok && r.CreationTime.After(p) {
			t.Fatalf("record %d is newer than the one before of its tenant", i)
		}
		prev[r.LockboxTenant] = r.CreationTime.Time
	}
	// Each tenant's log starts with its onboarding.
	if tenantsSeen["contoso"] != 11 || tenantsSeen["fabrikam"] != 6 || all.NextCursor != "" {
		t.Fatalf("records per tenant = %v, next %q", tenantsSeen, all.NextCursor)
	}
	var paged []record.Record
	q := "/v1/audit?limit=4"
	for {
		p := decode[page](t, e.do(auditor, "GET", q, nil), 200)
		paged = append(paged, p.Records...)
		if p.NextCursor == "" {
			break
		}
		q = "/v1/audit?limit=4&cursor=" + url.QueryEscape(p.NextCursor)
	}
	if len(paged) != len(all.Records) {
		t.Fatalf("paged %d, want %d", len(paged), len(all.Records))
	}
	for i := range paged {
		if paged[i].Id != all.Records[i].Id {
			t.Fatalf("record %d differs", i)
		}
	}
	r := e.do(auditor, "GET", "/v1/audit/export?format=jsonl&operation=Get-Mailbox", nil)
	if r.status != 200 || bytes.Count(r.body, []byte("\n")) != 8 || r.header.Get("Content-Disposition") != `attachment; filename="audit-all_tenants.jsonl"` {
		t.Fatalf("export: %d %v %s", r.status, r.header, r.body)
	}
}

// TestSharedIssuerForeignTenantTokenReadsNothing is the reviewer's repro
// over HTTP: with one issuer for everyone (the tenant from the token's
// tid), a token for mgr2@provider.example with contoso's tid and
// global-admin or audit-reader read contoso's requests, their activity,
// its audit log and its configuration. Reading as a tenant takes a user of
// the tenant (user@ one of its domains) without a provider-only role; the
// others get what anyone without the right gets: 404 for requests (an
// empty list), 403 for the audit log and the settings.
func TestSharedIssuerForeignTenantTokenReadsNothing(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	req := e.file(alice, "contoso", "exchange")
	decode[grants.Request](t, e.do(mia, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusOK)
	e.operatorActions(req, 2, "Get-Mailbox")

	type list struct{ Requests []grants.Request }
	auditPaths := []string{"/v1/audit?tenant=contoso", "/v1/audit", "/v1/audit/export?tenant=contoso", "/v1/audit/verify?tenant=contoso"}
	for _, u := range []user{
		{sub: "mgr2@provider.example", roles: []identity.Role{identity.RoleGlobalAdmin}, tenant: "contoso"},
		{sub: "mgr2@provider.example", roles: []identity.Role{identity.RoleSupportManager, identity.RoleGlobalAdmin}, tenant: "contoso"},
		{sub: "mgr2@provider.example", roles: []identity.Role{identity.RoleAuditReader}, tenant: "contoso"},
		{sub: contosoAdmin.sub, roles: []identity.Role{identity.RoleGlobalAdmin, identity.RoleOperator}, tenant: "contoso"},
	} {
		t.Run(u.sub+" "+fmt.Sprint(u.roles), func(t *testing.T) {
			wantError(t, e.do(u, "GET", "/v1/requests/"+req.ID, nil), http.StatusNotFound, "not_found", "")
			wantError(t, e.do(u, "GET", "/v1/requests/"+req.ID+"/activity", nil), http.StatusNotFound, "not_found", "")
			if got := decode[list](t, e.do(u, "GET", "/v1/requests", nil), http.StatusOK); len(got.Requests) != 0 {
				t.Errorf("listed %d of contoso's requests", len(got.Requests))
			}
			wantError(t, e.do(u, "POST", "/v1/requests/"+req.ID+"/approve", nil), http.StatusNotFound, "not_found", "")
			for _, path := range auditPaths {
				wantError(t, e.do(u, "GET", path, nil), http.StatusForbidden, "forbidden", "")
			}
			for _, path := range []string{"/v1/tenants/contoso/settings", "/v1/tenants/contoso/approvers"} {
				wantError(t, e.do(u, "GET", path, nil), http.StatusForbidden, "forbidden", "")
			}
		})
	}
	// The tenant's own global admin and audit reader, users of its domain,
	// read as before.
	contosoAuditor := user{sub: "audra@contoso.example", roles: []identity.Role{identity.RoleAuditReader}, tenant: "contoso"}
	for _, u := range []user{contosoAdmin, contosoAuditor} {
		if got := decode[grants.Request](t, e.do(u, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK); got.Requester != record.OperatorUserID {
			t.Errorf("%s: requester %q, want the tenant view", u.sub, got.Requester)
		}
		if got := decode[list](t, e.do(u, "GET", "/v1/requests", nil), http.StatusOK); len(got.Requests) != 1 {
			t.Errorf("%s: listed %d requests, want 1", u.sub, len(got.Requests))
		}
		for _, path := range auditPaths {
			if r := e.do(u, "GET", path, nil); r.status != http.StatusOK {
				t.Errorf("%s: GET %s = %d %s", u.sub, path, r.status, r.body)
			}
		}
	}
	decode[tenants.Settings](t, e.do(contosoAdmin, "GET", "/v1/tenants/contoso/settings", nil), http.StatusOK)
}

// TestAuditExportCSVNeutralisesFormulas: a CSV export opened in a
// spreadsheet must not run what a record holds. A cell beginning with
// = + - @, a tab or a carriage return is a formula there, and a tenant's
// user ids may begin with + or - (keys.IsUser); such a cell gets a leading
// apostrophe, and AuditData keeps every value as it was written.
func TestAuditExportCSVNeutralisesFormulas(t *testing.T) {
	e := newEnv(t)
	log := audit.NewLog(e.rdb, e.clk.Now)
	cells := []struct{ user, op string }{
		{"-2+3@contoso.example", "=HYPERLINK(\"http://evil.example\",\"x\")"},
		{"+cmd@contoso.example", "@SUM(1+1)"},
		{"@contoso.example", "\tGet-Mailbox"},
		{"\rgina@contoso.example", "+Get-Mailbox"},
		{"gina@contoso.example", "Get-Mailbox-"}, // harmless: kept as it is
	}
	for _, c := range cells {
		e.clk.Advance(time.Second)
		if _, err := log.Append(context.Background(), record.Record{
			Operation: c.op, LockboxTenant: "contoso", Workload: record.WorkloadLockbox,
			RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeRegular, UserId: c.user,
		}); err != nil {
			t.Fatal(err)
		}
	}
	r := e.do(contosoAdmin, "GET", "/v1/audit/export?tenant=contoso&format=csv&from="+url.QueryEscape(start.Add(time.Second).Format(time.RFC3339)), nil)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(cells)+1 {
		t.Fatalf("%d rows, want %d: %q", len(rows), len(cells)+1, r.body)
	}
	for i, row := range rows[1:] {
		c := cells[len(cells)-1-i] // newest first
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("row %d: cell %q would be a formula in a spreadsheet", i+1, cell)
			}
		}
		want := func(s string) string {
			if strings.ContainsRune("=+-@\t\r", rune(s[0])) {
				return "'" + s
			}
			return s
		}
		if row[1] != want(c.user) || row[2] != want(c.op) {
			t.Errorf("row %d = %q, %q; want %q, %q", i+1, row[1], row[2], want(c.user), want(c.op))
		}
		var rec record.Record
		if err := json.Unmarshal([]byte(row[3]), &rec); err != nil || rec.UserId != c.user || rec.Operation != c.op {
			t.Errorf("row %d: AuditData %s (%v) does not keep %q, %q", i+1, row[3], err, c.user, c.op)
		}
	}
}

// TestAuditExportEndsWhenTheClientGoesAwayAfterTheDeadline: an export is
// not bound by its call's deadline (Config.Timeout), but a client that goes
// away ends it, also once that deadline has passed. The export's context
// was derived from the call's, which ended at the deadline and so could no
// longer tell when the client left: an export reading a long log for a
// selective filter, with nothing written yet, read on to the end for no one.
func TestAuditExportEndsWhenTheClientGoesAwayAfterTheDeadline(t *testing.T) {
	probe := &exportProbe{reading: make(chan struct{}), ended: make(chan error, 1)}
	e := newEnv(t, func(c *api.Config) {
		// The deadline has passed by the time the handler runs.
		c.Auth, c.Timeout = afterDeadline{c.Auth}, time.Millisecond
		probe.AuditSearcher = c.Audit
		c.Audit = probe
	})
	// Written directly: every API call of this env runs past its deadline.
	e.operatorActions(grants.Request{ID: "r1", Tenant: "contoso", Service: "exchange", Requester: "alice"}, 3, "Get-Mailbox")

	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/v1/audit/export?tenant=contoso&format=jsonl", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token(auditor))
	answered := make(chan error, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case <-probe.reading:
	case err := <-answered:
		t.Fatalf("answered before the export read a record: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the export did not start")
	}
	leave() // the client goes away; nothing was written to it
	<-answered
	if err := <-probe.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the export went on after its client left: %v", err)
	}
}

// afterDeadline verifies tokens only once the call's deadline has passed.
type afterDeadline struct{ api.Authenticator }

func (a afterDeadline) Verify(ctx context.Context, tok string) (identity.Principal, error) {
	<-ctx.Done()
	return a.Authenticator.Verify(context.WithoutCancel(ctx), tok)
}

// exportProbe exports from the real log, and holds the export at its first
// record, as a long read between two matches would, until the export's
// context ends (or 10 s pass); ended gets the export's error.
type exportProbe struct {
	api.AuditSearcher
	reading chan struct{}
	ended   chan error
}

// errStillReading is what exportProbe reports when no one stopped it.
var errStillReading = errors.New("the export's context was not canceled")

func (p *exportProbe) Export(ctx context.Context, who identity.Principal, q audit.Query, w func(record.Record) error) error {
	first := true
	err := p.AuditSearcher.Export(ctx, who, q, func(r record.Record) error {
		if first {
			first = false
			close(p.reading)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errStillReading
			}
		}
		return w(r)
	})
	p.ended <- err
	return err
}
