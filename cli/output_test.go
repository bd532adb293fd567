package cli

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// -o yaml says what -o json says: every string, whatever it holds (a
// reason or comment is free text of another party), reads back as itself.
func TestYAMLKeepsEveryString(t *testing.T) {
	for _, v := range []string{
		"null", "yes", "no", "on", "0x10", "1e3", "0o17", "+1", ".5", ".inf", "1_000", "2026-01-01", "~", "",
		"- a", "a: b", "#x", "@x", "`x", "!tag", "*alias", "&anchor", "%x", "{a}", "[a]", "|", ">", "=cmd",
		"'q'", `"dq"`, "  lead", "trail ", "\t", "a\nb", "a\n", "\n", "a\r\nb",
		// What YAML reads as line breaks besides \n and \r.
		"next\u0085line", "\u0085", "line\u2028sep", "para\u2029sep",
	} {
		in := map[string]any{"reason": v, "list": []any{v}}
		var b bytes.Buffer
		if err := writeYAML(&b, in); err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		var back map[string]any
		if err := yaml.Unmarshal(b.Bytes(), &back); err != nil {
			t.Errorf("%q: the YAML does not read back: %v\n%s", v, err, b.String())
			continue
		}
		if want := map[string]any{"reason": v, "list": []any{v}}; !reflect.DeepEqual(back, want) {
			j, _ := json.Marshal(back)
			t.Errorf("%q reads back as %s from:\n%s", v, j, b.String())
		}
	}
}

// -o json and -o yaml show a server's text as the tables do: a control or
// format character in a reason (a C1 control such as U+009B, which some
// terminals read as the start of an escape sequence; a bidirectional
// override that reorders what an approver reads) is written escaped, not
// as itself, and still reads back as itself.
func TestStructuredOutputEscapesControls(t *testing.T) {
	for _, v := range []string{"\u009b31mred", "\u202eevil", "zero\u200bwidth", "del\u007f", "tag\U000e0041", "\u0085", "plain é"} {
		in := map[string]any{"reason": v}
		for _, f := range []struct {
			name   string
			write  func(*bytes.Buffer, any) error
			decode func([]byte, any) error
		}{
			{"json", func(b *bytes.Buffer, v any) error { return writeJSON(b, v) }, json.Unmarshal},
			{"yaml", func(b *bytes.Buffer, v any) error { return writeYAML(b, v) }, yaml.Unmarshal},
		} {
			var b bytes.Buffer
			if err := f.write(&b, in); err != nil {
				t.Fatalf("%s %q: %v", f.name, v, err)
			}
			for _, r := range b.String() {
				if r != '\n' && unsafeRune(r) {
					t.Errorf("-o %s writes %U of %q as is:\n%s", f.name, r, v, b.String())
				}
			}
			var back map[string]any
			if err := f.decode(b.Bytes(), &back); err != nil || back["reason"] != v {
				t.Errorf("-o %s: %q reads back as %q (%v) from:\n%s", f.name, v, back["reason"], err, b.String())
			}
		}
	}
}
