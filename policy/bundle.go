package policy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/types"
	"github.com/open-policy-agent/opa/v1/util"
)

// CatalogPath is where a policy directory keeps the activity catalog. OPA
// loads it as data.activities.
const CatalogPath = "activities/data.json"

// DecisionRef is the rule the engine evaluates for every call.
const DecisionRef = "data.lockbox.authz.decision"

var (
	// catalogRef is where OPA finds the catalog: data.activities holds
	// activities/data.json and nothing else.
	catalogRef    = ast.MustParseRef("data.activities")
	decisionRef   = ast.MustParseRef(DecisionRef)
	decisionQuery = ast.NewBody(ast.NewExpr(ast.NewTerm(decisionRef)))
)

// ErrInvalidPolicy is wrapped by every error that refuses a policy
// directory: a file that does not parse or compile, a broken catalog, no
// decision rule, or a file the server would not load.
var ErrInvalidPolicy = errors.New("invalid policy")

// errDanglingLink is wrapped by the error of a reading that found a
// symbolic link whose target does not exist. The engine tells it apart from
// other refusals: a directory of links that another tool updates shows one
// for a moment while it changes (as a ConfigMap volume's per-key links do,
// which is why such a volume is read through "..data" instead), and a
// ConfigMap volume's "..data" may name a version the kubelet has just
// removed, so it is a directory still changing before it is a broken one.
var errDanglingLink = errors.New("a symbolic link whose target does not exist")

// bundle is one loaded version of the policy directory: the prepared query
// and the catalog that came with it. It is immutable once built; a reload
// builds a new one and swaps it in whole, so one Snapshot never holds the
// policy of one version with the catalog of another. (A caller asking the
// Engine twice still can see two versions: that is what Snapshot is for.)
type bundle struct {
	query    rego.PreparedEvalQuery
	catalog  *Catalog
	revision string // hex sha256 of the files it was built from
	loaded   time.Time
	// reads is the input fields the policy may read: the memo's key.
	reads inputFields
	// volatile names the builtins the policy calls whose results can
	// differ between evaluations of one input. Unless it is empty, the
	// memo is not used: each decision is evaluated.
	volatile []string
}

// policyFile is one file of a policy directory that the bundle is built
// from.
type policyFile struct {
	name string // slash-separated, relative to the directory root
	data []byte
}

// maxDepth bounds the directory walk. Symbolic links to directories are
// followed (a Kubernetes ConfigMap volume is made of them), so a link loop
// must end somewhere; real policy trees are two or three levels deep.
const maxDepth = 16

