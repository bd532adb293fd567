package identity_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestDocumentedRoles: where the documentation lists the roles a token's
// roles claim may carry (the OpenAPI bearer scheme, README's token
// settings, LOCKBOX_OIDC_ROLES_CLAIM's description, which README's
// configuration table repeats), it lists every Role Lockbox honours and
// nothing else. The roles are read from this package's source, so a role
// added there is one the lists must gain.
func TestDocumentedRoles(t *testing.T) {
	roles := roleConstants(t)
	if len(roles) < 6 {
		t.Fatalf("found only the roles %q in principal.go", roles)
	}
	for _, r := range roles {
		if !identity.Role(r).Known() {
			t.Errorf("role %q is not Known", r)
		}
	}

	lists := map[string]string{} // where → the list of roles it gives
	readme := readFile(t, "../README.md")
	_, l, ok := strings.Cut(readme, "Tokens are JWTs in\n`Authorization: Bearer` with `iss`, `aud`, `exp`, `sub`, `roles` (")
	if !ok {
		t.Fatal("README.md no longer lists a token's roles after \"Tokens are JWTs in `Authorization: Bearer` with ... `roles` (\"")
	}
	lists["README.md (Running in production)"], _, _ = strings.Cut(l, ")")
	openapi := readFile(t, "../api/openapi.yaml")
	_, l, ok = strings.Cut(openapi, "`roles` (")
	if !ok {
		t.Fatal("api/openapi.yaml no longer lists a token's roles after \"`roles` (\"")
	}
	lists["api/openapi.yaml (bearer)"], _, _ = strings.Cut(l, ")")
	for _, v := range config.Vars() {
		if v.Name == "LOCKBOX_OIDC_ROLES_CLAIM" {
			_, l, _ = strings.Cut(v.Description, "(")
			lists[v.Name], _, _ = strings.Cut(l, ";")
		}
	}
	if len(lists) != 3 {
		t.Fatalf("found %d lists of roles, want 3: %q", len(lists), lists)
	}

	for where, list := range lists {
		named := map[string]bool{}
		for _, w := range strings.FieldsFunc(list, func(r rune) bool { return !(r == '-' || 'a' <= r && r <= 'z') }) {
			named[w] = true
		}
		for _, r := range roles {
			if !named[r] {
				t.Errorf("%s lists the roles %q, without %s", where, strings.TrimSpace(list), r)
			}
			delete(named, r)
		}
		for w := range named {
			t.Errorf("%s lists %q, which is no role", where, w)
		}
	}
}

// roleConstants returns the values of the constants of type Role that
// principal.go declares.
func roleConstants(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "principal.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Role" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("a Role constant is not a string literal: %v", v)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
