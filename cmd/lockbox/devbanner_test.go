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

// TestHelpNamesTheDemoTenants: what "lockbox --help" and "lockbox dev
// --help" say dev sets up is what it onboards. The command list said "demo
// tenant", one, where dev onboards contoso and fabrikam.
func TestHelpNamesTheDemoTenants(t *testing.T) {
	// The dev entry: its line and the indented lines that continue it.
	var devLine string
	inDev := false
	for line := range strings.Lines(usage) {
		switch {
		case strings.HasPrefix(line, "  dev ") && !strings.HasPrefix(line, "  dev token"):
			inDev = true
		case !strings.HasPrefix(line, "    "):
			inDev = false
		}
		if inDev {
			devLine += line
		}
	}
	if devLine == "" {
		t.Fatalf("lockbox --help lists no dev command:\n%s", usage)
	}
	if !strings.Contains(devLine, "demo tenants") {
		t.Errorf("lockbox --help: %q does not say demo tenants, of which dev onboards %d", devLine, len(demoTenants))
	}
	for _, tn := range demoTenants {
		if !strings.Contains(devLine, tn.ID) {
			t.Errorf("lockbox --help: %q does not name %s, which dev onboards", devLine, tn.ID)
		}
		if !strings.Contains(devHelp, tn.ID) {
			t.Errorf("lockbox dev --help does not name %s, which dev onboards", tn.ID)
		}
	}
}

// The banner's workflow spells its commands as README's walkthrough does
// ("create request", "approve"): it taught "request create" and "request
// approve", the earlier forms, so a newcomer met two ways of saying each.
func TestBannerSpellsCommandsAsREADME(t *testing.T) {
	var out bytes.Buffer
	printWelcome(&out, ".lockbox-dev", "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082", "")
	banner := out.String()
	for _, old := range []string{"lockboxctl request create", "lockboxctl request approve"} {
		if strings.Contains(banner, old) {
			t.Errorf("banner says %q, which README spells otherwise:\n%s", old, banner)
		}
	}
	for _, want := range []string{"lockboxctl create request --tenant contoso", "lockboxctl approve $ID"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
}
