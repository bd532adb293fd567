package cli

import (
	"fmt"
	"strings"
	"testing"
)

// TestSearchUnifiedAuditLogRefusesAnEmptyOperationOrUser: -Operations and
// -UserIds dropped an empty value ("a,,b", ",x", ","), where -ObjectIds
// and -IPAddresses refuse it: ",Get-Mailbox" searched Get-Mailbox, and ","
// searched every operation, as if the filter had not been given. Both are
// refused now as the other lists are, in one line and a pointer to the
// help, exit 2, before anything is sent.
func TestSearchUnifiedAuditLogRefusesAnEmptyOperationOrUser(t *testing.T) {
	for _, param := range []string{"-Operations", "-UserIds"} {
		for _, v := range []string{"a,,b", ",Get-Mailbox", "Microsoft Operator,", ",", ` , `, `"",x`} {
			args := []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-01", "-EndDate", "2026-05-02", param, v}
			t.Run(param+" "+v, func(t *testing.T) {
				res := run(t, args, nil, nil)
				want := fmt.Sprintf("lockboxctl: %s %q holds an empty value: leave it out rather than give it no value\n", param, v)
				if res.code != exitUsage || !strings.HasPrefix(res.stderr, want) || strings.Count(res.stderr, "\n") != 2 || len(res.calls) != 0 {
					t.Errorf("exit %d, %d calls, stderr %q\nwant exit %d, no call, %q and the pointer to the help", res.code, len(res.calls), res.stderr, exitUsage, want)
				}
			})
		}
	}
	// One value, quoted as PowerShell quotes an array's, still searches.
	res := run(t, []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-01", "-EndDate", "2026-05-02", "-UserIds", `"Microsoft Operator"`}, nil, nil)
	if len(res.calls) != 1 || !strings.Contains(res.calls[0].Query, "user=Microsoft+Operator") {
		t.Errorf("-UserIds \"Microsoft Operator\": exit %d, calls %+v\n%s", res.code, res.calls, res.stderr)
	}
}
