package cli

import (
	"fmt"
	"strings"
	"testing"
)

// TestPowerShellRequestIdTakesOneId: -RequestId of Get- and
// Set-AccessToCustomerDataRequest was sent as typed, so "a,,b" (a list
// with a variable that was not set) or two ids ("$A,$B", as PowerShell
// writes an array) reached the API as one id and came back as its 400,
// exit 1, where Search-UnifiedAuditLog refuses the same list in one line,
// exit 2, before anything is sent. Microsoft's cmdlets take one request
// id; -RequestId now reads it as the other list parameters are read.
func TestPowerShellRequestIdTakesOneId(t *testing.T) {
	const other = "0190a1b2-0000-7000-8000-000000000002"
	verbs := map[string][]string{
		"Get-AccessToCustomerDataRequest": {"Get-AccessToCustomerDataRequest"},
		"Set-AccessToCustomerDataRequest": {"Set-AccessToCustomerDataRequest", "-ApprovalDecision", "Approve"},
	}
	for verb, base := range verbs {
		for v, want := range map[string]string{
			"a,,b":               `-RequestId "a,,b" holds an empty value: give one request id`,
			"," + reqID:          fmt.Sprintf(`-RequestId %q holds an empty value: give one request id`, ","+reqID),
			reqID + ",":          fmt.Sprintf(`-RequestId %q holds an empty value: give one request id`, reqID+","),
			",":                  `-RequestId "," holds an empty value: give one request id`,
			reqID + "," + other:  fmt.Sprintf("-RequestId names 2 request ids: %s takes one, so run it once for each", verb),
			reqID + ", " + other: fmt.Sprintf("-RequestId names 2 request ids: %s takes one, so run it once for each", verb),
		} {
			t.Run(verb+" "+v, func(t *testing.T) {
				res := run(t, append(append([]string(nil), base...), "-RequestId", v), nil, nil)
				if res.code != exitUsage || !strings.HasPrefix(res.stderr, "lockboxctl: "+want+"\n") || strings.Count(res.stderr, "\n") != 2 || len(res.calls) != 0 {
					t.Errorf("exit %d, %d calls, stderr %q\nwant exit %d, no call, %q and the pointer to the help", res.code, len(res.calls), res.stderr, exitUsage, want)
				}
			})
		}
		// One id, quoted or spaced as PowerShell leaves an array's
		// element, is the request.
		for _, v := range []string{reqID, " " + reqID + " ", `"` + reqID + `"`} {
			res := run(t, append(append([]string(nil), base...), "-RequestId", v), nil, nil)
			if res.code != 0 || len(res.calls) == 0 || res.calls[len(res.calls)-1].Path != "/v1/requests/"+reqID+map[bool]string{true: "/approve"}[verb[0] == 'S'] {
				t.Errorf("%s -RequestId %q: exit %d, calls %+v\n%s", verb, v, res.code, res.calls, res.stderr)
			}
		}
	}
}
