package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// listedCommands are the commands "lockbox --help" lists, each as its
// words ("policy test" of "policy test DIR"). A command is the leading
// lower-case words of an entry, an entry being a line of the list
// indented by two spaces, up to its description's column.
func listedCommands(t *testing.T) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("lockbox --help: exit %d: %s", code, stderr.String())
	}
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
	return commands
}

// TestUsageIsForHelpAndNoCommand: "lockbox" alone prints the usage on
// stderr and exits 2, a command line with nothing to run; a help flag or
// "help" prints it on stdout and exits 0. "lockbox -help", which every
// command takes for help, was an unknown command.
func TestUsageIsForHelpAndNoCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"--help"}, 0},
		{[]string{"-h"}, 0},
		{[]string{"-help"}, 0},
		{[]string{"help"}, 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, nil, &stdout, &stderr)
			shown, other, where := stdout.String(), stderr.String(), "stdout"
			if tc.code != 0 {
				shown, other, where = other, shown, "stderr"
			}
			if code != tc.code || shown != usage || other != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and the usage alone on %s", code, stdout.String(), stderr.String(), tc.code, where)
			}
		})
	}
}

// TestUnknownCommandNamesEveryCommand: the line a first word that is no
// command gets names every command "lockbox --help" lists, since it stands
// in for that list.
func TestUnknownCommandNamesEveryCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bogus"}, nil, &stdout, &stderr); code != 2 {
		t.Fatalf("lockbox bogus: exit %d, want 2: %s", code, stderr.String())
	}
	for _, c := range listedCommands(t) {
		first, _, _ := strings.Cut(c, " ")
		if !regexp.MustCompile(`[ :]` + regexp.QuoteMeta(first) + `[, ]`).MatchString(stderr.String()) {
			t.Errorf("%q does not name %s, which lockbox --help lists", stderr.String(), first)
		}
	}
}
