package api

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/peer"
)

// headerTraceID carries the trace id of each response, for matching a
// client's report with the server's log line (as "trace_id": "request_id"
// in Lockbox's logs is a lockbox request's id). The header keeps the name
// clients know.
const headerTraceID = "X-Request-Id"

// router sets the headers every response carries and answers what the mux
// would answer in plain text (unknown route, wrong method, a path it would
// redirect) with the JSON error shape instead.
type router struct {
	mux   *http.ServeMux
	known map[string]bool // patterns of the route table
	// methods are the methods of the route table, in the order Allow
	// lists them (allowMethods).
	methods []string
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Always our own random id: an id taken from the client could be
	// chosen to collide with another request's or to forge log lines.
	h.Set(headerTraceID, rand.Text())
	// Responses name people, requests and grants: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")

	// The mux cleans paths by redirecting ("/v1//requests" → 307
	// "/v1/requests"). An API client has no use for that; a path that is
	// not canonical names no resource.
	if !canonicalPath(r.URL.EscapedPath()) {
		httperr.Write(w, http.StatusNotFound, "not_found", "no such route")
		return
	}
	if _, pattern := rt.mux.Handler(r); rt.known[pattern] {
		rt.mux.ServeHTTP(w, r)
		return
	}
	if allow := rt.allowed(r); len(allow) > 0 {
		h.Set("Allow", strings.Join(allow, ", "))
		httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, strings.Join(allow, ", ")))
		return
	}
	httperr.Write(w, http.StatusNotFound, "not_found", "no such route")
}

// allowed returns the methods the route table serves for r's path.
func (rt *router) allowed(r *http.Request) []string {
	var out []string
	for _, m := range rt.methods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := rt.mux.Handler(probe); rt.known[pattern] {
			out = append(out, m)
		}
	}
	return out
}

// allowOrder is the order in which Allow lists methods; a method not in it
// comes after these.
var allowOrder = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowMethods returns the distinct methods of rts, and HEAD with GET, in
// allowOrder. They come from the route table rather than a list of their
// own: a fixed list that lacked PATCH left it out of the Allow of
// /v1/tenants/{tenant}.
func allowMethods(rts []route) []string {
	var out []string
	for _, rt := range rts {
		if !slices.Contains(out, rt.method) {
			out = append(out, rt.method)
		}
		// The mux serves HEAD with a GET route's handler, so a path
		// with a GET route answers HEAD too (ServeMux's own 405 names
		// it as well).
		if rt.method == http.MethodGet && !slices.Contains(out, http.MethodHead) {
			out = append(out, http.MethodHead)
		}
	}
	rank := func(m string) int {
		if i := slices.Index(allowOrder, m); i >= 0 {
			return i
		}
		return len(allowOrder)
	}
	slices.SortStableFunc(out, func(a, b string) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out
}

// canonicalPath reports whether p is already in the form ServeMux cleans
// paths to (no "//", "." or ".." segments; a trailing slash is kept).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// adapt is the one adapter between a route's handler and net/http: it
// authenticates, runs the handler, and renders its error.
func (s *server) adapt(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A call's context, so that an export still ends when its client
		// goes away after the deadline (record.ExportContext).
		ctx, cancel := record.CallContext(r.Context(), s.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		aw := &answerWriter{ResponseWriter: w}
		w = aw
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			// Once the status line is out a 500 can't follow it:
			// net/http's own recovery then cuts the stream, so a short
			// body does not look complete (as http.ErrAbortHandler asks).
			if v == http.ErrAbortHandler || aw.started {
				panic(v)
			}
			// Before it, the client gets the error document every other
			// failure gets, not a connection closed without an answer.
			s.fail(w, r, rt, fmt.Errorf("api: handler panicked: %v\n%s", v, debug.Stack()))
		}()
		var p identity.Principal
		var err error
		if !rt.public {
			p, err = s.authenticate(w, r)
			// Only after the token: an anonymous caller learns nothing
			// of which parameters a route takes. (Public routes serve
			// documents; a cache-busting parameter changes nothing.)
			if err == nil {
				_, err = query(r, rt.params...)
			}
		}
		if err == nil {
			err = rt.handle(s, w, r, p)
		}
		if err != nil {
			s.fail(w, r, rt, err)
		}
	})
}

// answerWriter records whether the response was started, which decides
// what a panic in a handler can still become.
type answerWriter struct {
	http.ResponseWriter
	started bool
}

