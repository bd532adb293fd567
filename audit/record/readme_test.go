package record

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestREADMERecord holds README's section on audit records, which SIEM
// and tenant teams map the records from, to Record: it names every field
// (in its table or the paragraph on Lockbox's own fields), names no field
// Record lacks in its table, and its example of an operator action as the
// tenant reads it has only Record's fields, none of them provider-only.
func TestREADMERecord(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Audit records\n")
	if !ok {
		t.Fatal("README.md has no section \"### Audit records\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	fields := map[string]bool{}
	for f := range reflect.TypeFor[Record]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = true
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("README.md's section on audit records does not name the field %s", name)
		}
	}

	_, table, ok := strings.Cut(section, "\n| field | value |\n|---|---|\n")
	if !ok {
		t.Fatal("README.md's section on audit records has no table of fields")
	}
	field := regexp.MustCompile("`([A-Za-z]+)`")
	rows := 0
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		for _, m := range field.FindAllStringSubmatch(first, -1) {
			rows++
			if !fields[m[1]] {
				t.Errorf("README.md's table of audit record fields has %s, which Record does not", m[1])
			}
		}
	}
	if rows < 15 {
		t.Fatalf("README.md's table of audit record fields names only %d fields", rows)
	}

	_, example, ok := strings.Cut(section, "\n```json\n")
	if !ok {
		t.Fatal("README.md's section on audit records has no JSON example")
	}
	example, _, _ = strings.Cut(example, "\n```")
	var keys map[string]any
	if err := json.Unmarshal([]byte(example), &keys); err != nil {
		t.Fatalf("README.md's audit record example is no JSON object: %v", err)
	}
	for k := range keys {
		if !fields[k] {
			t.Errorf("README.md's audit record example has %s, which Record does not", k)
		}
		if strings.HasPrefix(k, "Provider") {
			t.Errorf("README.md's audit record example, as its tenant reads it, has the provider-only %s", k)
		}
	}
	var r Record
	if err := json.Unmarshal([]byte(example), &r); err != nil {
		t.Errorf("README.md's audit record example does not decode as a Record: %v", err)
	}
}
