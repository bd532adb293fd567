package main

import (
	"bytes"
	"strings"
	"testing"
)

// The banner is what a newcomer reads, and its tokens said nothing of
// ending: twelve hours on, a shell that sourced the env file the banner
// offers had every call refused "token expired", and only README (or a
// log line in dev's own terminal) said dev had written new ones. The
// banner says how long they last and where the new ones are.
func TestBannerSaysWhenTokensEnd(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{".lockbox-dev", "  tokens   .lockbox-dev/*.jwt  (operator, operator2, manager, admin, approver, auditor, lockbox-admin)\n" +
			"           last 12h; every 6h dev writes new ones, and the env file: source it again\n"},
		{"/tmp/my dev", "  tokens   /tmp/my dev/*.jwt  (operator, operator2, manager, admin, approver, auditor, lockbox-admin)\n" +
			"           last 12h; every 6h dev writes new ones, and the env file: source it again\n"},
	} {
		var out bytes.Buffer
		printWelcome(&out, tc.dir, "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082", "")
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("LOCKBOX_DEV_DIR=%q: banner lacks\n%s\nin:\n%s", tc.dir, tc.want, out.String())
		}
	}
}
