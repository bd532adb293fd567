package cli

import (
	"strings"
	"testing"
)

// TestIfMatchHelpNamesItsExitStatuses: the --if-match of "tenant settings
// set" and "tenant offboard" each end in one of two refusals, the
// condition failing (exit 3) or a server that sends no ETag to check it
// against (exit 1); "tenant settings set --help" named only the first,
// so a script's author learnt the second from the README alone.
func TestIfMatchHelpNamesItsExitStatuses(t *testing.T) {
	for _, args := range [][]string{{"tenant", "settings", "set", "--help"}, {"tenant", "offboard", "--help"}} {
		res := run(t, args, nil, nil)
		flat := strings.Join(strings.Fields(res.stdout), " ")
		if res.code != 0 || !strings.Contains(flat, "(exit 3)") || !strings.Contains(flat, "sends no ETag") || !strings.Contains(flat, "(exit 1)") {
			t.Errorf("%q: exit %d; want the --if-match help to name exit 3 and a server that sends no ETag (exit 1):\n%s", args, res.code, res.stdout)
		}
	}
}
