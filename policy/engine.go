package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/prometheus/client_golang/prometheus"

	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

// Errors Decide returns, each wrapped with details. A caller denies the call
// on any error, whichever it is; the kinds only tell the log and the metrics
// apart.
var (
	// ErrUndefined: the policy defines no decision for this input.
	ErrUndefined = errors.New("policy decision undefined")
	// ErrBadDecision: the decision is not exactly
	// {"allow": bool, "reasons": [string, ...]}.
	ErrBadDecision = errors.New("malformed policy decision")
	// ErrEvaluation: evaluation failed: a builtin error (they are all fatal),
	// a conflict between rules, a panic, or the context ending. In the last
	// case the error also wraps the context's error, so
	// errors.Is(err, context.DeadlineExceeded) tells a slow policy.
	ErrEvaluation = errors.New("policy evaluation failed")
	// ErrInvalidInput: the input can't be evaluated (Input.Now is not RFC
	// 3339).
	ErrInvalidInput = errors.New("invalid policy input")
	// ErrNotReady: no policy is loaded (an Engine not made by NewEngine,
	// whose Snapshot is nil).
	ErrNotReady = errors.New("no policy loaded")
)

// Defaults for EngineConfig and Watch.
const (
	DefaultEvalTimeout   = 250 * time.Millisecond
	DefaultWatchInterval = 2 * time.Second
)

// unsettledPolls is how many polls in a row the watcher lets a directory
// change between its two readings before it reports that no version of it
// can be loaded: ten seconds at the default LOCKBOX_POLICY_RELOAD_INTERVAL,
// far longer than a deploy takes to write a few files or the kubelet to
// swap a ConfigMap.
const unsettledPolls = 10

// EngineConfig configures NewEngine. The zero value serves the embedded
// default policy.
type EngineConfig struct {
	// FS is the policy directory: *.rego files and activities/data.json, as
	// in rego/. Nil means os.DirFS(Dir), or the embedded default (rego.FS)
	// when Dir is empty too.
	FS fs.FS
	// Dir is the policy directory on disk (LOCKBOX_POLICY_DIR). It names
	// files in error messages, and Watch polls only when it is set. Empty
	// means the embedded default, which never changes.
	Dir string
	// Now is the clock for a call whose Input.Now is empty, and for load
	// times. Nil means time.Now.
	Now func() time.Time
	// Logger receives load and reload events. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the engine's metrics. Nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// EvalTimeout bounds one evaluation, within the caller's own deadline.
	// Zero means DefaultEvalTimeout.
	EvalTimeout time.Duration
}

func (c *EngineConfig) checkAndSetDefaults() error {
	if c.EvalTimeout < 0 {
		return fmt.Errorf("policy: EvalTimeout %s is negative", c.EvalTimeout)
	}
	if c.EvalTimeout == 0 {
		c.EvalTimeout = DefaultEvalTimeout
	}
	if c.FS == nil {
		if c.Dir != "" {
			c.FS = os.DirFS(c.Dir)
		} else {
			c.FS = lockboxrego.FS
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Engine evaluates the security team's policy for each proxied call and
// serves the activity catalog that came with it. Policy and catalog are
// loaded together as one immutable Snapshot, swapped atomically on reload,
// so nothing blocks on a reload and no one answer mixes two versions.
//
// Each method of the Engine answers from the version serving at that
// moment, so two calls may see two versions. A caller that asks several
// questions about one piece of work (the proxy classifies a call, then
// decides it) takes one Snapshot and asks it. An Engine is safe for
// concurrent use.
type Engine struct {
	fsys    fs.FS
	dir     string
	now     func() time.Time
	log     *slog.Logger
	timeout time.Duration
	metrics *metrics

	current  atomic.Pointer[Snapshot]
	reloadMu sync.Mutex // serializes reloads, so an older read never replaces a newer one

	// Guarded by reloadMu.
	lastReloadOK bool // whether the last reload loaded (true before any)
	unsettled    int  // the watcher's polls in a row whose readings disagreed
	// reloaded is the state of the directory a Reload read since the
	// watcher's last poll; empty when none did.
	reloaded string
}

// NewEngine loads and compiles the policy directory. A directory that does
// not load (a Rego error, with its file and line; a broken catalog; no
// decision rule) is an error wrapping ErrInvalidPolicy: at start-up the
// caller stops rather than serve without a policy.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("policy: metrics: %w", err)
	}
	e := &Engine{
		fsys:    cfg.FS,
		dir:     cfg.Dir,
		now:     cfg.Now,
		log:     cfg.Logger,
		timeout: cfg.EvalTimeout,
		metrics: m,

		lastReloadOK: true,
	}
	b, err := e.load()
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", e.source(), err)
	}
	e.publish(b)
	e.log.Info("policy loaded", "source", e.source(), "revision", b.revision)
	return e, nil
}

