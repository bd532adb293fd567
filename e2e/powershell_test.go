package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
)

// ids runs lockboxctl with -o id and returns the ids it printed.
func (w *world) ids(user string, args ...string) []string {
	w.t.Helper()
	code, out, errs := w.ctl(user, append(args, "-o", "id")...)
	if code != 0 {
		w.t.Fatalf("lockboxctl %s (as %s): exit %d: %s", strings.Join(args, " "), user, code, errs)
	}
	return strings.Fields(out)
}

// TestPowerShellVerbs walks Get-/Set-AccessToCustomerDataRequest with the
// cmdlets' parameter names, in the cases PowerShell users type them,
// against a running Lockbox.
func TestPowerShellVerbs(t *testing.T) {
	w := start(t)
	w.assignApprover()
	// Three requests a minute apart: one waiting for the manager, one for
	// the tenant, one denied.
	atManager := w.create("operator")
	w.clock.Advance(time.Minute)
	between := w.clock.Now().Add(-time.Second)
	var atTenant, denied grants.Request
	w.ok("operator2", &atTenant, "request", "create", "--tenant", "contoso", "--service", "exchange",
		"--service-request", "SR-1002", "--reason", "calendar", "--duration", "1h30m")
	w.ok("manager", &atTenant, "request", "approve", atTenant.ID)
	w.clock.Advance(time.Minute)
	w.ok("operator", &denied, "request", "create", "--tenant", "contoso", "--service", "sharepoint",
		"--service-request", "SR-1003", "--reason", "site", "--duration", "45m")
	w.ok("manager", nil, "request", "deny", denied.ID)

	// The short duration on the wire and on screen.
	if atTenant.Duration.String() != "1h30m" {
		t.Errorf("duration = %s", atTenant.Duration)
	}
	if code, out, _ := w.ctl("manager", "request", "show", atTenant.ID); code != 0 || !strings.Contains(out, "Duration:          1h30m") {
		t.Errorf("request show: %d\n%s", code, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string // ids, newest first
	}{
		{"Pending is both pending states", []string{"-ApprovalStatus", "Pending"}, []string{atTenant.ID, atManager.ID}},
		{"any case", []string{"-approvalstatus", "DENIED"}, []string{denied.ID}},
		{"a Lockbox state", []string{"-ApprovalStatus:pending_customer"}, []string{atTenant.ID}},
		{"nothing approved yet", []string{"-ApprovalStatus", "Approved"}, nil},
		{"created after", []string{"-CreatedAfter", between.Format(time.RFC3339)}, []string{denied.ID, atTenant.ID}},
		{"both", []string{"-createdafter", between.Format(time.RFC3339), "-ApprovalStatus", "pending"}, []string{atTenant.ID}},
		{"kebab-case", []string{"--approval-status", "pending", "--limit", "1"}, []string{atTenant.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := w.ids("manager", append([]string{"Get-AccessToCustomerDataRequest"}, tc.args...)...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids = %q, want %q", got, tc.want)
			}
		})
	}

	// The table says by when a pending request must be decided.
	code, out, _ := w.ctl("manager", "Get-AccessToCustomerDataRequest", "-ApprovalStatus", "Pending")
	if code != 0 || !strings.Contains(out, "EXPIRES/DECIDE BY") || !strings.Contains(out, atManager.DecideBy.UTC().Format("2006-01-02 15:04:05Z")) {
		t.Errorf("table: %d\n%s", code, out)
	}
	var one grants.Request
	w.ok("admin", &one, "Get-AccessToCustomerDataRequest", "-RequestId", atTenant.ID)
	if one.ID != atTenant.ID || one.State != grants.StatePendingCustomer {
		t.Errorf("-RequestId showed %+v", one)
	}

	// Set-: the tenant's approver approves, the requester cancels.
	var got grants.Request
	w.ok("approver", &got, "Set-AccessToCustomerDataRequest", "-RequestId", atTenant.ID, "-ApprovalDecision", "Approve", "-Comment", "go ahead")
	if got.State != grants.StateApproved {
		t.Fatalf("after Approve: %s", got.State)
	}
	w.ok("operator", &got, "set-accesstocustomerdatarequest", "-requestid", atManager.ID, "-approvaldecision", "cancel", "-comment", "fixed itself")
	if got.State != grants.StateCanceled {
		t.Fatalf("after Cancel: %s", got.State)
	}
	// Only the requester may cancel; the error names the trace id.
	var mine grants.Request
	w.ok("operator", &mine, "request", "create", "--tenant", "contoso", "--service", "onedrive",
		"--service-request", "SR-1004", "--reason", "files", "--duration", "1h")
	code, _, errs := w.ctl("manager", "Set-AccessToCustomerDataRequest", "-RequestId", mine.ID, "-ApprovalDecision", "Cancel")
	if code != 3 || !strings.Contains(errs, "trace id ") || strings.Contains(errs, "request id") { // 3: refused by the API
		t.Errorf("cancel by another: exit %d, %q", code, errs)
	}
	if s := w.state("operator", mine.ID); s != grants.StatePendingManager {
		t.Errorf("after another's Cancel: %s", s)
	}

	// The tenant admin reads its audit log without naming the tenant.
	recs := w.auditNoTenant("admin")
	var decision, cancel bool
	for _, r := range recs {
		if r.LockboxTenant != "contoso" {
			t.Errorf("record of %s", r.LockboxTenant)
		}
		decision = decision || r.Operation == "Set-AccessToCustomerDataRequest" && r.ApprovalDecision == record.ApprovalApprove && r.Comment == "go ahead"
		cancel = cancel || r.Operation == "Stop-AccessToCustomerDataRequest" && r.ObjectId == atManager.ID
	}
	if !decision || !cancel {
		t.Errorf("audit without --tenant lacks the decision (%v) or the cancel (%v) of %d records", decision, cancel, len(recs))
	}
	var v audit.Verification
	w.ok("admin", &v, "audit", "verify")
	if !v.OK || v.Tenant != "contoso" {
		t.Errorf("verify without --tenant: %+v", v)
	}
	// A chain is one tenant's: the provider's auditor must name it. A
	// manager may read no audit log at all, and is told that first.
	w.fails("auditor", "the tenant is required", "audit", "verify")
	w.fails("manager", "you may not read the audit log", "audit", "verify")

	// --addr as host:port.
	if code, _, errs := w.ctl("manager", "--addr", strings.TrimPrefix(w.addr, "http://"), "request", "list"); code != 0 {
		t.Errorf("--addr host:port: exit %d: %s", code, errs)
	}
}

// auditNoTenant searches the audit log as user without --tenant.
func (w *world) auditNoTenant(user string) []record.Record {
	w.t.Helper()
	var out struct{ Records []record.Record }
	w.ok(user, &out, "audit", "search")
	return out.Records
}
