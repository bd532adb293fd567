// Package policy owns the Rego engine and the activity catalog: which method
// and path of which service is which activity, and the decision the security
// team's policies make about a call. The catalog is data security teams edit
// (rego/activities/data.json), never Go code.
//
// It knows nothing of HTTP and imports no other Lockbox package but rego,
// the embedded default policy files: the proxy hands it a method and a path
// it has already canonicalized, and a typed Input.
package policy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"
)

// Access says whether an activity only reads tenant data or changes it.
type Access string

// The two kinds of access an activity has.
const (
	AccessRead  Access = "read"
	AccessWrite Access = "write"
)

// Activity is one entry of the catalog: a method and path pattern of a
// service, named like the cmdlet the audit log records.
type Activity struct {
	Service string // e.g. "exchange"
	Name    string // e.g. "Get-Mailbox"; the audit record's Operation
	Method  string // upper case, e.g. "GET"
	Pattern string // e.g. "/tenants/{tenant}/mailboxes/{mailbox}"
	Access  Access
}

// ErrInvalidCatalog is wrapped by every error that rejects a catalog's
// content. The message names the service, the entry's index and the field.
var ErrInvalidCatalog = errors.New("invalid activity catalog")

// Catalog is a validated activity catalog with its patterns compiled. It is
// immutable, so one value is safely shared by all requests; a reload builds a
// new Catalog and swaps it in whole.
type Catalog struct {
	services map[string]*service
	names    []string // sorted
}

type service struct {
	activities []Activity // file order
	byName     map[string]int
	// routes holds, for each method and segment count, the patterns that can
	// match, most specific first, so Match takes the first that fits.
	routes map[routeKey][]route
}

type routeKey struct {
	method string
	nseg   int
}

type route struct {
	activity int       // index into service.activities
	segs     []segment // compiled once at load
	literals int
}

// segment is a literal when name is empty, else a wildcard binding name.
type segment struct {
	literal string
	name    string
}