func (w *answerWriter) WriteHeader(status int) {
	w.started = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *answerWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (flushes, write deadlines) reach the
// connection's writer.
func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// retryAfterUnavailable is the Retry-After of a 503, in seconds. Every 503
// of the API is a dependency (Redis above all) failing or too slow for the
// call's deadline, with nothing changed: the same call may pass in a moment.
const retryAfterUnavailable = "1"

// fail writes err as JSON. Server-side failures are logged with their cause
// and trace id; the client only gets the id and a generic message.
func (s *server) fail(w http.ResponseWriter, r *http.Request, rt route, err error) {
	status, code, msg := httperr.FromError(err)
	if status == http.StatusServiceUnavailable {
		// "Retry later" alone leaves clients that honour Retry-After
		// (RFC 9110 10.2.3) nothing to go by.
		w.Header().Set("Retry-After", retryAfterUnavailable)
	}
	httperr.Write(w, status, code, msg)
	if status >= http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "api request failed",
			"trace_id", w.Header().Get(headerTraceID),
			"route", rt.pattern(),
			"status", status,
			"error", err)
	}
}

// authenticate returns the principal named by the request's bearer token.
// The Authorization header is the only source of identity: headers such as
// X-User or X-Forwarded-User are never read.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) (identity.Principal, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lockbox"`)
		return identity.Principal{}, httperr.New(http.StatusUnauthorized, "unauthenticated",
			"missing bearer token in the Authorization header")
	}
	// The challenge goes only on the 401 that refuses the token (RFC 6750
	// §3): set before verifying, it stayed on every 200 and 403 too, and
	// told clients a token they may keep using was invalid.
	invalid := func(format string, args ...any) (identity.Principal, error) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lockbox", error="invalid_token"`)
		return identity.Principal{}, httperr.New(http.StatusUnauthorized, "unauthenticated", format, args...)
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if len(vals) == 1 && !strings.EqualFold(scheme, "Bearer") {
		// Credentials of another scheme (Basic), or an empty header, are
		// no bearer token at all: RFC 6750 §3.1 has the challenge carry no
		// error then. error="invalid_token" told a client that sent Basic
		// to fetch a new bearer token it never had.
		w.Header().Set("WWW-Authenticate", `Bearer realm="lockbox"`)
		return identity.Principal{}, httperr.New(http.StatusUnauthorized, "unauthenticated",
			"the Authorization header must be exactly one bearer token")
	}
	// Two Authorization headers could be read differently by a proxy in
	// front of us and by us; refuse rather than pick one.
	if len(vals) > 1 || !ok || tok == "" {
		return invalid("the Authorization header must be exactly one bearer token")
	}
	p, err := s.cfg.Auth.Verify(r.Context(), tok)
	if errors.Is(err, identity.ErrUnauthenticated) {
		// The verifier's reasons are a fixed, token-free set ("token
		// expired", "wrong audience"), written to be shown.
		return invalid("%s", err.Error())
	}
	if err != nil {
		// Not a verdict on the token but a broken verifier: fail closed,
		// as a server error, and let the log say why.
		return identity.Principal{}, fmt.Errorf("api: verify token: %w", err)
	}
	return p, nil
}

// actor is who the domain sees acting.
func actor(r *http.Request, p identity.Principal) grants.Actor {
	return grants.Actor{Principal: p, ClientIP: peer.IP(r)}
}

// readBody reads r's body, at most MaxBodyBytes of it: a longer one is
// 413, told by its Content-Length before anything is read when it has one.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	n := s.cfg.MaxBodyBytes
	tooLarge := httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than %d bytes", n)
	if r.ContentLength > n {
		return nil, tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, httperr.New(http.StatusBadRequest, "invalid_body", "the request body could not be read")
	}
	return b, nil
}

// noBody refuses a request body on a route that takes none; blank space
// counts as none, as decode counts it.
func (s *server) noBody(w http.ResponseWriter, r *http.Request) error {
	b, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) != 0 {
		return httperr.New(http.StatusBadRequest, "invalid_json", "this call takes no request body: the path names the tenant and the user")
	}
	return nil
}

