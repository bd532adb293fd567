package console_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestAuditPageSaysWhereRetentionCutTheChain: after retention removed a
// tenant's oldest records, the verification says so, naming the newest
// entry removed and when it was appended, as the API's trimmed_through
// and lockboxctl audit verify do: "intact" alone reads to an auditor as
// every record since onboarding. A log retention never cut says nothing
// of it.
func TestAuditPageSaysWhereRetentionCutTheChain(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	e.managerApproved("contoso")
	admin := e.signIn(contosoAdmin)
	r := admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "verified audit page", r, "Hash chain intact")
	mustNotContain(t, "verification of a log retention never cut", r, `data-testid="trimmed"`)

	before, err := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil || len(before) == 0 {
		t.Fatalf("records: %v, %v", before, err)
	}
	newest := before[len(before)-1].ID // the newest record the cut removes
	cut := e.clk.Now().Add(time.Second)
	e.clk.Advance(time.Hour)
	if _, err := e.log.Append(ctx, record.Record{Operation: record.OpSetSettings, LockboxTenant: "contoso", Workload: record.WorkloadLockbox,
		RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin, UserId: "gina@contoso.example"}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.log.Trim(ctx, "contoso", cut); err != nil || n != len(before) {
		t.Fatalf("trim: %d removed, %v; want %d", n, err, len(before))
	}
	ms, _, _ := strings.Cut(newest, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	appended := time.UnixMilli(n).UTC().Format("2006-01-02 15:04 UTC")
	admin = e.signIn(contosoAdmin) // the first session has been idle an hour
	r = admin.get("/console/audit?tenant=contoso&verify=1")
	if r.status != http.StatusOK {
		t.Fatalf("verified audit page: %s", r)
	}
	mustContain(t, "verification after retention", r, "Hash chain intact", `data-testid="trimmed"`,
		"Retention removed the older records, through entry "+newest+" (appended "+appended+"): the chain is verified from the record after it.")
	const unbound = "The anchor came without the record retention removed last"
	mustNotContain(t, "verification after retention", r, unbound)
	// An anchor set before anchors kept their record is dated by its id,
	// and the page says so.
	if err := e.rdb.Del(ctx, keys.AuditAnchorRecord("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	r = admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "verification of an anchor without its record", r, `data-testid="trimmed"`, unbound)
}
