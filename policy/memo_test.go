package policy

import (
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus/testutil"

	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

// fullInput has every field of Input set, for the tests that change one
// field at a time.
func fullInput() Input {
	return Input{
		Operator: Operator{ID: "op-1", Roles: []string{"operator"}},
		Call: Call{Method: "GET", Path: "/tenants/contoso/mailboxes", Service: "exchange", Activity: "Get-Mailbox",
			Access: "read", Tenant: "contoso", ClientIP: "192.0.2.10"},
		Grant: &Grant{RequestID: "req-1", Tenant: "contoso", Operator: "op-1", Service: "exchange",
			Activities: []string{"Get-Mailbox"}, Approver: "gina@contoso.example", TenantApproved: true,
			ApprovedAt: "2026-03-01T10:00:00Z", ExpiresAt: "2026-03-01T14:00:00Z"},
		Tenant: Tenant{ID: "contoso", LockboxEnabled: true},
		Now:    "2026-03-01T11:00:00Z",
	}
}

// TestMemoKeyCoversEveryField changes each field of Input in turn, found by
// reflection, and requires the memo key to change with it (Now excepted: a
// generation holds one value of it). A field added to Input but not to
// appendKey would let two inputs that differ in it share a decision; this
// test fails on it.
func TestMemoKeyCoversEveryField(t *testing.T) {
	base := fullInput()
	want := string(appendKey(nil, &base, allInputFields))
	var visit func(path string, v reflect.Value)
	visit = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				visit(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
			return
		case reflect.Pointer:
			if path == ".Grant" {
				saved := v.Elem().Interface()
				v.Set(reflect.Zero(v.Type()))
				if string(appendKey(nil, &base, allInputFields)) == want {
					t.Errorf("%s: nil and set encode alike", path)
				}
				p := reflect.New(v.Type().Elem())
				p.Elem().Set(reflect.ValueOf(saved))
				v.Set(p)
			}
			visit(path, v.Elem())
			return
		case reflect.String:
			if path == ".Now" {
				return
			}
			old := v.String()
			v.SetString(old + "x")
			defer v.SetString(old)
		case reflect.Bool:
			v.SetBool(!v.Bool())
			defer v.SetBool(!v.Bool())
		case reflect.Slice:
			old := v.Interface()
			v.Set(reflect.Append(v, reflect.ValueOf("x")))
			defer v.Set(reflect.ValueOf(old))
		default:
			t.Fatalf("%s: a %s field; teach appendKey (and this test) about it", path, v.Kind())
		}
		if string(appendKey(nil, &base, allInputFields)) == want {
			t.Errorf("%s: changing it leaves the memo key as it was; add it to appendKey", path)
		}
	}
	visit("", reflect.ValueOf(&base).Elem())
	// Moving bytes between neighbouring fields must change the key too.
	a, b := fullInput(), fullInput()
	a.Call.Method, a.Call.Path = "GE", "T/tenants/contoso/mailboxes"
	if string(appendKey(nil, &a, allInputFields)) == string(appendKey(nil, &b, allInputFields)) {
		t.Error("bytes moved between fields encode alike")
	}
}

// fieldSetters changes each leaf of the input, by its path in the input
// document (fieldPaths).
var fieldSetters = map[string]func(*Input){
	"operator.id":            func(in *Input) { in.Operator.ID += "x" },
	"operator.roles":         func(in *Input) { in.Operator.Roles = append(in.Operator.Roles, "x") },
	"call.method":            func(in *Input) { in.Call.Method += "x" },
	"call.path":              func(in *Input) { in.Call.Path += "x" },
	"call.service":           func(in *Input) { in.Call.Service += "x" },
	"call.activity":          func(in *Input) { in.Call.Activity += "x" },
	"call.access":            func(in *Input) { in.Call.Access += "x" },
	"call.tenant":            func(in *Input) { in.Call.Tenant += "x" },
	"call.client_ip":         func(in *Input) { in.Call.ClientIP += "x" },
	"grant.request_id":       func(in *Input) { in.Grant.RequestID += "x" },
	"grant.tenant":           func(in *Input) { in.Grant.Tenant += "x" },
	"grant.operator":         func(in *Input) { in.Grant.Operator += "x" },
	"grant.service":          func(in *Input) { in.Grant.Service += "x" },
	"grant.activities":       func(in *Input) { in.Grant.Activities = append(in.Grant.Activities, "x") },
	"grant.approver":         func(in *Input) { in.Grant.Approver += "x" },
	"grant.tenant_approved":  func(in *Input) { in.Grant.TenantApproved = !in.Grant.TenantApproved },
	"grant.approved_at":      func(in *Input) { in.Grant.ApprovedAt += "x" },
	"grant.expires_at":       func(in *Input) { in.Grant.ExpiresAt += "x" },
	"tenant.id":              func(in *Input) { in.Tenant.ID += "x" },
	"tenant.lockbox_enabled": func(in *Input) { in.Tenant.LockboxEnabled = !in.Tenant.LockboxEnabled },
}

