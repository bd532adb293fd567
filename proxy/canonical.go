// Package proxy is the data plane: the HTTP handler operators' calls pass
// through, which forwards a call only after every check passed.
//
// This file is the pure request-target canonicalization. The security
// contract is "canonical or rejected": the path the policy judges is exactly
// the path forwarded, so a target that is not already canonical is refused
// (400), never repaired. Repairing is how path-confusion bypasses happen: a
// matcher and a handler that decode or normalize differently disagree on
// what "/public/..%2fadmin" means (caddy PR #7941). Here there is nothing to
// disagree on, because an accepted path contains no percent-encoding and no
// dot segments at all: its escaped and decoded forms are the same string.
package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ErrNotCanonical is wrapped by every error Canonicalize returns; the
// message adds the specific reason.
var ErrNotCanonical = errors.New("request target is not canonical")

// ErrMethodOverride is wrapped by the error RefuseMethodOverride,
// RefuseFormMethodOverride or RefuseJSONMethodOverride returns when it
// finds an override.
var ErrMethodOverride = errors.New("method override refused")

// Path is a canonical request target: the path the policy judges and the
// upstream receives, plus the raw query kept beside it. Obtain one from
// Canonicalize; the zero Path is not a valid target.
//
// A Path is a comparable value, safe to copy and share.
type Path struct {
	path  string
	query string
}

// String returns the canonical path, e.g. "/tenants/t1/mailboxes". Being
// free of percent-encoding, it is both the decoded path and its escaped
// form; when forwarding, set URL.Path and URL.RawPath to it.
func (p Path) String() string { return p.path }

// Query returns the raw query string, without the "?", exactly as received.
// It is empty when the target had no query or an empty one.
func (p Path) Query() string { return p.query }

// Segments returns the path's segments, e.g. ["tenants", "t1", "mailboxes"];
// none is empty. The root path "/" has none. The slice is the caller's.
func (p Path) Segments() []string {
	if len(p.path) <= 1 {
		return nil
	}
	return strings.Split(p.path[1:], "/")
}

// Canonicalize checks a request target as received (http.Request.RequestURI,
// not the already-decoded URL.Path) and returns it as a Path if, and only if,
// it is already canonical. It refuses, with an error wrapping
// ErrNotCanonical:
//
//   - an empty target, and any target not in origin-form ("/..."): the
//     absolute-form "http://host/...", the authority-form "host:443", "*";
//   - a fragment ("#"), spaces, control bytes and non-ASCII bytes, anywhere;
//   - in the path, any "%": percent-encoding is how "/" (%2F), "\" (%5C) and
//     dot segments (%2E) get smuggled past one decoder and through another,
//     and no catalog pattern needs an escaped byte;
//   - in the path, "\" (some servers treat it as "/"), ";" (matrix
//     parameters, which servers strip or route on differently), and any
//     other byte outside RFC 3986 pchar;
//   - empty segments ("//", which some servers merge), dot segments ("."
//     and ".."), and a trailing "/" on anything but "/" itself (no catalog
//     pattern ends in one, and servers differ on whether it matters);
//   - in the query, ";" (a second parameter separator for some servers,
//     which could hide "_method" from RefuseMethodOverride) and invalid
//     percent-escapes (decoders disagree on them).
//
// The query is otherwise kept raw; percent-escapes there are fine because
// the policy judges the path, never the query.
func Canonicalize(rawTarget string) (Path, error) {
	if rawTarget == "" {
		return Path{}, notCanonical("empty")
	}
	if rawTarget[0] != '/' {
		return Path{}, notCanonical("not origin-form: must start with \"/\"")
	}
	for i := 0; i < len(rawTarget); i++ {
		switch c := rawTarget[i]; {
		case c <= ' ' || c >= 0x7f:
			return Path{}, notCanonical(fmt.Sprintf("space, control or non-ASCII byte at offset %d", i))
		case c == '#':
			return Path{}, notCanonical("fragment")
		}
	}
	path, query, _ := strings.Cut(rawTarget, "?")
	if err := checkPath(path); err != nil {
		return Path{}, err
	}
	if err := checkQuery(query); err != nil {
		return Path{}, err
	}
	return Path{path: path, query: query}, nil
}

