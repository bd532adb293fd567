package policy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/policy"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

// t0 is the tests' clock: inside the window of the cases' grants.
var t0 = time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

func newEngine(t testing.TB, cfg policy.EngineConfig) (*policy.Engine, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Now == nil {
		cfg.Now = fixedClock
	}
	if cfg.EvalTimeout == 0 {
		// The production default (250ms) is a deadline a loaded machine
		// running the race detector can miss; a test that is not about the
		// timeout must not fail on it. Only the timeout tests set their own.
		cfg.EvalTimeout = 10 * time.Second
	}
	e, err := policy.NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e, reg
}

// defaultDir copies the embedded default policy directory to a temporary
// directory the test may change.
func defaultDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, lockboxrego.FS); err != nil {
		t.Fatal(err)
	}
	return dir
}

// policyDir returns a directory holding the default catalog and, as the
// only policy, src at lockbox/authz/policy.rego.
func policyDir(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	catalog, err := fs.ReadFile(lockboxrego.FS, policy.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, policy.CatalogPath), catalog)
	writeFile(t, filepath.Join(dir, "lockbox", "authz", "policy.rego"), []byte(src))
	return dir
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	// Written whole and renamed into place, as an editor or a ConfigMap
	// update does: a watcher polling every few milliseconds must not see a
	// half-written file (it would refuse it, rightly, and count an error).
	// The temporary name starts with "." so the engine skips it.
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// allowedInput is a read that the default policy allows.
func allowedInput() policy.Input {
	return policy.Input{
		Operator: policy.Operator{ID: "op-1", Roles: []string{"operator"}},
		Call: policy.Call{
			Method: "GET", Path: "/tenants/contoso/mailboxes", Service: "exchange",
			Activity: "Get-Mailbox", Access: "read", Tenant: "contoso", ClientIP: "192.0.2.10",
		},
		Grant: &policy.Grant{
			RequestID: "req-1", Tenant: "contoso", Operator: "op-1", Service: "exchange",
			Activities: []string{}, Approver: "admin@contoso", TenantApproved: true,
			ApprovedAt: "2026-03-01T10:00:00Z", ExpiresAt: "2026-03-01T14:00:00Z",
		},
		Tenant: policy.Tenant{ID: "contoso", LockboxEnabled: true},
		Now:    "2026-03-01T11:00:00Z",
	}
}

type decisionCases struct {
	Base  map[string]any `yaml:"base"`
	Cases []struct {
		Name  string         `yaml:"name"`
		Patch map[string]any `yaml:"patch"`
		Want  struct {
			Allow   *bool    `yaml:"allow"`
			Reasons []string `yaml:"reasons"`
		} `yaml:"want"`
	} `yaml:"cases"`
}

// mergePatch applies patch to doc as RFC 7386 describes, returning a new
// document.
func mergePatch(doc, patch map[string]any) map[string]any {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	for k, pv := range patch {
		if pv == nil {
			delete(out, k)
			continue
		}
		pm, ok := pv.(map[string]any)
		if !ok {
			out[k] = pv
			continue
		}
		dm, _ := out[k].(map[string]any)
		out[k] = mergePatch(dm, pm)
	}
	return out
}

// toInput converts a generic document to an Input the way the proxy's JSON
// would arrive, refusing fields Input does not have.
func toInput(t *testing.T, doc map[string]any) policy.Input {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in policy.Input
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("input %s: %v", b, err)
	}
	return in
}

func TestDecisions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "decisions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases decisionCases
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cases); err != nil {
		t.Fatal(err)
	}
	if len(cases.Cases) == 0 {
		t.Fatal("no cases")
	}
	e, _ := newEngine(t, policy.EngineConfig{})
	seen := make(map[string]bool)
	for _, tc := range cases.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			if tc.Want.Allow == nil || tc.Want.Reasons == nil {
				t.Fatal("want needs allow and reasons")
			}
			in := toInput(t, mergePatch(cases.Base, tc.Patch))
			got, err := e.Decide(t.Context(), in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			want := policy.Decision{Allow: *tc.Want.Allow, Reasons: tc.Want.Reasons}
			if got.Allow != want.Allow || !slices.Equal(got.Reasons, want.Reasons) || got.Reasons == nil {
				t.Errorf("Decide = %+v, want %+v", got, want)
			}
			for _, r := range got.Reasons {
				seen[r] = true
				if !policy.KnownReason(r) {
					t.Errorf("reason %q is not in policy.Reasons", r)
				}
			}
		})
	}
	// Every reason the default policy can give on its own shows up in some
	// case; not_allowed only follows an edit that breaks the policy, and
	// authz_test.rego covers it.
	for _, r := range policy.Reasons() {
		if r != policy.ReasonNotAllowed && !seen[r] {
			t.Errorf("no case in decisions.yaml gives reason %q", r)
		}
	}
}