// TestMemoKeyFollowsReads: with the fields a policy reads, the key changes
// with each of them and with nothing else; whether there is a grant is
// always in it.
func TestMemoKeyFollowsReads(t *testing.T) {
	set := fieldSetters
	if len(set) != len(fieldPaths) {
		t.Fatalf("%d setters for %d fields", len(set), len(fieldPaths))
	}
	for path, f := range fieldPaths {
		base := fullInput()
		want := string(appendKey(nil, &base, f))
		for other, change := range set {
			in := fullInput()
			change(&in)
			if changed := string(appendKey(nil, &in, f)) != want; changed != (other == path) {
				t.Errorf("reading only %s: changing %s changes the key: %t", path, other, changed)
			}
		}
		noGrant := fullInput()
		noGrant.Grant = nil
		if string(appendKey(nil, &noGrant, f)) == want {
			t.Errorf("reading only %s: no grant and a grant encode alike", path)
		}
	}
}

// TestReadsOf: the fields a policy may read, found in its compiled modules,
// are every field under each reference's constant path; a reference to the
// whole input, or one whose path is not constant below input, reads all.
func TestReadsOf(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       inputFields
	}{
		{"leaves", `allow if input.call.method == "GET"
allow if input.grant.tenant_approved`, fCallMethod | fGrantTenantApproved},
		{"below a leaf", `allow if input.grant.activities[_] == "x"`, fGrantActivities},
		{"a whole object", `allow if is_object(input.grant)`, fGrantRequestID | fGrantTenant | fGrantOperator | fGrantService |
			fGrantActivities | fGrantApprover | fGrantTenantApproved | fGrantApprovedAt | fGrantExpiresAt},
		{"a variable key", `allow if { some k; input.tenant[k] == true }`, fTenantID | fTenantLockboxEnabled},
		{"the whole input", `allow if { walk(input, [p, v]); v == "x" }`, allInputFields},
		{"a function's argument", `f(x) := x
allow if f(input.call.client_ip) == "10.0.0.1"`, fCallClientIP},
		{"only now", `allow if input.now != ""`, 0},
		{"an import", `import input.call as c
allow if c.path == "/"`, fCallPath},
		{"an import used whole", `import input.call as c
allow if count(c) > 7`, fCallMethod | fCallPath | fCallService | fCallActivity | fCallAccess | fCallTenant | fCallClientIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ast.ParseModuleWithOpts("p.rego", "package p\n"+tc.body, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
			if c.Compile(map[string]*ast.Module{"p.rego": m}); c.Failed() {
				t.Fatal(c.Errors)
			}
			if got := readsOf(c.Modules); got != tc.want {
				t.Errorf("reads %020b, want %020b", got, tc.want)
			}
		})
	}
	// The default policy: what makes the memo pay in production.
	e, err := NewEngine(EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reads := e.Snapshot().b.reads
	for _, f := range []inputFields{fCallPath, fCallClientIP} {
		if reads.has(f) {
			t.Errorf("the default policy reads %020b; the memo would key on every path", f)
		}
	}
	for _, f := range []inputFields{fOperatorID, fCallActivity, fCallTenant, fGrantExpiresAt, fTenantLockboxEnabled} {
		if !reads.has(f) {
			t.Errorf("the default policy is found not to read %020b", f)
		}
	}
}

