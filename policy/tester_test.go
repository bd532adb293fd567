package policy_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/policy"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

func TestRunTestsDefaultPolicy(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := policy.RunTests(t.Context(), filepath.Join("..", "rego"), &out, false)
	if err != nil {
		t.Fatalf("RunTests: %v\n%s", err, out.String())
	}
	if passed == 0 || failed != 0 {
		t.Errorf("passed %d, failed %d\n%s", passed, failed, out.String())
	}
	last := lastLine(out.String())
	if want := regexp.MustCompile(`^\d+ passed, 0 failed$`); !want.MatchString(last) {
		t.Errorf("last line %q, want %q", last, want)
	}
}

func TestRunTestsVerboseListsPasses(t *testing.T) {
	var out bytes.Buffer
	if _, _, err := policy.RunTests(t.Context(), filepath.Join("..", "rego"), &out, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "test_read_allowed_when_grant_names_no_activities: PASS") {
		t.Errorf("verbose report does not list a passing test:\n%s", out.String())
	}
}

func TestRunTestsFailure(t *testing.T) {
	dir := defaultDir(t)
	writeFile(t, filepath.Join(dir, "lockbox", "authz", "extra_test.rego"), []byte(`package lockbox.authz_test

import data.lockbox.authz

test_expects_the_wrong_answer if {
	authz.decision.allow with input as {}
}

test_catalog_is_data_activities if {
	count(data.activities.exchange) > 0
}

test_errors if {
	1 / count([]) > 0
}
`))
	var out bytes.Buffer
	passed, failed, err := policy.RunTests(t.Context(), dir, &out, false)
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	// The two extra failures: a wrong expectation, and a test whose body
	// is undefined (a builtin error, as in opa test).
	if failed != 2 || passed == 0 {
		t.Errorf("passed %d, failed %d; want 2 failures\n%s", passed, failed, out.String())
	}
	if !strings.Contains(out.String(), "test_expects_the_wrong_answer: FAIL") {
		t.Errorf("report does not name the failing test:\n%s", out.String())
	}
	if last := lastLine(out.String()); !strings.HasSuffix(last, " passed, 2 failed") {
		t.Errorf("last line %q", last)
	}
}

