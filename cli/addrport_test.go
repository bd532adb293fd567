package cli

import (
	"strings"
	"testing"
)

// An address that is a port alone ("--addr 8080", LOCKBOX_ADDR=18480, as
// one gives curl or a browser's localhost) became http://8080, a host
// named 8080: lockboxctl called it "plain http to a server that is not
// loopback" and offered --insecure-http, which sends the bearer token to
// whatever "8080" resolves to. It is refused as a wrong command line
// naming the loopback address meant; ":8080" and host:port work as before.
func TestAddressThatIsAPortAlone(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // stderr's first line; "" for a call made
	}{
		{"--addr", []string{"get", "requests", "--addr", "8080"}, nil,
			`lockboxctl: "8080" is a port without a host: give host:port, e.g. 127.0.0.1:8080 (--addr, $LOCKBOX_ADDR)`},
		{"LOCKBOX_ADDR", []string{"get", "requests"}, map[string]string{EnvAddr: "18480"},
			`lockboxctl: "18480" is a port without a host: give host:port, e.g. 127.0.0.1:18480 (--addr, $LOCKBOX_ADDR)`},
		{"with --insecure-http", []string{"get", "requests", "--addr", " 8080 ", "--insecure-http"}, nil,
			`lockboxctl: "8080" is a port without a host: give host:port, e.g. 127.0.0.1:8080 (--addr, $LOCKBOX_ADDR)`},
		{"host:port", []string{"get", "requests"}, map[string]string{EnvAddr: "$HOSTPORT"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args, tc.env, nil)
			if tc.want == "" {
				if r.code != exitOK || len(r.calls) != 1 {
					t.Errorf("exit %d, %d calls, stderr %q: want the call made", r.code, len(r.calls), r.stderr)
				}
				return
			}
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.code != exitUsage || first != tc.want || len(r.calls) != 0 {
				t.Errorf("exit %d, %d calls, stderr:\n%s\nwant exit 2, no call, first line:\n%s", r.code, len(r.calls), r.stderr, tc.want)
			}
		})
	}
}
