package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpNeedsNoEnvironment: every command's --help (and -h) prints its
// usage, exit 0, whatever lockboxctl's variables say: a variable a command
// can't use is reported when the command runs, not in place of the help
// that says how to run it ("lockbox dev token --help" failed so). The
// commands are all of lockboxctl's, walked from its root, each run with
// every variable bad at once; each of those values is shown to be refused
// by a command that uses it.
func TestHelpNeedsNoEnvironment(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := []map[string]string{
		{EnvAddr: "ftp://lockbox.example"},
		{EnvInsecureHTTP: "banana"},
		{EnvToken: "Bearer abc"},
		{EnvCAFile: filepath.Join(t.TempDir(), "missing.pem")},
		{EnvClientCertFile: filepath.Join(t.TempDir(), "missing.pem")},
		{EnvToken: "", EnvConfigDir: notDir},
	}
	allBad := map[string]string{}
	for _, env := range bad {
		if r := run(t, []string{"get", "requests"}, env, nil); r.code == exitOK || len(r.calls) > 0 {
			t.Fatalf("get requests with %v: exit %d, %d calls; want it refused before any call", env, r.code, len(r.calls))
		}
		for k, v := range env {
			if v != "" { // unset only to reach the stored token
				allBad[k] = v
			}
		}
	}

	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	var commands []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		commands = append(commands, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(e.rootCommand())
	if len(commands) < 40 {
		t.Fatalf("walked only %d commands", len(commands))
	}
	for _, c := range commands {
		words := strings.Fields(commandWords(c))
		for _, help := range []string{"--help", "-h"} {
			args := append(append([]string(nil), words...), help)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := Run(context.Background(), args, func(k string) string { return allBad[k] }, &stdout, &stderr)
				if code != exitOK || !strings.Contains(stdout.String(), "Usage:\n  "+c.CommandPath()) || stderr.Len() > 0 {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and the usage of %s", code, stdout.String(), stderr.String(), c.CommandPath())
				}
			})
		}
	}
}

// TestHelpNamesREADMEVariables: the variables README.md's Configuration
// says a lockboxctl command reads are named by that command's --help, in
// a paragraph that starts with the command ("`lockboxctl` reads ...",
// "`lockboxctl login` keeps tokens in ..."), where each command it names
// is held to each variable it names. "lockboxctl login --help" and
// "lockboxctl logout --help" did not name LOCKBOX_CONFIG_DIR.
func TestHelpNamesREADMEVariables(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no section ## Configuration")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	command := regexp.MustCompile("`(lockboxctl(?: [a-z-]+)*)`")
	variable := regexp.MustCompile(`\bLOCKBOX_[A-Z0-9_]+\b`)
	held := 0
	for _, para := range strings.Split(section, "\n\n") {
		if !strings.HasPrefix(para, "`lockboxctl") {
			continue
		}
		vars := variable.FindAllString(para, -1)
		for _, m := range command.FindAllStringSubmatch(para, -1) {
			args := append(strings.Fields(strings.TrimPrefix(m[1], "lockboxctl")), "--help")
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), args, nil, &stdout, &stderr); code != exitOK {
				t.Fatalf("%s --help: exit %d: %s", m[1], code, stderr.String())
			}
			for _, v := range vars {
				held++
				if !strings.Contains(stdout.String(), "$"+v) {
					t.Errorf("%s --help does not name $%s, which README.md says it reads:\n%s", m[1], v, stdout.String())
				}
			}
		}
	}
	if held < 8 {
		t.Fatalf("README.md's Configuration holds only %d variables of lockboxctl's commands", held)
	}
}