func TestRunTestsRefuses(t *testing.T) {
	t.Run("no tests", func(t *testing.T) {
		dir := policyDir(t, "package lockbox.authz\n\ndecision := {\"allow\": false, \"reasons\": []}\n")
		var out bytes.Buffer
		if _, _, err := policy.RunTests(t.Context(), dir, &out, false); err == nil {
			t.Errorf("RunTests found nothing to run and reported no error:\n%s", out.String())
		}
	})
	t.Run("only skipped tests", func(t *testing.T) {
		// A todo_ test is found and skipped: "0 passed, 0 failed" from a
		// directory whose every test is one said as little about the
		// policy as no test at all, and exited 0.
		dir := defaultDir(t)
		if err := os.Remove(filepath.Join(dir, "lockbox", "authz", "authz_test.rego")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "lockbox", "authz", "later_test.rego"), []byte(`package lockbox.authz_test

todo_test_written_later if {
	false
}
`))
		var out bytes.Buffer
		passed, failed, err := policy.RunTests(t.Context(), dir, &out, false)
		if err == nil || !strings.Contains(err.Error(), "skipped") {
			t.Errorf("RunTests = %d passed, %d failed, %v; want an error saying every test was skipped\n%s", passed, failed, err, out.String())
		}
	})
	t.Run("policy the server would refuse", func(t *testing.T) {
		// Passes `opa test`, but strict compilation refuses the unused
		// variable, so the server would not start with it.
		dir := defaultDir(t)
		writeFile(t, filepath.Join(dir, "lockbox", "authz", "extra.rego"), []byte("package lockbox.authz\n\nx if {\n\ty := 1\n\tinput.a\n}\n"))
		var out bytes.Buffer
		_, _, err := policy.RunTests(t.Context(), dir, &out, false)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "extra.rego:4") {
			t.Errorf("RunTests = %v, want ErrInvalidPolicy naming extra.rego:4", err)
		}
	})
	t.Run("a test file adding to a rule the server serves", func(t *testing.T) {
		// The server skips *_test.rego files, so a rule one of them adds to
		// the policy (here a denial) is judged by the tests and never
		// served: every test passes, saying fabrikam is frozen, and the
		// server lets fabrikam's calls through.
		dir := defaultDir(t)
		writeFile(t, filepath.Join(dir, "lockbox", "authz", "frozen_test.rego"), []byte(`package lockbox.authz

denials contains "frozen" if input.call.tenant == "fabrikam"

test_fabrikam_frozen if {
	"frozen" in decision.reasons with input as {"call": {"tenant": "fabrikam"}}
}
`))
		e, _ := newEngine(t, policy.EngineConfig{Dir: dir})
		in := allowedInput()
		in.Call.Tenant, in.Call.Path, in.Grant.Tenant, in.Tenant.ID = "fabrikam", "/tenants/fabrikam/mailboxes", "fabrikam", "fabrikam"
		if d, err := e.Decide(t.Context(), in); err != nil || !d.Allow {
			t.Fatalf("the server's decision for fabrikam: %+v, %v; the case assumes it allows", d, err)
		}
		var out bytes.Buffer
		_, _, err := policy.RunTests(t.Context(), dir, &out, false)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "frozen_test.rego:3") {
			t.Errorf("RunTests = %v, want ErrInvalidPolicy naming frozen_test.rego:3\n%s", err, out.String())
		}
	})
	t.Run("a test file defining a rule the policy refers to", func(t *testing.T) {
		// The same, through a reference: the tests see contoso held, the
		// server an undefined data.lockbox.holds.tenants.
		dir := defaultDir(t)
		writeFile(t, filepath.Join(dir, "lockbox", "authz", "hold.rego"), []byte(`package lockbox.hold

import data.lockbox.holds

frozen if input.call.tenant in holds.tenants
`))
		writeFile(t, filepath.Join(dir, "lockbox", "holds_test.rego"), []byte(`package lockbox.holds

tenants := {"contoso"}

test_contoso_held if {
	data.lockbox.hold.frozen with input as {"call": {"tenant": "contoso"}}
}
`))
		var out bytes.Buffer
		_, _, err := policy.RunTests(t.Context(), dir, &out, false)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "holds_test.rego:3") {
			t.Errorf("RunTests = %v, want ErrInvalidPolicy naming holds_test.rego:3\n%s", err, out.String())
		}
	})
	t.Run("a test file defining a rule the policy selects by a computed key", func(t *testing.T) {
		// The same, through a key the input names: the policy reads
		// data.lockbox.holds[input.call.tenant], which selects a test
		// file's data.lockbox.holds.contoso as surely as a constant key
		// would. The tests see contoso held; the server holds no one.
		dir := defaultDir(t)
		writeFile(t, filepath.Join(dir, "lockbox", "authz", "hold.rego"), []byte(`package lockbox.hold

frozen if data.lockbox.holds[input.call.tenant]
`))
		writeFile(t, filepath.Join(dir, "lockbox", "holds_test.rego"), []byte(`package lockbox.holds

contoso := true
`))
		writeFile(t, filepath.Join(dir, "lockbox", "hold_test.rego"), []byte(`package lockbox.hold_test

test_contoso_held if {
	data.lockbox.hold.frozen with input as {"call": {"tenant": "contoso"}}
}
`))
		var out bytes.Buffer
		passed, failed, err := policy.RunTests(t.Context(), dir, &out, false)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "holds_test.rego:3") {
			t.Errorf("RunTests = %d passed, %d failed, %v; want ErrInvalidPolicy naming holds_test.rego:3\n%s", passed, failed, err, out.String())
		}
	})
	t.Run("a test file adding to the catalog", func(t *testing.T) {
		// OPA merges a package activities into data.activities beside
		// the catalog file's services: the tests would judge a catalog
		// with a service the server's has not.
		dir := defaultDir(t)
		writeFile(t, filepath.Join(dir, "activities", "fake_test.rego"), []byte(`package activities

fake := [{"activity": "Get-Fake", "method": "GET", "path": "/tenants/{tenant}/fake", "access": "read"}]

test_fake_is_a_service if {
	count(data.activities.fake) == 1
}
`))
		var out bytes.Buffer
		passed, failed, err := policy.RunTests(t.Context(), dir, &out, false)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "fake_test.rego:3") || !strings.Contains(err.Error(), "with data.activities as") {
			t.Errorf("RunTests = %d passed, %d failed, %v; want ErrInvalidPolicy naming fake_test.rego:3 and how to mock the catalog\n%s", passed, failed, err, out.String())
		}
	})
	t.Run("a test package beside a policy that reads its packages by a key", func(t *testing.T) {
		// A reference that ends above a test rule is no reason to refuse
		// it: data.lockbox[pkg] over the policy's packages meets the test
		// package too, as walk(data.lockbox) would.
		dir := defaultDir(t)
		writeFile(t, filepath.Join(dir, "meta", "packages.rego"), []byte(`package meta

names contains name if data.lockbox[name]
`))
		var out bytes.Buffer
		passed, failed, err := policy.RunTests(t.Context(), dir, &out, false)
		if err != nil || failed != 0 || passed == 0 {
			t.Errorf("RunTests = %d passed, %d failed, %v\n%s", passed, failed, err, out.String())
		}
	})
	t.Run("a bundle tarball beside the policy", func(t *testing.T) {
		// OPA's loader, which `opa test` and the tests here use, loads a
		// *.tar.gz in the directory as a bundle: its modules and data join
		// the policy the tests judge. The server loads no such file, so a
		// denial shipped in one passes its tests and never denies a call.
		dir := defaultDir(t)
		writeFile(t, filepath.Join(dir, "lockbox", "freeze.tar.gz"), bundleTarball(t, map[string]string{
			"/lockbox/authz/freeze.rego": "package lockbox.authz\n\ndenials contains \"frozen\" if input.call.tenant == \"fabrikam\"\n",
		}))
		writeFile(t, filepath.Join(dir, "lockbox", "authz", "freeze_test.rego"), []byte(`package lockbox.authz_test

import data.lockbox.authz

test_fabrikam_frozen if {
	"frozen" in authz.decision.reasons with input as {"call": {"tenant": "fabrikam"}}
}
`))
		var out bytes.Buffer
		passed, failed, err := policy.RunTests(t.Context(), dir, &out, false)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "freeze.tar.gz") {
			t.Errorf("RunTests = %d passed, %d failed, %v; want ErrInvalidPolicy naming freeze.tar.gz\n%s", passed, failed, err, out.String())
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		var out bytes.Buffer
		if _, _, err := policy.RunTests(t.Context(), filepath.Join(t.TempDir(), "nope"), &out, false); err == nil {
			t.Error("RunTests on a missing directory reported no error")
		}
	})
}

