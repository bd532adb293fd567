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