func (e *Engine) source() string {
	if e.dir == "" {
		return "embedded default"
	}
	return e.dir
}

func (e *Engine) load() (*bundle, error) {
	files, err := readPolicyFiles(e.fsys)
	if err != nil {
		return nil, err
	}
	return buildBundle(context.Background(), files, e.dir, e.now())
}

func (e *Engine) publish(b *bundle) {
	// Built once per load, so taking a snapshot on every call costs one
	// atomic load and no allocation.
	e.current.Store(&Snapshot{e: e, b: b})
	e.metrics.loadedAt.Set(float64(b.loaded.UnixNano()) / 1e9)
	if len(b.volatile) > 0 {
		// Correct, but every call pays a full evaluation (and the
		// builtins' own latency): the security team should know.
		e.log.Info("policy decisions are not remembered: the policy calls builtins whose results can differ between identical calls",
			"revision", b.revision, "builtins", b.volatile)
	}
}

// Reload loads the policy directory again and, if it loads, serves it from
// the next call on. If it does not, the policy already loaded keeps serving
// and the error (wrapping ErrInvalidPolicy for a policy problem) is logged,
// counted in lockbox_policy_reloads_total{result="error"}, shown by
// lockbox_policy_last_reload_successful until a reload loads, and returned.
//
// Like the watcher, it loads only a reading of the directory that the next
// reading agrees with: a SIGHUP that lands while a deploy writes the files,
// or while a ConfigMap swap passes between two of them, would otherwise
// serve a directory that never existed (one version's catalog with the
// next one's Rego) until the watcher's next poll. It reads again, at once,
// until two readings in a row agree; after unsettledPolls readings without
// that, it is an error like any other refused reload.
//
// A reading with a symbolic link that points to nothing does not settle
// either: it is how a directory of links looks while it changes (in a
// ConfigMap volume, read through the version "..data" names rather than its
// per-key links, only a "..data" naming a version just removed). If the
// last of those readings still has one, Reload loads nothing, counts
// nothing and returns an error naming the link, logged as a warning; the
// watcher reads the directory again at its next poll and refuses it,
// counted, only if the link lasts unsettledPolls polls. Otherwise a SIGHUP landing in that moment would raise
// LockboxPolicyReloadFailed for a change that loads a poll later.
func (e *Engine) Reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	files, err := readPolicyFiles(e.fsys)
	state := stateOf(files, err)
	for readings := 1; ; readings++ {
		again, againErr := readPolicyFiles(e.fsys)
		againState := stateOf(again, againErr)
		if againState == state && !errors.Is(againErr, errDanglingLink) {
			break
		}
		files, err, state = again, againErr, againState
		if readings+1 == unsettledPolls {
			if errors.Is(err, errDanglingLink) {
				// Left to the watcher, which has seen nothing of this
				// reading: e.reloaded stays as it is.
				e.log.Warn("policy reload postponed: a symbolic link in the directory points to nothing, so it is still changing; the last good policy keeps serving and the next poll reads it again",
					"source", e.source(), "revision", e.Revision(), "error", err)
				return fmt.Errorf("policy: %s: not reloaded, the directory is still changing: %w", e.source(), err)
			}
			e.reloaded = state
			return e.reloadFiles(nil, fmt.Errorf("%w: %d readings in a row", errUnsettled, unsettledPolls))
		}
	}
	e.reloaded = state
	return e.reloadFiles(files, err)
}

