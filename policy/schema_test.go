package policy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/policy"
)

// TestLoadRefusesInputFieldsTheProxyNeverSends: a policy reading a field
// the input does not have, or comparing one with a value of another type,
// is refused at load with the file, the line and the field, rather than
// served with a rule that never holds: a misspelt denial would otherwise
// never deny.
func TestLoadRefusesInputFieldsTheProxyNeverSends(t *testing.T) {
	const head = `package lockbox.authz

default decision := {"allow": false, "reasons": ["not_allowed"]}

`
	tests := []struct {
		name, rule, want string
	}{
		{"misspelt call field", `blocked if input.call.tenant_id == "fabrikam"`,
			`policy\.rego:5: rego_type_error: undefined ref: input\.call\.tenant_id`},
		{"camel case", `blocked if input.call.clientIp == "192.0.2.1"`,
			`policy\.rego:5: rego_type_error: undefined ref: input\.call\.clientIp`},
		{"no such section", `blocked if input.request.tenant == "fabrikam"`,
			`policy\.rego:5: rego_type_error: undefined ref: input\.request\.tenant`},
		{"operator field", `blocked if input.operator.name == "mallory"`,
			`policy\.rego:5: rego_type_error: undefined ref: input\.operator\.name`},
		{"tenant field", `blocked if input.tenant.lockbox == true`,
			`policy\.rego:5: rego_type_error: undefined ref: input\.tenant\.lockbox`},
		{"boolean compared with a string", `blocked if input.tenant.lockbox_enabled == "true"`,
			`policy\.rego:5: rego_type_error: match error`},
		{"through a variable", "blocked if {\n\tc := input.call\n\tc.tenantId == \"fabrikam\"\n}",
			`policy\.rego:7: rego_type_error: undefined ref: c\.tenantId`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t, head+tc.rule+"\n")
			_, err := policy.NewEngine(policy.EngineConfig{Dir: dir})
			if !errors.Is(err, policy.ErrInvalidPolicy) {
				t.Fatalf("NewEngine = %v, want ErrInvalidPolicy", err)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not match %q or name %s", err, tc.want, dir)
			}
		})
	}
}

// TestPolicyMayReadEveryInputField: every field the proxy sends, at its
// type, and input.grant as null, type-checks.
func TestPolicyMayReadEveryInputField(t *testing.T) {
	b, err := json.Marshal(allowedInput())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var rules []string
	var walk func(ref string, v any)
	walk = func(ref string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(ref+"."+k, e)
			}
		case string:
			rules = append(rules, fmt.Sprintf("seen contains %q if %s != \"\"", ref, ref))
		case bool:
			rules = append(rules, fmt.Sprintf("seen contains %q if %s == true", ref, ref))
		case []any:
			rules = append(rules, fmt.Sprintf("seen contains %q if %s[_] == \"x\"", ref, ref))
		default:
			t.Fatalf("%s: unexpected %T", ref, v)
		}
	}
	walk("input", doc)
	if len(rules) < 20 {
		t.Fatalf("only %d fields found in %s", len(rules), b)
	}
	slices.Sort(rules)
	src := "package lockbox.authz\n\ndefault decision := {\"allow\": false, \"reasons\": [\"not_allowed\"]}\n\n" +
		"no_grant if input.grant == null\n\n" + strings.Join(rules, "\n") + "\n"
	if _, err := policy.NewEngine(policy.EngineConfig{Dir: policyDir(t, src)}); err != nil {
		t.Fatalf("NewEngine refused a policy reading only fields the input has: %v\n%s", err, src)
	}
}
