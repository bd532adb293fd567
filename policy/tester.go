package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
)

// testTimeout bounds each Rego test, as `opa test` does by default.
const testTimeout = 5 * time.Second

// RunTests runs the Rego tests (rules named test_*, usually in *_test.rego
// files) of the policy directory dir, writes OPA's report to w, and ends it
// with a line "N passed, M failed". verbose lists passing tests too.
//
// dir is loaded the way `opa test dir` loads it: every .rego file, tests
// included, and every data file at the path of its directory, so
// activities/data.json is data.activities. The tests run as `opa test` runs
// them, so both give the same results; in particular a builtin error makes
// an expression undefined, where the server makes it an error that denies
// the call. Before the tests, dir must load as the server loads it (strict
// compilation, a valid catalog, a decision rule; the error says which file
// and line), so that passing here means the server will serve it.
//
// err is non-nil when the tests could not run, or none did: none were
// found, or every one found is skipped (todo_), which proves as little
// about the policy as no test at all. A failed test is counted, not an
// error. A caller exits non-zero on err != nil or
// failed > 0.
func RunTests(ctx context.Context, dir string, w io.Writer, verbose bool) (passed, failed int, err error) {
	// os.DirFS reports a directory it can't open by its own root, ".",
	// which names nothing the user typed: name the path instead.
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("policy: %w", err)
	}
	if !fi.IsDir() {
		return 0, 0, fmt.Errorf("policy: %s: not a directory", dir)
	}
	files, err := readPolicyFiles(os.DirFS(dir))
	if err != nil {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, err)
	}
	if _, err := buildBundle(ctx, files, dir, time.Now()); err != nil {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, err)
	}

	arg, err := loaderPath(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, err)
	}
	modules, store, err := tester.LoadWithParserOptions([]string{arg}, skipHidden, ast.ParserOptions{
		RegoVersion:       ast.RegoV1,
		ProcessAnnotation: true,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, err)
	}
	if err := checkTestModules(modules); err != nil {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, err)
	}
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, err)
	}
	defer store.Abort(ctx, txn)

	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn)).
		WithEnablePrintStatements(true).
		WithUseTypeCheckAnnotations(true)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		EnableTracing(true). // for the failing line in the report
		StackTraces(true).
		SetTimeout(testTimeout)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, err)
	}

	// Count while passing each result on to OPA's reporter.
	results := make(chan *tester.Result)
	done := make(chan error, 1)
	go func() {
		done <- tester.PrettyReporter{Output: w, Verbose: verbose, FailureLine: true}.Report(results)
	}()
	found := 0
	for r := range ch {
		found++
		p, f := count(r)
		passed += p
		failed += f
		results <- r
	}
	close(results)
	if err := <-done; err != nil {
		return passed, failed, fmt.Errorf("policy: report: %w", err)
	}
	if _, err := fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed); err != nil {
		return passed, failed, err
	}
	if found == 0 {
		return 0, 0, fmt.Errorf("policy: %s: %w", dir, errNoTests)
	}
	if passed+failed == 0 {
		return 0, 0, fmt.Errorf("policy: %s: %w: the %d found are all skipped (todo_)", dir, errNoTestRan, found)
	}
	return passed, failed, nil
}

var (
	errNoTests   = errors.New("no Rego tests found (rules named test_*)")
	errNoTestRan = errors.New("no Rego test ran")
)