// TestDefaultPolicyReasons keeps policy.Reasons and the reasons written in
// authz.rego the same set.
func TestDefaultPolicyReasons(t *testing.T) {
	const file = "lockbox/authz/authz.rego"
	src, err := fs.ReadFile(lockboxrego.FS, file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ast.ParseModuleWithOpts(file, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	var inRego []string
	for _, r := range m.Rules {
		switch r.Head.Name.String() {
		case "denials":
			s, ok := r.Head.Key.Value.(ast.String)
			if !ok {
				t.Fatalf("%s: denials key %v is not a string literal", r.Location, r.Head.Key)
			}
			inRego = append(inRego, string(s))
		case "decision":
			if r.Default {
				var d policy.Decision
				if err := ast.As(r.Head.Value.Value, &d); err != nil {
					t.Fatal(err)
				}
				inRego = append(inRego, d.Reasons...)
			}
		}
	}
	slices.Sort(inRego)
	want := policy.Reasons()
	slices.Sort(want)
	if !slices.Equal(inRego, want) {
		t.Errorf("authz.rego gives reasons %q, policy.Reasons() lists %q", inRego, want)
	}
}

// TestREADMEReasons keeps the table of reasons in rego/README.md, where
// security teams and on-call read what a policy_denied call's reasons
// mean, to policy.Reasons: a row for each, and none for a reason the
// default policy does not give.
func TestREADMEReasons(t *testing.T) {
	b, err := os.ReadFile("../rego/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "\n| Reason | Given when |\n")
	if !ok {
		t.Fatal(`rego/README.md has no table "| Reason | Given when |"`)
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	var documented []string
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if m := row.FindStringSubmatch(line); m != nil {
			documented = append(documented, m[1])
		}
	}
	slices.Sort(documented)
	want := policy.Reasons()
	slices.Sort(want)
	if !slices.Equal(documented, want) {
		t.Errorf("rego/README.md's table of reasons lists %q, policy.Reasons() %q", documented, want)
	}
}

func TestNewEngineEmbeddedDefault(t *testing.T) {
	e, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(e.Revision()) {
		t.Errorf("Revision = %q, want hex sha256", e.Revision())
	}
	a, vars, ok := e.Match("exchange", "GET", "/tenants/contoso/mailboxes/alice/messages")
	if !ok || a.Name != "Get-MailboxMessage" || vars["mailbox"] != "alice" {
		t.Errorf("Match = %+v, %v, %v", a, vars, ok)
	}
	if names, ok := e.Activities("onedrive"); !ok || !slices.Contains(names, "Remove-OneDriveFile") {
		t.Errorf("Activities(onedrive) = %v, %v", names, ok)
	}
	if _, ok := e.Activities("teams"); ok {
		t.Error("Activities(teams) found a service the catalog lacks")
	}
	if got := e.Catalog().Services(); !slices.Equal(got, []string{"exchange", "onedrive", "sharepoint"}) {
		t.Errorf("Catalog().Services() = %v", got)
	}
	// The same directory on disk has the same revision as embedded.
	d, _ := newEngine(t, policy.EngineConfig{Dir: defaultDir(t)})
	if d.Revision() != e.Revision() {
		t.Errorf("revision on disk %s, embedded %s", d.Revision(), e.Revision())
	}
}

func TestNewEngineRejectsNegativeTimeout(t *testing.T) {
	if _, err := policy.NewEngine(policy.EngineConfig{EvalTimeout: -time.Second}); err == nil {
		t.Fatal("NewEngine accepted a negative EvalTimeout")
	}
}

func TestZeroEngineNotReady(t *testing.T) {
	var e policy.Engine
	if err := e.Ready(); !errors.Is(err, policy.ErrNotReady) {
		t.Errorf("Ready = %v, want ErrNotReady", err)
	}
	if _, err := e.Decide(t.Context(), allowedInput()); err == nil {
		t.Error("Decide on an engine without a policy returned no error")
	}
	if _, _, ok := e.Match("exchange", "GET", "/tenants/contoso/mailboxes"); ok {
		t.Error("Match on an engine without a catalog matched")
	}
	// Its snapshot is nil, and a nil snapshot fails closed too.
	s := e.Snapshot()
	if s != nil {
		t.Fatalf("Snapshot = %p, want nil", s)
	}
	if _, err := s.Decide(t.Context(), allowedInput()); !errors.Is(err, policy.ErrNotReady) {
		t.Errorf("nil Snapshot.Decide = %v, want ErrNotReady", err)
	}
	if _, _, ok := s.Match("exchange", "GET", "/tenants/contoso/mailboxes"); ok {
		t.Error("nil Snapshot.Match matched")
	}
	if _, ok := s.Activities("exchange"); ok || s.Revision() != "" || s.Catalog() != nil {
		t.Error("a nil Snapshot knows a service, a revision or a catalog")
	}
}

// TestLoadRefuses: a directory the server would not serve stops start-up
// with a message naming the file (and line, for Rego).
func TestLoadRefuses(t *testing.T) {
	valid := `package lockbox.authz

default decision := {"allow": false, "reasons": ["no_grant"]}
`
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string // regexp the error must match
	}{
		{
			name: "syntax error",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte("package lockbox.authz\n\ndecision := {\n"))
			},
			want: `lockbox/authz/policy\.rego:\d+: rego_parse_error`,
		},
		{
			name: "strict: unused variable",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid+"\nx if {\n\ty := 1\n\tinput.a == 1\n}\n"))
			},
			want: `lockbox/authz/policy\.rego:6: rego_compile_error: assigned var y unused`,
		},
		{
			name: "type error",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid+"\nx if count(1) > 0\n"))
			},
			want: `lockbox/authz/policy\.rego:5: rego_type_error`,
		},
		{
			name: "no decision rule",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte("package lockbox.authz\n\nallow := false\n"))
			},
			want: `no rule defines data\.lockbox\.authz\.decision`,
		},
		{
			name: "policy in another package",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(strings.Replace(valid, "lockbox.authz", "lockbox.authz2", 1)))
			},
			want: `no rule defines data\.lockbox\.authz\.decision`,
		},
		{
			name: "rule path conflicts with the catalog data",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid))
				writeFile(t, filepath.Join(dir, "activities.rego"), []byte("package activities\n\nexchange := []\n"))
			},
			want: `activities\.rego:1: package activities: no rule may add to data\.activities, the activity catalog, which is activities/data\.json alone`,
		},
		{
			// OPA merges the rules of a package activities beside the
			// catalog's services when no name collides: the policy would
			// read data.activities.fake, a "service" the proxy never
			// classifies a call with, whose entries say what they like.
			name: "rule adding to the catalog data",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid))
				writeFile(t, filepath.Join(dir, "lockbox/fake.rego"), []byte("package activities.fake\n\nentries := [{\"activity\": \"Remove-MailboxMessage\", \"access\": \"read\"}]\n"))
			},
			want: `lockbox/fake\.rego:1: package activities\.fake: no rule may add to data\.activities`,
		},
		{
			name: "invalid catalog",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid))
				writeFile(t, filepath.Join(dir, policy.CatalogPath), []byte(`{"exchange": [{"activity": "Get-Mailbox"}]}`))
			},
			want: `activities/data\.json:\d+: invalid activity catalog: exchange\[0\]\.method: missing`,
		},
		{
			name: "no catalog",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid))
				if err := os.Remove(filepath.Join(dir, policy.CatalogPath)); err != nil {
					t.Fatal(err)
				}
			},
			want: `no activities/data\.json`,
		},
		{
			name: "data file the server would not load",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid))
				writeFile(t, filepath.Join(dir, "config/data.json"), []byte(`{}`))
			},
			want: `config/data\.json: the only data file the server loads is activities/data\.json`,
		},
		{
			name: "bundle tarball the server would not load",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid))
				writeFile(t, filepath.Join(dir, "lockbox/extra.tar.gz"), []byte("not even gzip"))
			},
			want: `lockbox/extra\.tar\.gz: the server loads no bundle`,
		},
		{
			// At start-up a link to nothing is refused at once, as every
			// other reading that can't be loaded is: the program stops
			// with a message naming it, and its restart reads the
			// directory again.
			name: "symbolic link to nothing",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lockbox/authz/policy.rego"), []byte(valid))
				if err := os.Symlink("..data/README.md", filepath.Join(dir, "README.md")); err != nil {
					t.Fatal(err)
				}
			},
			want: `README\.md: a symbolic link whose target does not exist: \.\.data/README\.md`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t, "package lockbox.authz\n")
			if err := os.Remove(filepath.Join(dir, "lockbox/authz/policy.rego")); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			_, err := policy.NewEngine(policy.EngineConfig{Dir: dir})
			if !errors.Is(err, policy.ErrInvalidPolicy) {
				t.Fatalf("NewEngine = %v, want ErrInvalidPolicy", err)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory %s", err, dir)
			}
		})
	}
}