// errUnsettled is why Reload refuses a directory whose readings never agree.
var errUnsettled = errors.New("the directory changed between every two readings, so no version of it can be loaded")

// stateOf is the state of the directory as read: its content hash, or the
// read error.
func stateOf(files []policyFile, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return revisionOf(files)
}

// reloadFiles builds files, as readPolicyFiles returned them with err,
// and publishes the result, or keeps the policy serving and reports the
// error. The caller holds reloadMu.
func (e *Engine) reloadFiles(files []policyFile, err error) error {
	var next *bundle
	if err == nil {
		next, err = buildBundle(context.Background(), files, e.dir, e.now())
	}
	e.unsettled = 0
	e.lastReloadOK = err == nil
	if err != nil {
		e.metrics.reloads.WithLabelValues(reloadError).Inc()
		e.metrics.lastReloadOK.Set(0)
		e.log.Error("policy reload failed; the last good policy keeps serving",
			"source", e.source(), "revision", e.Revision(), "error", err)
		return fmt.Errorf("policy: %s: %w", e.source(), err)
	}
	old := e.Revision()
	e.publish(next)
	e.metrics.reloads.WithLabelValues(reloadSuccess).Inc()
	e.metrics.lastReloadOK.Set(1)
	e.log.Info("policy reloaded", "source", e.source(), "revision", next.revision, "previous_revision", old)
	return nil
}

// Watch polls the policy directory every interval (DefaultWatchInterval if
// not positive) and reloads it when its content changes, until ctx ends.
// Without a Dir there is nothing to watch and Watch only waits for ctx.
//
// Polling a content hash, rather than watching file events, needs no
// dependency and sees every way a directory changes, including a
// Kubernetes ConfigMap volume swapping its "..data" link. A change that
// does not load is reported once, not at every poll; the next change is
// tried again.
//
// What a poll loads is exactly what it read and compared, never a second
// reading: a directory that changed again in between (a deploy still
// writing it) would otherwise be loaded half-written, and once it settled
// on the content the poll had read, no later poll would see a change to
// load. A change is loaded only when two readings in a row agree, so a
// reading that straddled a change (the ConfigMap's swap landing between
// two of its files) is never served: it mixes two versions, and the next
// poll reads the settled one. A directory whose readings never agree (a
// writer that never stops, a file system that returns different bytes at
// every read) is therefore never loaded: after unsettledPolls polls in a
// row it is logged as a warning and counted as a failed reload, once, and
// lockbox_policy_last_reload_successful is 0 until it settles.
//
// A reading with a symbolic link that points to nothing is not loaded
// either, even when the next reading agrees: a directory of links shows one
// while it changes, and a poll then must not count a failed reload for a
// change that loads at the next one. (A ConfigMap volume is read through
// the version its "..data" link names, so the kubelet's per-key links,
// created and removed after the swap, never show it one.) Only after
// unsettledPolls polls in a row is it a broken directory (a link to a file
// never mounted): logged at error naming the link, counted, once, and shown
// by the gauge, as any refused change.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	if e.dir == "" {
		<-ctx.Done()
		return
	}
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	seen := e.Revision()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seen = e.reloadIfChanged(seen)
	}
}

