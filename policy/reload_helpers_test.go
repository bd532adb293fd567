package policy_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/policy"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

// The Reload and Watch tests drive the same change through an operator's
// SIGHUP and through the watcher, and hold both to the same metrics: what
// they share lives here, so that the two paths cannot drift apart in what
// a test checks.

// startWatch runs e's watcher, polling every interval, for the rest of the
// test; the test ends only once the watcher returned.
func startWatch(t *testing.T, e *policy.Engine, every time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		e.Watch(ctx, every)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// editableDefault returns an engine over a copy of the default policy
// directory, and the path and content of the copy's authz.rego, which the
// test edits.
func editableDefault(t *testing.T) (e *policy.Engine, authz string, good []byte) {
	t.Helper()
	dir := defaultDir(t)
	e, _ = newEngine(t, policy.EngineConfig{Dir: dir})
	authz = filepath.Join(dir, "lockbox", "authz", "authz.rego")
	good, err := os.ReadFile(authz)
	if err != nil {
		t.Fatal(err)
	}
	return e, authz, good
}

// reloads is lockbox_policy_reloads_total{result=result} of e.
func reloads(e *policy.Engine, result string) float64 {
	return testutil.ToFloat64(policy.ReloadsCollector(e, result))
}

// lastReloadOK is lockbox_policy_last_reload_successful of e.
func lastReloadOK(e *policy.Engine) float64 {
	return testutil.ToFloat64(policy.LastReloadCollector(e))
}

// wantNoReloadError fails the test, saying when, if e counted a failed
// reload or its gauge says the policy on disk is not the one deciding.
func wantNoReloadError(t *testing.T, e *policy.Engine, when string) {
	t.Helper()
	if reloads(e, "error") != 0 || lastReloadOK(e) != 1 {
		t.Errorf("%s: %v reload errors, last_reload_successful %v; want 0 and 1",
			when, reloads(e, "error"), lastReloadOK(e))
	}
}

// polls runs n polls of e's watcher, the first given what the poll before
// it saw, and returns what the last one saw.
func polls(e *policy.Engine, seen string, n int) string {
	for range n {
		seen = policy.WatchPoll(e, seen)
	}
	return seen
}

// reloadBy makes e look at its directory the way how names: "poll", n polls
// of the watcher from seen; "SIGHUP", one Reload, which must succeed. It
// returns what the watcher saw last.
func reloadBy(t *testing.T, e *policy.Engine, how string, n int, seen string) string {
	t.Helper()
	switch how {
	case "poll":
		seen = polls(e, seen, n)
	case "SIGHUP":
		if err := e.Reload(); err != nil {
			t.Errorf("Reload = %v", err)
		}
	default:
		t.Fatalf("no way %q to reload", how)
	}
	return seen
}

// defaultPayload is the default policy as a ConfigMap holds it: authz.rego
// and the catalog.
func defaultPayload(t *testing.T) map[string][]byte {
	t.Helper()
	authz, err := fs.ReadFile(lockboxrego.FS, "lockbox/authz/authz.rego")
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := fs.ReadFile(lockboxrego.FS, policy.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"authz.rego": authz, policy.CatalogPath: catalog}
}

// warnLogger logs warnings and errors to logs as JSON lines.
func warnLogger(logs *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// reasonsFor is the reasons e gives allowedInput.
func reasonsFor(t *testing.T, e *policy.Engine) []string {
	t.Helper()
	d, err := e.Decide(t.Context(), allowedInput())
	if err != nil {
		t.Fatal(err)
	}
	return d.Reasons
}

// swapMidWalk scripts a ConfigMap swap landing while a reading walks the
// directory: authz.rego and the catalog each get a second version, and
// since the walk reads activities/ before lockbox/, the first reading after
// NewEngine's (read 0) has the old catalog, then the swap, then the new
// policy: a directory that never existed.
func swapMidWalk(t *testing.T) map[string][][]byte {
	t.Helper()
	const name = "lockbox/authz/authz.rego"
	a, err := fs.ReadFile(lockboxrego.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := fs.ReadFile(lockboxrego.FS, policy.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	b := append(slices.Clone(a), "\n# second version\n"...)
	k2 := append(slices.Clone(k1), '\n')
	return map[string][][]byte{policy.CatalogPath: {k1, k1, k2}, name: {a, b}}
}

// scriptedEngine returns an engine over a policy directory whose files
// change as versions scripts (read 0 is NewEngine's), and the revision of
// the directory in its final state.
func scriptedEngine(t *testing.T, versions map[string][][]byte) (*policy.Engine, string) {
	t.Helper()
	final := fstest.MapFS{}
	for name, vs := range versions {
		final[name] = &fstest.MapFile{Data: vs[len(vs)-1]}
	}
	if _, ok := final[policy.CatalogPath]; !ok {
		catalog, err := fs.ReadFile(lockboxrego.FS, policy.CatalogPath)
		if err != nil {
			t.Fatal(err)
		}
		final[policy.CatalogPath] = &fstest.MapFile{Data: catalog}
	}
	want, _ := newEngine(t, policy.EngineConfig{FS: final})
	fsys := &scriptedFS{FS: lockboxrego.FS, versions: versions, reads: map[string]int{}}
	e, _ := newEngine(t, policy.EngineConfig{FS: fsys, Dir: "policies"})
	return e, want.Revision()
}

// churningEngine returns an engine over /etc/lockbox/policy, whose
// authz.rego is good and settled until the test sets the returned
// churningFS churning.
func churningEngine(t *testing.T, good []byte, logger *slog.Logger) (*policy.Engine, *churningFS) {
	t.Helper()
	fsys := &churningFS{FS: lockboxrego.FS, settled: good}
	e, _ := newEngine(t, policy.EngineConfig{FS: fsys, Dir: "/etc/lockbox/policy", Logger: logger})
	return e, fsys
}