// readPolicyFiles returns the files of fsys the server loads, sorted by
// name: every *.rego file except *_test.rego, and the catalog.
//
// A directory with a "..data" symbolic link at its root is laid out as
// the kubelet lays out a Kubernetes ConfigMap volume: each version in a
// "..<timestamp>" directory, "..data" naming the current one (swapped by an
// atomic rename), and one link per key into "..data". Such a directory is
// read through the version "..data" names, resolved once per reading, and
// not through the links per key: the kubelet creates an added key's link
// after the swap, and removes a removed key's link after it, so a reading
// through them in between mixes the new version with the old one's set of
// keys. Names are still those of the directory root (authz.rego, not
// ..<timestamp>/authz.rego), so the revision and error messages are what
// they would be without the volume, and a new "..<timestamp>" holding the
// same files is the same revision.
//
// Names starting with "." are skipped, files and directories alike: a
// ConfigMap volume's "..data", "..data_tmp" and "..<timestamp>" entries are
// never read as policy files themselves. Other data files (.json, .yaml,
// .yml) and bundle tarballs (.tar.gz) are refused: `opa test` would load them (a tarball's policies
// too) but the server would not, so tests could pass against a policy
// production never serves.
//
// A symbolic link whose target does not exist refuses the reading with an
// error wrapping errDanglingLink, which the engine takes for a directory
// still changing until it has lasted unsettledPolls polls. In a ConfigMap
// volume that is left only for "..data" naming a version the kubelet has
// just removed: the next reading resolves it again.
func readPolicyFiles(fsys fs.FS) ([]policyFile, error) {
	fsys, err := currentVersion(fsys)
	if err != nil {
		return nil, err
	}
	var files []policyFile
	hasCatalog := false
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("%w: %s: more than %d directory levels (a symbolic link loop?)", ErrInvalidPolicy, dir, maxDepth)
		}
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return err
		}
		for _, e := range entries { // sorted by name
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := path.Join(dir, name)
			mode := e.Type()
			if mode&fs.ModeSymlink != 0 {
				fi, err := fs.Stat(fsys, p)
				if errors.Is(err, fs.ErrNotExist) {
					return danglingLink(fsys, p)
				}
				if err != nil {
					return err
				}
				mode = fi.Mode().Type()
			}
			switch {
			case mode.IsDir():
				if err := walk(p, depth+1); err != nil {
					return err
				}
				continue
			case !mode.IsRegular():
				continue
			case strings.HasSuffix(name, "_test.rego"):
				continue
			case strings.HasSuffix(name, ".rego"):
			case p == CatalogPath:
				hasCatalog = true
			case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".yaml"), strings.HasSuffix(name, ".yml"):
				return fmt.Errorf("%w: %s: the only data file the server loads is %s", ErrInvalidPolicy, p, CatalogPath)
			case strings.HasSuffix(name, ".tar.gz"):
				// OPA's loader (opa test, RunTests) loads a bundle tarball
				// found in a directory, its policies and data with it.
				return fmt.Errorf("%w: %s: the server loads no bundle, only *.rego files and %s", ErrInvalidPolicy, p, CatalogPath)
			default:
				continue // README.md and the like
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			files = append(files, policyFile{name: p, data: b})
		}
		return nil
	}
	if err := walk(".", 0); err != nil {
		return nil, err
	}
	if !hasCatalog {
		return nil, fmt.Errorf("%w: no %s", ErrInvalidPolicy, CatalogPath)
	}
	return files, nil
}

// configMapData is the link at the root of a ConfigMap volume that names
// the directory of the version the kubelet serves now.
const configMapData = "..data"

// currentVersion is the directory of the version configMapData names when
// fsys is a ConfigMap volume, and fsys itself otherwise.
//
// A "..data" that fsys can't resolve within itself (fsys can't read links,
// or the link names an absolute path or one leaving fsys, which the kubelet
// never writes) is no ConfigMap volume's: fsys is read as any other
// directory, through whatever links its names are.
func currentVersion(fsys fs.FS) (fs.FS, error) {
	target, err := fs.ReadLink(fsys, configMapData)
	if err != nil || !fs.ValidPath(target) || target == "." {
		return fsys, nil
	}
	// Statting the target, not "..data": the version this reading resolved
	// is the one it reads, even if the kubelet swaps "..data" meanwhile.
	fi, err := fs.Stat(fsys, target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: %w: %s", ErrInvalidPolicy, configMapData, errDanglingLink, target)
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s: names %s, not a directory", ErrInvalidPolicy, configMapData, target)
	}
	sub, err := fs.Sub(fsys, target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configMapData, err)
	}
	return sub, nil
}

// danglingLink is the error of a reading that found name, a symbolic link,
// pointing to nothing. Whatever the link's name, the reading is refused: a
// link to nothing may have been a directory of policies, and the server
// can't tell what it would have loaded. It names the target when it can,
// so that the message says which version it was looking for.
func danglingLink(fsys fs.FS, name string) error {
	if target, err := fs.ReadLink(fsys, name); err == nil {
		return fmt.Errorf("%w: %s: %w: %s", ErrInvalidPolicy, name, errDanglingLink, target)
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, name, errDanglingLink)
}

