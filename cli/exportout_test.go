package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportOutNamesTheUsersPath: audit export --out FILE writes to a
// temporary file beside FILE and renames it into place once complete.
// When that failed (FILE's directory missing, FILE a directory), the
// error named the temporary ".FILE.123.partial", a path the user never
// gave. It now names FILE, in one line, and leaves nothing behind.
func TestExportOutNamesTheUsersPath(t *testing.T) {
	dir := t.TempDir()
	isDir := filepath.Join(dir, "a-directory")
	if err := os.Mkdir(isDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"in a directory that does not exist": filepath.Join(dir, "missing", "audit.csv"),
		"a directory":                        isDir,
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, []string{"audit", "export", "--tenant", "contoso", "--out", out}, nil, nil)
			if r.code != exitError || !strings.Contains(r.stderr, "--out "+out+":") || strings.Contains(r.stderr, "partial") {
				t.Errorf("exit %d, stderr %q: want exit 1 naming --out %s, not the temporary file", r.code, r.stderr, out)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("the error takes %d lines: %q", n+1, r.stderr)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*partial")); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