// checkTestModules refuses a test file (*_test.rego) that defines a rule the
// server's modules also define, or that they refer to. The server never
// loads test files, so such a rule is part of the policy the tests judge and
// not of the policy served: a denial a test file adds to the policy's rules
// passes its tests and never denies a call. It is the same reason the server
// refuses data files other than the catalog.
//
// A reference selects a rule when its path, read term by term, could be
// the rule's: each constant term equal to the rule's, a variable in place of
// any. So data.lockbox.holds[input.call.tenant] selects a test rule
// data.lockbox.holds.contoso, which the tests would see held and the server
// never holds, and data.activities[input.call.service] a test rule of a
// package activities, a catalog entry the server never has. A reference
// that ends above a test rule (walk(data.lockbox), data.lockbox[pkg]) is
// not refused: it would refuse a test package beside the policy, the usual
// layout.
func checkTestModules(modules map[string]*ast.Module) error {
	served := make(map[string]*ast.Module)
	var tests []string
	for name, m := range modules {
		if strings.HasSuffix(name, "_test.rego") {
			tests = append(tests, name)
		} else {
			served[name] = m
		}
	}
	// Compiled, so that every reference is resolved to its data path
	// (an imported package's rule, a rule of the same package). The
	// server's modules compile: buildBundle compiled them already.
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(served); c.Failed() {
		return fmt.Errorf("%w: %w", ErrInvalidPolicy, c.Errors)
	}
	var defined, used []ast.Ref
	for _, m := range c.Modules {
		for _, r := range m.Rules {
			defined = append(defined, r.Path())
		}
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if r.HasPrefix(ast.DefaultRootRef) {
				used = append(used, r)
			}
			return false
		})
	}
	slices.Sort(tests)
	for _, name := range tests {
		for _, r := range modules[name].Rules {
			p := r.Path()
			if p.HasPrefix(catalogRef) {
				return fmt.Errorf("%w: %s: a test file adds %s to data.activities, which the server loads from %s alone; mock the catalog with `with data.activities as {...}`", ErrInvalidPolicy, r.Location, p, CatalogPath)
			}
			for _, d := range defined {
				if p.HasPrefix(d) || d.HasPrefix(p) {
					return fmt.Errorf("%w: %s: a test file adds to %s, which the server serves without it (it loads no *_test.rego file); move the rule to a file the server loads, or to a test package", ErrInvalidPolicy, r.Location, p)
				}
			}
			for _, u := range used {
				if selects(u, p) {
					return fmt.Errorf("%w: %s: a test file defines %s, which the policy refers to and the server never loads (it loads no *_test.rego file); move the rule to a file the server loads", ErrInvalidPolicy, r.Location, p)
				}
			}
		}
	}
	return nil
}

// selects reports whether the reference u can reach the rule at path p:
// at each of p's terms, u has the same constant or a term that is not one
// (a variable, a call), which evaluation may bind to p's.
func selects(u, p ast.Ref) bool {
	if len(u) < len(p) {
		return false
	}
	for i, t := range p {
		if u[i].IsGround() && !u[i].Equal(t) {
			return false
		}
	}
	return true
}

// count counts r the way OPA's reporter does: a test with test cases counts
// each case; an error counts as a failure; a skipped (todo_) test counts as
// neither.
func count(r *tester.Result) (passed, failed int) {
	switch {
	case r.Skip:
		return 0, 0
	case r.Error != nil:
		return 0, 1
	case len(r.SubResults) > 0:
		for _, sr := range r.SubResults.Iter {
			if len(sr.SubResults) == 0 {
				if sr.Fail {
					failed++
				} else {
					passed++
				}
			}
		}
		return passed, failed
	case r.Fail:
		return 0, 1
	default:
		return 1, 0
	}
}

// loaderPath returns dir as OPA's loader must be given it to load dir
// itself. The loader reads "a.b:path" as path loaded under data.a.b, so a
// directory whose name has a colon ("rego:v2", a time) would have had its
// tests run in another directory, or in none, after dir itself was checked.
// A file URL is taken as a path whatever it holds; other directories are
// passed as they are, so the report names their files as the caller did.
func loaderPath(dir string) (string, error) {
	if !strings.Contains(dir, ":") {
		return dir, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume; the loader strips the slash again
	}
	return (&url.URL{Scheme: "file", Path: p}).String(), nil
}

// skipHidden keeps files and directories whose names start with "." out of
// the tests, as the server keeps them out of the policy (a ConfigMap
// volume's "..data" directory).
func skipHidden(_ string, info fs.FileInfo, depth int) bool {
	return depth > 0 && strings.HasPrefix(info.Name(), ".")
}