// "lockbox policy test" given a directory that does not exist, or a file
// (the policy's .rego rather than its directory), said "open .: no such
// file or directory" or "open .: not a directory": the "." is the root of
// the directory's fs.FS, which names nothing the user typed.
func TestRunTestsNamesAPathItCannotRead(t *testing.T) {
	file := filepath.Join(defaultDir(t), "lockbox", "authz", "authz.rego")
	for _, tc := range []struct {
		name, dir, want string
		is              error
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file or directory", fs.ErrNotExist},
		{"a file", file, "not a directory", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, _, err := policy.RunTests(t.Context(), tc.dir, &out, false)
			if err == nil {
				t.Fatalf("RunTests(%s) reported no error", tc.dir)
			}
			msg := err.Error()
			if strings.Contains(msg, "open .") || !strings.Contains(msg, tc.dir) || !strings.Contains(msg, tc.want) {
				t.Errorf("RunTests(%s) = %q; want it to name the path and say %q", tc.dir, msg, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("RunTests(%s) = %v; want it to wrap %v", tc.dir, err, tc.is)
			}
		})
	}
}

// TestRunTestsSamePackage: tests and their helpers may sit in the policy's
// own package, OPA's usual layout, as long as they add nothing to a rule
// the server serves.
func TestRunTestsSamePackage(t *testing.T) {
	dir := defaultDir(t)
	writeFile(t, filepath.Join(dir, "lockbox", "authz", "more_test.rego"), []byte(`package lockbox.authz

no_input := {}

test_empty_input_denied if {
	not decision.allow with input as no_input
}
`))
	var out bytes.Buffer
	passed, failed, err := policy.RunTests(t.Context(), dir, &out, true)
	if err != nil || failed != 0 || !strings.Contains(out.String(), "test_empty_input_denied: PASS") {
		t.Errorf("RunTests = %d passed, %d failed, %v\n%s", passed, failed, err, out.String())
	}
}

// TestRunTestsDirWithColon: OPA's loader reads "a.b:dir" as dir loaded
// under data.a.b. A policy directory whose name has a colon (a copy named
// for its version, "rego:v2", or for its time) is still the directory the
// tests run in: the one that was checked to load as the server loads it.
func TestRunTestsDirWithColon(t *testing.T) {
	for _, name := range []string{"rego:v2", "rego-2026-03-01T10:00:00Z", "rego:50%#?a b"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := os.CopyFS(dir, lockboxrego.FS); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "lockbox", "authz", "colon_test.rego"), []byte(`package lockbox.authz_test

test_in_the_named_directory if {
	false
}
`))
			var out bytes.Buffer
			passed, failed, err := policy.RunTests(t.Context(), dir, &out, false)
			if err != nil || failed != 1 || passed == 0 || !strings.Contains(out.String(), "test_in_the_named_directory: FAIL") {
				t.Errorf("RunTests(%s) = %d passed, %d failed, %v; want the directory's tests, one failing\n%s", dir, passed, failed, err, out.String())
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// bundleTarball returns an OPA bundle tarball (opa build's output) holding
// files, each name a path inside the bundle.
func bundleTarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
