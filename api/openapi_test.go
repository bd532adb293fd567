package api

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/internal/readlimit"
)

// operationKeys are the keys of an OpenAPI path item that are operations.
var operationKeys = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// wildcard matches a ServeMux wildcard: {name}, {name...} or {$}.
var wildcard = regexp.MustCompile(`\{(\$|[A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// openAPIPath translates a ServeMux path pattern into an OpenAPI path.
func openAPIPath(p string) string {
	return wildcard.ReplaceAllStringFunc(p, func(m string) string {
		name := wildcard.FindStringSubmatch(m)[1]
		if name == "$" {
			return ""
		}
		return "{" + name + "}"
	})
}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesRoutes fails when a served route is not documented or a
// documented operation is not served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	if v := doc["openapi"]; v != "3.0.3" {
		t.Errorf("openapi = %v, want 3.0.3", v)
	}
	paths, _ := doc["paths"].(map[string]any)
	documented := map[string]map[string]any{} // "METHOD /path" → operation
	for p, item := range paths {
		for k, op := range item.(map[string]any) {
			if slices.Contains(operationKeys, k) {
				documented[strings.ToUpper(k)+" "+p], _ = op.(map[string]any)
			}
		}
	}
	served := map[string]route{}
	for _, rt := range routes {
		served[rt.method+" "+openAPIPath(rt.path)] = rt
	}
	for _, k := range slices.Sorted(maps.Keys(served)) {
		op, ok := documented[k]
		if !ok {
			t.Errorf("route %s is served but not documented in openapi.yaml", k)
			continue
		}
		// Public routes, and only they, override the global bearer
		// requirement with an empty one.
		sec, hasSec := op["security"].([]any)
		if public := served[k].public; public != (hasSec && len(sec) == 0) {
			t.Errorf("%s: public = %t but security = %v", k, public, op["security"])
		}
		if _, ok := op["responses"].(map[string]any); !ok {
			t.Errorf("%s: no responses", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(documented)) {
		if _, ok := served[k]; !ok {
			t.Errorf("openapi.yaml documents %s, which is not served", k)
		}
	}
}

func TestOpenAPIPathParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		item := item.(map[string]any)
		declared := map[string]bool{}
		addParams := func(list any) {
			for _, prm := range asSlice(list) {
				prm := resolve(t, doc, prm)
				if prm["in"] == "path" {
					if prm["required"] != true {
						t.Errorf("%s: path parameter %v is not required", p, prm["name"])
					}
					declared[prm["name"].(string)] = true
				}
			}
		}
		addParams(item["parameters"])
		for _, k := range operationKeys {
			op, ok := item[k].(map[string]any)
			if !ok {
				continue
			}
			saved := maps.Clone(declared)
			addParams(op["parameters"])
			for _, m := range wildcard.FindAllStringSubmatch(p, -1) {
				if !declared[m[1]] {
					t.Errorf("%s %s: path parameter %q is not declared", strings.ToUpper(k), p, m[1])
				}
			}
			declared = saved
		}
	}
}

// TestOpenAPIRefs fails on a $ref that points nowhere.
func TestOpenAPIRefs(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := lookup(doc, ref); !ok {
					t.Errorf("%s: $ref %q does not resolve", at, ref)
				}
			}
			for k, c := range v {
				walk(c, at+"/"+k)
			}
		case []any:
			for _, c := range v {
				walk(c, at)
			}
		}
	}
	walk(doc, "#")
}

func TestOpenAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/requests":                          "/v1/requests",
		"/v1/requests/{id}/approve":             "/v1/requests/{id}/approve",
		"/v1/tenants/{tenant}/approvers/{user}": "/v1/tenants/{tenant}/approvers/{user}",
		"/v1/files/{path...}":                   "/v1/files/{path}",
		"/v1/{$}":                               "/v1/",
	} {
		if got := openAPIPath(in); got != want {
			t.Errorf("openAPIPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// lookup resolves a local JSON pointer such as "#/components/schemas/Error".
func lookup(doc map[string]any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = doc
	for _, part := range strings.Split(rest, "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// resolve follows v's $ref, if any, and returns the object.
func resolve(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, ok := lookup(doc, ref)
		if !ok {
			t.Fatalf("$ref %q does not resolve", ref)
		}
		m, _ = target.(map[string]any)
	}
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestOpenAPIQueryParameters holds each route's params, the query
// parameters the adapter lets through, to those openapi.yaml documents for
// the operation.
func TestOpenAPIQueryParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	paths, _ := doc["paths"].(map[string]any)
	for _, rt := range routes {
		item, _ := paths[openAPIPath(rt.path)].(map[string]any)
		op, _ := item[strings.ToLower(rt.method)].(map[string]any)
		var documented []string
		for _, list := range []any{item["parameters"], op["parameters"]} {
			for _, prm := range asSlice(list) {
				if prm := resolve(t, doc, prm); prm["in"] == "query" {
					documented = append(documented, prm["name"].(string))
				}
			}
		}
		if rt.public {
			continue // public documents take no parameters and refuse none
		}
		// The adapter refuses unknown parameters on every such route.
		if responses, _ := op["responses"].(map[string]any); responses["400"] == nil {
			t.Errorf("%s: openapi.yaml documents no 400, which an unknown query parameter gets", rt.pattern())
		}
		if got, want := slices.Sorted(slices.Values(rt.params)), slices.Sorted(slices.Values(documented)); !slices.Equal(got, want) {
			t.Errorf("%s: the route takes query parameters %v, openapi.yaml documents %v", rt.pattern(), got, want)
		}
	}
}

// TestOpenAPIErrorCodes: every error code the API can answer with is named
// in openapi.yaml, where clients look up what to branch on: the codes of
// the API's own refusals and of the domain errors its handlers pass on
// (read from the source of this package and of grants, tenants and
// audit), the codes internal/httperr gives errors without one, and
// invalid_<name> for each query parameter a route takes (sent empty, or
// malformed).
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := string(openAPIDocument)
	// Codes of those packages that no route can produce.
	unreachable := map[string]bool{
		"invalid_action":    true, // grants: an action no route names
		"invalid_grant_key": true, // grants: the proxy's grant lookup
		"no_grant":          true, // grants: the proxy's grant lookup
	}
	calls := []*regexp.Regexp{
		regexp.MustCompile(`(?:fault\.New|newErr|httperr\.New)\(\s*[^,()]+,\s*"([a-z_]+)"`),
		regexp.MustCompile(`httperr\.Write\(\s*[^,()]+,\s*[^,()]+,\s*"([a-z_]+)"`),
	}
	codes := map[string]string{} // code -> where it was found
	for _, dir := range []string{".", "../grants", "../tenants", "../audit"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, re := range calls {
				for _, m := range re.FindAllStringSubmatch(string(src), -1) {
					if !strings.HasSuffix(m[1], "_") { // "invalid_"+name: below
						codes[m[1]] = f
					}
				}
			}
		}
	}
	for _, c := range []string{"internal", "unavailable", "invalid_transition", "not_found", "forbidden"} {
		codes[c] = "internal/httperr.FromError"
	}
	for _, rt := range routes {
		for _, p := range rt.params {
			codes["invalid_"+p] = rt.pattern()
		}
	}
	if len(codes) < 20 {
		t.Fatalf("found only %d codes: %v", len(codes), slices.Sorted(maps.Keys(codes)))
	}
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		if !unreachable[c] && !strings.Contains(doc, "`"+c+"`") {
			t.Errorf("openapi.yaml does not name the error code %s (%s)", c, codes[c])
		}
	}
}

// TestOpenAPIBodyLimit: the limit on a request body openapi.yaml states is
// the one the API applies, DefaultMaxBodyBytes ("lockbox serve" sets no
// other).
func TestOpenAPIBodyLimit(t *testing.T) {
	m := regexp.MustCompile(`and at most (\d+) KiB\.`).FindSubmatch(openAPIDocument)
	if m == nil {
		t.Fatal(`openapi.yaml no longer says a request body is "at most N KiB."`)
	}
	if kib, _ := strconv.Atoi(string(m[1])); kib<<10 != DefaultMaxBodyBytes {
		t.Errorf("openapi.yaml: a request body is at most %d KiB; the API allows %d bytes", kib, DefaultMaxBodyBytes)
	}
}

// TestOpenAPILongReadBounds: the bounds on exports and verifications at
// once that openapi.yaml states are the defaults "lockbox serve" applies.
func TestOpenAPILongReadBounds(t *testing.T) {
	m := regexp.MustCompile(`at most (\d+) exports and verifications at once on one\s+server, and a server at most (\d+) of all callers`).FindSubmatch(openAPIDocument)
	if m == nil {
		t.Fatal(`openapi.yaml no longer says "at most N exports and verifications at once on one server, and a server at most M of all callers"`)
	}
	per, _ := strconv.Atoi(string(m[1]))
	total, _ := strconv.Atoi(string(m[2]))
	if per != readlimit.DefaultPerCaller || total != readlimit.DefaultTotal {
		t.Errorf("openapi.yaml: %d per caller and %d in all; the defaults are %d and %d", per, total, readlimit.DefaultPerCaller, readlimit.DefaultTotal)
	}
}
