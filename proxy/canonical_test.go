package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var canonicalTests = []struct {
	name   string
	target string
	path   string // canonical path when accepted
	query  string
	reason string // substring of the error when refused; empty means accepted
}{
	// Accepted.
	{name: "root", target: "/", path: "/"},
	{name: "catalog path", target: "/tenants/t1/mailboxes", path: "/tenants/t1/mailboxes"},
	{name: "with query", target: "/tenants/t1/mailboxes?top=10&skip=0", path: "/tenants/t1/mailboxes", query: "top=10&skip=0"},
	{name: "encoded query is kept raw", target: "/tenants/t1/sites?q=a%20b%2Fc", path: "/tenants/t1/sites", query: "q=a%20b%2Fc"},
	{name: "empty query", target: "/tenants/t1/sites?", path: "/tenants/t1/sites"},
	{name: "question mark inside query", target: "/a?b?c", path: "/a", query: "b?c"},
	{name: "dots inside a segment", target: "/tenants/t1/files/report.v2..final", path: "/tenants/t1/files/report.v2..final"},
	{name: "three dots", target: "/a/.../b", path: "/a/.../b"},
	{name: "dot-prefixed name", target: "/a/.hidden", path: "/a/.hidden"},
	{name: "mailbox address", target: "/tenants/t1/mailboxes/alice@contoso.com/messages", path: "/tenants/t1/mailboxes/alice@contoso.com/messages"},
	{name: "sub-delims and colon", target: "/a/b:c/d!$&'()*+,=e", path: "/a/b:c/d!$&'()*+,=e"},
	{name: "unreserved marks", target: "/a-b_c.d~e", path: "/a-b_c.d~e"},

	// Not origin-form.
	{name: "empty", target: "", reason: "empty"},
	{name: "absolute-form", target: "http://upstream.internal/tenants/t1", reason: "not origin-form"},
	{name: "authority-form", target: "upstream.internal:443", reason: "not origin-form"},
	{name: "asterisk-form", target: "*", reason: "not origin-form"},
	{name: "relative path", target: "tenants/t1", reason: "not origin-form"},
	{name: "leading backslash", target: `\tenants`, reason: "not origin-form"},
	{name: "query only", target: "?a=b", reason: "not origin-form"},

	// Bytes refused anywhere.
	{name: "fragment", target: "/tenants/t1#frag", reason: "fragment"},
	{name: "fragment in query", target: "/tenants/t1?a=b#frag", reason: "fragment"},
	{name: "space", target: "/tenants/t 1", reason: "offset 10"},
	{name: "tab", target: "/tenants/t\t1", reason: "control"},
	{name: "NUL", target: "/tenants/t1\x00.json", reason: "control"},
	{name: "CR LF", target: "/tenants/t1\r\nX-Injected: 1", reason: "control"},
	{name: "DEL", target: "/tenants/\x7f", reason: "control"},
	{name: "non-ASCII", target: "/tenants/t\u00e91", reason: "non-ASCII"},
	{name: "control byte in query", target: "/a?b=\x01", reason: "control"},
	{name: "non-ASCII in query", target: "/a?b=\xff", reason: "non-ASCII"},

	// Dot segments, literal and encoded.
	{name: "dot-dot", target: "/tenants/t1/../t2", reason: "dot segment"},
	{name: "dot", target: "/tenants/./t1", reason: "dot segment"},
	{name: "trailing dot-dot", target: "/tenants/t1/..", reason: "dot segment"},
	{name: "trailing dot", target: "/tenants/t1/.", reason: "dot segment"},
	{name: "only dot-dot", target: "/..", reason: "dot segment"},
	{name: "dot-dot before query", target: "/a/..?b", reason: "dot segment"},
	{name: "encoded dot-dot lower", target: "/tenants/t1/%2e%2e/t2", reason: "percent-encoding"},
	{name: "encoded dot-dot upper", target: "/tenants/t1/%2E%2E/t2", reason: "percent-encoding"},
	{name: "half-encoded dot-dot", target: "/tenants/t1/.%2e/t2", reason: "percent-encoding"},

	// Separators and encodings.
	{name: "double slash", target: "//tenants/t1", reason: "empty segment"},
	{name: "double slash inside", target: "/tenants//t1", reason: "empty segment"},
	{name: "trailing slash", target: "/tenants/t1/", reason: "trailing"},
	{name: "encoded slash lower", target: "/tenants/t1%2fmailboxes", reason: "percent-encoding"},
	{name: "encoded slash upper", target: "/tenants/t1%2Fmailboxes", reason: "percent-encoding"},
	{name: "encoded backslash", target: "/tenants/t1%5cmailboxes", reason: "percent-encoding"},
	{name: "encoded unreserved", target: "/tenants/t%31", reason: "percent-encoding"},
	{name: "invalid escape", target: "/tenants/t1%zz", reason: "percent-encoding"},
	{name: "truncated escape", target: "/tenants/t1%", reason: "percent-encoding"},
	{name: "encoded NUL", target: "/tenants/t1%00", reason: "percent-encoding"},
	{name: "double-encoded dot-dot", target: "/tenants/t1/%252e%252e/t2", reason: "percent-encoding"},
	{name: "overlong UTF-8 dot, encoded", target: "/tenants/t1/%c0%ae%c0%ae/t2", reason: "percent-encoding"},
	{name: "overlong UTF-8 slash, raw", target: "/tenants/t1\xc0\xafmailboxes", reason: "non-ASCII"},
	{name: "double-encoded slash", target: "/tenants/t1%252fmailboxes", reason: "percent-encoding"},
	{name: "raw backslash", target: `/tenants/t1\..\t2`, reason: "backslash"},
	{name: "matrix parameter", target: "/tenants/t1;jsessionid=x/mailboxes", reason: "\";\" parameters"},
	{name: "semicolon dot-dot", target: "/tenants/..;/admin", reason: "\";\" parameters"},
	{name: "brace", target: "/tenants/{tenant}", reason: "not allowed in a path"},
	{name: "double quote", target: `/tenants/"t1"`, reason: "not allowed in a path"},
	{name: "angle bracket", target: "/tenants/<t1>", reason: "not allowed in a path"},
	{name: "pipe", target: "/tenants/t1|t2", reason: "not allowed in a path"},

	// Query.
	{name: "semicolon in query", target: "/a?x=1;_method=DELETE", reason: "\";\" in the query"},
	{name: "invalid escape in query", target: "/a?x=%zz", reason: "invalid percent-escape"},
	{name: "truncated escape in query", target: "/a?x=%4", reason: "invalid percent-escape"},
}

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	for _, tt := range canonicalTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Canonicalize(tt.target)
			if tt.reason != "" {
				if err == nil {
					t.Fatalf("Canonicalize(%q) = %q, %q; want an error containing %q", tt.target, p, p.Query(), tt.reason)
				}
				if !errors.Is(err, ErrNotCanonical) {
					t.Errorf("error %q does not wrap ErrNotCanonical", err)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("error %q does not contain %q", err, tt.reason)
				}
				if p != (Path{}) {
					t.Errorf("refused target returned a non-zero Path %q", p)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonicalize(%q): %v", tt.target, err)
			}
			if p.String() != tt.path || p.Query() != tt.query {
				t.Errorf("Canonicalize(%q) = %q ? %q; want %q ? %q", tt.target, p, p.Query(), tt.path, tt.query)
			}
		})
	}
}