// decode reads the JSON body of r into dst. An empty body is accepted only
// when optional, and then leaves dst as it is.
func (s *server) decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	b, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return httperr.New(http.StatusBadRequest, "missing_body", "a JSON request body is required")
	}
	if err := checkJSON(r.Header); err != nil {
		if r.Method == http.MethodPatch {
			// RFC 5789 §2.2: a 415 to a PATCH names the patch formats
			// taken, for a client that sent the change as
			// application/merge-patch+json or json-patch+json.
			w.Header().Set("Accept-Patch", "application/json")
		}
		return err
	}
	if err := checkEncoding(r.Header); err != nil {
		// RFC 9110 15.5.16: the coding the body may come in.
		w.Header().Set("Accept-Encoding", "identity")
		return err
	}
	// encoding/json decodes null into a struct as nothing at all: taken
	// as {}, it made a PATCH that read no field answer 200. Every other
	// value that is no object is refused by Decode.
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return httperr.New(http.StatusBadRequest, "invalid_json", "invalid JSON body: the request body must be a JSON object, not null")
	}
	// encoding/json turns a byte that is no UTF-8, and a \u escape of
	// half a surrogate pair, into U+FFFD without a word: a reason or a
	// comment was stored, shown to approvers and audited as something
	// other than what was sent, and other parsers refuse either (RFC 8259
	// §8.1, §8.2).
	if i := invalidUTF8(b); i >= 0 {
		return httperr.New(http.StatusBadRequest, "invalid_json", "invalid JSON body: byte %d is not UTF-8", i)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if i := loneSurrogate(b); i >= 0 {
		return httperr.New(http.StatusBadRequest, "invalid_json",
			"invalid JSON body: the \\u escape at byte %d is half a UTF-16 surrogate pair, which stands for no character", i)
	}
	// One value only: a second one is either a mistake or an attempt to
	// have two readers of the same body disagree.
	if _, err := dec.Token(); err != io.EOF {
		return httperr.New(http.StatusBadRequest, "invalid_json", "the request body must hold exactly one JSON value")
	}
	return checkKeys(b, dst)
}

// checkKeys refuses what encoding/json accepts but other JSON parsers read
// differently, for the same reason as a second value: an object key given
// twice (Go keeps the last value, many parsers the first), and, in the top
// object, a key that names a field of dst only without regard to case (Go
// reads "Tenant" as tenant; a gateway that checks "tenant" sees another
// field or none). b is valid JSON: dst was just decoded from it.
//
// A top-level null is refused for a field whose absence means something
// (a pointer: "leave it as it is", "the default"): encoding/json reads the
// two alike, so {"domains": null}, a script's unset variable or a merge
// patch's "clear it", answered 200 and changed nothing.
func checkKeys(b []byte, dst any) error {
	fields := fieldNames(reflect.TypeOf(dst))
	optional := pointerFields(reflect.TypeOf(dst))
	bad := func(format string, args ...any) error {
		return httperr.New(http.StatusBadRequest, "invalid_json", "invalid JSON body: "+format, args...)
	}
	// object is one object being read: its keys so far, and whether its
	// next token is a key.
	type object struct {
		keys    map[string]bool
		wantKey bool
	}
	var stack []*object // the enclosing objects and arrays (nil for an array)
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1] != nil {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return jsonError(err)
		}
		if n := len(stack); n > 0 && stack[n-1] != nil && stack[n-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			key, _ := tok.(string)
			o := stack[n-1]
			if o.keys[key] {
				return bad("%q is given more than once", key)
			}
			if n == 1 && fields != nil && !slices.Contains(fields, key) {
				return bad("unknown field %q", key)
			}
			o.keys[key], o.wantKey = true, false
			if n != 1 || !optional[key] {
				continue
			}
			// The value, read here to see whether it is null, then
			// handled below as any value.
			if tok, err = dec.Token(); err != nil {
				return jsonError(err)
			}
			if tok == nil {
				return bad("%q is null, which is no value for it: give one", key)
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, nil)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// invalidUTF8 returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1 when b is valid.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// loneSurrogate returns the offset of the first \u escape in a string of
// the JSON text b that is half a surrogate pair (a high one not followed
// by a low one, or a low one alone), or -1 when there is none. b is valid
// JSON: it was just decoded.
func loneSurrogate(b []byte) int {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			inString = !inString
		case !inString || c != '\\':
		case b[i+1] != 'u':
			i++ // a one-character escape, \" among them
		default:
			r, _ := hex4(i)
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00:
				if low, ok := hex4(i + 6); !ok || low < 0xdc00 || low > 0xdfff {
					return i
				}
				i += 11
			case utf16.IsSurrogate(r):
				return i
			default:
				i += 5
			}
		}
	}
	return -1
}

// fieldNames returns the JSON names of the fields of the struct t points
// to (embedded structs' included), or nil when t is no pointer to a struct.
// pointerFields returns the JSON names of the top-level fields of the
// struct t points to whose type is a pointer.
func pointerFields(t reflect.Type) map[string]bool {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	out := map[string]bool{}
	for f := range t.Elem().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "-" && name != "" && f.Type.Kind() == reflect.Pointer {
			out[name] = true
		}
	}
	return out
}

