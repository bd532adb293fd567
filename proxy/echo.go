package proxy

import "unicode/utf8"

// maxEcho is how many bytes of the client's own input (its path, method or
// a tenant taken from the path) a denial message or its log line repeats.
// A target can be tens of KiB: echoing it whole would turn a 16 KiB request
// into a 16 KiB answer and a 16 KiB log line for each denial, which anyone
// holding an operator token could repeat at will. The start of the input
// is enough to recognise the call.
const maxEcho = 200

// echo returns s as a denial message or a log attribute may repeat it: at
// most maxEcho bytes, cut on a rune boundary, with "…" marking a cut.
// Every message built from client input goes through it.
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

// echoedError is err with its text bounded as echo bounds the client's
// input: a parser's error may quote a whole line of what it read.
type echoedError struct{ err error }

func (e echoedError) Error() string { return echo(e.err.Error()) }
func (e echoedError) Unwrap() error { return e.err }
