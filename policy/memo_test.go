package policy

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

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

// TestMemoKeyFollowsReads: with the fields a policy reads, the key changes
// with each of them and with nothing else; whether there is a grant is
// always in it.
func TestMemoKeyFollowsReads(t *testing.T) {
	set := map[string]func(*Input){
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

// memoPolicy is a policy that reads every part of the input, the time
// included, so that an input the memo mixed up would show as a different
// decision.
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

// TestMemoMatchesEvaluation is the fast path held to the full policy: over
// generated inputs, the decision Snapshot.Decide serves (evaluated, or
// remembered from an earlier identical input) is always the one a full
// evaluation of the policy gives. It runs the default policy and one that
// reads every part of the input.
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
	for name, d := range map[string]string{"default policy": dir, "policy reading every field": custom} {
		t.Run(name, func(t *testing.T) {
			e, err := NewEngine(EngineConfig{FS: os.DirFS(d), Dir: d, EvalTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			s := e.Snapshot()
			rng := rand.New(rand.NewPCG(1, 2))
			remembered := 0
			// Few distinct values per field, so that identical inputs recur
			// and the memo is exercised, across a few seconds of input.now.
			for i := range 3000 {
				in := genInput(rng, i/600)
				got, gotErr := s.Decide(t.Context(), in)
				want, wantErr := s.evaluate(t.Context(), &in)
				if (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("input %d %+v: fast path error %v, full evaluation error %v", i, in, gotErr, wantErr)
				}
				if got.Allow != want.Allow || !slices.Equal(got.Reasons, want.Reasons) {
					t.Fatalf("input %d %+v: fast path %+v, full evaluation %+v", i, in, got, want)
				}
				if _, ok := s.memo.lookup(in.Now, appendKey(nil, &in, s.b.reads)); ok {
					remembered++
				}
			}
			if remembered == 0 {
				t.Fatal("nothing was remembered: the test did not exercise the memo")
			}
		})
	}
}

// genInput draws an input from a small space: every field takes one of a
// few values, some of them empty or absent, and input.now one of a few
// times (second picks which second of the run).
func genInput(rng *rand.Rand, second int) Input {
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	in := Input{
		Operator: Operator{ID: pick("op-1", "op-2", ""), Roles: [][]string{{"operator"}, {}, {"operator", "audit-reader"}}[rng.IntN(3)]},
		Call: Call{Method: pick("GET", "POST", "DELETE"), Path: pick("/tenants/contoso/mailboxes", "/tenants/contoso/secret", "/tenants/fabrikam/mailboxes"),
			Service: pick("exchange", "sharepoint"), Activity: pick("Get-Mailbox", "Remove-MailboxMessage", "Nope"),
			Access: pick("read", "write"), Tenant: pick("contoso", "fabrikam", ""), ClientIP: pick("192.0.2.10", "10.0.0.1")},
		Tenant: Tenant{ID: "contoso", LockboxEnabled: rng.IntN(2) == 0},
		Now:    time.Date(2026, 3, 1, 13, 59, 58+second%4, 0, time.UTC).Format(time.RFC3339),
	}
	if rng.IntN(5) > 0 {
		in.Grant = &Grant{RequestID: "req-1", Tenant: pick("contoso", "fabrikam"), Operator: pick("op-1", "op-2"),
			Service: pick("exchange", "sharepoint"), Activities: [][]string{{}, {"Get-Mailbox"}, {"Remove-MailboxMessage"}}[rng.IntN(3)],
			Approver: pick("gina@contoso.example", "mary@provider.example"), TenantApproved: rng.IntN(2) == 0,
			ApprovedAt: "2026-03-01T10:00:00Z", ExpiresAt: pick("2026-03-01T14:00:00Z", "2026-03-01T14:00:00.5Z", "bad")}
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
