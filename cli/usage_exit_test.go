package cli

import (
	"strings"
	"testing"
)

// TestWrongCommandLineExitsTwo: an address lockboxctl can't use and a
// shell completion has no script for are wrong command lines, as the
// README says of exit 2: nothing is sent, and a script can tell them from
// a call that failed (exit 1). An address with a password in it is not
// echoed with the password.
func TestWrongCommandLineExitsTwo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"an address of another scheme", []string{"get", "requests", "--addr", "ftp://lockbox.example"}, nil, "ftp://lockbox.example"},
		{"an address with a query", []string{"get", "requests", "--addr", "https://lockbox.example/?x=1"}, nil, "query"},
		{"an address without a host", []string{"approve", "R1", "--addr", "https://"}, nil, "no host"},
		{"LOCKBOX_ADDR of another scheme", []string{"get", "requests"}, map[string]string{EnvAddr: "ftp://lockbox.example"}, EnvAddr},
		{"an address with a password", []string{"get", "requests", "--addr", "https://user:s3cret@lockbox.example"}, nil, "user information"},
		{"a shell completion has no script for", []string{"completion", "tcsh"}, nil, `unknown command "completion tcsh"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args, tc.env, nil)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("exit %d, stderr %q: want exit 2 naming %q", r.code, r.stderr, tc.wantErr)
			}
			if len(r.calls) != 0 {
				t.Errorf("calls were made: %v", r.calls)
			}
			if strings.Contains(r.stdout+r.stderr, "s3cret") {
				t.Errorf("the password is shown:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}