func TestPathSegments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target string
		want   []string
	}{
		{"/", nil},
		{"/a", []string{"a"}},
		{"/tenants/t1/mailboxes?x=/y", []string{"tenants", "t1", "mailboxes"}},
	}
	for _, tt := range tests {
		p, err := Canonicalize(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Segments()
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q.Segments() = %q, want %q", tt.target, got, tt.want)
		}
		if len(got) > 0 {
			got[0] = "mutated"
			if p.Segments()[0] == "mutated" {
				t.Errorf("%q.Segments() exposes shared state", tt.target)
			}
		}
	}
	if got := (Path{}).Segments(); got != nil {
		t.Errorf("zero Path has segments %q", got)
	}
}

func TestRefuseMethodOverride(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		h     http.Header
		query string
		want  string // substring of the error; empty means allowed
	}{
		{name: "none", h: http.Header{"Accept": {"application/json"}}, query: "top=10"},
		{name: "nil inputs"},
		{name: "similar but harmless names", h: http.Header{"X-Http-Methods": {"x"}}, query: "method=DELETE&_methods=x"},
		{name: "X-HTTP-Method-Override", h: http.Header{"X-Http-Method-Override": {"DELETE"}}, want: "header X-HTTP-Method-Override"},
		{name: "X-HTTP-Method", h: http.Header{"X-Http-Method": {"DELETE"}}, want: "header X-HTTP-Method"},
		{name: "X-Method-Override", h: http.Header{"X-Method-Override": {"DELETE"}}, want: "header X-Method-Override"},
		{name: "non-canonical header key", h: http.Header{"x-http-method-override": {"DELETE"}}, want: "header X-HTTP-Method-Override"},
		{name: "empty header value", h: http.Header{"X-Http-Method-Override": {""}}, want: "header"},
		{name: "_method", query: "_method=DELETE", want: "query parameter _method"},
		{name: "_METHOD", query: "_METHOD=DELETE", want: "query parameter _method"},
		{name: "encoded _method", query: "_%6Dethod=DELETE", want: "query parameter _method"},
		{name: "x-http-method-override param", query: "X-HTTP-Method-Override=PUT", want: "query parameter x-http-method-override"},
		{name: "empty _method", query: "a=1&_method", want: "query parameter _method"},
		// What frameworks tidy into an override name.
		{name: "leading + (a space)", query: "+_method=DELETE", want: "query parameter _method"},
		{name: "leading %20", query: "%20_method=DELETE", want: "query parameter _method"},
		{name: "leading tab", query: "%09_method=DELETE", want: "query parameter _method"},
		{name: "NUL ends the name", query: "_method%00x=DELETE", want: "query parameter _method"},
		{name: "dot for underscore", query: ".method=DELETE", want: "query parameter _method"},
		{name: "space for underscore", query: "+method=DELETE&x=1", want: ""},
		{name: "trailing dot", query: "_method.=DELETE", want: "query parameter _method"},
		{name: "unclosed bracket", query: "_method[=DELETE", want: "query parameter _method"},
		{name: "array", query: "_method[]=DELETE", want: "query parameter _method"},
		{name: "hash", query: "_method[x]=DELETE", want: "query parameter _method"},
		{name: "leading brackets", query: "[_method]=DELETE", want: "query parameter _method"},
		{name: "dotted header-style name", query: "X.HTTP.Method.Override=PUT", want: "query parameter x-http-method-override"},
		{name: "underscored header-style name", query: "x_http_method=PUT", want: "query parameter x-http-method"},
		{name: "names around an override", query: "my_method=1&_method_x=2&_methodology=3&method=4", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := url.ParseQuery(tt.query); err != nil {
				t.Fatal(err)
			}
			err := errors.Join(RefuseMethodOverride(tt.h), RefuseQueryMethodOverride(tt.query))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMethodOverride) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrMethodOverride containing %q", err, tt.want)
			}
		})
	}
}

