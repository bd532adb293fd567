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
// the binary does; "lockbox version" was not. A command is the leading
// lower-case words of an entry ("policy test" of "policy test DIR"), an
// entry being a line of the list indented by two spaces, up to its
// description's column.
func TestREADMENamesEveryCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("lockbox --help: exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ")
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	var commands []string
	for line := range strings.Lines(stdout.String()) {
		entry, ok := strings.CutPrefix(line, "  ")
		if !ok || strings.HasPrefix(entry, " ") {
			continue // not in the list, or a description's next line
		}
		entry, _, _ = strings.Cut(entry, "  ") // the description's column
		var cmd []string
		for _, w := range strings.Fields(entry) {
			if !word.MatchString(w) {
				break
			}
			cmd = append(cmd, w)
		}
		if len(cmd) == 0 {
			t.Fatalf("lockbox --help lists %q, which names no command", line)
		}
		commands = append(commands, strings.Join(cmd, " "))
	}
	if len(commands) < 6 {
		t.Fatalf("lockbox --help lists only %q", commands)
	}
	for _, c := range commands {
		// "lockbox dev" named in "lockbox dev token" counts; "lockbox
		// notify" in "lockbox notifyx" would not.
		if !regexp.MustCompile(`\blockbox ` + regexp.QuoteMeta(c) + `\b`).MatchString(readme) {
			t.Errorf("README.md does not name lockbox %s, which lockbox --help lists", c)
		}
	}
}
