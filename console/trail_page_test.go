package console_test

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
)

// TestRequestPageShowsItsTrailAPageAtATime: the request page lists what
// was done under the request a page at a time, newest first, with links
// to the older and newer records. It read and rendered every record tied
// to the request: an engineer's window of up to 4 hours holds any number
// of calls, and 3 000 of them made the page a tenant approver opens to
// revoke the grant 1 MB, read whole under the page's deadline.
func TestRequestPageShowsItsTrailAPageAtATime(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	const calls = 3000
	req := e.approvedWithCalls("contoso", calls)
	b := e.signIn(contosoApprover)
	rows := func(body string) int {
		return strings.Count(body, `<td data-label="Operation" class="op">Get-Mailbox</td>`)
	}
	older := regexp.MustCompile(`<a class="button secondary" href="([^"]+)" rel="next">Older records</a>`)
	newer := regexp.MustCompile(`<a class="button secondary" href="([^"]+)" rel="prev">Newer records</a>`)
	r := b.get("/console/requests/" + req.ID)
	if r.status != http.StatusOK {
		t.Fatalf("request page: %s", r)
	}
	if n := rows(r.body); n != 50 {
		t.Errorf("the request page shows %d of %d calls (%d KiB); want a page of 50", n, calls, len(r.body)>>10)
	}
	if newer.MatchString(r.body) {
		t.Error("the first page links to newer records")
	}
	m := older.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no link to the older records:\n%s", r.body)
	}
	r2 := b.get(html.UnescapeString(m[1]))
	if r2.status != http.StatusOK || rows(r2.body) != 50 || !newer.MatchString(r2.body) {
		t.Errorf("the older records: %d, %d calls, newer link %v; want 50 and a link back", r2.status, rows(r2.body), newer.MatchString(r2.body))
	}
	if strings.Contains(r2.body, `<div class="sub">alice</div>`) || strings.Contains(r.body, `<div class="sub">alice</div>`) {
		t.Error("a tenant approver's page names the engineer")
	}
	// A trail link the server does not take shows the request from its
	// newest records, not an error in the request's place.
	if r3 := b.get("/console/requests/" + req.ID + "?trail=bm90LWEtY3Vyc29y"); r3.status != http.StatusOK || rows(r3.body) != 50 || newer.MatchString(r3.body) {
		t.Errorf("a cut trail link: %d, %d calls; want the first page", r3.status, rows(r3.body))
	}
}

// approvedWithCalls files a request for tenant, has it approved by the
// manager and the tenant's approver, and writes n audit records of the
// engineer's calls under it, as the proxy does.
func (e *env) approvedWithCalls(tenant string, calls int) grants.Request {
	t := e.t
	t.Helper()
	ctx := context.Background()
	req := e.managerApproved(tenant)
	req, err := e.reqs.Act(ctx, req.ID, grants.ActionApprove, grants.Actor{Principal: contosoApprover, ClientIP: "192.0.2.12"}, "")
	if err != nil || req.State != grants.StateApproved {
		t.Fatalf("tenant approval: %v %v", req.State, err)
	}
	for done := 0; done < calls; {
		n := min(500, calls-done)
		if _, err := e.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
			for range n {
				if err := e.log.AppendTx(ctx, tx, record.Record{
					Operation: "Get-Mailbox", LockboxTenant: tenant, Workload: "exchange", RecordType: record.RecordTypeDataCenterSecurityCmdlet,
					UserType: record.UserTypeDcAdmin, UserId: record.OperatorUserID, ProviderUserId: "alice", ClientIP: "192.0.2.10",
					ObjectId: "exchange/tenants/contoso/mailboxes/megan", LockboxMethod: "GET", LockboxPath: "/tenants/contoso/mailboxes/megan",
					LockboxRequestId: req.ID,
				}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		done += n
	}
	e.clk.Advance(time.Minute)
	return req
}