// TestRefuseQueryMethodOverride: the raw query is read without
// url.ParseQuery's limits, and split the way the laxest framework splits.
func TestRefuseQueryMethodOverride(t *testing.T) {
	t.Parallel()
	many := strings.Repeat("a=1&", 10001)
	tests := []struct {
		name  string
		query string
		want  string // substring of the error; empty means allowed
	}{
		{name: "none", query: "top=10&method=x"},
		{name: "empty"},
		{name: "only separators", query: "&&;;&"},
		{name: "after 10,000 empty pieces", query: strings.Repeat("&", 10000) + "_method=DELETE", want: "query parameter _method"},
		{name: "after 10,001 parameters", query: many + "_method=DELETE", want: "query parameter _method"},
		{name: "10,001 parameters without one", query: many + "method=DELETE"},
		{name: "after a ;", query: "a=1;_method=DELETE", want: "query parameter _method"},
		{name: "a ; in a pair", query: "_method;x=DELETE", want: "query parameter _method"},
		{name: "no =", query: "x&_METHOD", want: "query parameter _method"},
		{name: "= in the value", query: "_method=a=b", want: "query parameter _method"},
		{name: "encoded", query: "%5Fmethod=DELETE", want: "query parameter _method"},
		{name: "bad escape in a name", query: "_method%zz=DELETE", want: "malformed query parameter name"},
		{name: "bad escape in a value", query: "_x=%zz&method=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := RefuseQueryMethodOverride(tt.query)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// FuzzCanonicalize checks what an accepted target promises, whatever the
// input: no construct that servers interpret differently survives, the path is
// what the client sent, and the Go stack (net/http's parser, url.URL when
// forwarding) sees the very same path.
func FuzzCanonicalize(f *testing.F) {
	for _, tt := range canonicalTests {
		f.Add(tt.target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		p, err := Canonicalize(target)
		if err != nil {
			if !errors.Is(err, ErrNotCanonical) {
				t.Fatalf("error %q does not wrap ErrNotCanonical", err)
			}
			if p != (Path{}) {
				t.Fatalf("refused %q but returned %q", target, p)
			}
			return
		}
		path := p.String()

		for _, bad := range []string{"//", "/./", "/../", "%", `\`, ";"} {
			if strings.Contains(path, bad) {
				t.Fatalf("accepted %q: path %q contains %q", target, path, bad)
			}
		}
		if strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..") {
			t.Fatalf("accepted %q: path %q ends in a dot segment", target, path)
		}
		if path != "/" && strings.HasSuffix(path, "/") {
			t.Fatalf("accepted %q: trailing slash", target)
		}
		for i := 0; i < len(target); i++ {
			if c := target[i]; c < 0x21 || c > 0x7e || c == '#' {
				t.Fatalf("accepted %q: byte %#x at %d", target, c, i)
			}
		}
		if strings.Contains(p.Query(), ";") {
			t.Fatalf("accepted %q: query contains \";\"", target)
		}

		// The path is the client's, unchanged.
		if want, _, _ := strings.Cut(target, "?"); path != want {
			t.Fatalf("Canonicalize(%q).String() = %q, want %q", target, path, want)
		}
		if segs := p.Segments(); "/"+strings.Join(segs, "/") != path || slices.Contains(segs, "") {
			t.Fatalf("Segments() of %q = %q", path, segs)
		}

		// Idempotent.
		again := path
		if p.Query() != "" {
			again += "?" + p.Query()
		}
		if p2, err := Canonicalize(again); err != nil || p2 != p {
			t.Fatalf("Canonicalize(%q) = %q, %v; want %q", again, p2, err, p)
		}

		// net/http reads the same path from the request line, decoded and
		// escaped alike, and the query untouched.
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(
			"GET " + target + " HTTP/1.1\r\nHost: upstream\r\n\r\n")))
		if err != nil {
			t.Fatalf("net/http refused accepted target %q: %v", target, err)
		}
		if req.RequestURI != target || req.URL.Path != path || req.URL.EscapedPath() != path || req.URL.RawQuery != p.Query() {
			t.Fatalf("net/http parsed %q as path %q (escaped %q) query %q; want %q, %q",
				target, req.URL.Path, req.URL.EscapedPath(), req.URL.RawQuery, path, p.Query())
		}
		// Forwarding with Path and RawPath set from it sends it as is.
		out := &url.URL{Scheme: "http", Host: "upstream", Path: path, RawPath: path, RawQuery: p.Query()}
		if got := out.EscapedPath(); got != path {
			t.Fatalf("forwarding %q would send path %q", path, got)
		}
		// Go parses every accepted query without dropping a pair, so
		// RefuseMethodOverride sees every parameter the upstream will.
		if _, err := url.ParseQuery(p.Query()); err != nil {
			t.Fatalf("accepted query %q does not parse: %v", p.Query(), err)
		}
	})
}

// FuzzMayNameOverride: a query the prefilter lets through unparsed never
// names a method-override parameter once parsed, and a query a PHP
// framework would read "_method" from is always refused.
func FuzzMayNameOverride(f *testing.F) {
	for _, q := range []string{"top=10", "_method=DELETE", "X-HTTP-Method-Override=PUT", "%5Fmethod=x", "a=1&_MeThOd=2", "m%65thod=1",
		"+_method=DELETE", "%20_method=DELETE", ".method=x", "_method%00x=1", "_method[]=x", "_method[x]=1", "+%20.method=1", "[method=1"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		u := url.URL{RawQuery: q}
		// The scan without the prefilter: what the prefilter skips must
		// name no override once split, unescaped and folded.
		refused := refuseQueryOverride(q) != nil
		if !mayNameOverride(q) && refused {
			t.Fatalf("query %q skipped by the prefilter names an override", q)
		}
		if (RefuseQueryMethodOverride(q) != nil) != refused {
			t.Fatalf("query %q: the prefilter changed the answer", q)
		}
		for k := range u.Query() {
			if _, ok := overrideParam(k); ok && !refused {
				t.Fatalf("query %q: url.ParseQuery finds the override %q the scan misses", q, k)
			}
			if strings.EqualFold(phpVarName(k), "_method") && !refused {
				t.Fatalf("query %q: PHP reads key %q as _method, but it is not refused", q, k)
			}
		}
	})
}

// phpVarName is the name PHP registers a decoded parameter name under (the
// name of the array it fills, for "a[...]"), after php_register_variable_ex
// in main/php_variables.c: a NUL ends it, leading spaces are skipped, " "
// and "." become "_" up to the first "[", an unclosed "[" becomes "_", and
// a name that starts with "[" is dropped.
// It is the fuzz target's model, written apart from overrideParam.
func phpVarName(k string) string {
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	k = strings.TrimLeft(k, " ")
	if strings.HasPrefix(k, "[") {
		// An empty name: PHP registers nothing.
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		switch c := k[i]; c {
		case ' ', '.':
			b.WriteByte('_')
		case '[':
			if strings.IndexByte(k[i:], ']') >= 0 {
				return b.String()
			}
			// An unclosed "[" is "_", and what follows it stays as it is.
			b.WriteByte('_')
			b.WriteString(k[i+1:])
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestFormType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string // POST unless set
		ct       []string
		media    string
		boundary string
		err      string // substring; empty means no error
	}{
		{name: "none, POST", media: formURLEncoded},
		{name: "none, post", method: "post", media: formURLEncoded},
		{name: "none, PUT", method: "PUT"},
		{name: "empty, POST", ct: []string{""}, media: formURLEncoded},
		{name: "blank, POST", ct: []string{" \t"}, media: formURLEncoded},
		{name: "no type, POST", ct: []string{"; charset=utf-8"}, media: formURLEncoded},
		{name: "empty, PATCH", method: "PATCH", ct: []string{""}},
		{name: "JSON", ct: []string{"application/json"}},
		{name: "text", ct: []string{"text/plain; charset=utf-8"}},
		{name: "unparseable, not a form", ct: []string{"application/json;;"}},
		{name: "unparseable, not a form, space", ct: []string{"text/plain x"}},
		{name: "urlencoded", ct: []string{"application/x-www-form-urlencoded"}, media: formURLEncoded},
		{name: "urlencoded, PUT", method: "PUT", ct: []string{"application/x-www-form-urlencoded"}, media: formURLEncoded},
		{name: "urlencoded, upper case, charset", ct: []string{"Application/X-WWW-Form-URLEncoded; charset=UTF-8"}, media: formURLEncoded},
		{name: "urlencoded, space before ;", ct: []string{"application/x-www-form-urlencoded ; charset=utf-8"}, media: formURLEncoded},
		{name: "multipart", ct: []string{`multipart/form-data; boundary="b 1"`}, media: formMultipart, boundary: "b 1"},
		{name: "multipart/mixed", ct: []string{"multipart/mixed; boundary=x"}, media: "multipart/mixed", boundary: "x"},
		{name: "multipart/related", ct: []string{`Multipart/Related; boundary=x; type="text/html"`}, media: "multipart/related", boundary: "x"},
		{name: "urlencoded, quoted charset", ct: []string{`application/x-www-form-urlencoded; charset="utf-8"`}, media: formURLEncoded},
		{name: "urlencoded, US-ASCII", ct: []string{"application/x-www-form-urlencoded; charset=US-ASCII"}, media: formURLEncoded},
		{name: "urlencoded, ISO-8859-1", ct: []string{"application/x-www-form-urlencoded; charset=iso-8859-1"}, media: formURLEncoded},
		{name: "multipart, UTF-8", ct: []string{"multipart/form-data; charset=UTF-8; boundary=x"}, media: formMultipart, boundary: "x"},
		{name: "urlencoded, UTF-16", ct: []string{"application/x-www-form-urlencoded; charset=utf-16"}, err: "charset"},
		{name: "urlencoded, UTF-16LE", ct: []string{"application/x-www-form-urlencoded; charset=UTF-16LE"}, err: "charset"},
		{name: "urlencoded, UTF-7", ct: []string{"application/x-www-form-urlencoded; charset=utf-7"}, err: "charset"},
		{name: "urlencoded, empty charset", ct: []string{`application/x-www-form-urlencoded; charset=""`}, err: "charset"},
		{name: "multipart, EBCDIC", ct: []string{"multipart/form-data; boundary=x; charset=IBM037"}, err: "charset"},
		{name: "multipart/mixed, Shift_JIS", ct: []string{"multipart/mixed; boundary=x; charset=Shift_JIS"}, err: "charset"},
		{name: "urlencoded, charset= in another parameter's name", ct: []string{"application/x-www-form-urlencoded; x-charset=UTF-16LE"}, err: "charset"},
		{name: "urlencoded, charset= in a quoted value", ct: []string{`application/x-www-form-urlencoded; x="a; charset=utf-16"`}, err: "charset"},
		{name: "urlencoded, UTF-8 and charset= again", ct: []string{`application/x-www-form-urlencoded; charset=utf-8; x="charset=utf-16"`}, err: "charset"},
		{name: "multipart, charset= in another parameter's name", ct: []string{"multipart/form-data; boundary=x; xcharset=IBM037"}, err: "charset"},
		{name: "multipart without a boundary", ct: []string{"multipart/form-data"}, err: "without a boundary"},
		{name: "multipart/mixed without a boundary", ct: []string{"multipart/mixed"}, err: "without a boundary"},
		{name: "urlencoded with a bad parameter", ct: []string{"application/x-www-form-urlencoded; charset"}, err: "malformed form Content-Type"},
		{name: "urlencoded followed by a comma", ct: []string{"application/x-www-form-urlencoded, text/plain"}, err: "malformed form Content-Type"},
		{name: "urlencoded followed by a space", ct: []string{"application/x-www-form-urlencoded x"}, err: "malformed form Content-Type"},
		{name: "urlencoded followed by a tab", ct: []string{"application/x-www-form-urlencoded\tx"}, err: "malformed form Content-Type"},
		{name: "multipart, boundary without ;", ct: []string{"multipart/form-data boundary=abc"}, err: "malformed form Content-Type"},
		{name: "multipart/mixed, unparseable", ct: []string{"multipart/mixed; boundary"}, err: "malformed form Content-Type"},
		{name: "multipart, boundary twice", ct: []string{"multipart/form-data; boundary=a; x-boundary=b"}, err: "more than once"},
		{name: "multipart, BOUNDARY in a value", ct: []string{`multipart/form-data; boundary=a; x="BOUNDARY=b"`}, err: "more than once"},
		{name: "multipart, boundary in the boundary", ct: []string{"multipart/form-data; boundary=boundary"}, err: "more than once"},
		{name: "two values", ct: []string{"application/json", "application/x-www-form-urlencoded"}, err: "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method := tt.method
			if method == "" {
				method = "POST"
			}
			media, boundary, err := FormType(method, tt.ct)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || media != "" {
					t.Fatalf("FormType(%q, %q) = %q, %v; want an error containing %q", method, tt.ct, media, err, tt.err)
				}
				return
			}
			if err != nil || media != tt.media || boundary != tt.boundary {
				t.Fatalf("FormType(%q, %q) = %q, %q, %v; want %q, %q", method, tt.ct, media, boundary, err, tt.media, tt.boundary)
			}
		})
	}
}

// multipartBody is a multipart/form-data body with boundary "b" and one
// part per Content-Disposition value.
func multipartBody(dispositions ...string) string {
	var b strings.Builder
	for _, d := range dispositions {
		b.WriteString("--b\r\nContent-Disposition: " + d + "\r\n\r\nvalue\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

func TestRefuseFormMethodOverride(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		media string
		body  string
		want  string // substring of the error; empty means allowed
		// override: the error wraps ErrMethodOverride (else: malformed).
		override bool
	}{
		{name: "urlencoded fields", media: formURLEncoded, body: "kind=index&method=full&note=a+b%21"},
		{name: "urlencoded empty", media: formURLEncoded},
		{name: "urlencoded _method", media: formURLEncoded, body: "kind=index&_method=DELETE", want: "form field _method", override: true},
		{name: "urlencoded +_method", media: formURLEncoded, body: "+_method=DELETE", want: "form field _method", override: true},
		{name: "urlencoded _METHOD[]", media: formURLEncoded, body: "_METHOD[]=DELETE", want: "form field _method", override: true},
		{name: "urlencoded header-style name", media: formURLEncoded, body: "X-HTTP-Method-Override=DELETE", want: "form field x-http-method-override", override: true},
		{name: "urlencoded bad escape", media: formURLEncoded, body: "a=%zz&_method=DELETE", want: "malformed form body"},
		{name: "urlencoded semicolon", media: formURLEncoded, body: "a=1;_method=DELETE", want: "malformed form body"},
		{name: "multipart fields", media: formMultipart, body: multipartBody(`form-data; name="kind"`, `form-data; name="file"; filename="_method"`)},
		{name: "multipart without parts", media: formMultipart, body: "--b--\r\n"},
		{name: "multipart _method", media: formMultipart, body: multipartBody(`form-data; name="kind"`, `form-data; name="_method"`), want: "form field _method", override: true},
		{name: "multipart unquoted name", media: formMultipart, body: multipartBody(`form-data; name=_Method`), want: "form field _method", override: true},
		{name: "multipart RFC 2231 name", media: formMultipart, body: multipartBody(`form-data; name*=UTF-8''_method`), want: "form field _method", override: true},
		{name: "multipart, name* after name", media: formMultipart, body: multipartBody(`form-data; name="_method"; name*=UTF-8''x`), want: "RFC 2231"},
		{name: "multipart, filename*", media: formMultipart, body: multipartBody(`form-data; name="file"; filename*=UTF-8''a.txt`), want: "RFC 2231"},
		{name: "multipart, name continuations", media: formMultipart, body: multipartBody(`form-data; name*0="ki"; name*1="nd"`), want: "RFC 2231"},
		{name: "multipart, upper-case NAME*", media: formMultipart, body: multipartBody(`form-data; NAME*=UTF-8''x`), want: "RFC 2231"},
		{name: "multipart RFC 2047 name, base64", media: formMultipart, body: multipartBody(`form-data; name="=?UTF-8?B?X21ldGhvZA==?="`), want: "RFC 2047"},
		{name: "multipart RFC 2047 name, Q", media: formMultipart, body: multipartBody(`form-data; name="=?utf-8?q?=5Fmethod?="`), want: "RFC 2047"},
		{name: "multipart RFC 2047 name after text", media: formMultipart, body: multipartBody(`form-data; name="x =?UTF-8?B?X21ldGhvZA==?="`), want: "RFC 2047"},
		{name: "multipart =? in a filename", media: formMultipart, body: multipartBody(`form-data; name="file"; filename="=?UTF-8?B?YS50eHQ=?="`)},
		// Go keeps "Content-Disposition " (a space before the colon) as a
		// header of its own, not Content-Disposition; Commons FileUpload
		// and Tomcat trim the name, and read this part as "_method".
		{name: "multipart, space before a part header's colon", media: formMultipart,
			body: "--b\r\nContent-Disposition : form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n",
			want: "space"},
		// Go ends a header line at a bare LF: "X" is a header of its own
		// to it. Commons FileUpload and Tomcat end one only at CR LF: to
		// them the part has one Content-Disposition, whose last "name" is
		// "_method".
		{name: "multipart, bare LF in a part's headers", media: formMultipart,
			body: "--b\r\nContent-Disposition: form-data; name=\"kind\"\nX: y; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n",
			want: "bare CR or LF"},
		{name: "multipart, bare LF ending a part's headers", media: formMultipart,
			body: "--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\nindex\r\n--b--\r\n",
			want: "bare CR or LF"},
		// Go refuses a CR inside a header line itself.
		{name: "multipart, bare CR in a part's headers", media: formMultipart,
			body: "--b\r\nContent-Disposition: form-data; name=\"kind\"\r\nX: a\rb\r\n\r\nindex\r\n--b--\r\n",
			want: "malformed multipart form body"},
		{name: "multipart, bare LF in a part's body", media: formMultipart,
			body: "--b\r\nContent-Disposition: form-data; name=\"log\"; filename=\"a.txt\"\r\n\r\nline 1\nline 2\n\r\n--b--\r\n"},
		{name: "multipart, part without headers", media: formMultipart,
			body: "--b\r\n\r\nvalue\r\n--b--\r\n"},
		{name: "multipart, space inside a part header's name", media: formMultipart,
			body: "--b\r\nContent-Disposition: form-data; name=\"kind\"\r\nX Y: z\r\n\r\nindex\r\n--b--\r\n",
			want: "space"},
		// PHP ends a part at "\n--" and the boundary, whatever follows,
		// and takes any line starting with them for a delimiter; Go
		// reads neither as one.
		{name: "multipart, delimiter PHP reads at a longer line", media: formMultipart,
			body: "--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nvalue\r\n--bX\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n",
			want: "delimiter"},
		{name: "multipart, delimiter PHP reads after a bare LF", media: formMultipart,
			body: "--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nvalue\n--b\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n",
			want: "delimiter"},
		{name: "multipart, delimiter in the epilogue", media: formMultipart,
			body: multipartBody(`form-data; name="kind"`) + "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n",
			want: "delimiter"},
		{name: "multipart, delimiter in the preamble", media: formMultipart,
			body: "--bX\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n" + multipartBody(`form-data; name="kind"`),
			want: "delimiter"},
		{name: "multipart, boundary inside a line", media: formMultipart,
			body: "preamble --b\r\n--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nsee --b here\r\n--b--\r\nepilogue --b"},
		{name: "multipart, * in a quoted filename", media: formMultipart, body: multipartBody(`form-data; name="file"; filename="a*\"*.txt"`)},
		{name: "multipart/mixed _method", media: "multipart/mixed", body: multipartBody(`form-data; name="_method"`), want: "form field _method", override: true},
		{name: "multipart/mixed fields", media: "multipart/mixed", body: multipartBody(`form-data; name="kind"`)},
		{name: "multipart other disposition type", media: formMultipart, body: multipartBody(`attachment; name="_method"`), want: "form field _method", override: true},
		{name: "multipart leading space", media: formMultipart, body: multipartBody(`form-data; name=" _method"`), want: "form field _method", override: true},
		{name: "multipart bad disposition", media: formMultipart, body: multipartBody(`form-data; name="_method"; name="x"`), want: "Content-Disposition"},
		{name: "multipart cut short", media: formMultipart, body: "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue", want: "malformed multipart"},
		{name: "multipart without a boundary line", media: formMultipart, body: "name=_method", want: "malformed multipart"},
		{name: "not a form", media: "application/json", body: `{"_method":"DELETE"}`, want: "not a form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := RefuseFormMethodOverride(tt.media, "b", []byte(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrMethodOverride) != tt.override {
				t.Fatalf("got %v, want an error containing %q (override %v)", err, tt.want, tt.override)
			}
		})
	}
}

func TestJSONType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ct   []string
		want bool
	}{
		{name: "none"},
		{name: "JSON", ct: []string{"application/json"}, want: true},
		{name: "JSON with a charset", ct: []string{"application/json; charset=utf-8"}, want: true},
		{name: "upper case", ct: []string{"Application/JSON"}, want: true},
		{name: "+json suffix", ct: []string{"application/vnd.api+json"}, want: true},
		{name: "+json suffix with parameters", ct: []string{"application/merge-patch+JSON;charset=utf-8"}, want: true},
		{name: "text/json", ct: []string{"text/json"}, want: true},
		{name: "jsonp: Laravel's substring test", ct: []string{"application/jsonp"}, want: true},
		{name: "unparseable", ct: []string{"application/json;;"}, want: true},
		{name: "in a parameter of a form type", ct: []string{`application/x-www-form-urlencoded; x="/json"`}, want: true},
		{name: "second value", ct: []string{"text/plain", "application/json"}, want: true},
		{name: "text", ct: []string{"text/plain; charset=utf-8"}},
		{name: "form", ct: []string{"application/x-www-form-urlencoded"}},
		{name: "x-json: no /json or +json", ct: []string{"application/x-json"}},
		{name: "json without a slash or plus", ct: []string{"json"}},
		{name: "long s is not s", ct: []string{"application/j\u017fon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := JSONType(tt.ct); got != tt.want {
				t.Fatalf("JSONType(%q) = %v, want %v", tt.ct, got, tt.want)
			}
			// The strict reading is within the lax one.
			for _, v := range tt.ct {
				if mt, _, err := mime.ParseMediaType(v); err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) && !tt.want {
					t.Errorf("mime.ParseMediaType(%q) = %q, a JSON type JSONType misses", v, mt)
				}
			}
		})
	}
}

// FuzzJSONType: every Content-Type mime.ParseMediaType reads as JSON
// ("application/json" or a "+json" suffix) is JSON to JSONType, so
// JSONType need not parse it.
func FuzzJSONType(f *testing.F) {
	for _, v := range []string{"application/json", "application/vnd.api+json; charset=utf-8", "Application/JSON ;a=b", "text/plain"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		mt, _, err := mime.ParseMediaType(v)
		if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) && !JSONType([]string{v}) {
			t.Fatalf("mime.ParseMediaType(%q) = %q, a JSON type JSONType misses", v, mt)
		}
	})
}

func TestRefuseJSONMethodOverride(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string // substring of the error; empty means allowed
		// override: the error wraps ErrMethodOverride (else: malformed).
		override bool
	}{
		{name: "object", body: `{"kind":"index","method":"full","nested":{"a":[1,{"b":null}]},"n":-1.5e3,"t":true}`},
		{name: "empty object", body: `{}`},
		{name: "empty body", body: ""},
		{name: "whitespace only", body: " \r\n\t"},
		{name: "nested _method", body: `{"a":{"_method":"DELETE"}}`},
		{name: "_method in an array of objects", body: `[{"_method":"DELETE"}]`},
		{name: "_method as a value", body: `{"kind":"_method"}`},
		{name: "string", body: `"_method"`},
		{name: "number", body: ` 1 `},
		{name: "null", body: `null`},
		{name: "names around an override", body: `{"my_method":1,"_method_x":2,"_methodology":3,"method":4}`},
		{name: "_method", body: `{"_method":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "_method after other keys", body: `{"kind":"index","nested":{"x":[1,2]},"_method":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "_method with any value", body: `{"_method":{"v":"DELETE"}}`, want: "JSON body key _method", override: true},
		{name: "escaped", body: `{"\u005fmethod":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "escaped, upper case", body: `{"\u005F\u004DETHOD":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "leading space, upper case", body: `{" _METHOD":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "NUL ends the name", body: `{"_method\u0000x":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "array name", body: `{"_method[]":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "header-style name", body: `{"X-HTTP-Method-Override":"DELETE"}`, want: "JSON body key x-http-method-override", override: true},
		{name: "duplicate key, override first", body: `{"_method":"DELETE","_method":"POST"}`, want: "JSON body key _method", override: true},
		{name: "duplicate key, override last", body: `{"kind":"a","kind":"b","_method":"DELETE"}`, want: "JSON body key _method", override: true},
		{name: "surrounding whitespace", body: "\r\n {\"_method\":\"DELETE\"} \n", want: "JSON body key _method", override: true},
		// Not JSON: refused, override or not.
		{name: "invalid", body: `{"kind":`, want: "malformed JSON body"},
		{name: "trailing comma", body: `{"kind":"index",}`, want: "malformed JSON body"},
		{name: "single quotes", body: `{'_method':'DELETE'}`, want: "malformed JSON body"},
		{name: "comment", body: `{/* x */"kind":"index"}`, want: "malformed JSON body"},
		{name: "second value", body: `{"kind":"index"}{"_method":"DELETE"}`, want: "malformed JSON body"},
		{name: "trailing garbage", body: `{"kind":"index"} x`, want: "malformed JSON body"},
		{name: "byte order mark", body: "\ufeff{\"kind\":\"index\"}", want: "malformed JSON body"},
		{name: "invalid UTF-8 in a key", body: "{\"_meth\xffod\":\"DELETE\"}", want: "malformed JSON body"},
		{name: "not JSON at all", body: "_method=DELETE", want: "malformed JSON body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := RefuseJSONMethodOverride([]byte(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrMethodOverride) != tt.override {
				t.Fatalf("got %v, want an error containing %q (override %v)", err, tt.want, tt.override)
			}
		})
	}
}

// FuzzRefuseJSONMethodOverride: a body encoding/json reads as an object
// with a top-level key overrideParam names is always refused, and a body
// it can't read at all is too. Refused for either reason: encoding/json
// reads invalid UTF-8 that RefuseJSONMethodOverride calls malformed.
func FuzzRefuseJSONMethodOverride(f *testing.F) {
	for _, b := range []string{`{"_method":"DELETE"}`, `{"a":{"_method":1}}`, `{"\u005fmethod":1}`, `[1,2]`, `{"a":1,"a":2}`, ``, `{`} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := RefuseJSONMethodOverride(body)
		var top map[string]json.RawMessage
		if uerr := json.Unmarshal(body, &top); uerr != nil {
			if !json.Valid(body) && len(bytes.Trim(body, jsonSpace)) > 0 && err == nil {
				t.Fatalf("body %q is not JSON but was not refused", body)
			}
			return
		}
		for k := range top {
			if _, ok := overrideParam(k); ok && (err == nil || utf8.Valid(body) && !errors.Is(err, ErrMethodOverride)) {
				t.Fatalf("body %q has top-level key %q but got %v", body, k, err)
			}
		}
	})
}