// reloadIfChanged reads the policy directory and, if its state (content
// hash, or read error) is not seen and a second reading agrees with the
// first, loads that reading. It returns the state now seen: unchanged when
// the two readings differ, or agree on a symbolic link to nothing, so that
// the next poll tries again, and after unsettledPolls such polls in a row,
// reports it.
func (e *Engine) reloadIfChanged(seen string) string {
	// Held from the reading to the publishing, so that a Reload between
	// them can't be overtaken by this older reading.
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.reloaded != "" {
		// A Reload (an operator's SIGHUP) read the directory since the
		// last poll and loaded or refused what it read: that is what
		// was seen, or this poll would load it, or refuse it, again.
		seen, e.reloaded = e.reloaded, ""
	}
	read := func() ([]policyFile, string, error) {
		files, err := readPolicyFiles(e.fsys)
		return files, stateOf(files, err), err
	}
	_, state, _ := read()
	if state == seen {
		if e.unsettled >= unsettledPolls {
			// Settled back on what was seen: the gauge says again what
			// the last reload did.
			e.metrics.lastReloadOK.Set(boolGauge(e.lastReloadOK))
			e.log.Info("policy directory settled on the version last read", "source", e.source(), "revision", e.Revision())
		}
		e.unsettled = 0
		return seen
	}
	files, again, err := read()
	// A link to nothing is a directory still changing too, until it has
	// lasted as long as readings that never agree may.
	dangling := again == state && errors.Is(err, errDanglingLink)
	if again != state || dangling {
		e.unsettled++
		if e.unsettled == unsettledPolls {
			// What is on disk is not what decides, as after a refused
			// change: count it and show it the same way, once, so that
			// LockboxPolicyReloadFailed fires for it too.
			e.metrics.reloads.WithLabelValues(reloadError).Inc()
			e.metrics.lastReloadOK.Set(0)
			if dangling {
				e.log.Error("policy reload failed; the last good policy keeps serving",
					"source", e.source(), "revision", e.Revision(), "error", fmt.Errorf("%w (for %d polls in a row)", err, e.unsettled))
			} else {
				e.log.Warn("policy directory changes between every two readings, so no version of it can be loaded; the last good policy keeps serving",
					"source", e.source(), "polls", e.unsettled, "revision", e.Revision())
			}
		}
		return seen
	}
	_ = e.reloadFiles(files, err) // logs and counts its own failure
	return state
}

func boolGauge(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// Snapshot returns the version of the policy serving now: its catalog and
// its decision rule, loaded together, and its revision. The snapshot never
// changes; a reload after this call serves the next Snapshot and leaves
// this one answering as before. It is nil when no policy is loaded (an
// Engine not made by NewEngine), and a nil *Snapshot matches nothing and
// decides nothing: it fails closed.
func (e *Engine) Snapshot() *Snapshot {
	if e == nil {
		return nil
	}
	return e.current.Load()
}

// Revision identifies the policy serving now: the hex SHA-256 of its files'
// names and contents. Empty when none is loaded.
func (e *Engine) Revision() string { return e.Snapshot().Revision() }

// Ready returns nil when a policy is loaded, which is always true of an
// Engine made by NewEngine: a failed reload keeps the last good one.
func (e *Engine) Ready() error {
	if e.Snapshot() == nil {
		return ErrNotReady
	}
	return nil
}

// Catalog returns the activity catalog serving now. A reload may replace it
// at any time; hold on to the value only for one piece of work.
func (e *Engine) Catalog() *Catalog { return e.Snapshot().Catalog() }

// Match is Catalog.Match on the catalog serving now. A caller that then
// decides about what it matched should take a Snapshot and ask it both.
func (e *Engine) Match(service, method, path string) (Activity, map[string]string, bool) {
	return e.Snapshot().Match(service, method, path)
}

// Activities is Catalog.Activities on the catalog serving now.
func (e *Engine) Activities(service string) ([]string, bool) {
	return e.Snapshot().Activities(service)
}

// Services is Catalog.Services on the catalog serving now: what a request
// for a service the catalog lacks is told to choose from.
func (e *Engine) Services() []string {
	c := e.Catalog()
	if c == nil {
		return nil
	}
	return c.Services()
}

// Decide is Snapshot.Decide with the policy serving now.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	return e.Snapshot().Decide(ctx, in)
}

