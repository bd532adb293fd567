package cli

import (
	"strings"
	"testing"
)

// TestAddressEndingInV1: lockbox dev prints the API as
// "http://127.0.0.1:8080/v1", and an address copied from there doubles
// the /v1 lockboxctl adds itself. Every call then got the API's 404
// not_found "no such route", which lockboxctl reported as exit 3: "what
// you named does not exist", so a script took the request for gone, and
// nothing said what to fix. Such a refusal now exits 1, naming the
// address to give instead.
func TestAddressEndingInV1(t *testing.T) {
	route := reply{404, `{"error":{"code":"not_found","message":"no such route"}}`}
	for _, addr := range []string{"$ADDR/v1", "$ADDR/v1/", "$HOSTPORT/v1"} {
		t.Run(addr, func(t *testing.T) {
			r := run(t, []string{"describe", "request", reqID, "--addr", addr}, nil, map[string]reply{
				"GET /v1/v1/requests/" + reqID: route,
			})
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if r.code != exitError || len(lines) != 2 || lines[0] != "lockboxctl: no such route (not_found, HTTP 404)" ||
				!strings.HasPrefix(lines[1], "lockboxctl: the API's paths start with /v1, which lockboxctl adds itself: give the address without it, http://127.0.0.1:") ||
				!strings.HasSuffix(lines[1], " (--addr, $LOCKBOX_ADDR)") || strings.Contains(lines[1], "/v1 (") {
				t.Errorf("exit %d, stderr %q: want exit 1, the API's refusal and the address without /v1", r.code, r.stderr)
			}
		})
	}
	// The API's own not_found for what a command named is still exit 3.
	r := run(t, []string{"describe", "request", reqID}, nil, map[string]reply{
		"GET /v1/requests/" + reqID: {404, `{"error":{"code":"not_found","message":"not found"}}`},
	})
	if r.code != exitRefused || strings.Contains(r.stderr, "/v1") {
		t.Errorf("a request that does not exist: exit %d, stderr %q: want exit 3 without a word of /v1", r.code, r.stderr)
	}
}