// TestReadsInRuleHeadRefs: a rule head's reference (o[input.call.path].x)
// is read and called like a body, though OPA's visitors skip it. The
// compiler moves such terms into the body today; the modules here are
// parsed, not compiled, as an OPA that stopped doing so would leave them.
func TestReadsInRuleHeadRefs(t *testing.T) {
	m, err := ast.ParseModuleWithOpts("p.rego", `package p

o[input.call.path].x := 1

s[input.grant.activities[0]] contains 1

r[rand.intn("x", 10)].y := 1

q[v].z := 1 if v := 1

else[http.send({"method": "GET", "url": input.call.client_ip})].z := 2
`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]*ast.Module{"p.rego": m}
	if got, want := readsOf(mods), fCallPath|fGrantActivities|fCallClientIP; got != want {
		t.Errorf("reads %020b, want %020b", got, want)
	}
	if got, want := volatileBuiltins(mods), []string{"http.send", "rand.intn"}; !slices.Equal(got, want) {
		t.Errorf("volatileBuiltins = %q, want %q", got, want)
	}
}

// TestVolatileBuiltins: the builtins found to make a policy's decisions
// unfit to remember, wherever the call is; none in the default policy.
func TestVolatileBuiltins(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"none", `allow if input.call.method == "GET"`, nil},
		{"the clock", `allow if time.now_ns() > 0`, nil},
		{"a lookup", `allow if count(net.lookup_ip_addr("example.com")) > 0`, []string{"net.lookup_ip_addr"}},
		{"nested in a comprehension and a head", `ids := [uuid.rfc4122(x) | some x in ["a", "b"]]

r := opa.runtime()

allow if rand.intn("x", 10) > count(ids)`, []string{"opa.runtime", "rand.intn", "uuid.rfc4122"}},
		{"replacing a function under with", `f(_) := {}

allow if f({"method": "GET", "url": "https://risk.example"}) with f as http.send`, []string{"http.send"}},
		{"a certificate check at the wall clock", `allow if crypto.x509.parse_and_verify_certificates(input.call.path)[0]

ok(c) := crypto.x509.parse_and_verify_certificates_with_options(c, {})[0]`, []string{"crypto.x509.parse_and_verify_certificates", "crypto.x509.parse_and_verify_certificates_with_options"}},
		{"in a rule head's reference", `o[rand.intn("x", 10)].y := 1

allow if count(o) > 0`, []string{"rand.intn"}},
		{"in a function", `f(u) := http.send({"method": "GET", "url": u})

allow if f("https://risk.example").status_code == 200`, []string{"http.send"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ast.ParseModuleWithOpts("p.rego", "package p\n"+tc.body, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
			if c.Compile(map[string]*ast.Module{"p.rego": m}); c.Failed() {
				t.Fatal(c.Errors)
			}
			if got := volatileBuiltins(c.Modules); !slices.Equal(got, tc.want) {
				t.Errorf("volatileBuiltins = %q, want %q", got, tc.want)
			}
		})
	}
	e, err := NewEngine(EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if v := e.Snapshot().b.volatile; len(v) > 0 {
		t.Errorf("the default policy calls %q: its decisions would never be remembered", v)
	}
}

