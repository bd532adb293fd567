package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
)

// TestMicrosoftsPowerShellLines runs, against a running Lockbox, the
// command lines Microsoft documents for Customer Lockbox as an admin
// copies them: -CreatedAfter in its UTC form, Set- with -ServiceName, and
// the two Search-UnifiedAuditLog searches, which find the tenant's
// decision (carrying its RequestId) and the engineer's filing.
func TestMicrosoftsPowerShellLines(t *testing.T) {
	w := start(t)
	w.assignApprover()
	before := w.clock.Now().UTC().Add(-time.Second)
	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)

	ids := w.ids("admin", "Get-AccessToCustomerDataRequest", "-ApprovalStatus", "Pending",
		"-CreatedAfter", before.Format("2006-01-02 15:04:05")+"z")
	if !slices.Equal(ids, []string{r.ID}) {
		t.Errorf(`-CreatedAfter "... z": ids = %q, want %q`, ids, r.ID)
	}

	// -ServiceName of another service decides nothing; Exchange's does.
	code, _, errs := w.ctl("approver", "Set-AccessToCustomerDataRequest", "-ApprovalDecision", "Approve", "-RequestId", r.ID, "-ServiceName", "SharePoint")
	if code != 3 || !strings.Contains(errs, "is for exchange, not -ServiceName SharePoint") {
		t.Errorf("-ServiceName SharePoint: exit %d, %q", code, errs)
	}
	if s := w.state("admin", r.ID); s != grants.StatePendingCustomer {
		t.Fatalf("after -ServiceName SharePoint: %s", s)
	}
	var got grants.Request
	w.ok("approver", &got, "Set-AccessToCustomerDataRequest", "-ApprovalDecision", "Approve", "-RequestId", r.ID, "-ServiceName", "Exchange", "-Comment", "go ahead")
	if got.State != grants.StateApproved {
		t.Fatalf("after -ServiceName Exchange: %s", got.State)
	}

	// Dates, as Microsoft's examples give them: midnight UTC, so the
	// range ends two days on, past a midnight the test may run across.
	day := before.Format(time.DateOnly)
	next := before.AddDate(0, 0, 2).Format(time.DateOnly)
	var decisions struct{ Records []record.Record }
	w.ok("admin", &decisions, "Search-UnifiedAuditLog", "-StartDate", day, "-EndDate", next, "-Operations", "Set-AccessToCustomerDataRequest")
	if len(decisions.Records) != 1 {
		t.Fatalf("-Operations Set-AccessToCustomerDataRequest: %d records, want 1: %+v", len(decisions.Records), decisions.Records)
	}
	dec := decisions.Records[0]
	if dec.ObjectId != r.ID || dec.ApprovalDecision != record.ApprovalApprove || dec.UserId != users["approver"].Subject ||
		!slices.Contains(dec.Parameters, record.Parameter{Name: "RequestId", Value: r.ID}) {
		t.Errorf("decision record = %+v", dec)
	}
	var ops struct{ Records []record.Record }
	w.ok("admin", &ops, "Search-UnifiedAuditLog", "-StartDate", day, "-EndDate", next, "-UserIds", "Microsoft Operator")
	filed := false
	for _, rec := range ops.Records {
		if rec.UserId != record.OperatorUserID {
			t.Errorf("-UserIds \"Microsoft Operator\" found a record of %q", rec.UserId)
		}
		filed = filed || rec.Operation == record.OpNewRequest && rec.ObjectId == r.ID
	}
	if !filed {
		t.Errorf("-UserIds \"Microsoft Operator\" lacks the filing of %s: %+v", r.ID, ops.Records)
	}
}