// checkPath expects a path of printable ASCII starting with "/".
func checkPath(path string) error {
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '%':
			return notCanonical("percent-encoding in the path")
		case c == '\\':
			return notCanonical("backslash in the path")
		case c == ';':
			return notCanonical("\";\" parameters in the path")
		case !isPathByte(c):
			return notCanonical(fmt.Sprintf("%q is not allowed in a path", c))
		}
	}
	if path == "/" {
		return nil
	}
	if strings.HasSuffix(path, "/") {
		return notCanonical("trailing \"/\"")
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		switch seg {
		case "":
			return notCanonical("empty segment (\"//\")")
		case ".", "..":
			return notCanonical("dot segment")
		}
	}
	return nil
}

// isPathByte reports whether c may appear in a canonical path: "/" or an RFC
// 3986 pchar (unreserved, sub-delims, ":", "@") other than ";". Percent-
// encoding is refused before this is asked.
func isPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("/-._~!$&'()*+,=:@", c) >= 0
}

// checkQuery expects printable ASCII without "#".
func checkQuery(q string) error {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return notCanonical("\";\" in the query")
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return notCanonical("invalid percent-escape in the query")
			}
			i += 2
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func notCanonical(reason string) error {
	return fmt.Errorf("%w: %s", ErrNotCanonical, reason)
}

// The headers and parameters clients and frameworks use to make one method
// act as another. A proxy judging "POST" must not forward something an
// upstream may execute as "DELETE".
var (
	overrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}
	overrideParams  = []string{"_method", "x-http-method-override", "x-http-method", "x-method-override"}
)

// mayNameOverride reports whether a raw query string could name a
// method-override parameter, so that only such a query is parsed: every
// override parameter's name has "method" in it, and overrideParam only
// drops or replaces bytes around those letters (never a letter), so a
// query without "method" in any case, and without a percent-escape that
// could spell it, names none.
func mayNameOverride(rawQuery string) bool {
	if strings.IndexByte(rawQuery, '%') >= 0 {
		return true
	}
	for i := 0; i+len("method") <= len(rawQuery); i++ {
		if strings.EqualFold(rawQuery[i:i+len("method")], "method") {
			return true
		}
	}
	return false
}

// overrideParam returns the override parameter a decoded parameter name
// (a query key, a form field) may be read as by some framework, and true,
// or "", false. Comparing names exactly is not enough: frameworks tidy
// names before anyone reads them, so the proxy compares what they would
// read. Ignoring ASCII case:
//
//   - a NUL ends the name (PHP registers variables as C strings);
//   - leading whitespace is dropped (PHP skips leading spaces), and so are
//     leading "[" and "]" (Rack 2 strips them from nested names);
//   - " ", ".", "[", "]" and "-" count as "_" (PHP turns " ", "." and an
//     unclosed "[" into "_"), and trailing ones are dropped (Rack 2 drops
//     a trailing "]"; no client has a reason to send "_method." or
//     "_method_", and a parser not listed here might tidy them away);
//   - a name with "[" is also read as the part before it, the array or
//     hash it fills ("_method[]" in PHP, Rack, qs; Spring binds it too).
//
// The same rules apply to query keys and to form fields, so that a name
// refused in one place is refused in the other.
func overrideParam(name string) (string, bool) {
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimLeft(name, " \t\n\v\f\r[]")
	base := name
	if i := strings.IndexByte(name, '['); i >= 0 {
		base = name[:i]
	}
	for _, p := range overrideParams {
		if sameParam(name, p) || sameParam(base, p) {
			return p, true
		}
	}
	return "", false
}

// sameParam reports whether name is want once folded as overrideParam
// describes: ASCII case ignored, separators equal to "_", trailing
// separators dropped.
func sameParam(name, want string) bool {
	for len(name) > 0 && paramSep(name[len(name)-1]) {
		name = name[:len(name)-1]
	}
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldParam(name[i]) != foldParam(want[i]) {
			return false
		}
	}
	return true
}

