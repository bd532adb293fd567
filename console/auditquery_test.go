package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestAuditPageShowsTheQuery: the audit page shows an operator action's
// query after its path, to the tenant too (it says what of the tenant's
// data was searched, not who searched), escaped as HTML; a query the
// record keeps only the start of says so, with the whole length.
func TestAuditPageShowsTheQuery(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	long := "q=" + strings.Repeat("z", record.MaxQueryBytes)
	kept, length := record.QueryOf(long)
	for _, q := range []struct {
		path, query string
		length      int
	}{
		{"/tenants/contoso/mailboxes/megan/messages", "search=ceo+salary&top=10&q=%3Cb%3E<i>", 0},
		{"/tenants/contoso/mailboxes/adele/messages", kept, length},
	} {
		if _, err := e.log.Append(context.Background(), record.Record{
			Operation: "Get-MailboxMessage", LockboxTenant: "contoso", Workload: "exchange", RecordType: record.RecordTypeDataCenterSecurityCmdlet,
			UserType: record.UserTypeDcAdmin, UserId: record.OperatorUserID, ProviderUserId: "alice", ClientIP: "192.0.2.10",
			ObjectId: "exchange" + q.path, LockboxMethod: "GET", LockboxPath: q.path, LockboxQuery: q.query, LockboxQueryLength: q.length,
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, who := range []struct {
		name string
		b    *browser
	}{{"tenant admin", e.signIn(contosoAdmin)}, {"provider auditor", e.signIn(auditor)}} {
		r := who.b.get("/console/audit?tenant=contoso")
		if r.status != http.StatusOK {
			t.Fatalf("%s: audit page: %s", who.name, r)
		}
		mustContain(t, who.name+"'s audit page", r,
			`<span class="mono">/tenants/contoso/mailboxes/megan/messages</span> <span class="mono query" data-testid="query">?search=ceo&#43;salary&amp;top=10&amp;q=%3Cb%3E&lt;i&gt;</span>`,
			`<span class="mono query" data-testid="query">?`+kept+`</span> <span class="cut" data-testid="query-cut">(the query's first 2048 of 2050 bytes)</span>`)
		mustNotContain(t, who.name+"'s audit page", r, "<i>", kept+"z")
	}
}