// revisionOf hashes the names and contents of files. Each name and content
// is length-prefixed, so moving bytes between a name and a content, or
// between two files, changes the hash.
func revisionOf(files []policyFile) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.name)))
		h.Write(n[:])
		h.Write([]byte(f.name))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.data)))
		h.Write(n[:])
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// buildBundle parses, checks and compiles files into a bundle whose query is
// prepared for evaluation. dir only names files in error messages (empty for
// the embedded default). Every refusal wraps ErrInvalidPolicy and names the
// file, and for Rego the line, that caused it.
func buildBundle(ctx context.Context, files []policyFile, dir string, now time.Time) (*bundle, error) {
	display := func(name string) string {
		if dir == "" {
			return name
		}
		return filepath.Join(dir, filepath.FromSlash(name))
	}

	var catalog *Catalog
	var catalogData any
	modules := make(map[string]*ast.Module)
	for _, f := range files {
		if f.name == CatalogPath {
			c, err := ParseCatalog(f.data)
			if err != nil {
				return nil, fmt.Errorf("%w: %s:%d: %w", ErrInvalidPolicy, display(f.name), catalogErrorLine(err), err)
			}
			// ParseCatalog accepted it, so it is one JSON object.
			if err := util.UnmarshalJSON(f.data, &catalogData); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, display(f.name), err)
			}
			catalog = c
			continue
		}
		m, err := ast.ParseModuleWithOpts(display(f.name), string(f.data), ast.ParserOptions{
			RegoVersion:       ast.RegoV1,
			ProcessAnnotation: true,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
		}
		if m.Package.Path.HasPrefix(catalogRef) {
			// OPA merges such a package's rules into data.activities
			// beside the file's services (only a rule named like one is a
			// conflict), so the policy would read a catalog the proxy does
			// not classify calls with: a "service" whose entries name any
			// activity with any access.
			return nil, fmt.Errorf("%w: %s: %s: no rule may add to data.activities, the activity catalog, which is %s alone", ErrInvalidPolicy, m.Package.Location, m.Package, CatalogPath)
		}
		modules[display(f.name)] = m
	}
	if catalog == nil { // readPolicyFiles already insists; this guards other callers
		return nil, fmt.Errorf("%w: no %s", ErrInvalidPolicy, CatalogPath)
	}

	store := inmem.NewFromObjectWithOpts(
		map[string]any{"activities": catalogData},
		inmem.OptReturnASTValuesOnRead(true), // converted once here, not on every read
	)
	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithStrict(true).
		WithSchemas(inputSchemas).
		WithUseTypeCheckAnnotations(true)
	err := storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		// Refuses a rule whose path is also data, e.g. a package named
		// "activities", as `opa check` does against loaded data.
		compiler.WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn)).Compile(modules)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	if compiler.Failed() {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, compiler.Errors)
	}
	if err := unknownGrantFields(compiler.Modules); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	// A directory without the decision rule would compile and then deny
	// every call as undefined. Refuse it at load instead, where the security
	// team sees why.
	rules := compiler.GetRulesExact(decisionRef)
	if len(rules) == 0 {
		return nil, fmt.Errorf("%w: no rule defines %s (package lockbox.authz, rule decision)", ErrInvalidPolicy, DecisionRef)
	}
	// Likewise a decision that is never an object (decision := true, a
	// set, a partial rule) would load and then deny every call as a
	// policy error: an outage a reload could swap in for a working policy.
	if t := compiler.TypeEnv.GetByRef(decisionRef); t != nil && !mayBeObject(t) {
		return nil, fmt.Errorf("%w: %s: %s is %s, never the object {\"allow\": boolean, \"reasons\": [string]} the server asks for",
			ErrInvalidPolicy, rules[0].Location, DecisionRef, types.Sprint(t))
	}

	pq, err := rego.New(
		rego.ParsedQuery(decisionQuery),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
		// Hand the result over as an AST value: decodeDecision checks its
		// exact types, which a JSON conversion would blur (a set would
		// become an array).
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	return &bundle{query: pq, catalog: catalog, revision: revisionOf(files), loaded: now,
		reads: readsOf(compiler.Modules), volatile: volatileBuiltins(compiler.Modules)}, nil
}

// mayBeObject reports whether a value of type t may be an object. The type
// checker's types are conservative (any, or a union, when it can't tell), so
// only a type that surely excludes objects is refused.
func mayBeObject(t types.Type) bool {
	switch t := t.(type) {
	case *types.Object:
		return true
	case types.Any:
		if len(t) == 0 {
			return true
		}
		for _, m := range t {
			if mayBeObject(m) {
				return true
			}
		}
		return false
	default:
		return false
	}
}
