package cli

import (
	"strings"
	"testing"
)

// TestEmptyTokenFileIsAWrongCommandLine: --token-file "$F" with F unset
// fell back to $LOCKBOX_TOKEN or the token lockboxctl login stored, and so
// acted as whoever those name (a decision made as another user than the
// script meant). An empty --token-file is refused as an empty filter is:
// exit 2, nothing sent.
func TestEmptyTokenFileIsAWrongCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"get", "requests", "--token-file", ""},
		{"--token-file=", "approve", reqID},
		{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalDecision", "Approve", "--token-file", ""},
		{"Get-AccessToCustomerDataRequest", "-token-file", ""},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, args, nil, nil) // LOCKBOX_TOKEN is set
			if r.code != exitUsage || !strings.Contains(r.stderr, "--token-file") {
				t.Errorf("exit %d, stderr %q: want exit 2 naming --token-file", r.code, r.stderr)
			}
			if len(r.calls) != 0 {
				t.Errorf("calls were made with %v: %v", r.auth, r.calls)
			}
		})
	}
}
