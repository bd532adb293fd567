package cli

import (
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestCreateRequestDurationLimit: a --duration the API would refuse is
// refused here, before any call, as a usage error naming the flag and the
// limit; the longest window the API takes is still sent.
func TestCreateRequestDurationLimit(t *testing.T) {
	if maxDuration != grants.MaxDuration {
		t.Fatalf("lockboxctl's limit %s is not the API's %s", maxDuration, grants.MaxDuration)
	}
	create := func(d string) []string {
		return []string{"request", "create", "--tenant", "contoso", "--service", "exchange",
			"--service-request", "SR-1", "--reason", "r", "--duration", d, "-o", "id"}
	}
	for _, tc := range []struct{ dur, want string }{
		{"5h", `--duration "5h" is more than 4h, the longest a request may ask for`},
		{"4h0m1s", `--duration "4h0m1s" is more than 4h, the longest a request may ask for`},
		{"0", `--duration "0" must be a positive duration`},
		{"0s", `--duration "0s" must be a positive duration`},
		{"-1h", `--duration "-1h" must be a positive duration`},
		{"soon", `--duration "soon" must be a positive duration`},
	} {
		r := run(t, create(tc.dur), nil, nil)
		if r.code != exitUsage || len(r.calls) != 0 {
			t.Errorf("--duration %s: exit %d, calls %v, stderr %q: want exit %d and no call", tc.dur, r.code, r.calls, r.stderr, exitUsage)
			continue
		}
		first, _, _ := strings.Cut(r.stderr, "\n")
		if !strings.HasPrefix(first, "lockboxctl: "+tc.want) {
			t.Errorf("--duration %s: stderr %q, want its first line to be %q", tc.dur, r.stderr, tc.want)
		}
	}
	r := run(t, create("4h"), nil, nil)
	if r.code != 0 || len(r.calls) != 1 || !strings.Contains(r.calls[0].Body, `"duration":"4h"`) {
		t.Errorf("--duration 4h: exit %d, calls %v, stderr %q: want it sent", r.code, r.calls, r.stderr)
	}
}
