package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// The plain scalars that YAML readers take for something else than a
// string. YAML 1.1's are its type repository's (yaml.org/type: bool, int,
// float, null, timestamp, merge, value), which PyYAML, SnakeYAML,
// gopkg.in/yaml.v2 and Ruby's Psych follow; YAML 1.2's, its core schema's.
var (
	yaml11NotString = regexp.MustCompile(`^(?:` +
		`y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` +
		`|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` +
		`|[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
		`|~|null|Null|NULL|` +
		`|[0-9]{4}-[0-9]{2}-[0-9]{2}` +
		`|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*Z|[-+][0-9]{1,2}(?::[0-9]{2})?)?` +
		`|<<|=)$`)
	yaml12NotString = regexp.MustCompile(`^(?:null|Null|NULL|~|` +
		`|true|True|TRUE|false|False|FALSE` +
		`|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+` +
		`|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$`)
)

// readsAsString reports whether YAML 1.1 and 1.2 readers alike read n as
// a string: quoted, a block scalar, or plain text none of them takes for
// another type.
func readsAsString(n *yaml.Node) bool {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return true
	}
	return n.ShortTag() == "!!str" && !yaml11NotString.MatchString(n.Value) && !yaml12NotString.MatchString(n.Value)
}

// stringsStayStrings walks the JSON value j and the YAML node n written for
// it side by side, and reports every string of j that a YAML reader would
// read as another type from n.
func stringsStayStrings(t *testing.T, where string, j any, n *yaml.Node) {
	t.Helper()
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	switch j := j.(type) {
	case string:
		if n.Kind != yaml.ScalarNode || n.Value != j || !readsAsString(n) {
			t.Errorf("%s: the string %q is written as %s %q (tag %s, style %d), which YAML 1.1 or 1.2 reads as another type", where, j, kindName(n), n.Value, n.ShortTag(), n.Style)
		}
	case map[string]any:
		if n.Kind != yaml.MappingNode {
			t.Fatalf("%s: a %s for an object", where, kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			stringsStayStrings(t, where+" key", k.Value, k)
			stringsStayStrings(t, where+"."+k.Value, j[k.Value], v)
		}
	case []any:
		if n.Kind != yaml.SequenceNode || len(n.Content) != len(j) {
			t.Fatalf("%s: a %s for an array of %d", where, kindName(n), len(j))
		}
		for i := range j {
			stringsStayStrings(t, fmt.Sprintf("%s[%d]", where, i), j[i], n.Content[i])
		}
	}
}

func kindName(n *yaml.Node) string {
	return map[yaml.Kind]string{yaml.ScalarNode: "scalar", yaml.MappingNode: "mapping", yaml.SequenceNode: "sequence", yaml.AliasNode: "alias"}[n.Kind]
}

// TestYAMLStringsReadAsStringsIn11And12: every string of -o yaml reads
// back as a string in a YAML 1.1 reader (PyYAML, SnakeYAML...) as in a 1.2
// one: an audit record's CreationTime ("2026-03-04T10:00:00", a YAML 1.1
// timestamp), a request id, a reason of "no", a service request "1:20" (a
// YAML 1.1 base-60 integer) are not turned into times, booleans or numbers.
func TestYAMLStringsReadAsStringsIn11And12(t *testing.T) {
	tricky := []string{
		"2026-03-04T10:00:00", "2026-03-04 10:00:00Z", "2026-3-4t1:00:00.5+01", "2026-03-04", "2026-03-04 10:00:00.5 Z",
		"y", "Y", "n", "N", "yes", "No", "ON", "off", "true", "False", "null", "NULL", "~", "",
		"0b101", "017", "0o17", "0x1F", "1_000", "+12", "-0", "1:20", "190:20:30.15", "1e3", "1.", "-.5", ".inf", "-.Inf", ".NaN", "6.8523015e+5",
		"<<", "=", "0e5abc", "12e3", "1,000", "SR-1001", "mailbox corrupt", "1\n2", "no\n",
	}
	type doc struct {
		Reason string   `json:"reason"`
		List   []string `json:"list"`
	}
	for _, v := range []struct {
		name string
		v    any
	}{
		{"request", sampleRequest()},
		{"records", wire.RecordList{Records: sampleRecords()}},
		{"tenant", sampleTenant()},
		{"strings", doc{Reason: "no", List: tricky}},
	} {
		var b bytes.Buffer
		if err := writeYAML(&b, v.v); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		var n yaml.Node
		if err := yaml.Unmarshal(b.Bytes(), &n); err != nil {
			t.Fatalf("%s: %v\n%s", v.name, err, b.String())
		}
		var j any
		if err := json.Unmarshal([]byte(mustJSON(v.v)), &j); err != nil {
			t.Fatal(err)
		}
		stringsStayStrings(t, v.name, j, &n)
		if t.Failed() {
			t.Logf("%s as -o yaml:\n%s", v.name, b.String())
		}
	}

	// Ids, addresses and words stay as they were, unquoted: scripts
	// match them in the text ("^id: $ID$").
	for _, v := range []string{reqID, "SR-1001", "mailbox corrupt", "alice@contoso.com", "pending_manager", "Get-Mailbox", "nope", "0190a1b2-0000-7000-8000-000000000001"} {
		var b bytes.Buffer
		if err := writeYAML(&b, map[string]string{"v": v}); err != nil {
			t.Fatal(err)
		}
		if got, want := b.String(), "v: "+v+"\n"; got != want {
			t.Errorf("%q is written %q, want %q", v, got, want)
		}
	}
}
