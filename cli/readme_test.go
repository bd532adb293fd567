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
	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	root := e.rootCommand()
	lines := readmeCommandLines(t)
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

// TestREADMENamesEveryCommand is TestREADMECommandsExist the other way
// round: every command "lockboxctl --help" lists (but cobra's help) is
// named by README.md's table of commands, its list of earlier forms or,
// for the PowerShell verbs, its table of PowerShell names, where a reader
// looks up what lockboxctl can do. lockboxctl version was in none.
func TestREADMENamesEveryCommand(t *testing.T) {
	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	named := map[string]bool{}
	for _, l := range readmeCommandLines(t) {
		for _, alt := range alternatives(strings.Fields(l)) {
			named[strings.ToLower(alt[0])] = true
		}
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "\n| lockboxctl | means |\n|---|---|\n")
	if !ok {
		t.Fatal(`README.md has no table "| lockboxctl | means |"`)
	}
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "| `") {
			break
		}
		if f := strings.Fields(strings.TrimPrefix(line, "| `")); len(f) > 0 {
			named[strings.ToLower(strings.TrimSuffix(f[0], "`"))] = true
		}
	}
	listed := 0
	for _, c := range e.rootCommand().Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		listed++
		if !named[strings.ToLower(c.Name())] {
			t.Errorf("README.md's table of commands, earlier forms and PowerShell names do not name lockboxctl %s (%s)", c.Name(), c.Short)
		}
	}
	if listed < 15 {
		t.Fatalf("lockboxctl lists only %d commands", listed)
	}
}

// readmeCommandLines returns the lockboxctl command lines README.md's table
// of commands and its list of earlier forms give, without "lockboxctl":
// each `code` span of a row's first cell (a span of options, "[--comment
// C]", added to the commands before it), and each of the earlier forms.
func readmeCommandLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
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
	return lines
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
