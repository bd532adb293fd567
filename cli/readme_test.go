package cli

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
)

// TestREADMECommandsExist holds the command lines README.md lists for
// lockboxctl, its table of commands and its list of the earlier forms kept
// for scripts, to the commands lockboxctl has: every command and
// subcommand named exists, and every --flag is one that command takes.
// "a\|b" (or "a|b" outside a table) lists alternatives, each checked.
func TestREADMECommandsExist(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	root := e.rootCommand()

	var lines []string
	_, table, ok := strings.Cut(readme, "\n| command | does |\n|---|---|\n")
	if !ok {
		t.Fatal(`README.md has no table "| command | does |"`)
	}
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		first, _, _ := strings.Cut(strings.ReplaceAll(line[1:], `\|`, "\x00"), "|")
		var row []string
		for _, m := range codeSpan.FindAllStringSubmatch(first, -1) {
			span := strings.ReplaceAll(m[1], "\x00", "|")
			if strings.HasPrefix(span, "[") {
				// Options of the commands before it: "(both `[--comment C]`)".
				for i := range row {
					row[i] += " " + span
				}
				continue
			}
			row = append(row, span)
		}
		lines = append(lines, row...)
	}
	_, earlier, ok := strings.Cut(readme, "**Earlier forms.**")
	if !ok {
		t.Fatal(`README.md has no paragraph "**Earlier forms.**"`)
	}
	earlier, _, _ = strings.Cut(earlier, "\n\n")
	earlier, _, _ = strings.Cut(earlier, "A\nmistyped command") // the example of a typo that follows
	for _, m := range codeSpan.FindAllStringSubmatch(earlier, -1) {
		lines = append(lines, m[1])
	}
	if len(lines) < 20 {
		t.Fatalf("found only %d command lines in README.md: %q", len(lines), lines)
	}
	for _, l := range lines {
		for _, alt := range alternatives(strings.Fields(l)) {
			if err := checkCommandLine(root, alt); err != "" {
				t.Errorf("README.md's %q: %s", l, err)
			}
		}
	}
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// alternatives expands the words of a command line whose a|b words list
// alternatives into every line they make.
func alternatives(words []string) [][]string {
	out := [][]string{nil}
	for _, w := range words {
		var next [][]string
		for _, prefix := range out {
			for _, alt := range strings.Split(w, "|") {
				next = append(next, append(append([]string(nil), prefix...), alt))
			}
		}
		out = next
	}
	return out
}

// checkCommandLine reports what of words root lacks: the leading lower-case
// words name a command, each a subcommand of the one before while it has
// subcommands; every --flag after them (in brackets or not) is one the
// command takes. Upper-case placeholders, values and "..." are skipped.
func checkCommandLine(root *cobra.Command, words []string) string {
	cmd := root
	i := 0
	for ; i < len(words) && cmd.HasSubCommands(); i++ {
		w := words[i]
		if w == "" || !unicode.IsLower(rune(w[0])) {
			break
		}
		var found *cobra.Command
		for _, c := range cmd.Commands() {
			if c.Name() == w || c.HasAlias(w) {
				found = c
			}
		}
		if found == nil {
			return "lockboxctl " + strings.Join(words[:i+1], " ") + " is no command"
		}
		cmd = found
	}
	if cmd == root {
		return "names no command"
	}
	for _, w := range words[i:] {
		w = strings.Trim(w, "[]")
		name, ok := strings.CutPrefix(w, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if cmd.Flag(name) == nil {
			return cmd.CommandPath() + " has no flag --" + name
		}
	}
	return ""
}
