package grantsig_test

import (
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// TestREADMEClaims holds README's table of the X-Lockbox-Grant assertion,
// which upstream teams write their verification from, to Claims: the
// claims it names are exactly Claims' fields, and the header it gives
// names the assertion's type.
func TestREADMEClaims(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Verifying `X-Lockbox-Grant` in an upstream\n")
	if !ok {
		t.Fatal("README.md has no section \"### Verifying `X-Lockbox-Grant` in an upstream\"")
	}
	_, table, ok := strings.Cut(section, "\n| | |\n|---|---|\n")
	if !ok {
		t.Fatal("README.md's section on X-Lockbox-Grant has no table of its claims")
	}
	claim := regexp.MustCompile("`([a-z_]+)`")
	var documented []string
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		first, rest, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		if strings.TrimSpace(first) == "header" {
			if !strings.Contains(rest, "`"+grantsig.Type+"`") {
				t.Errorf("README.md's header row does not give the type %s: %s", grantsig.Type, line)
			}
			continue
		}
		for _, m := range claim.FindAllStringSubmatch(first, -1) {
			documented = append(documented, m[1])
		}
	}
	var fields []string
	for f := range reflect.TypeFor[grantsig.Claims]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	slices.Sort(documented)
	slices.Sort(fields)
	if !slices.Equal(documented, fields) {
		t.Errorf("README.md's table of X-Lockbox-Grant claims lists %q; Claims has %q", documented, fields)
	}
}

// TestREADMEGolangJWT: README's golang-jwt example, which upstream teams
// copy, left out jwt.WithIssuedAt, which TestInteropGolangJWT passes: so
// copied, an upstream took an assertion issued in the future. The example
// now passes every option of upstreamOptions, the ones the interop test
// verifies with.
func TestREADMEGolangJWT(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Verifying `X-Lockbox-Grant` in an upstream\n")
	if !ok {
		t.Fatal("README.md has no section \"### Verifying `X-Lockbox-Grant` in an upstream\"")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	var example string
	for _, block := range strings.Split(section, "```go\n")[1:] {
		if code, _, _ := strings.Cut(block, "```"); strings.Contains(code, "jwt.ParseWithClaims(") {
			example = code
			break
		}
	}
	if example == "" {
		t.Fatal("README.md's section on X-Lockbox-Grant has no golang-jwt example (jwt.ParseWithClaims)")
	}
	for _, name := range slices.Sorted(maps.Keys(upstreamOptions(grantsig.AlgEdDSA, "exchange"))) {
		if !strings.Contains(example, "jwt."+name+"(") {
			t.Errorf("README.md's golang-jwt example does not pass jwt.%s:\n%s", name, example)
		}
	}
}
