package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	pathpkg "path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/api"
)

// spec holds the answers of the API to openapi.yaml, as env.do does for
// every answer of every test: the status must be one the operation
// declares, and a JSON body must match the schema declared for that status
// (types, enums, required fields, no field a closed schema lacks, no null
// where the schema is not nullable). TestOpenAPISchemasAreExact compares
// the schemas with the Go types; this compares them with what is sent.
type spec struct {
	doc map[string]any
	// mux finds the route of a path, as the API's own does.
	mux *http.ServeMux
}

// specWildcard matches a ServeMux wildcard, {name} or {name...}.
var specWildcard = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

var (
	specOnce sync.Once
	theSpec  *spec
	specErr  error
)

// openAPISpec returns openapi.yaml, read once for all tests.
func openAPISpec(t *testing.T) *spec {
	t.Helper()
	specOnce.Do(func() { theSpec, specErr = readSpec() })
	if specErr != nil {
		t.Fatal(specErr)
	}
	return theSpec
}

func readSpec() (*spec, error) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		return nil, err
	}
	s := &spec{mux: http.NewServeMux()}
	if err := yaml.Unmarshal(b, &s.doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	for _, rt := range api.Routes() {
		s.mux.Handle(rt.Method+" "+rt.Path, http.NotFoundHandler())
	}
	return s, nil
}

// check returns what is wrong with r as the answer to method path (with
// its query).
func (s *spec) check(method, path string, r result) []string {
	req, err := http.NewRequest(method, "http://x"+path, nil)
	if err != nil {
		return []string{err.Error()}
	}
	_, pattern := s.mux.Handler(req)
	if pattern == "" || pathpkg.Clean(req.URL.EscapedPath()) != req.URL.EscapedPath() {
		// No route (the mux names the route of a path it would clean):
		// 404 or 405, documented for the whole API.
		return nil
	}
	m, p, _ := strings.Cut(pattern, " ")
	if m == http.MethodGet && method == http.MethodHead {
		return nil
	}
	p = specWildcard.ReplaceAllString(p, "{$1}")
	paths, _ := s.doc["paths"].(map[string]any)
	item, _ := paths[p].(map[string]any)
	op, _ := item[strings.ToLower(m)].(map[string]any)
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[strconv.Itoa(r.status)]
	if !ok {
		return []string{fmt.Sprintf("status %d is not declared (body %s)", r.status, r.body)}
	}
	content, _ := s.resolve(resp)["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	if media == nil || r.header.Get("Content-Type") != "application/json" {
		return nil
	}
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		return []string{fmt.Sprintf("body is not JSON: %s", r.body)}
	}
	var errs []string
	s.validate(media["schema"], v, "$", &errs)
	return errs
}

// resolve follows the $refs of the schema or response v.
func (s *spec) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = s.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		m = cur.(map[string]any)
	}
}

// validate appends to errs what is wrong with the JSON value v (as
// encoding/json decodes it into an any) at JSON path at under schema.
func (s *spec) validate(schema, v any, at string, errs *[]string) {
	sc := s.resolve(schema)
	bad := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	if v == nil {
		if sc["nullable"] != true {
			bad("null, but the schema is not nullable")
		}
		return
	}
	// Merge allOf into one object schema.
	props := map[string]any{}
	var required []any
	closed := true
	parts := []map[string]any{sc}
	allOf, _ := sc["allOf"].([]any)
	for _, p := range allOf {
		parts = append(parts, s.resolve(p))
	}
	typ, _ := sc["type"].(string)
	for _, p := range parts {
		if _, ok := p["allOf"]; ok {
			continue
		}
		if t, ok := p["type"].(string); ok {
			typ = t
		}
		closed = closed && p["additionalProperties"] == false
		pp, _ := p["properties"].(map[string]any)
		for k, v := range pp {
			props[k] = v
		}
		r, _ := p["required"].([]any)
		required = append(required, r...)
	}
	if enum, ok := sc["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		bad("%v is not one of %v", v, enum)
	}
	switch typ {
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			bad("%T, want an object", v)
			return
		}
		for _, k := range required {
			if _, ok := o[k.(string)]; !ok {
				bad("required %q is missing", k)
			}
		}
		for k, val := range o {
			if ps, ok := props[k]; ok {
				s.validate(ps, val, at+"."+k, errs)
			} else if closed {
				bad("%q is not in the schema", k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("%T, want an array", v)
			return
		}
		for i, e := range a {
			s.validate(sc["items"], e, fmt.Sprintf("%s[%d]", at, i), errs)
		}
	case "string":
		if _, ok := v.(string); !ok {
			bad("%T, want a string", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("%T, want a boolean", v)
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok || (typ == "integer" && f != math.Trunc(f)) {
			bad("%v, want an %s", v, typ)
		}
	}
}