func paramSep(c byte) bool {
	switch c {
	case '_', '-', '.', '[', ']', ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

func foldParam(c byte) byte {
	switch {
	case paramSep(c):
		return '_'
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	}
	return c
}

// RefuseMethodOverride returns an error wrapping ErrMethodOverride if h
// carries a method-override header, whatever its value (even empty).
// Names are compared without regard to case, so a header map built by
// hand with non-canonical keys can't slip one through. The query's
// parameters are RefuseQueryMethodOverride's.
func RefuseMethodOverride(h http.Header) error {
	for k := range h {
		for _, name := range overrideHeaders {
			if strings.EqualFold(k, name) {
				return fmt.Errorf("%w: header %s", ErrMethodOverride, name)
			}
		}
	}
	return nil
}

// RefuseQueryMethodOverride returns an error wrapping ErrMethodOverride if
// the raw query names a method-override parameter, as overrideParam reads
// names. It reads the query itself rather than with url.ParseQuery, which
// gives up on a query of more than 10,000 parameters (URL.Query then
// returns no parameter at all, hiding any "_method" after them) and skips
// a pair with ";". Here every piece counts, however many: the query is
// split on "&" and on ";" (Rack splits on both), empty pieces are
// skipped, and the name is the piece up to its first "=", unescaped. A
// name that does not unescape is refused with another error: what the
// proxy can't read, an upstream may read as "_method". A query without
// "method" in any case, and without a percent-escape, names no override
// and is not split at all (mayNameOverride).
func RefuseQueryMethodOverride(rawQuery string) error {
	if !mayNameOverride(rawQuery) {
		return nil
	}
	return refuseQueryOverride(rawQuery)
}

// refuseQueryOverride is RefuseQueryMethodOverride without the prefilter.
// It allocates only to unescape a name with "%" or "+" in it.
func refuseQueryOverride(rawQuery string) error {
	for rest := rawQuery; rest != ""; {
		piece := rest
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			piece, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if piece == "" {
			continue
		}
		key, _, _ := strings.Cut(piece, "=")
		key, err := url.QueryUnescape(key)
		if err != nil {
			return fmt.Errorf("malformed query parameter name: %w", err)
		}
		if name, ok := overrideParam(key); ok {
			return fmt.Errorf("%w: query parameter %s", ErrMethodOverride, name)
		}
	}
	return nil
}

// The media types of form bodies: the ones Laravel and Symfony, Rails
// (Rack::MethodOverride) and Spring's HiddenHttpMethodFilter read a
// "_method" field from. Rack parses any multipart type (multipart/mixed,
// multipart/related...) as a form too, so FormType reads every
// "multipart/" type as multipart.
const (
	formURLEncoded = "application/x-www-form-urlencoded"
	formMultipart  = "multipart/form-data"
)

// FormType returns the media type and, for multipart, the boundary of a
// body sent with method and Content-Type values contentType, when a
// framework would parse that body as a form: an
// "application/x-www-form-urlencoded" body, any "multipart/" type, and
// a POST without a media type (no Content-Type, or one without a type),
// which Rack reads as a urlencoded form and is reported as one. It
// returns "" when no framework would (another type, or another method
// without a Content-Type).
//
// It returns an error when the proxy can't tell, or can't parse what a
// framework would: more than one Content-Type (the upstream may read
// another one than the proxy); a form Content-Type that
// mime.ParseMediaType refuses, the type being read as well the lax way
// PHP does (up to the first ";", "," or whitespace), so that
// "application/x-www-form-urlencoded x" or "multipart/form-data
// boundary=b" is refused rather than guessed at; a multipart type without
// a boundary; a multipart Content-Type with "boundary" (in any case)
// more than once anywhere in it, since Go, PHP (the first "boundary") and
// Rack (the last) would split the body at different boundaries; and a
// form type whose charset is not one where bytes and ASCII characters are
// the same thing (UTF-8, US-ASCII, ISO-8859-1: see asciiCharset), since
// frameworks that decode field names in it would read other names than
// the proxy, or whose Content-Type has "charset" (in any case) anywhere
// but as its one charset parameter's name, since Tomcat reads a charset
// from any "charset=" in it.
func FormType(method string, contentType []string) (mediaType, boundary string, err error) {
	post := strings.EqualFold(method, http.MethodPost)
	switch len(contentType) {
	case 0:
		if post {
			return formURLEncoded, "", nil
		}
		return "", "", nil
	case 1:
	default:
		return "", "", errors.New("more than one Content-Type header")
	}
	v := contentType[0]
	lax := laxMediaType(v)
	if lax == "" {
		if post {
			return formURLEncoded, "", nil
		}
		return "", "", nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != lax {
		if isFormType(mt) || isFormType(lax) {
			if err == nil {
				err = fmt.Errorf("media type %q read as %q", echo(mt), echo(lax))
			}
			return "", "", fmt.Errorf("malformed form Content-Type: a form body whose Content-Type can't be read exactly is refused: %w", err)
		}
		// Not a form to anyone: the body is not looked at.
		return "", "", nil
	}
	cs, hasCharset := params["charset"]
	if isFormType(mt) {
		// Tomcat takes the charset from the first "charset=" anywhere in
		// the value (coyote Request.getCharsetFromContentType): in
		// "x-charset=UTF-16LE", or in another parameter's quoted value,
		// it finds a charset where the proxy finds none, or another one.
		// So "charset" may appear once, as the charset parameter.
		if n := countFoldASCII(v, "charset"); n > 1 || n == 1 && !hasCharset {
			return "", "", fmt.Errorf(`%s with "charset" outside its charset parameter: a form whose charset the proxy can't tell is refused`, echo(mt))
		}
		if hasCharset && !asciiCharset(cs) {
			return "", "", fmt.Errorf("%s in charset %q: a form whose field names the proxy can't read as ASCII is refused", echo(mt), echo(cs))
		}
	}
	switch {
	case mt == formURLEncoded:
		return mt, "", nil
	case isMultipart(mt):
		if countFoldASCII(v, "boundary") > 1 {
			return "", "", fmt.Errorf("%s with \"boundary\" more than once in its Content-Type", echo(mt))
		}
		if params["boundary"] == "" {
			return "", "", fmt.Errorf("%s without a boundary", echo(mt))
		}
		return mt, params["boundary"], nil
	}
	return "", "", nil
}

// laxMediaType is the media type of a Content-Type value as PHP reads it:
// leading whitespace dropped, up to the first ";", "," or whitespace,
// lower-cased (ASCII only).
func laxMediaType(v string) string {
	v = strings.TrimLeft(v, " \t\n\v\f\r")
	if i := strings.IndexAny(v, "; ,\t\n\v\f\r"); i >= 0 {
		v = v[:i]
	}
	b := []byte(v)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

func isFormType(mt string) bool { return mt == formURLEncoded || isMultipart(mt) }

// asciiCharset reports whether a form's charset parameter names a charset
// in which every byte below 0x80 is the ASCII character it is and no other
// byte or sequence is an ASCII character: then the names the proxy reads
// byte for byte are the names a framework decoding them reads. Tomcat,
// Jetty and ASP.NET split a urlencoded body on the bytes "&" and "=" and
// decode each name in the Content-Type's charset (and multipart part
// headers too), so in UTF-16LE the bytes "_\x00m\x00e\x00..." are
// "_method" to them and a name cut short by a NUL to the proxy; UTF-7,
// EBCDIC and others spell "_method" with other bytes again.
func asciiCharset(cs string) bool {
	// ASCII case only: Unicode folding would make "uſ-aſcii" "us-ascii".
	b := []byte(cs)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	switch string(b) {
	case "utf-8", "utf8", "us-ascii", "iso-8859-1":
		return true
	}
	return false
}

func isMultipart(mt string) bool { return strings.HasPrefix(mt, "multipart/") }

// countFoldASCII counts the occurrences, overlapping or not, of sub, a
// lower-case ASCII string, in s, ignoring ASCII case.
func countFoldASCII(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if containsFoldASCII(s[i:i+len(sub)], sub) {
			n++
		}
	}
	return n
}

// RefuseFormMethodOverride returns an error wrapping ErrMethodOverride if
// the form body, of a media type and boundary FormType returned, has a
// field whose name overrideParam reads as an override parameter, whatever
// its value. A body that does not parse is refused too, with another
// error: what the proxy can't read, a framework may read differently.
// For multipart, every part's Content-Disposition "name" counts, whatever
// the disposition type (PHP reads the name of any part), and a part whose
// Content-Disposition has an RFC 2231 parameter ("name*", "filename*",
// "name*0"...) is refused: Go lets "name*" replace "name", PHP and Rack
// ignore it, so the two would read different names. So is a part whose
// name has "=?" in it, the start of an RFC 2047 encoded-word, which
// Commons FileUpload decodes and Go does not. And so is a body with a line
// that starts with the delimiter but that Go does not read as one, which
// PHP does.
func RefuseFormMethodOverride(mediaType, boundary string, body []byte) error {
	switch {
	case mediaType == formURLEncoded:
		fields, err := url.ParseQuery(string(body))
		if err != nil {
			return fmt.Errorf("malformed form body: %w", err)
		}
		for k := range fields {
			if name, ok := overrideParam(k); ok {
				return fmt.Errorf("%w: form field %s", ErrMethodOverride, name)
			}
		}
		return nil
	case isMultipart(mediaType):
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		for parts := 0; ; parts++ {
			part, err := mr.NextRawPart()
			// Only a bare io.EOF is the final boundary: a body cut short
			// is an error wrapping io.EOF.
			if err == io.EOF {
				// Go read parts+1 delimiters, each at the start of a line.
				// PHP ends a part at "\n--" and the boundary whatever
				// follows, and takes any line starting with them for a
				// delimiter, in the preamble and the epilogue too: a line
				// Go reads as text ("--bX", or "--b" after a bare LF) would
				// start a part only PHP sees, named "_method" if the
				// client likes.
				if n := lineStarts(body, "--"+boundary); n != parts+1 {
					return fmt.Errorf("malformed multipart form body: %d lines start with the delimiter, of which only %d are delimiters to the proxy", n, parts+1)
				}
				if bareBreakInPartHeaders(body, "--"+boundary) {
					return errors.New("malformed multipart form body: a part's header lines must end with CR LF; a bare CR or LF in them is refused")
				}
				return nil
			}
			if err != nil {
				// The reader's errors quote the line they choke on, which
				// can be as long as the body.
				return fmt.Errorf("malformed multipart form body: %w", echoedError{err})
			}
			for k := range part.Header {
				// Go keeps a name with a space before its colon as it is
				// (golang.org/issue/34540): "Content-Disposition :" is
				// another header to it, and its field unchecked here.
				// Commons FileUpload and Tomcat's copy of it trim the
				// name, and read that part's field as any other.
				if strings.IndexByte(k, ' ') >= 0 {
					return errors.New("malformed multipart form body: a part header name with a space in it (as before its colon) is refused")
				}
			}
			for _, cd := range part.Header.Values("Content-Disposition") {
				_, params, err := mime.ParseMediaType(cd)
				if err != nil {
					return fmt.Errorf("malformed multipart form body: Content-Disposition: %w", echoedError{err})
				}
				if name, ok := overrideParam(params["name"]); ok {
					return fmt.Errorf("%w: form field %s", ErrMethodOverride, name)
				}
				if hasExtendedParam(cd) {
					return errors.New("malformed multipart form body: Content-Disposition: RFC 2231 parameters (name*) are refused")
				}
				if strings.Contains(params["name"], "=?") {
					// Commons FileUpload and Tomcat's copy of it decode
					// RFC 2047 encoded-words in Content-Disposition
					// values (MimeUtility.decodeText): to them
					// "=?UTF-8?B?X21ldGhvZA==?=" is "_method".
					return errors.New("malformed multipart form body: Content-Disposition: RFC 2047 encoded-words (=?...?=) in a field name are refused")
				}
			}
		}
	}
	return fmt.Errorf("not a form media type: %q", mediaType)
}

// bareBreakInPartHeaders reports whether a part's header section holds a CR
// or an LF that is not one of a CR LF pair. Go (and PHP) end a header line
// at a bare LF; Commons FileUpload and Tomcat's copy of it only at CR LF,
// and read the header section up to the first CR LF CR LF. So
// "Content-Disposition: form-data; name=\"kind\"<LF>X: y; name=\"_method\""
// is two headers to Go, the field "kind", and one to Tomcat, whose
// parameter parser keeps the last "name": the field "_method".
//
// body has passed the multipart reader, and lineStarts found each line
// starting with delim (the "--" and the boundary) to be a delimiter. A
// part's header section runs from the end of its delimiter's line to the
// first CR LF CR LF, as Commons FileUpload reads it, the last header's CR
// LF included.
func bareBreakInPartHeaders(body []byte, delim string) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(delim))
		if j < 0 {
			return false
		}
		j += i
		i = j + len(delim)
		if j > 0 && body[j-1] != '\n' {
			continue // not at the start of a line: part of a body
		}
		rest := body[i:]
		if bytes.HasPrefix(rest, []byte("--")) {
			continue // the close delimiter: no headers follow
		}
		eol := bytes.IndexByte(rest, '\n')
		if eol < 0 {
			return false
		}
		hdr := rest[eol+1:]
		if end := bytes.Index(hdr, []byte("\r\n\r\n")); end >= 0 {
			hdr = hdr[:end+2]
		}
		for k, c := range hdr {
			switch {
			case c == '\r' && (k+1 == len(hdr) || hdr[k+1] != '\n'):
				return true
			case c == '\n' && (k == 0 || hdr[k-1] != '\r'):
				return true
			}
		}
		i += eol + 1
	}
}

