package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyTestHelpWord: "lockbox policy test help" ran the Rego tests of
// a directory named help (or failed to find one), where every other
// command shows its help. "help", -h and --help in the directory's place
// now show the help, which says how to reach such a directory: ./help,
// or after "--". Here the working directory has one, holding the real
// policy, so running it instead of showing the help is visible.
func TestPolicyTestHelpWord(t *testing.T) {
	abs, err := filepath.Abs("../../rego")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "help"), os.DirFS(abs)); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)

	for _, args := range [][]string{
		{"help"}, {"-h"}, {"--help"}, {"-help"}, {"-v", "help"}, {"help", "-v"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"policy", "test"}, args...), map[string]string{}, &out, &errb)
			if code != 0 || out.String() != policyTestHelp || errb.Len() != 0 {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s\nwant exit 0 and the help alone", code, out.String(), errb.String())
			}
		})
	}
	if !strings.Contains(policyTestHelp, "./help") {
		t.Errorf("the help doesn't say how to reach a directory named help:\n%s", policyTestHelp)
	}

	for _, args := range [][]string{{"./help"}, {"--", "help"}, {"-v", "--", "help"}, {"./help", "-v"}} {
		t.Run("the directory "+strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"policy", "test"}, args...), map[string]string{}, &out, &errb)
			if code != 0 || !strings.Contains(out.String(), "0 failed") || strings.Contains(out.String(), "usage:") {
				t.Errorf("exit %d, want the tests of ./help run\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
		})
	}
}
