package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestUnknownVars(t *testing.T) {
	environ := map[string]string{
		"LOCKBOX_AUDIT_REPLICA":   "1",     // LOCKBOX_AUDIT_REPLICAS
		"LOCKBOX_REDIS_UR":        "redis", // LOCKBOX_REDIS_URL
		"LOCKBOX_POLICY_DRI":      "/etc",  // LOCKBOX_POLICY_DIR
		"LOCKBOX_NOTHING_LIKE_IT": "x",     // too far from any
		"LOCKBOX_X":               "x",
		// Known: Config's, lockboxctl's, the dev env file's, tests'.
		"LOCKBOX_AUDIT_REPLICAS": "1", "LOCKBOX_REDIS_URL": "redis://h:6379",
		"LOCKBOX_TOKEN": "t", "LOCKBOX_ADDR": "http://h", "LOCKBOX_CA_FILE": "ca.crt", "LOCKBOX_CONFIG_DIR": "d",
		"LOCKBOX_OPERATOR_TOKEN": "t", "LOCKBOX_LOCKBOX_ADMIN_TOKEN": "t",
		"LOCKBOX_TEST_REDIS_URL": "redis://h:6379", "LOCKBOX_TEST_SCREENSHOTS": "d",
		// Misspelt, in another case too.
		"lockbox_audit_replica": "1",
		// Not ours: outside the prefix and near no variable of Lockbox's.
		"PATH": "/bin", "lockbox_nothing_like_it": "1",
	}
	want := []UnknownVar{
		{"LOCKBOX_AUDIT_REPLICA", "LOCKBOX_AUDIT_REPLICAS"},
		{"LOCKBOX_NOTHING_LIKE_IT", ""},
		{"LOCKBOX_POLICY_DRI", "LOCKBOX_POLICY_DIR"},
		{"LOCKBOX_REDIS_UR", "LOCKBOX_REDIS_URL"},
		{"LOCKBOX_X", ""},
		{"lockbox_audit_replica", "LOCKBOX_AUDIT_REPLICAS"},
	}
	if got := UnknownVars(environ); !slices.Equal(got, want) {
		t.Errorf("UnknownVars:\n got %v\nwant %v", got, want)
	}
	if got, want := want[0].String(), "LOCKBOX_AUDIT_REPLICA is not a Lockbox variable and is ignored; did you mean LOCKBOX_AUDIT_REPLICAS?"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := UnknownVars(nil); got != nil {
		t.Errorf("UnknownVars(nil) = %v", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"abc", "abc", 0},
		{"REPLICA", "REPLICAS", 1}, {"DRI", "DIR", 2}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestOtherVarsComplete: every LOCKBOX_ variable the project's Go code
// names (lockboxctl's, the dev env file's tokens, tests') is one
// UnknownVars knows, so the warning never calls a real one a misspelling.
func TestOtherVarsComplete(t *testing.T) {
	name := regexp.MustCompile(`"(LOCKBOX_[A-Z0-9_]*[A-Z0-9])"`)
	found := 0
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || p == filepath.Join("..", "tools")) {
			// tools/ is another module, whose tests use made-up names.
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || p == filepath.Join("..", "config", "unknown_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			found++
			if u := UnknownVars(map[string]string{m[1]: "x"}); len(u) > 0 {
				t.Errorf("%s reads %s: add it to otherVars (or otherPrefixes)", p, m[1])
			}
		}
		return nil
	})
	if err != nil || found == 0 {
		t.Fatalf("walk: %v, %d names found", err, found)
	}
	// The names cli/ and cmd/lockbox/dev.go hold as constants.
	for _, v := range []string{"LOCKBOX_ADDR", "LOCKBOX_CA_FILE", "LOCKBOX_OPERATOR2_TOKEN"} {
		if !slices.Contains(otherVars, v) {
			t.Errorf("%s is not in otherVars", v)
		}
	}
}

// A Lockbox variable written in another case, or with its prefix
// misspelt, is ignored as any misspelling is (environment variables are
// case-sensitive), so it is warned of with the variable meant. A variable
// of another program's that merely shares a suffix with one of Lockbox's
// is not.
func TestUnknownVarsCaseAndPrefix(t *testing.T) {
	environ := map[string]string{
		"LOCKBOX_redis_url":      "redis://h:6379",
		"LOCKBOX_Audit_Replicas": "1",
		"lockbox_audit_replicas": "1",
		"Lockbox_Redis_Url":      "redis://h:6379",
		"LOCKBX_AUDIT_REPLICAS":  "1",
		"LOKCBOX_REDIS_URL":      "redis://h:6379",
		"LOCKBOX-REDIS-URL":      "redis://h:6379",
		// Not ours.
		"REDIS_URL": "redis://h:6379", "MYAPP_REDIS_URL": "redis://h:6379", "AUDIT_REPLICAS": "1",
		"PATH": "/bin", "lockbox": "x", "LOCKBOX": "x",
	}
	want := []UnknownVar{
		{"LOCKBOX-REDIS-URL", "LOCKBOX_REDIS_URL"},
		{"LOCKBOX_Audit_Replicas", "LOCKBOX_AUDIT_REPLICAS"},
		{"LOCKBOX_redis_url", "LOCKBOX_REDIS_URL"},
		{"LOCKBX_AUDIT_REPLICAS", "LOCKBOX_AUDIT_REPLICAS"},
		{"LOKCBOX_REDIS_URL", "LOCKBOX_REDIS_URL"},
		{"Lockbox_Redis_Url", "LOCKBOX_REDIS_URL"},
		{"lockbox_audit_replicas", "LOCKBOX_AUDIT_REPLICAS"},
	}
	if got := UnknownVars(environ); !slices.Equal(got, want) {
		t.Errorf("UnknownVars:\n got %v\nwant %v", got, want)
	}
}