// lineStarts counts the lines of b that start with prefix: at the start of
// b or after a "\n".
func lineStarts(b []byte, prefix string) int {
	n := 0
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(prefix))
		if j < 0 {
			return n
		}
		if at := i + j; at == 0 || b[at-1] == '\n' {
			n++
		}
		i += j + 1
	}
}

// hasExtendedParam reports whether a header value that
// mime.ParseMediaType accepted has a "*" outside a quoted string: one in
// a parameter name marks an RFC 2231 parameter ("name*", "name*0*").
// A "*" in an unquoted value counts too, which only refuses more.
func hasExtendedParam(v string) bool {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '*':
			return true
		}
	}
	return false
}

// JSONType reports whether a framework would read a body with these
// Content-Type values as JSON: when one contains "/json" or "+json",
// ignoring ASCII case, anywhere in the value. That is Laravel's test
// (Request::isJson is Str::contains($contentType, ['/json', '+json'])),
// and Laravel then builds its request input, where it looks for
// "_method", from the JSON body. So "text/json", "application/jsonp" and
// a form type with "/json" in a parameter count too; Laravel's test heeds
// case, this one does not, which can only refuse more. The strict reading
// (mime.ParseMediaType gives "application/json" or a "+json" suffix) is not
// computed apart: ParseMediaType only trims and lowercases the ASCII type,
// so every value it reads as JSON has "/json" or "+json" in it already
// (TestJSONType checks this).
func JSONType(contentType []string) bool {
	for _, v := range contentType {
		if containsFoldASCII(v, "/json") || containsFoldASCII(v, "+json") {
			return true
		}
	}
	return false
}