// TestDecodeStrict: only {"allow": bool, "reasons": [string]} is a decision;
// everything else is an error of the kind named.
func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name    string
		rego    string
		want    policy.Decision
		wantErr error
	}{
		{
			name: "well formed",
			rego: `decision := {"allow": true, "reasons": []}`,
			want: policy.Decision{Allow: true, Reasons: []string{}},
		},
		{
			name: "well formed deny",
			rego: `decision := {"allow": false, "reasons": ["b", "a"]}`,
			want: policy.Decision{Allow: false, Reasons: []string{"b", "a"}},
		},
		{
			name:    "undefined",
			rego:    `decision := {"allow": true, "reasons": []} if input.call.method == "BREW"`,
			wantErr: policy.ErrUndefined,
		},
		{
			name:    "allow is a string",
			rego:    `decision := {"allow": "true", "reasons": []}`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "allow is a number",
			rego:    `decision := {"allow": 1, "reasons": []}`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "extra key",
			rego:    `decision := {"allow": true, "reasons": [], "headers": {}}`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "missing reasons",
			rego:    `decision := {"allow": true}`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "allowed misspelt",
			rego:    `decision := {"allowed": true, "reasons": []}`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "reasons not strings",
			rego:    `decision := {"allow": false, "reasons": ["a", 2]}`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "reasons a set",
			rego:    `decision := {"allow": false, "reasons": {"a"}}`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "reasons null",
			rego:    `decision := {"allow": true, "reasons": null}`,
			wantErr: policy.ErrBadDecision,
		},
		// A decision surely not an object (decision := true) is refused at
		// load; these reach the decoder through a builtin whose result's
		// type the checker can't know.
		{
			name:    "a bare boolean",
			rego:    `decision := json.unmarshal("true")`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "a bare false",
			rego:    `decision := json.unmarshal("false")`,
			wantErr: policy.ErrBadDecision,
		},
		{
			name:    "a set of decisions",
			rego:    `decision := object.get({"d": {{"allow": true, "reasons": []}}}, "d", null)`,
			wantErr: policy.ErrBadDecision,
		},
		{
			// With strict builtin errors a division by zero is an error,
			// not an undefined that a default would turn into an answer.
			name: "runtime error",
			rego: `default decision := {"allow": false, "reasons": ["fallback"]}

decision := {"allow": true, "reasons": []} if 1 / count(input.call.path) > 0
decision := {"allow": true, "reasons": []} if 1 / count(input.call.client_ip) > 0`,
			wantErr: policy.ErrEvaluation,
		},
		{
			name: "conflicting outputs",
			rego: `decision := {"allow": true, "reasons": []} if input.call.service == "exchange"

decision := {"allow": false, "reasons": ["no"]} if input.call.tenant == "contoso"`,
			wantErr: policy.ErrEvaluation,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t, "package lockbox.authz\n\n"+tc.rego+"\n")
			e, _ := newEngine(t, policy.EngineConfig{Dir: dir})
			in := allowedInput()
			in.Call.Path = ""     // for the runtime error case
			in.Call.ClientIP = "" // likewise
			got, err := e.Decide(t.Context(), in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Decide = %+v, %v; want %v", got, err, tc.wantErr)
				}
				if got.Allow {
					t.Error("an error came with Allow == true")
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.Allow != tc.want.Allow || !slices.Equal(got.Reasons, tc.want.Reasons) || got.Reasons == nil {
				t.Errorf("Decide = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestEvalTime: time.now_ns() in the policy is input.now, and the engine's
// clock when the input has none, in which case input.now is set to it.
func TestEvalTime(t *testing.T) {
	dir := policyDir(t, `package lockbox.authz

decision := {
	"allow": time.now_ns() == time.parse_rfc3339_ns(input.now),
	"reasons": [sprintf("%d", [time.now_ns()]), input.now],
}
`)
	e, _ := newEngine(t, policy.EngineConfig{Dir: dir})

	in := allowedInput()
	in.Now = "2026-03-01T11:22:33.123456789Z"
	got, err := e.Decide(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(time.Date(2026, 3, 1, 11, 22, 33, 123456789, time.UTC).UnixNano(), 10)
	if !got.Allow || got.Reasons[0] != want {
		t.Errorf("with input.now: %+v, want allow and now_ns %s", got, want)
	}

	in.Now = ""
	got, err = e.Decide(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(t0.UnixNano(), 10); !got.Allow || got.Reasons[0] != want || got.Reasons[1] != "2026-03-01T11:00:00Z" {
		t.Errorf("without input.now: %+v, want allow, now_ns %s and input.now set", got, want)
	}

	in.Now = "11:00 tomorrow"
	if _, err := e.Decide(t.Context(), in); !errors.Is(err, policy.ErrInvalidInput) {
		t.Errorf("malformed Now: err = %v, want ErrInvalidInput", err)
	}
}

// TestDefaultPolicyBuiltinError: the server makes builtin errors fatal, so a
// grant time the policy can't parse is an evaluation error (which denies),
// not an answer.
func TestDefaultPolicyBuiltinError(t *testing.T) {
	e, _ := newEngine(t, policy.EngineConfig{})
	in := allowedInput()
	in.Grant.ExpiresAt = "soon"
	d, err := e.Decide(t.Context(), in)
	if !errors.Is(err, policy.ErrEvaluation) || !strings.Contains(err.Error(), "authz.rego:") {
		t.Errorf("Decide = %+v, %v; want ErrEvaluation naming authz.rego:line", d, err)
	}
}

func TestDecideContext(t *testing.T) {
	t.Run("canceled", func(t *testing.T) {
		e, _ := newEngine(t, policy.EngineConfig{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := e.Decide(ctx, allowedInput())
		if !errors.Is(err, policy.ErrEvaluation) || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want ErrEvaluation and context.Canceled", err)
		}
	})
	t.Run("eval timeout", func(t *testing.T) {
		// Millions of steps: far beyond the timeout, which must stop it.
		dir := policyDir(t, `package lockbox.authz

decision := {"allow": n > 0, "reasons": []} if {
	n := count({x |
		some i in numbers.range(1, 5000)
		some j in numbers.range(1, 5000)
		x := i * j
	})
}
`)
		e, _ := newEngine(t, policy.EngineConfig{Dir: dir, EvalTimeout: 20 * time.Millisecond})
		start := time.Now()
		_, err := e.Decide(t.Context(), allowedInput())
		if !errors.Is(err, policy.ErrEvaluation) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want ErrEvaluation and context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Decide took %s past a 20ms timeout", d)
		}
	})
}

func TestReloadKeepsLastGood(t *testing.T) {
	e, authz, good := editableDefault(t)
	rev := e.Revision()
	if reloads(e, "success") != 0 || reloads(e, "error") != 0 {
		t.Fatalf("reload counters start at %v/%v, want 0/0", reloads(e, "success"), reloads(e, "error"))
	}

	writeFile(t, authz, append(slices.Clone(good), "\nbroken if {\n"...))
	err := e.Reload()
	if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "authz.rego:") {
		t.Fatalf("Reload = %v, want ErrInvalidPolicy naming authz.rego:line", err)
	}
	if e.Revision() != rev {
		t.Error("a failed reload changed the revision")
	}
	if err := e.Ready(); err != nil {
		t.Errorf("Ready after a failed reload = %v", err)
	}
	if d, err := e.Decide(t.Context(), allowedInput()); err != nil || !d.Allow {
		t.Errorf("Decide after a failed reload = %+v, %v; want the last good policy's allow", d, err)
	}
	if reloads(e, "error") != 1 || reloads(e, "success") != 0 {
		t.Errorf("reloads error=%v success=%v, want 1 and 0", reloads(e, "error"), reloads(e, "success"))
	}

	// A good edit: the policy now denies writes... and everything else.
	writeFile(t, authz, []byte(strings.Replace(string(good),
		`decision := {"allow": true, "reasons": []} if {`,
		`decision := {"allow": true, "reasons": []} if {
	false`, 1)))
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload of a good policy: %v", err)
	}
	if e.Revision() == rev {
		t.Error("a successful reload kept the old revision")
	}
	if d, err := e.Decide(t.Context(), allowedInput()); err != nil || d.Allow || !slices.Equal(d.Reasons, []string{"not_allowed"}) {
		t.Errorf("Decide after reload = %+v, %v; want the new policy's not_allowed", d, err)
	}
	if reloads(e, "error") != 1 || reloads(e, "success") != 1 {
		t.Errorf("reloads error=%v success=%v, want 1 and 1", reloads(e, "error"), reloads(e, "success"))
	}
	if got := testutil.ToFloat64(policy.LoadedAtCollector(e)); got != float64(t0.Unix()) {
		t.Errorf("loaded timestamp = %v, want %v", got, t0.Unix())
	}
}

// TestReloadSwapsCatalog: the catalog is part of the bundle; an edit of
// data.json changes what Match finds, and a broken one changes nothing.
func TestReloadSwapsCatalog(t *testing.T) {
	dir := defaultDir(t)
	e, _ := newEngine(t, policy.EngineConfig{Dir: dir})
	catalog := filepath.Join(dir, policy.CatalogPath)
	b, err := os.ReadFile(catalog)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := e.Match("exchange", "GET", "/tenants/contoso/rules"); ok {
		t.Fatal("matched an activity not yet in the catalog")
	}
	added := strings.Replace(string(b), `"exchange": [`,
		`"exchange": [
    {"activity": "Get-InboxRule", "method": "GET", "path": "/tenants/{tenant}/rules", "access": "read"},`, 1)
	writeFile(t, catalog, []byte(added))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if a, _, ok := e.Match("exchange", "GET", "/tenants/contoso/rules"); !ok || a.Name != "Get-InboxRule" {
		t.Errorf("after reload Match = %+v, %v", a, ok)
	}
	in := allowedInput()
	in.Call.Path, in.Call.Activity = "/tenants/contoso/rules", "Get-InboxRule"
	if d, err := e.Decide(t.Context(), in); err != nil || !d.Allow {
		t.Errorf("the policy does not see the new activity: %+v, %v", d, err)
	}

	writeFile(t, catalog, []byte(`{"exchange": [{"activity": "Get-InboxRule", "method": "GET", "path": "/rules", "access": "read"}]}`))
	if err := e.Reload(); !errors.Is(err, policy.ErrInvalidCatalog) {
		t.Errorf("Reload of a broken catalog = %v, want ErrInvalidCatalog", err)
	}
	if _, _, ok := e.Match("exchange", "GET", "/tenants/contoso/rules"); !ok {
		t.Error("a broken catalog replaced the good one")
	}
}

// versionB is a policy directory unlike the default in both halves: its
// catalog names the default's Get-Mailbox route Find-Mailbox, and its
// policy denies every call with the reason "frozen".
func versionB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	catalog, err := fs.ReadFile(lockboxrego.FS, policy.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	renamed := bytes.Replace(catalog, []byte(`"Get-Mailbox"`), []byte(`"Find-Mailbox"`), 1)
	if bytes.Equal(renamed, catalog) {
		t.Fatal("the default catalog has no Get-Mailbox to rename")
	}
	writeFile(t, filepath.Join(dir, policy.CatalogPath), renamed)
	writeFile(t, filepath.Join(dir, "lockbox", "authz", "authz.rego"), []byte(`package lockbox.authz

decision := {"allow": false, "reasons": ["frozen"]}
`))
	return dir
}

// copyOver writes every file of src into dst, replacing those of the same
// name, as a deployment updating the policy directory in place does.
func copyOver(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(dst, rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotKeepsItsVersion: a snapshot taken before a reload keeps
// classifying and deciding with the version it was taken of, catalog and
// policy (and the policy's view of the catalog) alike, while the engine
// and every later snapshot serve the new version. The proxy relies on it
// to classify and judge a call with one version.
func TestSnapshotKeepsItsVersion(t *testing.T) {
	dir := defaultDir(t) // version A: the default
	e, _ := newEngine(t, policy.EngineConfig{Dir: dir})
	a := e.Snapshot()
	revA := e.Revision()
	if a.Revision() != revA {
		t.Fatalf("snapshot revision %s, engine %s", a.Revision(), revA)
	}
	copyOver(t, versionB(t), dir)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	b := e.Snapshot()
	if b.Revision() == revA || e.Revision() != b.Revision() {
		t.Fatalf("after reload: snapshot revision %s, engine %s, before %s", b.Revision(), e.Revision(), revA)
	}
	if a.Revision() != revA {
		t.Errorf("the old snapshot's revision changed to %s", a.Revision())
	}

	const method, path = "GET", "/tenants/contoso/mailboxes"
	in := allowedInput() // Get-Mailbox under a read grant
	renamed := allowedInput()
	renamed.Call.Activity = "Find-Mailbox"
	// What a Snapshot and the Engine both answer.
	type version interface {
		Match(service, method, path string) (policy.Activity, map[string]string, bool)
		Activities(service string) ([]string, bool)
		Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
	}
	for _, tt := range []struct {
		name     string
		snap     version
		activity string // what method and path are
		missing  string // the other version's name for them
		// decisions on Get-Mailbox and on Find-Mailbox
		allow, allowRenamed     bool
		reasons, reasonsRenamed []string
	}{
		{name: "snapshot before the reload", snap: a, activity: "Get-Mailbox", missing: "Find-Mailbox",
			allow: true, reasons: []string{},
			// A's policy judges with A's catalog, which has no Find-Mailbox.
			reasonsRenamed: []string{"unknown_activity"}},
		{name: "snapshot after the reload", snap: b, activity: "Find-Mailbox", missing: "Get-Mailbox",
			reasons: []string{"frozen"}, reasonsRenamed: []string{"frozen"}},
		{name: "engine after the reload", snap: e, activity: "Find-Mailbox", missing: "Get-Mailbox",
			reasons: []string{"frozen"}, reasonsRenamed: []string{"frozen"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if act, _, ok := tt.snap.Match("exchange", method, path); !ok || act.Name != tt.activity {
				t.Errorf("Match = %q, %v; want %s", act.Name, ok, tt.activity)
			}
			names, _ := tt.snap.Activities("exchange")
			if !slices.Contains(names, tt.activity) || slices.Contains(names, tt.missing) {
				t.Errorf("Activities = %v; want %s and not %s", names, tt.activity, tt.missing)
			}
			if d, err := tt.snap.Decide(t.Context(), in); err != nil || d.Allow != tt.allow || !slices.Equal(d.Reasons, tt.reasons) {
				t.Errorf("Decide(Get-Mailbox) = %+v, %v; want allow %v, reasons %q", d, err, tt.allow, tt.reasons)
			}
			if d, err := tt.snap.Decide(t.Context(), renamed); err != nil || d.Allow != tt.allowRenamed || !slices.Equal(d.Reasons, tt.reasonsRenamed) {
				t.Errorf("Decide(Find-Mailbox) = %+v, %v; want allow %v, reasons %q", d, err, tt.allowRenamed, tt.reasonsRenamed)
			}
		})
	}
	if a.Catalog() == b.Catalog() || e.Catalog() != b.Catalog() {
		t.Error("Catalog does not follow the snapshot it was asked of")
	}
}

// waitFor polls cond until it holds or 10 s pass: it waits on a watcher
// polling every few milliseconds, not on a fixed delay, and the deadline
// only bounds a failure (a loaded machine may take seconds).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	e, authz, good := editableDefault(t)
	startWatch(t, e, 5*time.Millisecond)

	if got := lastReloadOK(e); got != 1 {
		t.Errorf("lockbox_policy_last_reload_successful = %v at start-up", got)
	}
	rev := e.Revision()

	// A broken edit is counted once and changes nothing.
	writeFile(t, authz, []byte("package lockbox.authz\n\ndecision := {\n"))
	waitFor(t, "the broken edit to be counted", func() bool { return reloads(e, "error") == 1 })
	if e.Revision() != rev {
		t.Error("a broken edit changed the revision")
	}
	// ... and says so for as long as it is on disk, not only as it fails.
	// The watcher sets the gauge after it counted the reload, and after it
	// served a new version: the test waits for it rather than reading it
	// in between.
	waitFor(t, "lockbox_policy_last_reload_successful 0 with the broken edit on disk", func() bool { return lastReloadOK(e) == 0 })

	// A good edit is picked up.
	writeFile(t, authz, append(slices.Clone(good), "\n# reviewed\n"...))
	waitFor(t, "the good edit to load", func() bool { return e.Revision() != rev })
	waitFor(t, "lockbox_policy_last_reload_successful 1 once the good edit loaded", func() bool { return lastReloadOK(e) == 1 })
	if got := reloads(e, "error"); got != 1 {
		t.Errorf("reload errors = %v, want the one broken edit only", got)
	}
	if d, err := e.Decide(t.Context(), allowedInput()); err != nil || !d.Allow {
		t.Errorf("Decide = %+v, %v", d, err)
	}
}

// TestWatchConfigMapSwap lays the directory out as a Kubernetes ConfigMap
// volume does (visible names are links into "..data", itself a link to a
// timestamped directory) and swaps "..data" atomically, as the kubelet does.
func TestWatchConfigMapSwap(t *testing.T) {
	root := t.TempDir()
	version := func(name string, extra string) {
		t.Helper()
		if err := os.CopyFS(filepath.Join(root, name), lockboxrego.FS); err != nil {
			t.Fatal(err)
		}
		authz := filepath.Join(root, name, "lockbox", "authz", "authz.rego")
		b, err := os.ReadFile(authz)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, authz, append(b, extra...))
	}
	symlink := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_03_01_10_00_00.1", "")
	symlink("..2026_03_01_10_00_00.1", "..data")
	symlink("..data/activities", "activities")
	symlink("..data/lockbox", "lockbox")

	e, _ := newEngine(t, policy.EngineConfig{Dir: root})
	embedded, _ := newEngine(t, policy.EngineConfig{})
	if e.Revision() != embedded.Revision() {
		t.Fatalf("ConfigMap layout loaded as revision %s, want the default's %s (hidden directories must be skipped)", e.Revision(), embedded.Revision())
	}
	startWatch(t, e, 5*time.Millisecond)

	version("..2026_03_01_11_00_00.2", "\n# second version\n")
	symlink("..2026_03_01_11_00_00.2", "..data_tmp")
	if err := os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the swapped version to load", func() bool { return e.Revision() != embedded.Revision() })
}

// configMapVolume is a directory the way the kubelet's atomic writer lays
// out a ConfigMap volume: each version's files in a "..<timestamp>"
// directory, "..data" a link to the current one, and for each top-level
// name of the payload a link into "..data" (authz.rego -> ..data/authz.rego,
// activities -> ..data/activities).
type configMapVolume struct {
	t       *testing.T
	root    string
	payload map[string][]byte // path → content
	dir     string            // the "..<timestamp>" directory "..data" names
	version int
}

func newConfigMapVolume(t *testing.T, payload map[string][]byte) *configMapVolume {
	t.Helper()
	v := &configMapVolume{t: t, root: t.TempDir()}
	v.update(payload, nil, nil)
	return v
}

// topLevel is the set of payload's top-level names: the links the volume
// shows.
func topLevel(payload map[string][]byte) map[string]bool {
	names := map[string]bool{}
	for p := range payload {
		names[strings.SplitN(p, "/", 2)[0]] = true
	}
	return names
}

// update installs payload in the kubelet's order: the new timestamped
// directory is written, "..data" is swapped to it (an atomic rename), the
// links of new top-level names are created, and only then are the links of
// names the payload no longer has removed, and the old directory with
// them. beforeLinks, unless nil, runs after the swap and before the new
// links are created: while an added key has no link yet. between, unless
// nil, runs after the new links and before the removal: while a removed
// key's link points to nothing.
func (v *configMapVolume) update(payload map[string][]byte, beforeLinks, between func()) {
	t := v.t
	t.Helper()
	v.version++
	dir := fmt.Sprintf("..2026_03_01_%02d_00_00.%d", 9+v.version, v.version)
	for p, b := range payload {
		name := filepath.Join(v.root, dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(dir, filepath.Join(v.root, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.root, "..data_tmp"), filepath.Join(v.root, "..data")); err != nil {
		t.Fatal(err)
	}
	if beforeLinks != nil {
		beforeLinks()
	}
	old, now := topLevel(v.payload), topLevel(payload)
	for name := range now {
		if !old[name] {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.root, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if between != nil {
		between()
	}
	for name := range old {
		if !now[name] {
			if err := os.Remove(filepath.Join(v.root, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v.dir != "" {
		if err := os.RemoveAll(filepath.Join(v.root, v.dir)); err != nil {
			t.Fatal(err)
		}
	}
	v.payload, v.dir = payload, dir
}

// TestConfigMapKeyRemoval: removing a key from the policy ConfigMap is a
// normal change, not a broken policy. The kubelet swaps "..data" to the new
// version first and removes the key's link after, so for a moment that link
// points to nothing. A poll or a SIGHUP landing then counted a failed
// reload (lockbox_policy_reloads_total{result="error"}, the gauge 0, which
// fires LockboxPolicyReloadFailed) for a change that loads a moment later.
// The volume is read through the version "..data" names, not through that
// link: a poll or a SIGHUP landing then loads the new version, and counts
// no error.
func TestConfigMapKeyRemoval(t *testing.T) {
	base := defaultPayload(t)
	for _, key := range []struct {
		name    string
		content []byte
		// reasons the policy gives allowedInput with the key, and
		// without it
		with, without []string
	}{
		{"README.md", []byte("# Policies for contoso\n"), []string{}, []string{}},
		{"freeze.rego", []byte("package lockbox.authz\n\ndenials contains \"frozen\" if input.call.tenant == \"contoso\"\n"),
			[]string{"frozen"}, []string{}},
	} {
		for _, how := range []string{"poll", "SIGHUP"} {
			t.Run(key.name+"/"+how, func(t *testing.T) {
				payload := maps.Clone(base)
				payload[key.name] = key.content
				v := newConfigMapVolume(t, payload)
				var logs bytes.Buffer
				e, _ := newEngine(t, policy.EngineConfig{Dir: v.root, Logger: warnLogger(&logs)})
				if got := reasonsFor(t, e); !slices.Equal(got, key.with) {
					t.Fatalf("with %s: reasons %q, want %q", key.name, got, key.with)
				}
				seen := e.Revision()
				baseRev := revisionOfPayload(t, base)

				v.update(base, nil, func() {
					if _, err := os.Stat(filepath.Join(v.root, key.name)); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("%s does not point to nothing between the swap and its removal: %v", key.name, err)
					}
					seen = reloadBy(t, e, how, policy.UnsettledPolls-1, seen)
					wantNoReloadError(t, e, fmt.Sprintf("while %s's link points to nothing", key.name))
					if e.Revision() != baseRev {
						t.Errorf("while %s's link points to nothing: revision %s, want %s, the version \"..data\" names", key.name, e.Revision(), baseRev)
					}
					if got := reasonsFor(t, e); !slices.Equal(got, key.without) {
						t.Errorf("while %s's link points to nothing: reasons %q, want %q", key.name, got, key.without)
					}
				})
				policy.WatchPoll(e, seen)
				if got := reasonsFor(t, e); !slices.Equal(got, key.without) {
					t.Errorf("once the kubelet removed %s: reasons %q, want %q", key.name, got, key.without)
				}
				wantNoReloadError(t, e, "once the kubelet removed "+key.name)
				if strings.Contains(logs.String(), `"level":"ERROR"`) {
					t.Errorf("a key removal logged an error:\n%s", logs.String())
				}
			})
		}
	}
}

// revisionOfPayload is the revision a plain directory holding payload
// loads as.
func revisionOfPayload(t *testing.T, payload map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for p, b := range payload {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(p)), b)
	}
	e, _ := newEngine(t, policy.EngineConfig{Dir: dir})
	return e.Revision()
}

// TestConfigMapKeyAdded: adding a key to the policy ConfigMap loads the old
// version or the new one, never a mix. The kubelet swaps "..data" to the
// new version first and creates the new key's link after, so for a moment
// the links per key show the new version of the existing files without the
// new one: a version that never existed, which two agreeing readings
// loaded (a deny rule missing, or a compile error counted as a failed
// reload that fired LockboxPolicyReloadFailed).
func TestConfigMapKeyAdded(t *testing.T) {
	base := defaultPayload(t)
	for _, change := range []struct {
		name          string
		authz, freeze string // the new version's authz.rego addition, and its new key
	}{
		// Without freeze.rego, the mix denies less than either version.
		{"deny rule", "\n# contoso is frozen: see freeze.rego\n",
			"package lockbox.authz\n\ndenials contains \"frozen\" if input.call.tenant == \"contoso\"\n"},
		// Without freeze.rego, the mix does not compile.
		{"rule the new key defines", "\ndenials contains \"frozen\" if frozen\n",
			"package lockbox.authz\n\nfrozen if input.call.tenant == \"contoso\"\n"},
	} {
		for _, how := range []string{"poll", "SIGHUP"} {
			t.Run(change.name+"/"+how, func(t *testing.T) {
				next := maps.Clone(base)
				next["authz.rego"] = append(slices.Clone(base["authz.rego"]), change.authz...)
				next["freeze.rego"] = []byte(change.freeze)
				nextRev := revisionOfPayload(t, next)

				v := newConfigMapVolume(t, base)
				var logs bytes.Buffer
				e, _ := newEngine(t, policy.EngineConfig{Dir: v.root, Logger: warnLogger(&logs)})
				rev := e.Revision()
				seen := rev

				v.update(next, func() {
					if _, err := os.Lstat(filepath.Join(v.root, "freeze.rego")); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("freeze.rego has a link before the kubelet creates it: %v", err)
					}
					seen = reloadBy(t, e, how, policy.UnsettledPolls, seen)
					switch got := e.Revision(); got {
					case rev:
						t.Error("the new version, which \"..data\" names, was not loaded")
					case nextRev:
						if got := reasonsFor(t, e); !slices.Equal(got, []string{"frozen"}) {
							t.Errorf("new version loaded: reasons %q, want [frozen]", got)
						}
					default:
						t.Errorf("loaded revision %s before freeze.rego's link exists: neither the old version (%s) nor the new one (%s)",
							got, rev, nextRev)
					}
					wantNoReloadError(t, e, "before freeze.rego's link exists")
				}, nil)
				policy.WatchPoll(e, seen)
				if e.Revision() != nextRev {
					t.Errorf("once the kubelet added freeze.rego: revision %s, want %s", e.Revision(), nextRev)
				}
				wantNoReloadError(t, e, "once the kubelet added freeze.rego")
				if strings.Contains(logs.String(), `"level":"ERROR"`) {
					t.Errorf("a key addition logged an error:\n%s", logs.String())
				}
			})
		}
	}
}

// TestConfigMapVersionNames: a ConfigMap volume read through the version
// "..data" names is read under the names the user gave: a new
// "..<timestamp>" directory with the same files is the same revision, not
// a reload; an error names <dir>/authz.rego, not the timestamped path; and
// the volume's own hidden entries are never read as policy files.
func TestConfigMapVersionNames(t *testing.T) {
	base := defaultPayload(t)
	v := newConfigMapVolume(t, base)
	var logs bytes.Buffer
	e, _ := newEngine(t, policy.EngineConfig{Dir: v.root, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	rev := e.Revision()
	if want := revisionOfPayload(t, base); rev != want {
		t.Fatalf("ConfigMap volume loaded as revision %s, want %s, the plain directory's", rev, want)
	}

	// The same files again, as the kubelet writes them when another key of
	// the pod's volumes changes, and a leftover "..data_tmp" that names a
	// directory of broken Rego.
	v.update(maps.Clone(base), nil, nil)
	writeFile(t, filepath.Join(v.root, "..stale", "broken.rego"), []byte("package lockbox.authz\n\ndecision := {\n"))
	if err := os.Symlink("..stale", filepath.Join(v.root, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	seen := policy.WatchPoll(e, rev)
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload = %v", err)
	}
	if e.Revision() != rev || seen != rev {
		t.Errorf("the same files in a new timestamped directory: revision %s (poll saw %s), want %s", e.Revision(), seen, rev)
	}
	if got := reloads(e, "success"); got != 1 {
		t.Errorf("reloads success = %v, want only the SIGHUP's", got)
	}

	if err := os.Remove(filepath.Join(v.root, "..data_tmp")); err != nil { // or the next swap can't make its own
		t.Fatal(err)
	}
	broken := maps.Clone(base)
	broken["authz.rego"] = []byte("package lockbox.authz\n\ndecision := {\n")
	v.update(broken, nil, nil)
	err := e.Reload()
	if !errors.Is(err, policy.ErrInvalidPolicy) {
		t.Fatalf("Reload of a broken version = %v, want ErrInvalidPolicy", err)
	}
	if want := filepath.Join(v.root, "authz.rego"); !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "..2026") {
		t.Errorf("error %q does not name %s, the name the user knows", err, want)
	}
}

// TestConfigMapDataToNothing: a ConfigMap volume whose "..data" names a
// version that is gone (removed by the kubelet between a reading resolving
// "..data" and reading it, or a kubelet that failed half-way) is a
// directory still changing, and the error names "..data" and the version,
// not each key's link.
func TestConfigMapDataToNothing(t *testing.T) {
	v := newConfigMapVolume(t, defaultPayload(t))
	e, _ := newEngine(t, policy.EngineConfig{Dir: v.root})
	rev := e.Revision()
	if err := os.RemoveAll(filepath.Join(v.root, v.dir)); err != nil {
		t.Fatal(err)
	}
	err := e.Reload()
	if want := "..data: a symbolic link whose target does not exist: " + v.dir; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Reload = %v, want an error containing %q", err, want)
	}
	polls(e, rev, policy.UnsettledPolls-1)
	if reloads(e, "error") != 0 || e.Revision() != rev {
		t.Errorf("with \"..data\" naming nothing: %v reload errors, revision %s; want 0 and %s", reloads(e, "error"), e.Revision(), rev)
	}
}

// TestLinkToNothingThatStays: a link that points to nothing for
// UnsettledPolls polls in a row is not a directory still changing but a
// broken one (a link to a file never mounted): it is refused as any broken
// change is, once, with an error naming the link, and the gauge says so
// until it is gone.
func TestLinkToNothingThatStays(t *testing.T) {
	dir := defaultDir(t)
	var logs bytes.Buffer
	e, _ := newEngine(t, policy.EngineConfig{Dir: dir, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	errorLines := func() int { return strings.Count(logs.String(), `"level":"ERROR"`) }
	rev := e.Revision()
	link := filepath.Join(dir, "lockbox", "holiday.rego")
	if err := os.Symlink(filepath.Join("..data", "holiday.rego"), link); err != nil {
		t.Fatal(err)
	}

	seen := polls(e, rev, policy.UnsettledPolls-1)
	if reloads(e, "error") != 0 || lastReloadOK(e) != 1 || errorLines() != 0 {
		t.Fatalf("after %d polls: %v reload errors, last_reload_successful %v, %d error lines; want none yet:\n%s",
			policy.UnsettledPolls-1, reloads(e, "error"), lastReloadOK(e), errorLines(), logs.String())
	}
	seen = polls(e, seen, 3)
	if reloads(e, "error") != 1 || lastReloadOK(e) != 0 {
		t.Errorf("after %d polls: %v reload errors, last_reload_successful %v; want 1 and 0",
			policy.UnsettledPolls+2, reloads(e, "error"), lastReloadOK(e))
	}
	if errorLines() != 1 || !strings.Contains(logs.String(), "policy reload failed") ||
		!strings.Contains(logs.String(), `lockbox/holiday.rego: a symbolic link whose target does not exist: ..data/holiday.rego`) {
		t.Errorf("want one error line naming the link and its target, logs:\n%s", logs.String())
	}
	if e.Revision() != rev {
		t.Error("a directory with a link to nothing was loaded")
	}

	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	policy.WatchPoll(e, seen)
	if lastReloadOK(e) != 1 || reloads(e, "error") != 1 {
		t.Errorf("once the link is gone: last_reload_successful %v, %v reload errors; want 1 and 1", lastReloadOK(e), reloads(e, "error"))
	}
}

// scriptedFS serves a policy directory whose scripted files change content
// from one read to the next: the i-th read of a file returns its
// versions[i], and every read after the last returns the last. It stands
// for a directory that a deploy is changing while the engine reads it.
type scriptedFS struct {
	fs.FS // the files not scripted

	mu       sync.Mutex
	versions map[string][][]byte
	reads    map[string]int
}

func (f *scriptedFS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.versions[name]
	if !ok {
		return fs.ReadFile(f.FS, name)
	}
	v := vs[min(f.reads[name], len(vs)-1)]
	f.reads[name]++
	return slices.Clone(v), nil
}

func (f *scriptedFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.FS, name) }

// watchScripted starts watching, every millisecond, a policy directory
// whose files change as versions scripts (read 0 is NewEngine's), and
// returns the engine and the revision of the directory in its final state.
func watchScripted(t *testing.T, versions map[string][][]byte) (*policy.Engine, string) {
	t.Helper()
	e, want := scriptedEngine(t, versions)
	startWatch(t, e, time.Millisecond)
	return e, want
}

// TestWatchServesWhatItSaw: the watcher reloads a directory when the
// content it reads differs from what it read before, so what it loads must
// be that content. A deploy still writing the directory (here: a rule
// appended to authz.rego, read first whole, then half-written, then whole
// for good) must not leave the engine serving the half-written version
// once the directory has settled: the watcher sees no further change, so
// nothing would ever reload it.
func TestWatchServesWhatItSaw(t *testing.T) {
	const name = "lockbox/authz/authz.rego"
	a, err := fs.ReadFile(lockboxrego.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	// b freezes contoso; c is b with the new rule not yet written, which
	// still compiles and still allows contoso.
	b := append(slices.Clone(a), "\ndenials contains \"frozen\" if input.call.tenant == \"contoso\"\n"...)
	c := append(slices.Clone(a), '\n')
	e, want := watchScripted(t, map[string][][]byte{name: {a, b, c, b}})

	waitFor(t, "the settled version to load", func() bool { return e.Revision() == want })
	d, err := e.Decide(t.Context(), allowedInput())
	if err != nil || d.Allow || !slices.Equal(d.Reasons, []string{"frozen"}) {
		t.Errorf("Decide = %+v, %v; want denied as frozen", d, err)
	}
}

// TestWatchNeverServesAMixedReading: a ConfigMap swap that lands while the
// watcher walks the directory gives it the catalog of one version and the
// Rego of the next, a directory that never existed. The watcher must not
// serve it, even for one interval: only the version the swap installed is
// loaded, once.
//
// The test polls itself, one poll at a time: a watcher running beside it
// serves a version before it counts the reload, and the test could read
// the count in between.
func TestWatchNeverServesAMixedReading(t *testing.T) {
	// The first poll reads the old catalog, then the swap, then the new
	// policy.
	e, want := scriptedEngine(t, swapMidWalk(t))
	seen := e.Revision()
	for i := 0; e.Revision() != want; i++ {
		if i == policy.UnsettledPolls {
			t.Fatalf("the new version not loaded after %d polls", i)
		}
		seen = policy.WatchPoll(e, seen)
	}
	if n := reloads(e, "success"); n != 1 {
		t.Errorf("%v reloads to reach the new version, want 1: a mixed reading was served", n)
	}
}

// TestReloadNeverServesAMixedReading: what TestWatchNeverServesAMixedReading
// holds the watcher to, Reload (an operator's SIGHUP) must hold to as well.
// A swap landing while Reload walks the directory gave it the catalog of one
// version and the Rego of the next, and Reload served that directory, which
// never existed, until the watcher's next poll.
func TestReloadNeverServesAMixedReading(t *testing.T) {
	// Reload's first reading has the old catalog, then the swap, then the
	// new policy.
	e, want := scriptedEngine(t, swapMidWalk(t))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := e.Revision(); got != want {
		t.Errorf("Reload serves revision %s, want the swapped-in version's %s: it loaded a mixed reading", got, want)
	}
}

// TestReloadDirectoryThatNeverSettles: Reload reads until two readings in a
// row agree; a directory that changes at every reading is refused after
// UnsettledPolls of them, counted and shown like any refused reload, and
// the policy serving keeps serving.
func TestReloadDirectoryThatNeverSettles(t *testing.T) {
	good, err := fs.ReadFile(lockboxrego.FS, churnFile)
	if err != nil {
		t.Fatal(err)
	}
	e, fsys := churningEngine(t, good, nil)
	rev := e.Revision()
	fsys.set(true, good)
	err = e.Reload()
	if err == nil || !strings.Contains(err.Error(), "/etc/lockbox/policy") || !strings.Contains(err.Error(), "changed between every two readings") {
		t.Errorf("Reload = %v, want an error naming the directory and saying it never settled", err)
	}
	if e.Revision() != rev {
		t.Error("a directory that never settled was loaded")
	}
	if n := reloads(e, "error"); n != 1 {
		t.Errorf("reload errors = %v, want 1", n)
	}
	if v := lastReloadOK(e); v != 0 {
		t.Errorf("last_reload_successful = %v, want 0", v)
	}
	fsys.mu.Lock()
	reads := fsys.reads
	fsys.mu.Unlock()
	if reads != policy.UnsettledPolls {
		t.Errorf("Reload read the directory %d times, want %d", reads, policy.UnsettledPolls)
	}
	// Settled, the next SIGHUP loads it.
	fsys.set(false, append(slices.Clone(good), "\n# reviewed\n"...))
	if err := e.Reload(); err != nil || e.Revision() == rev {
		t.Errorf("Reload of the settled directory = %v, revision changed %t", err, e.Revision() != rev)
	}
}

func TestWatchWithoutDirWaitsForContext(t *testing.T) {
	e, _ := newEngine(t, policy.EngineConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		e.Watch(ctx, time.Millisecond)
		close(done)
	}()
	cancel()
	<-done
}

func TestEvaluationMetric(t *testing.T) {
	e, reg := newEngine(t, policy.EngineConfig{})
	for i := range 3 {
		decide := e.Decide
		if i == 0 { // the proxy's way: through a snapshot
			decide = e.Snapshot().Decide
		}
		if _, err := decide(t.Context(), allowedInput()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Decide(ctx, allowedInput()); err == nil {
		t.Fatal("no error on a canceled context")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "lockbox_policy_evaluation_duration_seconds" {
			m := mf.GetMetric()
			if len(m) != 1 || len(m[0].GetLabel()) != 0 {
				t.Fatalf("histogram has %d series or labels %v, want one without labels", len(m), m[0].GetLabel())
			}
			// The first call evaluates, the next two are remembered, and
			// the canceled one is an evaluation that failed.
			if got := m[0].GetHistogram().GetSampleCount(); got != 2 {
				t.Errorf("evaluations observed = %d, want 2 (errors included, remembered decisions not)", got)
			}
			if got := testutil.ToFloat64(policy.DecisionsCollector(e, "remembered")); got != 2 {
				t.Errorf("remembered decisions = %v, want 2", got)
			}
			if got := m[0].GetHistogram().GetBucket()[0].GetUpperBound(); got != 50e-6 {
				t.Errorf("first bucket = %v, want 50µs", got)
			}
			return
		}
	}
	t.Fatal("lockbox_policy_evaluation_duration_seconds not registered")
}

func TestMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := policy.NewEngine(policy.EngineConfig{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.NewEngine(policy.EngineConfig{Registerer: reg}); err == nil {
		t.Error("a second engine registered the same metrics without error")
	}
}

// TestReloadDataOnly: a reload that changes only the catalog (data, no
// Rego) takes effect from the next decision, even for an input whose
// decision the previous version remembered; decisions in flight during
// reloads get one version's answer or the other's, never an error.
func TestReloadDataOnly(t *testing.T) {
	dir := defaultDir(t)
	e, _ := newEngine(t, policy.EngineConfig{Dir: dir})
	in := allowedInput() // a Get-Mailbox read
	for range 2 {        // the second is served from memory
		if d, err := e.Decide(t.Context(), in); err != nil || !d.Allow {
			t.Fatalf("before the reload: %+v, %v; want allow", d, err)
		}
	}
	if got := testutil.ToFloat64(policy.DecisionsCollector(e, "remembered")); got != 1 {
		t.Fatalf("%v decisions remembered, want 1", got)
	}
	catalog := filepath.Join(dir, policy.CatalogPath)
	good, err := os.ReadFile(catalog)
	if err != nil {
		t.Fatal(err)
	}
	// Get-Mailbox becomes a write: the input's "read" no longer matches it.
	write := regexp.MustCompile(`("Get-Mailbox",[^\n]*"access": )"read"`).ReplaceAll(good, []byte(`$1"write"`))
	if bytes.Equal(write, good) {
		t.Fatal("the default catalog has no Get-Mailbox read to change")
	}

	// Decisions keep being asked while the catalog flips between the two.
	stop := make(chan struct{})
	done := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if _, err := e.Decide(t.Context(), in); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	for i := range 6 {
		next := good
		if i%2 == 0 {
			next = write
		}
		writeFile(t, catalog, next)
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, catalog, write)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("a decision during the reloads: %v", err)
		}
	}
	for range 2 {
		d, err := e.Decide(t.Context(), in)
		if err != nil || d.Allow || !slices.Equal(d.Reasons, []string{"unknown_activity"}) {
			t.Fatalf("after the data-only reload: %+v, %v; want unknown_activity", d, err)
		}
	}
}

// TestNondeterministicBuiltinsNotRemembered: a policy that calls a builtin
// whose result can differ between two evaluations of one input (an HTTP
// call to a risk service, a random draw) is not a function of its input,
// so its decisions are never served from memory: each call is evaluated.
// time.now_ns() is not one of them, since the engine evaluates at
// input.now, which a remembered decision is keyed by.
func TestNondeterministicBuiltinsNotRemembered(t *testing.T) {
	var calls atomic.Int64
	// A risk service that allows the first call only.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"allow": %t}`, calls.Add(1) == 1)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, rego string
		remember   bool
	}{
		{name: "http.send", rego: `decision := {"allow": http.send({"method": "GET", "url": "` + srv.URL + `", "force_json_decode": true}).body.allow, "reasons": []}`},
		{name: "rand.intn", rego: `decision := {"allow": true, "reasons": [sprintf("%d", [rand.intn("sample", 1000000000)])]}`},
		{name: "uuid.rfc4122", rego: `decision := {"allow": true, "reasons": [uuid.rfc4122("call")]}`},
		{name: "in a function of another rule", rego: `decision := {"allow": true, "reasons": [draw(1)]}

draw(n) := sprintf("%d", [rand.intn("sample", 1000000000 * n)])`},
		{name: "a function replaced by one under with", rego: `risk(_) := {"body": {"allow": true}}

decision := {"allow": r.body.allow, "reasons": []} if {
	r := risk({"method": "GET", "url": "` + srv.URL + `", "force_json_decode": true}) with risk as http.send
}`},
		{name: "time.now_ns", rego: `decision := {"allow": true, "reasons": [sprintf("%d", [time.now_ns()])]}`, remember: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			var logs bytes.Buffer
			dir := policyDir(t, "package lockbox.authz\n\n"+tc.rego+"\n")
			e, _ := newEngine(t, policy.EngineConfig{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			first, err := e.Decide(t.Context(), allowedInput())
			if err != nil {
				t.Fatal(err)
			}
			second, err := e.Decide(t.Context(), allowedInput())
			if err != nil {
				t.Fatal(err)
			}
			evaluated := testutil.ToFloat64(policy.DecisionsCollector(e, "evaluated"))
			remembered := testutil.ToFloat64(policy.DecisionsCollector(e, "remembered"))
			if tc.remember {
				if remembered != 1 || !slices.Equal(first.Reasons, second.Reasons) {
					t.Errorf("%v evaluated, %v remembered, decisions %+v and %+v; want the second remembered", evaluated, remembered, first, second)
				}
				return
			}
			if evaluated != 2 || remembered != 0 {
				t.Errorf("%v evaluated, %v remembered; want both calls evaluated", evaluated, remembered)
			}
			if first.Allow == second.Allow && slices.Equal(first.Reasons, second.Reasons) {
				t.Errorf("two calls got %+v: the second was not evaluated", first)
			}
			if !strings.Contains(logs.String(), "not remembered") {
				t.Errorf("the load log does not say decisions are not remembered:\n%s", logs.String())
			}
		})
	}
}

// churningFS serves a policy directory whose authz.rego has new content at
// every read while churn is set (a writer that never stops, or a file
// system that returns different bytes each time), and settled once it is
// not.
type churningFS struct {
	fs.FS

	mu      sync.Mutex
	churn   bool
	settled []byte
	reads   int
}

const churnFile = "lockbox/authz/authz.rego"

func (f *churningFS) ReadFile(name string) ([]byte, error) {
	if name != churnFile {
		return fs.ReadFile(f.FS, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.churn {
		return slices.Clone(f.settled), nil
	}
	f.reads++
	return fmt.Appendf(slices.Clone(f.settled), "\n# write %d\n", f.reads), nil
}

func (f *churningFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.FS, name) }

func (f *churningFS) set(churn bool, settled []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.churn, f.settled = churn, settled
}

// TestWatchDirectoryThatNeverSettles: the watcher loads only what two
// readings in a row agree on, so a directory that changes at every reading
// is never loaded. After UnsettledPolls such polls the engine says so once:
// a warning naming the directory, a reload error, and
// lockbox_policy_last_reload_successful 0 (the policy on disk is not the one
// deciding, which is what LockboxPolicyReloadFailed alerts on). Once the
// directory settles, the gauge follows what it settled on.
func TestWatchDirectoryThatNeverSettles(t *testing.T) {
	good, err := fs.ReadFile(lockboxrego.FS, churnFile)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(slices.Clone(good), "\n# reviewed\n"...)
	tests := []struct {
		name       string
		settleOn   []byte
		wantLoaded bool // whether settling loads a new revision
	}{
		{"settles on a new version", edited, true},
		{"settles back on the version serving", good, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e, fsys := churningEngine(t, good, warnLogger(&logs))
			rev := e.Revision()
			warnings := func() int { return strings.Count(logs.String(), `"level":"WARN"`) }

			fsys.set(true, good)
			seen := polls(e, rev, policy.UnsettledPolls-1)
			// A deploy still writing the directory is no one's problem yet.
			if warnings() != 0 || lastReloadOK(e) != 1 || reloads(e, "error") != 0 {
				t.Fatalf("after %d unsettled polls: %d warnings, last_reload_successful %v, %v reload errors; want none yet:\n%s",
					policy.UnsettledPolls-1, warnings(), lastReloadOK(e), reloads(e, "error"), logs.String())
			}
			seen = polls(e, seen, 3)
			if warnings() != 1 || !strings.Contains(logs.String(), `"source":"/etc/lockbox/policy"`) {
				t.Errorf("want one warning naming the directory, logs:\n%s", logs.String())
			}
			if lastReloadOK(e) != 0 || reloads(e, "error") != 1 || reloads(e, "success") != 0 {
				t.Errorf("last_reload_successful %v, reloads error=%v success=%v; want 0, 1, 0",
					lastReloadOK(e), reloads(e, "error"), reloads(e, "success"))
			}
			if e.Revision() != rev {
				t.Error("a directory that never settled was loaded")
			}

			fsys.set(false, tt.settleOn)
			policy.WatchPoll(e, seen)
			if lastReloadOK(e) != 1 {
				t.Errorf("last_reload_successful = %v once the directory settled", lastReloadOK(e))
			}
			if loaded := e.Revision() != rev; loaded != tt.wantLoaded {
				t.Errorf("new revision loaded = %v, want %v", loaded, tt.wantLoaded)
			}
			if reloads(e, "error") != 1 {
				t.Errorf("reload errors = %v, want the one unsettled spell", reloads(e, "error"))
			}
		})
	}
}

// TestWallClockCertificateChecksNotRemembered: OPA's certificate chain
// checks verify validity at the process's wall clock, not at the evaluation
// time the engine passes (input.now), and OPA does not mark them
// nondeterministic. A policy calling one is therefore not a function of its
// input: a certificate that expires between two calls of one second would
// keep its remembered allow. Such a policy is evaluated for every call,
// like one calling http.send.
func TestWallClockCertificateChecksNotRemembered(t *testing.T) {
	chain := testCertChain(t)
	for _, tc := range []struct{ name, call string }{
		{"parse_and_verify_certificates", "crypto.x509.parse_and_verify_certificates(chain)"},
		{"parse_and_verify_certificates_with_options", `crypto.x509.parse_and_verify_certificates_with_options(chain, {"KeyUsages": ["KeyUsageAny"]})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			dir := policyDir(t, "package lockbox.authz\n\nchain := `"+chain+"`\n\n"+
				"decision := {\"allow\": ok, \"reasons\": []} if {\n\t[ok, _] := "+tc.call+"\n}\n")
			e, _ := newEngine(t, policy.EngineConfig{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			for i := range 2 {
				d, err := e.Decide(t.Context(), allowedInput())
				if err != nil {
					t.Fatal(err)
				}
				if !d.Allow {
					// The chain is valid for an hour either side of the
					// wall clock: the check must pass, or the policy does
					// not test what it is meant to.
					t.Fatalf("call %d: %+v; want the chain verified", i, d)
				}
			}
			evaluated := testutil.ToFloat64(policy.DecisionsCollector(e, "evaluated"))
			remembered := testutil.ToFloat64(policy.DecisionsCollector(e, "remembered"))
			if evaluated != 2 || remembered != 0 {
				t.Errorf("%v evaluated, %v remembered; want both calls evaluated", evaluated, remembered)
			}
			if !strings.Contains(logs.String(), "not remembered") || !strings.Contains(logs.String(), "crypto.x509.") {
				t.Errorf("the load log does not say decisions are not remembered, naming the builtin:\n%s", logs.String())
			}
		})
	}
}

// testCertChain returns a root and a leaf it signed, PEM, root first, as
// OPA's crypto.x509.parse_and_verify_certificates takes them; both are
// valid for an hour either side of the wall clock, which is what OPA checks
// them against.
func testCertChain(t *testing.T) string {
	t.Helper()
	now := time.Now()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, leafKey := key(), key()
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err = x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, root, &leafKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
}

// TestWatchAfterReload: what a Reload (an operator's SIGHUP) read is what
// the watcher's next poll compares with. The watcher remembered only what
// it had read itself, so its next poll loaded a version Reload had loaded
// already, or refused a broken one again: a second "policy reloaded" line
// and reload counted for one change.
func TestWatchAfterReload(t *testing.T) {
	good, err := fs.ReadFile(lockboxrego.FS, churnFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content []byte
		result  string // the reload's
	}{
		{"a new version", append(slices.Clone(good), "\n# reviewed\n"...), "success"},
		{"a broken version", []byte("package lockbox.authz\n\ndecision := \n"), "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, fsys := churningEngine(t, good, nil)
			seen := e.Revision()
			fsys.set(false, tt.content)
			if err := e.Reload(); (err == nil) != (tt.result == "success") {
				t.Fatalf("Reload: %v, want %s", err, tt.result)
			}
			rev := e.Revision()
			seen = polls(e, seen, 2)
			if got := reloads(e, tt.result); got != 1 {
				t.Errorf("reloads %s = %v after Reload and two polls, want 1", tt.result, got)
			}
			if e.Revision() != rev {
				t.Error("the polls changed the revision Reload left")
			}
			// A change after it is the watcher's to load.
			fsys.set(false, append(slices.Clone(good), "\n# later\n"...))
			policy.WatchPoll(e, seen)
			if got := reloads(e, "success"); got != map[string]float64{"success": 2, "error": 1}[tt.result] {
				t.Errorf("reloads success = %v after a later change, want it loaded", got)
			}
		})
	}
}

// TestDocumentedEvalDeadline: where rego/README.md and README.md give the
// deadline a policy evaluation runs under ("a deadline of 250 ms", "its
// 250 ms deadline"), it is the one Lockbox applies, DefaultEvalTimeout,
// which no LOCKBOX_ setting changes ("lockbox serve" leaves
// EngineConfig.EvalTimeout at zero). Security teams size a policy's
// http.send calls by it.
func TestDocumentedEvalDeadline(t *testing.T) {
	stated := regexp.MustCompile(`\b(?:deadline of (\d+) ms|(\d+) ms deadline)\b`)
	for _, doc := range []string{"../rego/README.md", "../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		ms := stated.FindAllStringSubmatch(strings.Join(strings.Fields(string(b)), " "), -1)
		if len(ms) == 0 {
			t.Errorf("%s does not give the policy's evaluation deadline as \"a deadline of N ms\" or \"its N ms deadline\"", doc)
		}
		for _, m := range ms {
			if got, want := m[1]+m[2], strconv.FormatInt(policy.DefaultEvalTimeout.Milliseconds(), 10); got != want {
				t.Errorf("%s: %q: the evaluation deadline is %s ms (policy.DefaultEvalTimeout)", doc, m[0], want)
			}
		}
	}
}