// Snapshot is one loaded version of the policy directory: the catalog and
// the decision rule that were loaded together, and the revision that names
// them. It is immutable and safe for concurrent use.
//
// The proxy takes one Snapshot per call and both classifies the call
// (Match) and decides it (Decide) with it. Asking the Engine twice instead
// could, across a reload, classify a call with one version's catalog and
// judge it with another version's policy: an activity renamed, or moved
// from read to write, would be judged under rules written for something
// else.
type Snapshot struct {
	// e supplies the clock, the evaluation timeout, the logger and the
	// metrics, none of which change after NewEngine.
	e *Engine
	b *bundle
	// memo serves this version's decisions for inputs it already decided.
	memo memo
}

// Revision is the hex SHA-256 of the names and contents of the files this
// version was loaded from. Empty for a nil Snapshot.
func (s *Snapshot) Revision() string {
	if s == nil {
		return ""
	}
	return s.b.revision
}

// Catalog returns this version's activity catalog; nil for a nil Snapshot.
func (s *Snapshot) Catalog() *Catalog {
	if s == nil {
		return nil
	}
	return s.b.catalog
}

// Match is Catalog.Match on this version's catalog: the catalog its policy
// was written for. A nil Snapshot matches nothing.
func (s *Snapshot) Match(service, method, path string) (Activity, map[string]string, bool) {
	if s == nil {
		return Activity{}, nil, false
	}
	return s.b.catalog.Match(service, method, path)
}

// Classify is Catalog.Classify on this version's catalog. A nil Snapshot
// classifies nothing.
func (s *Snapshot) Classify(service, method, path string) (Activity, string, bool) {
	if s == nil {
		return Activity{}, "", false
	}
	return s.b.catalog.Classify(service, method, path)
}

// Activities is Catalog.Activities on this version's catalog. A nil
// Snapshot knows no service.
func (s *Snapshot) Activities(service string) ([]string, bool) {
	if s == nil {
		return nil, false
	}
	return s.b.catalog.Activities(service)
}

// Decide evaluates this version's data.lockbox.authz.decision for in. Only
// a nil error and Allow == true permit the call; on any error the caller
// denies. A nil Snapshot returns ErrNotReady.
//
// The evaluation time (time.now_ns() in Rego) is in.Now; when in.Now is
// empty it is the engine's clock, and input.now is set to it, so the policy
// sees one time either way. Evaluation runs under the engine's EvalTimeout,
// builtin errors are fatal, a panic inside OPA becomes an error, and the
// time it took is observed in lockbox_policy_evaluation_duration_seconds.
//
// A decision this Snapshot already made for an input identical in every
// field the policy may read (input.now included; see readsOf) is served from
// memory instead of evaluating again: the policy is a function of what it
// reads, so it is the same decision. Errors are never remembered, and
// neither is anything decided by a policy that calls a builtin whose result
// can differ between evaluations (http.send, rand.intn and the like; see
// volatileBuiltins): such a policy is not a function of its input. The
// proxy passes input.now truncated to the second, so the calls of one
// second with identical inputs are decided once. The Reasons of a decision
// may be shared with other callers: read them, never modify.
func (s *Snapshot) Decide(ctx context.Context, in Input) (Decision, error) {
	if s == nil {
		return Decision{}, ErrNotReady
	}
	if in.Now == "" || ctx.Err() != nil || len(s.b.volatile) > 0 {
		// The engine's clock decides the time: no two calls share it. A
		// call whose context ended gets the evaluation's error, remembered
		// decision or not. A policy calling a nondeterministic builtin may
		// answer two identical inputs differently.
		return s.evaluate(ctx, &in)
	}
	bp := keyPool.Get().(*[]byte)
	key := appendKey((*bp)[:0], &in, s.b.reads)
	defer func() { *bp = key; keyPool.Put(bp) }()
	if d, ok := s.memo.lookup(in.Now, key); ok {
		s.e.metrics.memoHits.Inc()
		return d, nil
	}
	d, err := s.evaluate(ctx, &in)
	if err == nil {
		s.memo.store(in.Now, key, d)
	}
	return d, err
}

