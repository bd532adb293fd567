package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/policy"
)

// TestGrantFieldMisspellingRefused: the type checker can't see into
// input.grant (null or a grant), so a misspelt field of it loaded, was
// undefined on every call, and a denial written with it never fired: here
// a call under another tenant's grant was allowed. A field spelt after
// input.grant that a grant does not have is now refused at load, wherever
// the reference is, naming its file and line.
func TestGrantFieldMisspellingRefused(t *testing.T) {
	const head = `package lockbox.authz

default decision := {"allow": false, "reasons": ["not_allowed"]}

decision := {"allow": true, "reasons": []} if {
	is_object(input.grant)
	not blocked
}

decision := {"allow": false, "reasons": ["blocked"]} if blocked

`
	for _, tt := range []struct{ name, rules string }{
		{"in a body", "blocked if input.grant.tennant != input.call.tenant\n"},
		{"below the field", "blocked if input.grant.activity[_] == \"Get-Mailbox\"\n"},
		{"in a comprehension", "blocked if count([x | x := input.grant.requestid]) == 0\n"},
		{"in a rule head", "o[input.grant.tennant] := 1\n\nblocked if o.contoso == 2\n"},
		{"in a function's argument", "f(x) := x\n\nblocked if f(input.grant.Tenant) != input.call.tenant\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.NewEngine(policy.EngineConfig{Dir: policyDir(t, head+tt.rules)})
			if !errors.Is(err, policy.ErrInvalidPolicy) {
				t.Fatalf("NewEngine = %v; want ErrInvalidPolicy for a field input.grant does not have", err)
			}
			for _, want := range []string{"policy.rego:1", "input.grant has no field", "request_id, service, tenant"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		})
	}
	// Spelt right, the same denial loads and denies another tenant's grant.
	e, err := policy.NewEngine(policy.EngineConfig{Dir: policyDir(t, head+
		"blocked if input.grant.tenant != input.call.tenant\n\nblocked if input.grant == null\n\nblocked if \"Remove-Mailbox\" in input.grant.activities\n")})
	if err != nil {
		t.Fatal(err)
	}
	in := allowedInput()
	if d, err := e.Decide(context.Background(), in); err != nil || !d.Allow {
		t.Fatalf("the grant's own tenant: %+v, %v", d, err)
	}
	in.Grant.Tenant = "fabrikam"
	if d, err := e.Decide(context.Background(), in); err != nil || d.Allow {
		t.Errorf("another tenant's grant: %+v, %v; want denied", d, err)
	}
}
