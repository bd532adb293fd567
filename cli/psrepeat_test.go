package cli

import (
	"strings"
	"testing"
)

// TestPowerShellVerbsRefuseAParameterGivenTwice: the flag package keeps a
// repeated parameter's last value, so "-Operations a -Operations b"
// searched b alone while its user read it as a search for both, and an
// auditor missed a's records. PowerShell refuses a parameter given twice;
// so does lockboxctl, in one line, exit 2, before anything is sent,
// whatever the second one's spelling (case, an alias, -Name:value).
func TestPowerShellVerbsRefuseAParameterGivenTwice(t *testing.T) {
	search := []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-01", "-EndDate", "2026-05-02"}
	reqID := "01a24c55-0000-7000-8000-000000000001"
	for _, tt := range []struct {
		args []string
		name string // as the line names it
	}{
		{append(search, "-Operations", "Get-Mailbox", "-Operations", "Set-Mailbox"), "-Operations"},
		{append(search, "-UserIds", "a", "-userids:b"), "-UserIds"},
		{append(search, "-StartDate", "2026-04-01"), "-StartDate"},
		{append(search, "-o", "json", "--output", "csv"), "--output"},
		{[]string{"Get-AccessToCustomerDataRequest", "-RequestId", reqID, "--request-id", reqID}, "--request-id"},
		{[]string{"Get-AccessToCustomerDataRequest", "-ApprovalStatus", "Pending", "-ApprovalStatus", "Approved"}, "-ApprovalStatus"},
		{[]string{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalDecision", "Approve", "-ApprovalDecision", "Deny"}, "-ApprovalDecision"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := run(t, tt.args, nil, nil)
			want := "lockboxctl: " + tt.name + " is given more than once"
			if res.code != exitUsage || !strings.HasPrefix(res.stderr, want) || strings.Count(res.stderr, "\n") != 2 || len(res.calls) != 0 {
				t.Errorf("exit %d, %d calls, stderr %q\nwant exit %d, no call, %q... and the pointer to the help", res.code, len(res.calls), res.stderr, exitUsage, want)
			}
		})
	}
	// A value that looks like a parameter is a value, not a repeat.
	res := run(t, []string{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalDecision", "Deny", "-Comment", "-ApprovalDecision"}, nil, nil)
	if strings.Contains(res.stderr, "more than once") {
		t.Errorf("-Comment -ApprovalDecision taken for a repeat: %q", res.stderr)
	}
}
