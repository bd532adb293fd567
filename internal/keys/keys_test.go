package keys

import (
	"regexp"
	"strings"
	"testing"
)

// The specification of each shape: the checks are held to these.
var spec = map[string]struct {
	re *regexp.Regexp
	is func(string) bool
}{
	"tenant":  {regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`), IsTenant},
	"user":    {regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`), IsUser},
	"service": {regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`), IsService},
	"uuid":    {regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`), IsUUID},
}

func TestShapes(t *testing.T) {
	for _, s := range []string{"", "a", "-", "contoso", "Contoso", "con-toso", "contoso-", "-contoso", "c0", "9",
		strings.Repeat("a", 32), strings.Repeat("a", 33), strings.Repeat("a", 63), strings.Repeat("a", 64),
		strings.Repeat("a", 128), strings.Repeat("a", 129), "alice@provider.example", "a.b_c+d-e@f", ".alice", "al ice",
		"al{ice}", "alice\n", "0195a000-0000-7000-8000-000000000001", "0195A000-0000-7000-8000-000000000001",
		"0195a000-0000-7000-8000-00000000000", "0195a000x0000-7000-8000-000000000001", "é", "a\x00"} {
		for name, sh := range spec {
			if got, want := sh.is(s), sh.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %t, the specification says %t", name, s, got, want)
			}
		}
	}
}

func FuzzShapes(f *testing.F) {
	f.Add("contoso")
	f.Add("alice@provider.example")
	f.Add("0195a000-0000-7000-8000-000000000001")
	f.Fuzz(func(t *testing.T, s string) {
		for name, sh := range spec {
			if got, want := sh.is(s), sh.re.MatchString(s); got != want {
				t.Fatalf("%s(%q) = %t, the specification says %t", name, s, got, want)
			}
		}
	})
}
