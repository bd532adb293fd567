package policy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputSchemas holds the JSON Schema of Input, derived from its Go type, as
// schema.input: the compiler type-checks every reference the policy makes to
// input against it. Without it a misspelt field (input.call.tenant_id) is
// undefined on every call, so a rule meant to deny never does, silently;
// with it the policy is refused at load, naming the file, the line and the
// fields there are. Derived, not written by hand, so the schema is never
// out of step with the input the proxy builds. The fields of input.grant
// are the exception the type checker can't see (see schemaOf):
// unknownGrantFields checks those the policy spells out.
var inputSchemas = func() *ast.SchemaSet {
	s := ast.NewSchemaSet()
	s.Put(ast.SchemaRootRef, schemaOf(reflect.TypeFor[Input]()))
	return s
}()

// schemaOf is the JSON Schema of values of t as encoding/json writes them.
// Objects allow no other properties: that is what makes a misspelt field an
// error. A pointer may be null (input.grant, when there is no grant). It
// panics on a type Input can't hold, which TestInputSchema makes a failing
// test rather than a server that won't start.
func schemaOf(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Slice:
		// BuildInput never leaves a slice nil, so it is never null.
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Pointer:
		// OPA's checker can't see into a union, so the fields of
		// input.grant go unchecked; a schema of an object alone would check
		// them, but refuse input.grant == null, which is how a policy may
		// test for no grant.
		return map[string]any{"anyOf": []any{map[string]any{"type": "null"}, schemaOf(t.Elem())}}
	case reflect.Struct:
		props := make(map[string]any, t.NumField())
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				panic(fmt.Sprintf("policy: %s.%s has no JSON name", t.Name(), f.Name))
			}
			props[name] = schemaOf(f.Type)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	default:
		panic(fmt.Sprintf("policy: no input schema for %s", t))
	}
}

// grantFields are the JSON names of input.grant's fields.
var grantFields = func() []string {
	var names []string
	for f := range reflect.TypeFor[Grant]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// unknownGrantFields refuses a reference to a field of input.grant that
// Grant does not have (input.grant.tennant), which the type checker lets
// through: the union "null or Grant" hides Grant's fields from it. Such a
// field is undefined on every call, so `blocked if input.grant.tennant !=
// input.call.tenant` never blocks. It sees the references that spell the
// field after input.grant; one reached through a variable (g :=
// input.grant; g.tennant) is still unchecked, as rego/README.md says.
func unknownGrantFields(modules map[string]*ast.Module) error {
	grant := ast.InputRootRef.Append(ast.StringTerm("grant"))
	var errs []error
	visit := func(t *ast.Term) bool {
		r, ok := t.Value.(ast.Ref)
		if !ok || len(r) < 3 || !r.HasPrefix(grant) {
			return false
		}
		if name, ok := r[2].Value.(ast.String); ok && !slices.Contains(grantFields, string(name)) {
			errs = append(errs, fmt.Errorf("%s: %s: input.grant has no field %q; its fields are %s",
				t.Location, r[:3], string(name), strings.Join(grantFields, ", ")))
		}
		return false
	}
	for _, m := range modules {
		ast.WalkTerms(m, visit)
		walkHeadRefTerms(m, func(t *ast.Term) { ast.WalkTerms(t, visit) })
	}
	return errors.Join(errs...)
}
