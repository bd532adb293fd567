package notify

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// refDefang is Defang as it was before startsURI looked only at a scheme's
// tail: the reference that the faster one must agree with on every input.
func refDefang(s string) string {
	s = uncRE.ReplaceAllString(s, `[\\]$1`)
	s = schemeRE.ReplaceAllString(s, "$1[:]//")
	s = httpRE.ReplaceAllString(s, "hxxp")
	s = wwwRE.ReplaceAllString(s, "$1[.]")
	s = hostRE.ReplaceAllStringFunc(s, defangHost)
	for prev := ""; prev != s; {
		prev, s = s, refDefangURIs(s)
	}
	return s
}

func refDefangURIs(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range uriRE.FindAllStringSubmatchIndex(s, -1) {
		colon := m[1] - 1
		next, size := utf8.DecodeRuneInString(s[m[1]:])
		if size == 0 || strings.ContainsRune("\t\n\f\r ", next) || !refStartsURI(s[m[4]:m[5]], next) {
			continue
		}
		b.WriteString(s[last:colon])
		b.WriteString("[:]")
		last = m[1]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func refStartsURI(scheme string, next rune) bool {
	scheme = strings.ToLower(scheme)
	known := linkSchemes[scheme]
	for i := 1; i < len(scheme) && !known; i++ {
		if strings.IndexByte("+.-", scheme[i-1]) >= 0 {
			known = linkSchemes[scheme[i:]]
		}
	}
	return known || unicode.IsLetter(next)
}

// defangTokens are what the generated inputs of TestDefangMatchesReference
// are made of: the characters each step of Defang looks at (those of
// schemes, host names, UNC paths, IDNA dots, the non-ASCII letters that
// case-fold to "k" and "s", white space, brackets), and names it knows.
// The first ones are those of schemes and the URIs' boundaries, which
// patterns of three are made of.
var defangTokens = []string{
	":", ".", "+", "-", "a", "0", "]", "\u212a",
	"Z", "/", `\`, " ", "[", "@", "!", "é", "\u3002", "\uff0e", "\uff61", "\u017f",
	"http", "www", "tel", "mailto", "facetime-audio", "xn--",
}

// TestDefangMatchesReference: Defang writes exactly what refDefang writes,
// on every pattern of one or two tokens repeated and every pattern of
// three scheme tokens (the adversarial families), on random strings of
// tokens, and on the names of linkSchemes after scheme characters, where a
// scheme's tail meets the longest link scheme.
func TestDefangMatchesReference(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := Defang(s), refDefang(s); got != want {
			t.Fatalf("Defang(%q)\n got %q\nwant %q (the reference)", s, got, want)
		}
	}
	repeated := func(p string, n int) string { return strings.Repeat(p, n/len(p)+1) }
	for _, a := range defangTokens {
		check(repeated(a, 600))
		for _, b := range defangTokens {
			check(repeated(a+b, 64))
			check(repeated(a+b, 200))
		}
	}
	scheme := defangTokens[:8]
	for _, a := range scheme {
		for _, b := range scheme {
			for _, c := range scheme {
				check(repeated(a+b+c, 64))
			}
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var b strings.Builder
		for range rng.IntN(24) {
			b.WriteString(defangTokens[rng.IntN(len(defangTokens))])
		}
		check(b.String())
	}

	for name := range linkSchemes {
		for _, pre := range []string{"", "a", "a-", "a+a.", "x-" + strings.Repeat("a", maxLinkScheme)} {
			for _, post := range []string{":", ":0", ":a", ": "} {
				check(pre + name + post)
				check(pre + strings.ToUpper(name) + post)
				check("!" + pre + name + post + pre + name + post)
			}
		}
	}
}
