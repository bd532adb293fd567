package cli

import (
	"strings"
	"testing"
)

// TestArgumentNamingNothingIsAWrongCommandLine: a request id, tenant or
// user of "." or "..", or an empty one, can name nothing (the client
// refuses to put it in a path, where it would address another resource).
// Nothing is sent, so it is a wrong command line, exit 2, as the README
// says, with lockboxctl's words rather than the client package's: it
// exited 1 ("client: invalid path segment"), which a script reads as a
// call that failed.
func TestArgumentNamingNothingIsAWrongCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"approve", ".."},
		{"deny", "."},
		{"describe", "request", ".."},
		{"get", "requests", ".."},
		{"get", "activity", "."},
		{"request", "show", ".."},
		{"get", "tenants", ""},
		{"get", "tenants", ".."},
		{"describe", "tenant", "."},
		{"tenant", "show", ".."},
		{"get", "settings", ".."},
		{"tenant", "settings", "set", "..", "--lockbox", "on"},
		{"tenant", "update", ".", "--name", "x"},
		{"get", "approvers", "."},
		{"approver", "add", "contoso", ".."},
		{"approver", "remove", "..", "alice@contoso.com"},
		{"Get-AccessToCustomerDataRequest", "-RequestId", ".."},
		{"Set-AccessToCustomerDataRequest", "-RequestId", "..", "-ApprovalDecision", "Approve"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, args, nil, nil)
			if r.code != exitUsage {
				t.Errorf("exit %d, stderr %q: want exit 2", r.code, r.stderr)
			}
			if len(r.calls) != 0 {
				t.Errorf("calls were made: %v", r.calls)
			}
			if strings.Contains(r.stderr, "client:") {
				t.Errorf("stderr speaks of the client package: %q", r.stderr)
			}
		})
	}
}
