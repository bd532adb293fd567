package policy

import (
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The input's object keys, built once. Terms are never modified by
// evaluation, so every call's input shares them.
var (
	keyOperator = ast.StringTerm("operator")
	keyCall     = ast.StringTerm("call")
	keyGrant    = ast.StringTerm("grant")
	keyTenant   = ast.StringTerm("tenant")
	keyNow      = ast.StringTerm("now")

	keyID    = ast.StringTerm("id")
	keyRoles = ast.StringTerm("roles")

	keyMethod   = ast.StringTerm("method")
	keyPath     = ast.StringTerm("path")
	keyService  = ast.StringTerm("service")
	keyActivity = ast.StringTerm("activity")
	keyAccess   = ast.StringTerm("access")
	keyClientIP = ast.StringTerm("client_ip")

	keyRequestID  = ast.StringTerm("request_id")
	keyOperatorID = ast.StringTerm("operator")
	keyActivities = ast.StringTerm("activities")
	keyApprover   = ast.StringTerm("approver")
	keyApprovedAt = ast.StringTerm("approved_at")
	keyTenantOK   = ast.StringTerm("tenant_approved")
	keyExpiresAt  = ast.StringTerm("expires_at")

	keyLockboxEnabled = ast.StringTerm("lockbox_enabled")
)

// inputValue builds the AST value the policy sees as input: the same value
// that decoding json.Marshal(in) would give (FuzzInputBuilder holds it to
// that), built directly because that is several times faster than the JSON
// round trip (BenchmarkInputBuilder). Keep it in step with the json tags in
// input.go.
func inputValue(in *Input) ast.Value {
	return ast.NewObject(
		ast.Item(keyOperator, ast.ObjectTerm(
			ast.Item(keyID, stringTerm(in.Operator.ID)),
			ast.Item(keyRoles, stringsTerm(in.Operator.Roles)),
		)),
		ast.Item(keyCall, ast.ObjectTerm(
			ast.Item(keyMethod, stringTerm(in.Call.Method)),
			ast.Item(keyPath, stringTerm(in.Call.Path)),
			ast.Item(keyService, stringTerm(in.Call.Service)),
			ast.Item(keyActivity, stringTerm(in.Call.Activity)),
			ast.Item(keyAccess, stringTerm(in.Call.Access)),
			ast.Item(keyTenant, stringTerm(in.Call.Tenant)),
			ast.Item(keyClientIP, stringTerm(in.Call.ClientIP)),
		)),
		ast.Item(keyGrant, grantTerm(in.Grant)),
		ast.Item(keyTenant, ast.ObjectTerm(
			ast.Item(keyID, stringTerm(in.Tenant.ID)),
			ast.Item(keyLockboxEnabled, ast.BooleanTerm(in.Tenant.LockboxEnabled)),
		)),
		ast.Item(keyNow, stringTerm(in.Now)),
	)
}

func grantTerm(g *Grant) *ast.Term {
	if g == nil {
		return ast.NullTerm()
	}
	return ast.ObjectTerm(
		ast.Item(keyRequestID, stringTerm(g.RequestID)),
		ast.Item(keyTenant, stringTerm(g.Tenant)),
		ast.Item(keyOperatorID, stringTerm(g.Operator)),
		ast.Item(keyService, stringTerm(g.Service)),
		ast.Item(keyActivities, stringsTerm(g.Activities)),
		ast.Item(keyApprover, stringTerm(g.Approver)),
		ast.Item(keyTenantOK, ast.BooleanTerm(g.TenantApproved)),
		ast.Item(keyApprovedAt, stringTerm(g.ApprovedAt)),
		ast.Item(keyExpiresAt, stringTerm(g.ExpiresAt)),
	)
}

// stringsTerm mirrors encoding/json: a nil slice is null, an empty one [].
func stringsTerm(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = stringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

// stringTerm mirrors encoding/json, which replaces each byte of invalid
// UTF-8 with U+FFFD. Without this the policy would see different strings
// depending on how the input reached it (opa eval on a logged input versus
// the engine), and two distinct invalid strings could compare equal in one
// path and not the other.
func stringTerm(s string) *ast.Term {
	if utf8.ValidString(s) {
		return ast.StringTerm(s)
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return ast.StringTerm(string(b))
}
