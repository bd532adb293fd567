package api

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestOpenAPISchemasAreExact: each body schema names exactly the JSON
// fields of its type in package wire (or audit/record), with their JSON
// types. A response schema requires exactly the fields always written; a
// request schema takes no other properties.
func TestOpenAPISchemasAreExact(t *testing.T) {
	doc := loadOpenAPI(t)
	type body struct {
		typ     reflect.Type
		request bool
	}
	for name, b := range map[string]body{
		"Record":            {typ: reflect.TypeFor[record.Record]()},
		"RecordParameter":   {typ: reflect.TypeFor[record.Parameter]()},
		"ModifiedProperty":  {typ: reflect.TypeFor[record.ModifiedProperty]()},
		"RecordPage":        {typ: reflect.TypeFor[wire.RecordPage]()},
		"AuditVerification": {typ: reflect.TypeFor[wire.AuditVerification]()},
		"Request":           {typ: reflect.TypeFor[wire.Request]()},
		"Event":             {typ: reflect.TypeFor[wire.Event]()},
		"RequestList":       {typ: reflect.TypeFor[wire.RequestList]()},
		"Tenant":            {typ: reflect.TypeFor[wire.Tenant]()},
		"OnboardedTenant":   {typ: reflect.TypeFor[wire.OnboardedTenant]()},
		"TenantList":        {typ: reflect.TypeFor[wire.TenantList]()},
		"Offboarded":        {typ: reflect.TypeFor[wire.Offboarded]()},
		"Offboarding":       {typ: reflect.TypeFor[wire.Offboarding](), request: true},
		"Settings":          {typ: reflect.TypeFor[wire.Settings]()},
		"ApproverList":      {typ: reflect.TypeFor[wire.ApproverList]()},
		"CreateRequest":     {typ: reflect.TypeFor[wire.CreateRequest](), request: true},
		"Decision":          {typ: reflect.TypeFor[wire.Decision](), request: true},
		"Onboarding":        {typ: reflect.TypeFor[wire.Onboarding](), request: true},
		"TenantUpdate":      {typ: reflect.TypeFor[wire.TenantUpdate](), request: true},
		"SettingsInput":     {typ: reflect.TypeFor[wire.SettingsInput](), request: true},
	} {
		t.Run(name, func(t *testing.T) {
			props, required, closed := schemaFields(t, doc, resolve(t, doc, map[string]any{"$ref": "#/components/schemas/" + name}))
			if name == "Record" && !closed {
				t.Errorf("additionalProperties is not false: the schema is the whole record")
			}
			if b.request && !closed {
				t.Errorf("additionalProperties is not false: the API refuses unknown fields")
			}
			var fields, always []string
			for _, f := range jsonFields(b.typ) {
				tag := f.Tag.Get("json")
				key, opts, _ := strings.Cut(tag, ",")
				fields = append(fields, key)
				if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
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
					t.Errorf("the schema documents %s.%s, which %s doesn't have", name, key, b.typ)
				}
			}
			if b.request {
				return
			}
			slices.Sort(always)
			slices.Sort(required)
			if !slices.Equal(always, required) {
				t.Errorf("required = %v, want the fields always written: %v", required, always)
			}
		})
	}
}

// schemaFields returns the properties of an object schema (merging an
// allOf), its required properties and whether it takes no others.
func schemaFields(t *testing.T, doc, schema map[string]any) (props map[string]any, required []string, closed bool) {
	props = map[string]any{}
	parts := []map[string]any{schema}
	for _, p := range asSlice(schema["allOf"]) {
		parts = append(parts, resolve(t, doc, p))
	}
	closed = true
	for _, p := range parts {
		if _, ok := p["allOf"]; ok {
			continue
		}
		closed = closed && p["additionalProperties"] == false
		for k, v := range p["properties"].(map[string]any) {
			props[k] = v
		}
		for _, r := range asSlice(p["required"]) {
			required = append(required, r.(string))
		}
	}
	return props, required, closed
}

// jsonFields lists the fields encoding/json writes of struct type typ,
// with those of embedded structs.
func jsonFields(typ reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		switch {
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, jsonFields(f.Type)...)
		case f.IsExported() && tag != "-":
			out = append(out, f)
		}
	}
	return out
}

// jsonType is the JSON Schema type encoding/json writes for t.
func jsonType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[record.Time](), reflect.TypeFor[time.Time](), reflect.TypeFor[wire.Duration]():
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
