package main

import (
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
