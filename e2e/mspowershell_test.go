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
// decision (carrying its RequestId) and the engineer's filing, and the
// cmdlet's -RecordType, -ObjectIds, -IPAddresses and -FreeText.
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

	// The cmdlet's other filters, each returning exactly the records of
	// the range that pass it (and so fewer than the range holds). The
	// engineer's call through the proxy is the one operator action.
	// The operator action's ObjectId: the service and the canonical path.
	const mailboxes = "exchange/tenants/contoso/mailboxes"
	if status, code := w.get("operator", "/"+mailboxes); status != 200 {
		t.Fatalf("Get-Mailbox through the proxy: %d %s", status, code)
	}
	var all struct{ Records []record.Record }
	w.ok("admin", &all, "Search-UnifiedAuditLog", "-StartDate", day, "-EndDate", next)
	for _, c := range []struct {
		args []string
		keep func(record.Record) bool
	}{
		{[]string{"-RecordType", "DataCenterSecurityCmdlet"}, func(rec record.Record) bool {
			return rec.RecordType == record.RecordTypeDataCenterSecurityCmdlet && rec.ObjectId == mailboxes && rec.UserId == record.OperatorUserID
		}},
		{[]string{"-RecordType", "exchangeadmin"}, func(rec record.Record) bool { return rec.RecordType == record.RecordTypeExchangeAdmin }},
		{[]string{"-ObjectIds", r.ID}, func(rec record.Record) bool { return rec.ObjectId == r.ID }},
		{[]string{"-ObjectIds", "EXCHANGE/tenants/contoso/*"}, func(rec record.Record) bool { return rec.ObjectId == mailboxes }},
		{[]string{"-IPAddresses", "127.0.0.1"}, func(rec record.Record) bool { return rec.ClientIP == "127.0.0.1" }},
		{[]string{"-FreeText", "GO AHEAD"}, func(rec record.Record) bool { return rec.Id == dec.Id }},
	} {
		var want []string
		for _, rec := range all.Records {
			if c.keep(rec) {
				want = append(want, rec.Id)
			}
		}
		if len(want) == 0 || len(want) == len(all.Records) {
			t.Errorf("%q: %d of the range's %d records pass: it would not be shown to filter", c.args, len(want), len(all.Records))
			continue
		}
		var got struct{ Records []record.Record }
		w.ok("admin", &got, append([]string{"Search-UnifiedAuditLog", "-StartDate", day, "-EndDate", next}, c.args...)...)
		var ids []string
		for _, rec := range got.Records {
			ids = append(ids, rec.Id)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%q: records %q, want %q", c.args, ids, want)
		}
	}
	// A type Microsoft 365 has but Lockbox never writes finds nothing; a
	// value that is no type is refused.
	var none struct{ Records []record.Record }
	w.ok("admin", &none, "Search-UnifiedAuditLog", "-StartDate", day, "-EndDate", next, "-RecordType", "SharePoint")
	if len(none.Records) != 0 {
		t.Errorf("-RecordType SharePoint: %d records", len(none.Records))
	}
	w.fails("admin", `-RecordType "Mailbox" is not a record type`, "Search-UnifiedAuditLog", "-StartDate", day, "-EndDate", next, "-RecordType", "Mailbox")
}
