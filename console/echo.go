package console

import "unicode/utf8"

// maxEcho is how many bytes of a value the caller chose (a path, a header,
// a query parameter an identity provider's answer brings back through the
// browser) a log line repeats. Requests nobody signed are refused with a
// log line; a value of up to a megabyte, of bytes the handlers log as
// four-byte escapes, made each such line megabytes, which anyone could
// repeat at will. The start of the value is enough to recognise it. The
// proxy cuts what it repeats the same way (proxy.echo).
const maxEcho = 200

// echo returns s as a log line may repeat it: at most maxEcho bytes, cut
// on a rune boundary, with "…" marking a cut.
func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