func fieldNames(t reflect.Type) []string {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			switch {
			case tag == "-":
			case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case !f.IsExported():
			case name == "":
				out = append(out, f.Name)
			default:
				out = append(out, name)
			}
		}
	}
	walk(t.Elem())
	return out
}

// checkJSON requires a body to be declared as JSON. Refusing other types
// (form posts in particular) keeps a browser from sending us a body
// cross-site without a CORS preflight.
func checkJSON(h http.Header) error {
	unsupported := httperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
		"Content-Type must be application/json")
	cts := h.Values("Content-Type")
	if len(cts) != 1 {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil || mt != "application/json" {
		return unsupported
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return unsupported
		}
	}
	return nil
}

// checkEncoding refuses a body sent compressed (Content-Encoding: gzip, as
// some HTTP clients send large bodies), which is read as is: it was
// decoded as JSON and refused as malformed, or as no UTF-8, which named
// neither the cause nor the fix. Only "identity" is no coding.
func checkEncoding(h http.Header) error {
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return httperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
					"Content-Encoding %q is not supported: send the body uncompressed", excerpt(c))
			}
		}
	}
	return nil
}

// excerpt is s cut to a length a message may quote.
func excerpt(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// jsonError turns a decoding error into a 400 that says what is wrong
// without echoing the body.
func jsonError(err error) error {
	var msg string
	if syn, ok := errors.AsType[*json.SyntaxError](err); ok {
		msg = fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "malformed JSON: the body ends too early"
	} else if typ, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if typ.Field == "" {
			msg = fmt.Sprintf("the request body must be a JSON object, not a JSON %s", typ.Value)
		} else {
			msg = fmt.Sprintf("field %q must not be a JSON %s", typ.Field, typ.Value)
		}
	} else {
		// Unknown fields ("json: unknown field \"x\"") and the domain
		// types' own UnmarshalJSON errors (a bad duration) already say
		// which field is wrong.
		msg = strings.TrimPrefix(err.Error(), "json: ")
	}
	return httperr.New(http.StatusBadRequest, "invalid_json", "invalid JSON body: %s", msg)
}

// query returns r's query parameters, refusing malformed ones, repeated ones
// and any not in allowed: a misspelt filter must not silently widen a
// listing, nor a parameter a route does not take (a comment on a decision,
// a limit on the tenant list) be silently dropped. The adapter calls it for
// every authenticated route with the route's params.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, httperr.New(http.StatusBadRequest, "invalid_query", "malformed query string")
	}
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				// "allowed: " and nothing reads as a list that was lost.
				return nil, httperr.New(http.StatusBadRequest, "invalid_query",
					"unknown query parameter %q: this route takes no query parameters", k)
			}
			return nil, httperr.New(http.StatusBadRequest, "invalid_query",
				"unknown query parameter %q; allowed: %s", k, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, httperr.New(http.StatusBadRequest, "invalid_query", "query parameter %q is given more than once", k)
		}
		// An empty value is what "?tenant=$T" sends when T is unset: read
		// as no filter, it listed every tenant's requests. Only an empty
		// cursor has a meaning, the first page.
		if v[0] == "" && k != "cursor" {
			return nil, httperr.New(http.StatusBadRequest, "invalid_"+k,
				"query parameter %q is empty; leave it out rather than send it without a value", k)
		}
	}
	return q, nil
}

// queryTime reads the RFC 3339 time v of query parameter name; a bad one
// is 400 invalid_<name>.
func queryTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err == nil {
		return t, nil
	}
	msg := fmt.Sprintf("%s must be an RFC 3339 time such as 2026-03-01T09:00:00Z", name)
	if strings.Contains(v, " ") {
		// A "+01:00" offset typed into a URL arrives as " 01:00": the
		// time is right, its encoding is not.
		msg += "; send a '+' in a query string as %2B"
	}
	return time.Time{}, httperr.New(http.StatusBadRequest, "invalid_"+name, "%s", msg)
}

// limit reads the limit parameter: absent means 0 (the domain's default),
// otherwise an integer from 1 to most, in its one decimal spelling. Atoi
// alone also reads "+5" and "05" as 5: a limit written some other way than
// the integer openapi.yaml documents is a script's mistake, refused as any
// other bad limit is rather than guessed at.
func limit(q url.Values, most int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most || strconv.Itoa(n) != v {
		return 0, httperr.New(http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to %d, in decimal digits with no sign or leading zero", most)
	}
	return n, nil
}

// writeJSON encodes v before writing anything, so an encoding failure can
// still become a clean 500.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("api: encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}
