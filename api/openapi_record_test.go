package api

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
)

// TestOpenAPIRecordIsExact: the Record schema (and those of its parts)
// names exactly the JSON fields of audit.Record, with their JSON types,
// and requires exactly those that are always written.
func TestOpenAPIRecordIsExact(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, typ := range map[string]reflect.Type{
		"Record":           reflect.TypeFor[audit.Record](),
		"RecordParameter":  reflect.TypeFor[audit.Parameter](),
		"ModifiedProperty": reflect.TypeFor[audit.ModifiedProperty](),
	} {
		t.Run(name, func(t *testing.T) {
			schema := resolve(t, doc, map[string]any{"$ref": "#/components/schemas/" + name})
			props, _ := schema["properties"].(map[string]any)
			if schema["additionalProperties"] != false {
				t.Errorf("additionalProperties = %v, want false: the schema is the whole record", schema["additionalProperties"])
			}
			var required []string
			for _, r := range asSlice(schema["required"]) {
				required = append(required, r.(string))
			}
			var fields, always []string
			for f := range typ.Fields() {
				tag := f.Tag.Get("json")
				if !f.IsExported() || tag == "-" {
					continue
				}
				key, opts, _ := strings.Cut(tag, ",")
				fields = append(fields, key)
				if !strings.Contains(opts, "omitempty") {
					always = append(always, key)
				}
				prop, ok := props[key]
				if !ok {
					t.Errorf("%s.%s is not in the schema", name, key)
					continue
				}
				p := resolve(t, doc, prop)
				if got, want := p["type"], jsonType(f.Type); got != want {
					t.Errorf("%s.%s: schema type %v, want %s (Go %s)", name, key, got, want, f.Type)
				}
			}
			for key := range props {
				if !slices.Contains(fields, key) {
					t.Errorf("the schema documents %s.%s, which records don't have", name, key)
				}
			}
			slices.Sort(always)
			slices.Sort(required)
			if !slices.Equal(always, required) {
				t.Errorf("required = %v, want the fields always written: %v", required, always)
			}
		})
	}
}

// jsonType is the JSON Schema type encoding/json writes for t.
func jsonType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[audit.Time]() {
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "array"
	case reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}
