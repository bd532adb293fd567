package text_test

import (
	"testing"

	"github.com/lockbox-oss/lockbox/internal/text"
)

func TestLineAndLines(t *testing.T) {
	for _, c := range []struct {
		s           string
		line, lines bool
	}{
		{"Contoso «Ltd» 日本 \u00a0(EU)", true, true},
		{"", true, true},
		{"a\nb", false, true},
		{"a\r\nb", false, true},
		{"a\tb", false, true},
		{"a\rb", false, false},
		{"a\r", false, false},
		{"a\x00", false, false},
		{"a\x1b[31m", false, false},
		{"a\x7f", false, false},
		{"a\u0085b", false, false},
		{"a\u009b31m", false, false},
		{"a\u2028b", false, false},
		{"a\u2029b", false, false},
		{"invoice\u202egnp.exe", false, false},
		{"a\u202ab\u202c", false, false},
		{"a\u2066b\u2069", false, false},
		{"a\u200fb", false, false},
		{"a\u061cb", false, false},
		{"a\u200db", true, true}, // a joiner shapes emoji and scripts; it reorders nothing
	} {
		if got := text.Line(c.s); got != c.line {
			t.Errorf("Line(%+q) = %v, want %v", c.s, got, c.line)
		}
		if got := text.Lines(c.s); got != c.lines {
			t.Errorf("Lines(%+q) = %v, want %v", c.s, got, c.lines)
		}
	}
}