// snapshotOf loads a policy directory of the default catalog and the
// modules srcs (lockbox/p0.rego, lockbox/p1.rego, ...) and returns its
// snapshot.
func snapshotOf(t *testing.T, srcs ...string) *Snapshot {
	t.Helper()
	catalog, err := fs.ReadFile(lockboxrego.FS, CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{CatalogPath: {Data: catalog}}
	for i, src := range srcs {
		fsys[fmt.Sprintf("lockbox/p%d.rego", i)] = &fstest.MapFile{Data: []byte(src)}
	}
	e, err := NewEngine(EngineConfig{FS: fsys, EvalTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e.Snapshot()
}

// TestMemoFollowsEveryWayToReadInput holds the memo to full evaluation for
// each way Rego can reach the input: two inputs that differ in one field
// must not share a decision when the policy reads that field, however it
// reads it. Each policy answers with what it read (json.marshal of it in
// the reasons), so a field it reads changes its decision, and the test
// first checks that: a case whose decision does not change with the fields
// it claims to read would prove nothing. Then, on a fresh snapshot, the
// decision for the base input is remembered and the input with one field
// changed must get the decision a full evaluation gives it, not the
// remembered one.
func TestMemoFollowsEveryWayToReadInput(t *testing.T) {
	const (
		authz = "package lockbox.authz\n\n"
		other = "package lockbox.other\n\n"
	)
	// A decision naming x, the value read.
	answer := func(x string) string {
		return authz + `decision := {"allow": true, "reasons": [json.marshal(` + x + `)]}` + "\n"
	}
	const all = ""
	for _, tc := range []struct {
		name string
		srcs []string
		// depends lists the fields the decision changes with, as paths or
		// prefixes of paths (all: every field, and whether there is a
		// grant).
		depends []string
	}{
		{"a variable key", []string{answer(`[input[k] | some k in ["call", "grant", "operator", "tenant"]]`)}, []string{all}},
		{"some k, a variable key below", []string{authz + "decision := {\"allow\": true, \"reasons\": [json.marshal(x)]} if {\n\tx := [v | some k; v := input.call[k]]\n}\n"}, []string{"call."}},
		{"a computed key", []string{answer(`input[concat("", ["ca", "ll"])]`)}, []string{"call."}},
		{"walk(input)", []string{answer(`[v | walk(input, [_, v])]`)}, []string{all}},
		{"object.get(input, ...)", []string{answer(`object.get(input, ["call", "path"], "")`)}, []string{"call.path"}},
		{"json.marshal(input)", []string{answer(`input`)}, []string{all}},
		{"object.filter(input, ...)", []string{answer(`object.filter(input, {"call"})`)}, []string{"call."}},
		{"object.union with input", []string{answer(`object.union({}, input)`)}, []string{all}},
		{"a template string", []string{authz + `decision := {"allow": true, "reasons": [$"{input}"]}` + "\n"}, []string{all}},
		{"input passed whole to a function", []string{authz + "f(x) := json.marshal(x)\n\n" + `decision := {"allow": true, "reasons": [f(input)]}` + "\n"}, []string{all}},
		{"input assigned whole", []string{authz + "decision := {\"allow\": true, \"reasons\": [json.marshal(x)]} if {\n\tx := input\n}\n"}, []string{all}},
		{"input unified whole", []string{authz + "decision := {\"allow\": true, \"reasons\": [json.marshal(x)]} if {\n\tx = input\n}\n"}, []string{all}},
		{"input inside a composite", []string{answer(`[{"a": {input}}]`)}, []string{all}},
		{"a rule whose value is input", []string{authz + "doc := input\n\n" + `decision := {"allow": true, "reasons": [json.marshal(doc)]}` + "\n"}, []string{all}},
		{"an else branch", []string{authz + "r := 1 if false\n\nelse := input\n\n" + `decision := {"allow": true, "reasons": [json.marshal(r)]}` + "\n"}, []string{all}},
		{"a partial set of input", []string{authz + "s contains input\n\n" + `decision := {"allow": true, "reasons": [json.marshal(s)]}` + "\n"}, []string{all}},
		{"a partial object keyed by input", []string{authz + "o[input.call.path] := 1\n\n" + `decision := {"allow": true, "reasons": [json.marshal(o)]}` + "\n"}, []string{"call.path"}},
		{"a rule head's reference through input", []string{authz + "o[input.call.path].x := 1\n\n" + `decision := {"allow": true, "reasons": [json.marshal(o)]}` + "\n"}, []string{"call.path"}},
		{"a comprehension over input.call", []string{answer(`[v | some v in input.call]`)}, []string{"call."}},
		{"every over input.call", []string{authz + `base := {"method": "GET", "path": "/tenants/contoso/mailboxes", "service": "exchange", "activity": "Get-Mailbox", "access": "read", "tenant": "contoso", "client_ip": "192.0.2.10"}

default decision := {"allow": false, "reasons": []}

decision := {"allow": true, "reasons": []} if {
	every k, v in input.call {
		v == base[k]
	}
}
`}, []string{"call."}},
		{"import input", []string{authz + "import input\n\n" + `decision := {"allow": true, "reasons": [json.marshal(input)]}` + "\n"}, []string{all}},
		{"import input.call", []string{authz + "import input.call as c\n\n" + `decision := {"allow": true, "reasons": [json.marshal(c)]}` + "\n"}, []string{"call."}},
		{"another module reads it", []string{
			authz + "import data.lockbox.other\n\n" + `decision := {"allow": true, "reasons": [other.r]}` + "\n",
			other + "r := json.marshal(input.grant)\n",
		}, []string{"grant"}},
		{"data that aliases input", []string{
			authz + "import data.lockbox.other\n\n" + `decision := {"allow": true, "reasons": [json.marshal(other.doc.tenant)]}` + "\n",
			other + "doc := input\n",
		}, []string{"tenant."}},
		{"walk over data that aliases input", []string{
			answer(`[v | walk(data.lockbox.other, [_, v])]`),
			other + "doc := input.operator\n",
		}, []string{"operator."}},
		{"with input as a value built from input", []string{
			authz + "import data.lockbox.other\n\ndecision := {\"allow\": true, \"reasons\": [x]} if {\n\tx := other.r with input as {\"call\": input.call}\n}\n",
			other + "r := json.marshal(input)\n",
		}, []string{"call."}},
		{"with input.x as a constant", []string{
			authz + "import data.lockbox.other\n\ndecision := {\"allow\": true, \"reasons\": [x]} if {\n\tx := other.r with input.x as 1\n}\n",
			other + "r := json.marshal(input)\n",
		}, []string{all}},
		{"with data as input", []string{
			authz + "import data.lockbox.other\n\ndecision := {\"allow\": true, \"reasons\": [x]} if {\n\tx := json.marshal(other.q) with data.lockbox.other.doc as input\n}\n",
			other + "doc := 1\n\nq := doc\n",
		}, []string{all}},
		{"print", []string{authz + "decision := {\"allow\": true, \"reasons\": []} if {\n\tprint(input)\n}\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dependsOn := func(field string) bool {
				for _, p := range tc.depends {
					if field == p || strings.HasPrefix(field, p) {
						return true
					}
				}
				return false
			}
			changes := maps.Clone(fieldSetters)
			changes["grant"] = func(in *Input) { in.Grant = nil }
			for field, change := range changes {
				s := snapshotOf(t, tc.srcs...)
				base, in := fullInput(), fullInput()
				change(&in)
				before, err := s.Decide(t.Context(), base)
				if err != nil {
					t.Fatal(err)
				}
				want, err := s.evaluate(t.Context(), &in)
				if err != nil {
					t.Fatal(err)
				}
				if differs := before.Allow != want.Allow || !slices.Equal(before.Reasons, want.Reasons); differs != dependsOn(field) {
					t.Fatalf("changing %s changes the decision: %t; the case is wrong", field, differs)
				}
				got, err := s.Decide(t.Context(), in)
				if err != nil {
					t.Fatal(err)
				}
				if got.Allow != want.Allow || !slices.Equal(got.Reasons, want.Reasons) {
					t.Errorf("changing %s: Decide served %+v, a full evaluation gives %+v", field, got, want)
				}
			}
		})
	}
}

// memoPolicy is a policy whose decision depends on a field of each part
// of the input, the time included, so that an input the memo mixed up
// would show as a different decision. It reads them by plain references.
const memoPolicy = `package lockbox.authz

default decision := {"allow": false, "reasons": ["not_allowed"]}

decision := {"allow": true, "reasons": []} if {
	count(denials) == 0
}

decision := {"allow": false, "reasons": sort(denials)} if count(denials) > 0

denials contains "odd_second" if time.clock([time.now_ns(), "UTC"])[2] % 2 == 1
denials contains "no_grant" if not is_object(input.grant)
denials contains "path" if contains(input.call.path, "secret")
denials contains "ip" if startswith(input.call.client_ip, "10.")
denials contains "role" if not "operator" in input.operator.roles
denials contains "approval" if {
	input.tenant.lockbox_enabled
	not input.grant.tenant_approved
}
denials contains "write" if input.call.access == "write"
denials contains "approver" if input.grant.approver == "mary@provider.example"
denials contains "expired" if time.parse_rfc3339_ns(input.grant.expires_at) <= time.parse_rfc3339_ns(input.now)
`

// indirectPolicy reads the input only in the ways the memo's analysis must
// see through (readsOf): a whole object walked, variable keys, the input
// passed whole to a function and to object.get, an import, a comprehension,
// every, and a rule of another package that holds part of the input. Its
// decision depends on every field genInput varies.
const indirectPolicy = `package lockbox.authz

import data.lockbox.held
import input.grant as g

decision := {"allow": count(denials) == 0, "reasons": sort(denials)}

denials contains "operator" if {
	walk(input.operator, [_, v])
	v == "op-2"
}

denials contains "call" if {
	some k
	input.call[k] in {"10.0.0.1", "DELETE", "sharepoint", "Nope", "write", "fabrikam", "/tenants/contoso/secret"}
}

denials contains "tenant" if fabrikam(input)

denials contains "lockbox" if object.get(input, ["tenant", "lockbox_enabled"], true) == false

denials contains "request" if object.get(input, ["grant", "request_id"], "") == "req-2"

denials contains "grant" if {
	some k, v in g
	k in {"tenant", "operator", "service", "approver", "approved_at", "expires_at"}
	v in {"fabrikam", "op-2", "sharepoint", "mary@provider.example", "2026-03-01T09:00:00Z", "bad"}
}

denials contains "approved" if g.tenant_approved == false

denials contains "activities" if count([a | some a in held.activities]) == 0

denials contains "roles" if {
	every r in input.operator.roles {
		r != "audit-reader"
	}
}

denials contains "no_grant" if held.grant == null

denials contains "odd_second" if time.clock([time.now_ns(), "UTC"])[2] % 2 == 1

fabrikam(x) if x.tenant.id == "fabrikam"
`

// heldPolicy is the other package indirectPolicy reads the input through.
const heldPolicy = `package lockbox.held

grant := input.grant

activities := object.get(grant, "activities", [])
`

// TestMemoMatchesEvaluation is the fast path held to the full policy: over
// generated inputs, the decision Snapshot.Decide serves (evaluated, or
// remembered from an earlier identical input) is always the one a full
// evaluation of the policy gives. It runs the default policy, one that
// reads each part of the input by plain references, and one that reads it
// only indirectly; each must have served decisions from memory (counted by
// the metric, not by what the memo holds), or the test would not have
// exercised the memo at all.
func TestMemoMatchesEvaluation(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, lockboxrego.FS); err != nil {
		t.Fatal(err)
	}
	custom := t.TempDir()
	if err := os.CopyFS(custom, lockboxrego.FS); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(custom, "lockbox", "authz", "authz.rego"), []byte(memoPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	indirect := t.TempDir()
	if err := os.CopyFS(indirect, lockboxrego.FS); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(indirect, "lockbox", "authz", "authz.rego"), []byte(indirectPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(indirect, "lockbox", "held.rego"), []byte(heldPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]string{"default policy": dir, "policy reading each part": custom, "policy reading indirectly": indirect} {
		t.Run(name, func(t *testing.T) {
			e, err := NewEngine(EngineConfig{FS: os.DirFS(d), Dir: d, EvalTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			s := e.Snapshot()
			rng := rand.New(rand.NewPCG(1, 2))
			served, decisions := 0, map[string]bool{}
			// Over a few seconds of input.now, inputs drawn from a small
			// pool per second, so that identical inputs recur and the memo
			// serves them, and half of them with one field drawn afresh, so
			// that inputs differing in a single field meet in the memo.
			var pool []Input
			for i := range 3000 {
				if i%600 == 0 {
					pool = pool[:0]
					for range 40 {
						pool = append(pool, genInput(rng, i/600))
					}
				}
				in := cloneInput(pool[rng.IntN(len(pool))])
				if rng.IntN(2) == 0 {
					fresh := genInput(rng, i/600)
					inputParts[rng.IntN(len(inputParts))](&in, &fresh)
				}
				hits := testutil.ToFloat64(e.metrics.memoHits)
				got, gotErr := s.Decide(t.Context(), in)
				if testutil.ToFloat64(e.metrics.memoHits) > hits {
					served++
				}
				want, wantErr := s.evaluate(t.Context(), &in)
				if (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("input %d %+v: fast path error %v, full evaluation error %v", i, in, gotErr, wantErr)
				}
				if got.Allow != want.Allow || !slices.Equal(got.Reasons, want.Reasons) {
					t.Fatalf("input %d %+v: fast path %+v, full evaluation %+v", i, in, got, want)
				}
				decisions[fmt.Sprint(want, wantErr)] = true
			}
			// A memo that never served, or a policy that always gives the
			// same answer, would pass without testing anything.
			if served == 0 || len(decisions) < 2 {
				t.Fatalf("%d decisions served from memory, %d distinct decisions: the test did not exercise the memo", served, len(decisions))
			}
		})
	}
}

// cloneInput copies in deeply.
func cloneInput(in Input) Input {
	in.Operator.Roles = slices.Clone(in.Operator.Roles)
	if in.Grant != nil {
		g := *in.Grant
		g.Activities = slices.Clone(g.Activities)
		in.Grant = &g
	}
	return in
}

// inputParts each copy one field of Input, or the presence of a grant,
// from src to dst.
var inputParts = []func(dst, src *Input){
	func(d, s *Input) { d.Operator.ID = s.Operator.ID },
	func(d, s *Input) { d.Operator.Roles = s.Operator.Roles },
	func(d, s *Input) { d.Call.Method = s.Call.Method },
	func(d, s *Input) { d.Call.Path = s.Call.Path },
	func(d, s *Input) { d.Call.Service = s.Call.Service },
	func(d, s *Input) { d.Call.Activity = s.Call.Activity },
	func(d, s *Input) { d.Call.Access = s.Call.Access },
	func(d, s *Input) { d.Call.Tenant = s.Call.Tenant },
	func(d, s *Input) { d.Call.ClientIP = s.Call.ClientIP },
	func(d, s *Input) { d.Tenant.ID = s.Tenant.ID },
	func(d, s *Input) { d.Tenant.LockboxEnabled = s.Tenant.LockboxEnabled },
	func(d, s *Input) { d.Grant = s.Grant },
	func(d, s *Input) {
		if d.Grant != nil && s.Grant != nil {
			d.Grant.RequestID, d.Grant.Tenant = s.Grant.RequestID, s.Grant.Tenant
		}
	},
	func(d, s *Input) {
		if d.Grant != nil && s.Grant != nil {
			d.Grant.Operator, d.Grant.Service = s.Grant.Operator, s.Grant.Service
		}
	},
	func(d, s *Input) {
		if d.Grant != nil && s.Grant != nil {
			d.Grant.Activities, d.Grant.Approver = s.Grant.Activities, s.Grant.Approver
		}
	},
	func(d, s *Input) {
		if d.Grant != nil && s.Grant != nil {
			d.Grant.TenantApproved, d.Grant.ApprovedAt, d.Grant.ExpiresAt = s.Grant.TenantApproved, s.Grant.ApprovedAt, s.Grant.ExpiresAt
		}
	},
}

// genInput draws an input from a small space: every field takes one of a
// few values, some of them empty or absent (a nil list too), and input.now
// one of a few times (second picks which second of the run). The grant's
// times straddle the default policy's boundaries against those times: an
// expiry within the run's seconds, windows of exactly 4 hours and just
// over, windows that end before they begin, and approvals after input.now
// by less and by more than its clock tolerance, depending on the second.
func genInput(rng *rand.Rand, second int) Input {
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	in := Input{
		Operator: Operator{ID: pick("op-1", "op-2", ""), Roles: [][]string{{"operator"}, {}, {"operator", "audit-reader"}, nil}[rng.IntN(4)]},
		Call: Call{Method: pick("GET", "POST", "DELETE"), Path: pick("/tenants/contoso/mailboxes", "/tenants/contoso/secret", "/tenants/fabrikam/mailboxes"),
			Service: pick("exchange", "sharepoint"), Activity: pick("Get-Mailbox", "Remove-MailboxMessage", "Nope"),
			Access: pick("read", "write"), Tenant: pick("contoso", "fabrikam", ""), ClientIP: pick("192.0.2.10", "10.0.0.1")},
		Tenant: Tenant{ID: pick("contoso", "fabrikam"), LockboxEnabled: rng.IntN(2) == 0},
		Now:    time.Date(2026, 3, 1, 13, 59, 58+second%4, 0, time.UTC).Format(time.RFC3339),
	}
	if rng.IntN(5) > 0 {
		in.Grant = &Grant{RequestID: pick("req-1", "req-2"), Tenant: pick("contoso", "fabrikam"), Operator: pick("op-1", "op-2"),
			Service: pick("exchange", "sharepoint"), Activities: [][]string{{}, {"Get-Mailbox"}, {"Remove-MailboxMessage"}, nil}[rng.IntN(4)],
			Approver: pick("gina@contoso.example", "mary@provider.example"), TenantApproved: rng.IntN(2) == 0,
			ApprovedAt: pick("2026-03-01T10:00:00Z", "2026-03-01T09:00:00Z", "2026-03-01T14:00:30Z", "2026-03-01T14:00:59.5Z"),
			ExpiresAt:  pick("2026-03-01T14:00:00Z", "2026-03-01T14:00:00.5Z", "2026-03-01T14:04:00Z", "bad")}
	}
	return in
}

// TestMemoBounded: one generation remembers at most memoMaxEntries inputs,
// and a later input.now replaces it, so memory stays bounded.
func TestMemoBounded(t *testing.T) {
	var mm memo
	for i := range memoMaxEntries + 10 {
		mm.store("2026-03-01T11:00:00Z", fmt.Appendf(nil, "k%d", i), Decision{Allow: true})
	}
	if n := len(mm.gen.Load().m); n != memoMaxEntries {
		t.Fatalf("generation holds %d entries, want %d", n, memoMaxEntries)
	}
	mm.store("2026-03-01T11:00:01Z", []byte("k"), Decision{})
	if g := mm.gen.Load(); g.now != "2026-03-01T11:00:01Z" || len(g.m) != 1 {
		t.Fatalf("a later second did not replace the generation: %s, %d entries", g.now, len(g.m))
	}
	// An earlier second is neither served nor stored.
	mm.store("2026-03-01T11:00:00Z", []byte("old"), Decision{Allow: true})
	if _, ok := mm.lookup("2026-03-01T11:00:00Z", []byte("old")); ok {
		t.Fatal("a decision for a past second was remembered")
	}
}

// TestMemoAfterClockStepsBack: when the clock steps back (NTP correcting a
// clock that ran ahead, a VM resumed), the calls of each second are still
// decided once. The generation of the time before the step would otherwise
// refuse every earlier second, and every call would be evaluated until the
// clock caught up with it again, an hour later here.
func TestMemoAfterClockStepsBack(t *testing.T) {
	e, err := NewEngine(EngineConfig{EvalTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	snap := e.Snapshot()
	ahead := fullInput()
	ahead.Now = "2026-03-01T12:00:00Z"
	if d, err := snap.Decide(t.Context(), ahead); err != nil || !d.Allow {
		t.Fatalf("Decide before the step = %+v, %v; want allow", d, err)
	}
	in := fullInput() // 11:00:00, an hour before
	hits := testutil.ToFloat64(e.metrics.memoHits)
	for range 2 {
		if d, err := snap.Decide(t.Context(), in); err != nil || !d.Allow {
			t.Fatalf("Decide after the step = %+v, %v; want allow", d, err)
		}
	}
	if got := testutil.ToFloat64(e.metrics.memoHits) - hits; got != 1 {
		t.Errorf("after the clock stepped back an hour, %v of two identical calls of one second were remembered, want 1", got)
	}
}

// TestMemoBytesBounded: a generation holds at most memoMaxBytes of keys and
// reasons, however long each key is. A key holds the fields the policy
// reads, so with a policy that reads input.call.path an operator choosing
// paths of a megabyte (a request line may be that long) would otherwise
// pin a megabyte per entry, up to memoMaxEntries of them: 64 GiB.
func TestMemoBytesBounded(t *testing.T) {
	const now = "2026-03-01T11:00:00Z"
	var mm memo
	key := make([]byte, 1<<20)
	for i := range 64 {
		key[0], key[1] = byte(i), byte(i>>8)
		mm.store(now, key, Decision{Allow: true, Reasons: []string{}})
	}
	held := 0
	for k, d := range mm.gen.Load().m {
		held += len(k)
		for _, r := range d.Reasons {
			held += len(r)
		}
	}
	if held > 32<<20 {
		t.Fatalf("the generation holds %d MiB of keys", held>>20)
	}
	// Reasons count too: a policy may put a path in one.
	mm = memo{}
	for i := range 64 {
		mm.store(now, []byte{byte(i)}, Decision{Reasons: []string{string(key)}})
	}
	if n := len(mm.gen.Load().m); n*len(key) > 32<<20 {
		t.Fatalf("the generation holds %d reasons of a MiB", n)
	}
	// A later second starts with the whole budget.
	mm.store("2026-03-01T11:00:01Z", []byte("k"), Decision{Allow: true})
	if _, ok := mm.lookup("2026-03-01T11:00:01Z", []byte("k")); !ok {
		t.Fatal("a later second remembers nothing")
	}
}
