package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMENamesEveryCommand: every command "lockbox --help" lists is
// named in README.md as "lockbox <command>", where readers look up what
// the binary does; "lockbox version" was not.
func TestREADMENamesEveryCommand(t *testing.T) {
	commands := listedCommands(t)
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ")
	for _, c := range commands {
		// "lockbox dev" named in "lockbox dev token" counts; "lockbox
		// notify" in "lockbox notifyx" would not.
		if !regexp.MustCompile(`\blockbox ` + regexp.QuoteMeta(c) + `\b`).MatchString(readme) {
			t.Errorf("README.md does not name lockbox %s, which lockbox --help lists", c)
		}
	}
}

// TestDevHelpNamesItsSettings: each variable whose row in README.md's
// table of settings says what it does in "lockbox dev" is named by
// "lockbox dev --help", where a developer looks up what dev does with
// their environment. The help named the Redis and address variables and
// LOCKBOX_DEV_DIR, not the ones dev sets in their place (LOCKBOX_SIEM_SINK,
// LOCKBOX_NOTIFY_MANAGER_ADDRESSES), ignores (LOCKBOX_SHUTDOWN_DELAY) or
// depends on (LOCKBOX_OIDC_ISSUER).
func TestDevHelpNamesItsSettings(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"dev", "--help"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("lockbox dev --help: exit %d: %s", code, stderr.String())
	}
	help := strings.Join(strings.Fields(stdout.String()), " ")
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(LOCKBOX_[A-Z0-9_]+)` \\|.*`lockbox dev`.*$")
	rows := row.FindAllStringSubmatch(string(b), -1)
	if len(rows) < 5 {
		t.Fatalf("README.md's table of settings has only %d rows naming lockbox dev", len(rows))
	}
	for _, r := range rows {
		if !regexp.MustCompile(`\b` + r[1] + `\b`).MatchString(help) {
			t.Errorf("lockbox dev --help does not name %s, whose row in README.md says what lockbox dev does with it", r[1])
		}
	}
}
