package policy

import (
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputFields is a set of the input's leaf fields (input.now aside: the
// memo keeps it apart). A policy's decision can depend only on the fields it
// reads, so the memo keys a decision by those alone: with the default
// policy, which reads neither input.call.path nor input.call.client_ip, a
// decision made for one message of a mailbox serves the other messages of
// that second too.
type inputFields uint32

const (
	fOperatorID inputFields = 1 << iota
	fOperatorRoles
	fCallMethod
	fCallPath
	fCallService
	fCallActivity
	fCallAccess
	fCallTenant
	fCallClientIP
	fGrantRequestID
	fGrantTenant
	fGrantOperator
	fGrantService
	fGrantActivities
	fGrantApprover
	fGrantTenantApproved
	fGrantApprovedAt
	fGrantExpiresAt
	fTenantID
	fTenantLockboxEnabled

	allInputFields = fTenantLockboxEnabled<<1 - 1
)

// fieldPaths names each leaf by its path in the input document, as the
// policy spells it (see inputValue).
var fieldPaths = map[string]inputFields{
	"operator.id":            fOperatorID,
	"operator.roles":         fOperatorRoles,
	"call.method":            fCallMethod,
	"call.path":              fCallPath,
	"call.service":           fCallService,
	"call.activity":          fCallActivity,
	"call.access":            fCallAccess,
	"call.tenant":            fCallTenant,
	"call.client_ip":         fCallClientIP,
	"grant.request_id":       fGrantRequestID,
	"grant.tenant":           fGrantTenant,
	"grant.operator":         fGrantOperator,
	"grant.service":          fGrantService,
	"grant.activities":       fGrantActivities,
	"grant.approver":         fGrantApprover,
	"grant.tenant_approved":  fGrantTenantApproved,
	"grant.approved_at":      fGrantApprovedAt,
	"grant.expires_at":       fGrantExpiresAt,
	"tenant.id":              fTenantID,
	"tenant.lockbox_enabled": fTenantLockboxEnabled,
}

// readsOf returns the input fields the compiled modules may read. It is
// conservative: every reference rooted at input counts, wherever it is (rule
// bodies and heads, functions' arguments, comprehensions, with-targets,
// imports), and a reference counts for every field below the longest
// constant path it spells. So `input.grant.activities[_]` reads
// grant.activities, `input.call[k]` every field of call, and `input` itself
// (walk(input), object.get(input, ...), x := input) every field. Builtins
// can't reach the input except through such a reference, so a field no
// reference reaches can't change a decision.
func readsOf(modules map[string]*ast.Module) inputFields {
	var reads inputFields
	for _, m := range modules {
		count := func(r ast.Ref) bool {
			if r.HasPrefix(ast.InputRootRef) {
				reads |= fieldsUnder(r[1:])
			}
			return false
		}
		ast.WalkRefs(m, count)
		// OPA's visitors skip a rule head's reference (o[input.call.path]
		// := 1); the compiler moves its terms into the body today, which
		// an upgrade could change.
		walkHeadRefTerms(m, func(t *ast.Term) { ast.WalkRefs(t, count) })
	}
	return reads
}

// walkHeadRefTerms calls f with each term of every rule head's reference
// after its first (o[x].y: x and y), else chains included: the terms no
// OPA visitor walks.
func walkHeadRefTerms(m *ast.Module, f func(*ast.Term)) {
	ast.WalkRules(m, func(r *ast.Rule) bool {
		if r.Head != nil {
			if ref := r.Head.Ref(); len(ref) > 1 {
				for _, t := range ref[1:] {
					f(t)
				}
			}
		}
		return false
	})
}

// fieldsUnder returns the leaves at or below the constant prefix of path.
func fieldsUnder(path ast.Ref) inputFields {
	var parts []string
	for _, t := range path {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
	}
	if len(parts) == 0 {
		return allInputFields
	}
	prefix := strings.Join(parts, ".")
	var fs inputFields
	for p, f := range fieldPaths {
		// At or below the prefix (input.grant: all of grant's fields),
		// or the prefix below the leaf (input.grant.activities[0]).
		if p == prefix || strings.HasPrefix(p, prefix+".") || strings.HasPrefix(prefix, p+".") {
			fs |= f
		}
	}
	return fs
}

// has reports whether fs includes f.
func (fs inputFields) has(f inputFields) bool { return fs&f != 0 }

// volatileBuiltins returns, sorted, the builtins the compiled modules call
// whose results can differ between two evaluations of one input: those OPA
// marks nondeterministic, such as http.send, net.lookup_ip_addr, rand.intn
// and uuid.rfc4122. A policy calling one is not a function of its input,
// so the memo must not serve its decisions: a risk service consulted by
// http.send would otherwise be asked once a second, whatever it answers
// meanwhile. time.now_ns is the exception: the engine evaluates at
// input.now, which the memo keys a decision by.
//
// OPA does not mark the certificate chain checks nondeterministic, yet
// they are: they verify validity at the process's wall clock, not at the
// evaluation time, so a certificate that expires between two calls of one
// second would keep its remembered allow. They count too (wallClock).
//
// It is conservative: a call counts wherever it is, even in a rule the
// decision never reaches or under a with that replaces the builtin; so
// does a builtin that a with puts in a function's place.
func volatileBuiltins(modules map[string]*ast.Module) []string {
	var names []string
	check := func(op ast.Ref) {
		name := op.String()
		b, ok := ast.BuiltinMap[name]
		if ok && (b.Nondeterministic && name != ast.NowNanos.Name || wallClock[name]) && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	vis := ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			if x.IsCall() {
				check(x.Operator())
			}
		case ast.Call: // a call nested in a term
			if len(x) > 0 {
				if op, ok := x[0].Value.(ast.Ref); ok {
					check(op)
				}
			}
		case *ast.With:
			// `f(x) with f as http.send` calls http.send, though no call
			// names it: the builtin is the value a function is replaced by.
			if op, ok := x.Value.Value.(ast.Ref); ok {
				check(op)
			}
		}
		return false
	})
	for _, m := range modules {
		vis.Walk(m)
		walkHeadRefTerms(m, func(t *ast.Term) { vis.Walk(t) })
	}
	slices.Sort(names)
	return names
}

// wallClock names the builtins that read the process's wall clock although
// OPA does not mark them nondeterministic: x509.Certificate.Verify checks
// validity at time.Now() unless given a time, and
// crypto.x509.parse_and_verify_certificates gives none (the _with_options
// form only when its options name a CurrentTime, which volatileBuiltins
// does not look into).
var wallClock = map[string]bool{
	ast.CryptoX509ParseAndVerifyCertificates.Name:            true,
	ast.CryptoX509ParseAndVerifyCertificatesWithOptions.Name: true,
}