// The wire form of one entry. Field names are checked exactly (case matters)
// before decoding, because encoding/json would otherwise accept "Method".
type entryJSON struct {
	Activity string `json:"activity"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Access   string `json:"access"`
}

var entryFields = []string{"activity", "method", "path", "access"}

var (
	serviceNameRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	activityNameRE = regexp.MustCompile(`^[A-Z][A-Za-z]+-[A-Za-z]+$`)
	wildcardNameRE = regexp.MustCompile(`^[a-z][A-Za-z0-9_]{0,31}$`)
	// Literal segments use RFC 3986 unreserved characters only: every one of
	// them passes the proxy's canonical-path check, so no literal is
	// unmatchable, and none needs escaping when forwarded.
	literalRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
)

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// LoadCatalog reads and parses the catalog at path in fsys, e.g.
// LoadCatalog(rego.FS, "activities/data.json").
func LoadCatalog(fsys fs.FS, path string) (*Catalog, error) {
	b, err := fs.ReadFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("activity catalog: %w", err)
	}
	c, err := ParseCatalog(b)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", path, catalogErrorLine(err), err)
	}
	return c, nil
}

// ParseCatalog validates a catalog document and compiles its patterns. It
// refuses rather than guesses: unknown, missing, duplicate or mistyped
// fields, a malformed method, pattern, activity name or access, and two
// entries of a service with the same method and pattern shape are all errors
// wrapping ErrInvalidCatalog.
func ParseCatalog(b []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	c, err := parseCatalog(b, dec)
	var le *lineError
	if err != nil && !errors.As(err, &le) {
		err = &lineError{line: lineAt(b, dec.InputOffset()), err: err}
	}
	return c, err
}

// lineError is a catalog error with the line of data.json it was found on,
// so that a refusal of a catalog of hundreds of entries names where to look.
// Its message is the error's own: the caller that names the file puts the
// line beside it (catalogErrorLine).
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

// catalogErrorLine is the line of the catalog ParseCatalog's error err was
// found on, or 0 if it has none.
func catalogErrorLine(err error) int {
	var le *lineError
	if errors.As(err, &le) {
		return le.line
	}
	return 0
}

// lineAt is the line, counted from 1, of the first byte at or after off in
// b that is neither white space nor a comma: the start of the value the
// decoder stood before, where a syntax error is found as a compiler finds
// it, at the token after the mistake.
func lineAt(b []byte, off int64) int {
	i := int(min(max(off, 0), int64(len(b))))
	for i < len(b) && strings.IndexByte(" \t\r\n,", b[i]) >= 0 {
		i++
	}
	if i == len(b) { // a file cut short: its last line that holds anything
		return 1 + bytes.Count(bytes.TrimRight(b, " \t\r\n"), []byte{'\n'})
	}
	return 1 + bytes.Count(b[:i], []byte{'\n'})
}

func parseCatalog(b []byte, dec *json.Decoder) (*Catalog, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, invalid("document: %v", err)
	}
	c := &Catalog{services: make(map[string]*service)}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalid("document: %v", err)
		}
		name, ok := tok.(string)
		if !ok { // unreachable: the decoder yields only strings as keys
			return nil, invalid("document: expected a service name, found %s", describe(tok))
		}
		if !serviceNameRE.MatchString(name) {
			return nil, invalid("service %q: name must match %s", name, serviceNameRE)
		}
		if _, dup := c.services[name]; dup {
			return nil, invalid("service %q: listed twice", name)
		}
		svc, err := parseService(b, dec, name)
		if err != nil {
			return nil, err
		}
		c.services[name] = svc
		c.names = append(c.names, name)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, invalid("document: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("document: data after the catalog object")
	}
	if len(c.names) == 0 {
		return nil, invalid("document: no services")
	}
	slices.Sort(c.names)
	return c, nil
}

func parseService(b []byte, dec *json.Decoder, name string) (*service, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, invalid("%s: must be an array of activities: %v", name, err)
	}
	svc := &service{byName: make(map[string]int), routes: make(map[routeKey][]route)}
	shapes := make(map[string]int) // method + shape → index of first entry
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid("%s[%d]: %v", name, i, err)
		}
		// Errors from here on are the entry's: they name the line it
		// starts on, not the one the decoder has read to.
		at := lineAt(b, dec.InputOffset()-int64(len(raw)))
		e, err := parseEntry(svc, shapes, name, i, raw)
		if err != nil {
			return nil, &lineError{line: at, err: err}
		}
		a, r := e.a, e.r
		r.activity = i
		svc.byName[a.Name] = i
		svc.activities = append(svc.activities, a)
		rk := routeKey{a.Method, len(r.segs)}
		svc.routes[rk] = append(svc.routes[rk], r)
		shapes[a.Method+" "+shape(r.segs)] = i
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, invalid("%s: %v", name, err)
	}
	for _, rs := range svc.routes {
		slices.SortStableFunc(rs, moreSpecific)
	}
	return svc, nil
}

type parsedEntry struct {
	a Activity
	r route
}

// parseEntry decodes and checks entry i of service name against the
// entries before it.
func parseEntry(svc *service, shapes map[string]int, name string, i int, raw json.RawMessage) (parsedEntry, error) {
	e, err := decodeEntry(raw)
	if err != nil {
		return parsedEntry{}, invalid("%s[%d]%v", name, i, err)
	}
	a, r, err := compileEntry(name, e)
	if err != nil {
		return parsedEntry{}, invalid("%s[%d]%v", name, i, err)
	}
	if j, dup := svc.byName[a.Name]; dup {
		return parsedEntry{}, invalid("%s[%d].activity: %q already names %s[%d]", name, i, a.Name, name, j)
	}
	if j, dup := shapes[a.Method+" "+shape(r.segs)]; dup {
		return parsedEntry{}, invalid("%s[%d].path: %s %s has the same shape as %s[%d] (%s)",
			name, i, a.Method, a.Pattern, name, j, svc.activities[j].Pattern)
	}
	return parsedEntry{a, r}, nil
}

// entryError locates a problem inside one entry; the caller prefixes the
// service and index, giving e.g. "exchange[2].method: ...".
type entryError struct {
	field string // empty when the problem is the entry as a whole
	msg   string
}

func (e *entryError) Error() string {
	if e.field == "" {
		return ": " + e.msg
	}
	return "." + e.field + ": " + e.msg
}

func entryErr(field, format string, args ...any) *entryError {
	return &entryError{field: field, msg: fmt.Sprintf(format, args...)}
}

// decodeEntry decodes one entry strictly: an object whose keys are exactly
// the known field names, each once and all present, each a string.
func decodeEntry(raw json.RawMessage) (entryJSON, error) {
	var e entryJSON
	keys := json.NewDecoder(bytes.NewReader(raw))
	if err := expectDelim(keys, '{'); err != nil {
		return e, entryErr("", "must be an object: %v", err)
	}
	seen := make(map[string]bool, len(entryFields))
	for keys.More() {
		tok, err := keys.Token()
		if err != nil {
			return e, entryErr("", "%v", err)
		}
		k, _ := tok.(string)
		if !slices.Contains(entryFields, k) {
			return e, entryErr("", "unknown field %q", k)
		}
		if seen[k] {
			return e, entryErr(k, "given twice")
		}
		seen[k] = true
		var skip json.RawMessage
		if err := keys.Decode(&skip); err != nil {
			return e, entryErr(k, "%v", err)
		}
	}
	for _, k := range entryFields {
		if !seen[k] {
			return e, entryErr(k, "missing")
		}
	}
	// The key walk above already refuses unknown fields; DisallowUnknownFields
	// keeps that true if the walk is ever changed.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return e, entryErr(te.Field, "must be a string, not %s", te.Value)
		}
		return e, entryErr("", "%v", err)
	}
	return e, nil
}

// compileEntry validates e and compiles its pattern.
func compileEntry(svc string, e entryJSON) (Activity, route, error) {
	a := Activity{Service: svc, Name: e.Activity, Method: e.Method, Pattern: e.Path, Access: Access(e.Access)}
	if !activityNameRE.MatchString(a.Name) {
		return a, route{}, entryErr("activity", "%q must look like Verb-Noun (%s)", a.Name, activityNameRE)
	}
	if !slices.Contains(methods, a.Method) {
		return a, route{}, entryErr("method", "%q is not one of %s", a.Method, strings.Join(methods, ", "))
	}
	if a.Access != AccessRead && a.Access != AccessWrite {
		return a, route{}, entryErr("access", "%q is neither %q nor %q", a.Access, AccessRead, AccessWrite)
	}
	segs, err := compilePattern(a.Pattern)
	if err != nil {
		return a, route{}, entryErr("path", "%q: %v", a.Pattern, err)
	}
	r := route{segs: segs}
	for _, s := range segs {
		if s.name == "" {
			r.literals++
		}
	}
	return a, r, nil
}

func compilePattern(p string) ([]segment, error) {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return nil, errors.New(`must start with "/"`)
	}
	var segs []segment
	names := make(map[string]bool)
	for s := range strings.SplitSeq(rest, "/") {
		switch {
		case s == "":
			return nil, errors.New("empty segment (a trailing or doubled /)")
		case s == "." || s == "..":
			return nil, errors.New("dot segment")
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			if !wildcardNameRE.MatchString(name) {
				return nil, fmt.Errorf("wildcard %s: name must match %s", s, wildcardNameRE)
			}
			if names[name] {
				return nil, fmt.Errorf("wildcard %s used twice", s)
			}
			names[name] = true
			segs = append(segs, segment{name: name})
		case !literalRE.MatchString(s):
			return nil, fmt.Errorf("segment %q: a literal uses only letters, digits and -._~; a wildcard is a whole segment {name}", s)
		default:
			segs = append(segs, segment{literal: s})
		}
	}
	if !names["tenant"] {
		return nil, errors.New("no {tenant} segment")
	}
	if len(segs) > maxSegments {
		return nil, fmt.Errorf("more than %d segments", maxSegments)
	}
	return segs, nil
}

// shape is the pattern with wildcard names erased: two patterns of the same
// shape match exactly the same paths.
func shape(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if s.name != "" {
			b.WriteString("{}")
		} else {
			b.WriteString(s.literal)
		}
	}
	return b.String()
}

// moreSpecific orders routes of equal length so that the first one matching a
// path is the one to use: more literal segments first; on a tie, reading left
// to right, the first position where one has a literal and the other a
// wildcard decides for the literal. Two routes both matching a path never
// have different literals at one position, and equal shapes are refused at
// load, so this picks exactly one winner for every path.
func moreSpecific(a, b route) int {
	if c := cmp.Compare(b.literals, a.literals); c != 0 {
		return c
	}
	for i := range a.segs {
		al, bl := a.segs[i].name == "", b.segs[i].name == ""
		if al != bl {
			if al {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Services returns the catalog's service names, sorted.
func (c *Catalog) Services() []string { return slices.Clone(c.names) }

// Activities returns the activity names of service in file order, and false
// if the catalog has no such service. The slice is the caller's.
func (c *Catalog) Activities(service string) ([]string, bool) {
	svc, ok := c.services[service]
	if !ok {
		return nil, false
	}
	names := make([]string, len(svc.activities))
	for i, a := range svc.activities {
		names[i] = a.Name
	}
	return names, true
}

// Lookup returns the activity of service with the given name.
func (c *Catalog) Lookup(service, name string) (Activity, bool) {
	svc, ok := c.services[service]
	if !ok {
		return Activity{}, false
	}
	i, ok := svc.byName[name]
	if !ok {
		return Activity{}, false
	}
	return svc.activities[i], true
}

// maxSegments bounds the work Match does for a path no pattern can match
// anyway; the catalog's patterns are far shorter.
const maxSegments = 32

// Match finds the activity of service that method and path invoke, with the
// values of the pattern's wildcards (always including "tenant"). When several
// patterns match, the most specific one wins (see the catalog's README).
//
// path must already be canonical (the proxy's Canonicalize): Match compares
// literal segments byte for byte and decodes nothing. As a second line of
// defence it matches nothing for a path without a leading "/" and never
// binds a wildcard to an empty, "." or ".." segment. The method is compared
// exactly; HEAD does not fall back to GET.
func (c *Catalog) Match(service, method, path string) (Activity, map[string]string, bool) {
	var parts [maxSegments]string
	r, n, a, ok := c.match(service, method, path, &parts)
	if !ok {
		return Activity{}, nil, false
	}
	vars := make(map[string]string, len(r.segs)-r.literals)
	for i, s := range r.segs {
		if s.name != "" {
			vars[s.name] = parts[:n][i]
		}
	}
	return a, vars, true
}

// Classify is Match for a caller that needs only the {tenant} the path
// names: it builds no map (the proxy classifies every call).
func (c *Catalog) Classify(service, method, path string) (Activity, string, bool) {
	var parts [maxSegments]string
	r, _, a, ok := c.match(service, method, path, &parts)
	if !ok {
		return Activity{}, "", false
	}
	for i, s := range r.segs {
		if s.name == "tenant" {
			return a, parts[i], true
		}
	}
	return a, "", true
}

// match finds the route of service that method and path invoke, splitting
// path into parts; it returns the route, the number of parts and the
// activity.
func (c *Catalog) match(service, method, path string, parts *[maxSegments]string) (route, int, Activity, bool) {
	svc, ok := c.services[service]
	if !ok {
		return route{}, 0, Activity{}, false
	}
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return route{}, 0, Activity{}, false
	}
	n := 0
	for s := range strings.SplitSeq(rest, "/") {
		if n == maxSegments {
			return route{}, 0, Activity{}, false
		}
		parts[n] = s
		n++
	}
	for _, r := range svc.routes[routeKey{method, n}] {
		if matches(r.segs, parts[:n]) {
			return r, n, svc.activities[r.activity], true
		}
	}
	return route{}, 0, Activity{}, false
}

func matches(segs []segment, parts []string) bool {
	for i, s := range segs {
		p := parts[i]
		if s.name == "" {
			if p != s.literal {
				return false
			}
		} else if p == "" || p == "." || p == ".." {
			return false
		}
	}
	return true
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %s", want, describe(tok))
	}
	return nil
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return fmt.Sprintf("%q", v)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCatalog, fmt.Sprintf(format, args...))
}
