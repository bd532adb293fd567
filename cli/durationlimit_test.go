package cli

import (
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestCreateRequestDurationLimit: a --duration the API would refuse is
// refused here, before any call, as a usage error naming the flag and the
// limit; the longest and the shortest windows the API takes are still
// sent.
func TestCreateRequestDurationLimit(t *testing.T) {
	if maxDuration != grants.MaxDuration || minDuration != grants.MinDuration {
		t.Fatalf("lockboxctl's limits %s and %s are not the API's %s and %s", minDuration, maxDuration, grants.MinDuration, grants.MaxDuration)
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
		{"1ns", `--duration "1ns" is less than 1m, the shortest a request may ask for`},
		{"1µs", `--duration "1µs" is less than 1m, the shortest a request may ask for`},
		{"59s", `--duration "59s" is less than 1m, the shortest a request may ask for`},
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
	for _, d := range []string{"4h", "1m"} {
		r := run(t, create(d), nil, nil)
		if r.code != 0 || len(r.calls) != 1 || !strings.Contains(r.calls[0].Body, `"duration":"`+d+`"`) {
			t.Errorf("--duration %s: exit %d, calls %v, stderr %q: want it sent", d, r.code, r.calls, r.stderr)
		}
	}
}
