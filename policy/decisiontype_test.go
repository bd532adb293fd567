package policy_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/lockbox-oss/lockbox/policy"
)

// TestLoadRefusesADecisionThatIsNeverAnObject: a decision rule whose type
// can't be the object the server asks for would load and deny every call
// as a policy error; it is refused at load with its file and line, as a
// missing decision rule is. A type the checker can't know (a value read
// from data, a builtin's any) still loads: the server checks it per call.
func TestLoadRefusesADecisionThatIsNeverAnObject(t *testing.T) {
	for _, tc := range []struct{ rule, want string }{
		{"decision := true", `policy\.rego:3: data\.lockbox\.authz\.decision is boolean, never the object`},
		{"decision := 1", `policy\.rego:3: data\.lockbox\.authz\.decision is number, never the object`},
		{`decision contains "allow"`, `policy\.rego:3: data\.lockbox\.authz\.decision is set\[string\], never the object`},
		{"default decision := null", `policy\.rego:3: data\.lockbox\.authz\.decision is null, never the object`},
		{`decision := ["allow", true]`, `policy\.rego:3: data\.lockbox\.authz\.decision is array<string, boolean>, never the object`},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			dir := policyDir(t, "package lockbox.authz\n\n"+tc.rule+"\n")
			_, err := policy.NewEngine(policy.EngineConfig{Dir: dir})
			if !errors.Is(err, policy.ErrInvalidPolicy) || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("NewEngine = %v, want ErrInvalidPolicy matching %q", err, tc.want)
			}
		})
	}
	for _, rule := range []string{
		`decision := {"allow": false, "reasons": ["not_allowed"]}`,
		"decision := data.activities.exchange[0]", // of a type the checker can't know
		"default decision := {\"allow\": false, \"reasons\": []}\n\ndecision := x if x := json.unmarshal(input.now)",
	} {
		dir := policyDir(t, "package lockbox.authz\n\n"+rule+"\n")
		if _, err := policy.NewEngine(policy.EngineConfig{Dir: dir}); err != nil {
			t.Errorf("%s: NewEngine = %v, want it loaded", rule, err)
		}
	}
}
