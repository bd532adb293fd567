package cli

import (
	"strings"
	"testing"
)

// With no token, lockboxctl says "run lockboxctl login", and a newcomer
// under lockbox dev does: it answered "missing --issuer", and the help
// names an identity provider's issuer, which lockbox dev has none of. The
// refusal now says what --issuer is and, as the no-token message does,
// that lockbox dev's tokens are its files.
func TestLoginWithoutIssuerNamesDevTokens(t *testing.T) {
	const want = "lockboxctl: missing --issuer, your identity provider's issuer URL (lockbox dev has none: use a token file it writes, e.g. --token-file .lockbox-dev/operator.jwt, or source .lockbox-dev/env)"
	for _, args := range [][]string{{"login"}, {"login", "--client-id", "lockboxctl"}, {"login", "--issuer", " "}} {
		r := run(t, args, nil, nil)
		first, _, _ := strings.Cut(r.stderr, "\n")
		if r.code != exitUsage || first != want || len(r.calls) != 0 {
			t.Errorf("%v: exit %d, %d calls, stderr:\n%s\nwant exit 2, no call, first line:\n%s", args, r.code, len(r.calls), r.stderr, want)
		}
	}
}
