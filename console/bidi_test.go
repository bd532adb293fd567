package console_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"golang.org/x/net/html"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// openBidi is how many of s's directional embeddings, overrides and
// isolates are still open at its end, by the Unicode bidirectional
// algorithm's rules: a PDF closes the last embedding or override inside
// the innermost open isolate, a PDI closes that isolate and whatever was
// opened inside it.
func openBidi(s string) int {
	var stack []bool // true for an isolate
	for _, r := range s {
		switch r {
		case '\u202a', '\u202b', '\u202d', '\u202e': // LRE, RLE, LRO, RLO
			stack = append(stack, false)
		case '\u2066', '\u2067', '\u2068': // LRI, RLI, FSI
			stack = append(stack, true)
		case '\u202c': // PDF
			if n := len(stack); n > 0 && !stack[n-1] {
				stack = stack[:n-1]
			}
		case '\u2069': // PDI
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i] {
					stack = stack[:i]
					break
				}
			}
		}
	}
	return len(stack)
}

var titleRE = regexp.MustCompile(`(?s)<title>(.*?)</title>`)

// TestTitlesIsolateTheirValues opens the pages whose title names what
// they are about (a request's service request number, a tenant's name)
// when that value holds a right-to-left override: the title's own words
// after the value read as written, not reversed by it, in the tab and the
// browser's history. Lockbox refuses such values now, so they are written
// as stored data, as a release that took them left them.
func TestTitlesIsolateTheirValues(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	req := e.file("contoso")
	e.storeField(keys.Request("contoso", req.ID), "service_request", "SR-1\u202eevil")
	e.storeField(keys.Tenant("contoso"), "display_name", "Contoso \u202eLtd")
	admin := e.signIn(lara)
	pages := []struct {
		b    *browser
		path string
	}{
		{e.signIn(contosoAdmin), "/console/requests/" + req.ID},
		{e.signIn(mia), "/console/requests/" + req.ID + "/approve"},
		{admin, "/console/tenants/contoso"},
	}
	for _, p := range pages {
		r := p.b.get(p.path)
		m := titleRE.FindStringSubmatch(r.body)
		if r.status != 200 || m == nil {
			t.Fatalf("GET %s: %s", p.path, r)
		}
		title := html.UnescapeString(m[1])
		page, ok := strings.CutSuffix(title, " · Lockbox admin center")
		if !ok || !strings.Contains(page, "\u202e") {
			t.Fatalf("GET %s: title %q", p.path, title)
		}
		if n := openBidi(page); n != 0 {
			t.Errorf("GET %s: title %+q leaves %d directional override(s) open over the words after it", p.path, title, n)
		}
	}
}

// storeField sets one field of the JSON document stored at key, leaving
// the rest as it is.
func (e *env) storeField(key, field, value string) {
	e.t.Helper()
	ctx := context.Background()
	b, err := e.rdb.Get(ctx, key).Bytes()
	if err != nil {
		e.t.Fatalf("read %s: %v", key, err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		e.t.Fatalf("%s: %v", key, err)
	}
	if doc[field], err = json.Marshal(value); err != nil {
		e.t.Fatal(err)
	}
	if b, err = json.Marshal(doc); err != nil {
		e.t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, key, b, redis.KeepTTL).Err(); err != nil {
		e.t.Fatalf("write %s: %v", key, err)
	}
}