// evaluate runs the policy for in, always, and observes how long it took.
func (s *Snapshot) evaluate(ctx context.Context, in *Input) (Decision, error) {
	// Latency is measured on the process clock, not the injected one: it is
	// a duration, not a decision time.
	start := time.Now()
	d, err := s.e.decide(ctx, s.b, in)
	s.e.metrics.evalDuration.Observe(time.Since(start).Seconds())
	s.e.metrics.memoMisses.Inc()
	return d, err
}

func (e *Engine) decide(ctx context.Context, b *bundle, in *Input) (Decision, error) {
	var at time.Time
	if in.Now == "" {
		at = e.now().UTC()
		in.Now = at.Format(time.RFC3339Nano)
	} else {
		t, err := time.Parse(time.RFC3339Nano, in.Now)
		if err != nil {
			return Decision{}, fmt.Errorf("%w: now: %w", ErrInvalidInput, err)
		}
		at = t
	}
	input := inputValue(in)

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	rs, err := e.eval(ctx, b, input, at)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return Decision{}, fmt.Errorf("%w: %w: %w", ErrEvaluation, cerr, err)
		}
		return Decision{}, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	return decodeDecision(rs)
}

// eval runs the prepared query, turning a panic into an error so that a bug
// in a builtin denies one call instead of taking the proxy down.
func (e *Engine) eval(ctx context.Context, b *bundle, input ast.Value, at time.Time) (rs rego.ResultSet, err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("policy evaluation panicked", "revision", b.revision, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return b.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalTime(at))
}

var (
	keyAllow   = ast.StringTerm("allow")
	keyReasons = ast.StringTerm("reasons")
)

// decodeDecision accepts exactly one result of one expression whose value is
// an object with exactly the keys allow (a boolean) and reasons (an array of
// strings). Anything else is an error, never a guess: a lenient decoder
// turns a policy bug into an allow.
func decodeDecision(rs rego.ResultSet) (Decision, error) {
	switch len(rs) {
	case 0:
		return Decision{}, fmt.Errorf("%w: %s", ErrUndefined, DecisionRef)
	case 1:
	default:
		return Decision{}, fmt.Errorf("%w: %d results, want one", ErrBadDecision, len(rs))
	}
	if n := len(rs[0].Expressions); n != 1 {
		return Decision{}, fmt.Errorf("%w: %d expressions, want one", ErrBadDecision, n)
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok { // the bundle's GenerateJSON hands over AST values
		return Decision{}, fmt.Errorf("%w: result of Go type %T", ErrBadDecision, rs[0].Expressions[0].Value)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("%w: a %s, want an object", ErrBadDecision, ast.ValueName(v))
	}
	allowT, reasonsT := obj.Get(keyAllow), obj.Get(keyReasons)
	if obj.Len() != 2 || allowT == nil || reasonsT == nil {
		keys := make([]string, 0, obj.Len())
		for _, k := range obj.Keys() {
			keys = append(keys, k.String())
		}
		return Decision{}, fmt.Errorf("%w: keys %s, want exactly \"allow\" and \"reasons\"", ErrBadDecision, strings.Join(keys, ", "))
	}
	allow, ok := allowT.Value.(ast.Boolean)
	if !ok {
		return Decision{}, fmt.Errorf("%w: allow is a %s, want a boolean", ErrBadDecision, ast.ValueName(allowT.Value))
	}
	arr, ok := reasonsT.Value.(*ast.Array)
	if !ok {
		return Decision{}, fmt.Errorf("%w: reasons is a %s, want an array", ErrBadDecision, ast.ValueName(reasonsT.Value))
	}
	d := Decision{Allow: bool(allow), Reasons: make([]string, arr.Len())}
	for i := range arr.Len() {
		s, ok := arr.Elem(i).Value.(ast.String)
		if !ok {
			return Decision{}, fmt.Errorf("%w: reasons[%d] is a %s, want a string", ErrBadDecision, i, ast.ValueName(arr.Elem(i).Value))
		}
		d.Reasons[i] = string(s)
	}
	return d, nil
}
