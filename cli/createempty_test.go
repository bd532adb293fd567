package cli

import (
	"strings"
	"testing"
)

// TestCreateRequestEmptyTenant: --tenant "$T" with T unset is refused
// (exit 2, nothing sent) by every command. For the list filters the
// message says to leave the flag out, since without it the list is not
// narrowed; create request can't be filed without a tenant, and told the
// user to leave out a flag it needs. It now says the flag is missing.
func TestCreateRequestEmptyTenant(t *testing.T) {
	r := run(t, []string{"create", "request", "--tenant", "", "--service", "exchange", "--service-request", "SR-1",
		"--reason", "r", "--duration", "1h"}, nil, nil)
	if r.code != exitUsage || !strings.Contains(r.stderr, "missing --tenant") || strings.Contains(r.stderr, "leave it out") {
		t.Errorf("exit %d, stderr %q: want exit 2 saying --tenant is missing", r.code, r.stderr)
	}
	if len(r.calls) != 0 {
		t.Errorf("calls were made: %v", r.calls)
	}
	// A filter still says to leave it out.
	r = run(t, []string{"get", "requests", "--tenant", ""}, nil, nil)
	if r.code != exitUsage || !strings.Contains(r.stderr, "leave it out") {
		t.Errorf("get requests --tenant \"\": exit %d, stderr %q", r.code, r.stderr)
	}
}
