package identity

import "testing"

func TestSameSubject(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"sam@provider.example", "sam@provider.example", true},
		{"Sam@Provider.example", "sam@provider.example", true},
		{"SAM", "sam", true},
		{"sam", "sam2", false},
		{"sam@provider.example", "sam@provider.exampl", false},
		// Only ASCII folds: a Kelvin sign (U+212A) is no k, an
		// (invalid) non-ASCII subject no match for an ASCII one.
		{"\u212aate@contoso.example", "kate@contoso.example", false},
		{"kate@contoso.example", "\u212aate@contoso.example", false},
		{"\u017fam", "sam", false}, // long s folds to s under Unicode
		{"", "", true},
	}
	for _, tc := range tests {
		if got := SameSubject(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSubject(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if got := FoldSubject("Ab\u212aC-@X.example"); got != "ab\u212ac-@x.example" {
		t.Errorf("FoldSubject = %q", got)
	}
}