// containsFoldASCII reports whether s contains sub, a lower-case ASCII
// string, ignoring ASCII case only (a byte-wise test like PHP's, so no
// Unicode folding: "ſ" is not "s").
func containsFoldASCII(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && lowerASCII(s[i+j]) == sub[j] {
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// jsonSpace is JSON's insignificant whitespace (RFC 8259, section 2).
const jsonSpace = " \t\n\r"

// RefuseJSONMethodOverride returns an error wrapping ErrMethodOverride if
// the JSON body's top-level value is an object with a key that
// overrideParam reads as an override parameter, whatever its value. Keys
// are compared decoded, so "\u005fmethod" is "_method". Every key is
// looked at, so a duplicate can't hide one whichever occurrence a parser
// keeps (PHP's json_decode keeps the last). Nested values are skipped,
// not looked into: Laravel's input bag is the top-level object, and it
// looks "_method" up at that level only. A top-level array, string,
// number or literal names no parameter (PHP's (array) cast of one gives
// only integer keys), and neither does an empty body or one of
// whitespace only (no value at all; Laravel reads it as empty input).
//
// A body that is not valid JSON (RFC 8259: UTF-8, one value, nothing
// after it) is refused with another error. Laravel reads such a body as
// empty input, so forwarding it would not let Laravel override the
// method; it is refused anyway, because the proxy fails closed: other
// parsers are laxer than encoding/json (comments, single quotes, trailing
// commas, a second value, invalid UTF-8 kept or dropped byte for byte),
// and a key the proxy can't read is one an upstream's parser may read as
// "_method". No client of a JSON activity has a reason to send one.
func RefuseJSONMethodOverride(body []byte) error {
	text := bytes.Trim(body, jsonSpace)
	if len(text) == 0 {
		return nil
	}
	// json.Valid does not check UTF-8: encoding/json would decode a bad
	// byte in a key as U+FFFD, and another parser may keep or drop it.
	if !utf8.Valid(text) || !json.Valid(text) {
		return errors.New("malformed JSON body: not a valid JSON text in UTF-8")
	}
	if text[0] != '{' {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	malformed := func(err error) error { return fmt.Errorf("malformed JSON body: %w", err) }
	if _, err := dec.Token(); err != nil { // the object's "{"
		return malformed(err)
	}
	// One buffer, reused for every value skipped: RawMessage decodes by
	// appending to its own bytes from zero length.
	var skip json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return malformed(err)
		}
		key, ok := tok.(string)
		if !ok {
			// json.Valid passed, so a key is a string; checked anyway.
			return malformed(fmt.Errorf("object key %v is not a string", tok))
		}
		if name, ok := overrideParam(key); ok {
			return fmt.Errorf("%w: JSON body key %s", ErrMethodOverride, name)
		}
		if err := dec.Decode(&skip); err != nil {
			return malformed(err)
		}
	}
	return nil
}
