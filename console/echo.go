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

// maxEchoError is how many bytes of an error's text a log line repeats
// when an identity provider may have written some of it: a refusal of its
// token endpoint with its body (up to a megabyte), a discovery document
// it refused with its body (of any size), a claim of an ID token. A
// tenant's identity provider is the tenant's to run, and a sign-in anyone
// may start makes the console talk to it. The start of the error says
// what went wrong.
const maxEchoError = 1 << 10

// echo returns s as a log line may repeat it: at most maxEcho bytes, cut
// on a rune boundary, with "…" marking a cut.
func echo(s string) string { return cut(s, maxEcho) }

// echoErr returns err as a log line may repeat it: its text cut to
// maxEchoError bytes. It is nil for nil.
func echoErr(err error) error {
	if err == nil {
		return nil
	}
	return cutError{err}
}

// cutError is an error whose text is cut to maxEchoError bytes; errors.Is
// and errors.As still see the error it cuts.
type cutError struct{ err error }

func (e cutError) Error() string { return cut(e.err.Error(), maxEchoError) }
func (e cutError) Unwrap() error { return e.err }

// cut returns s cut to at most n bytes on a rune boundary, with "…"
// marking a cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
