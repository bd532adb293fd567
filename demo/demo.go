// Package demo holds the demo tenant services that "lockbox dev" runs behind
// the proxy, so a newcomer can try the whole flow (request, approval, calls
// through the proxy, audit) without any real mail, site or file service.
//
// They are NOT for production: data lives in memory, is seeded for the two
// demo tenants "contoso" and "fabrikam", and is lost on exit. What they do
// show, and what a real upstream should copy, is the check an upstream makes
// for itself on every call instead of trusting its network position:
//
//   - the identity header X-Lockbox-User is exactly "Microsoft Operator";
//   - the X-Lockbox-Grant assertion verifies with one of the proxy's public
//     keys (its JWKS), is unexpired, was issued for this very call (its
//     method and path) to this service, and names the tenant of the path;
//   - no operator credential (Authorization) arrived: the proxy must never
//     pass one on, so seeing one means something upstream is leaking;
//   - the assertion was not used before: its "jti" is remembered until it
//     expires.
//
// A call failing any of these gets 403 and touches no data.
//
// Each service records what it received (Service.Seen, and the demo-only
// inspection endpoint GET /_lockbox/seen) so tests can check exactly which
// headers crossed the proxy.
//
// Of Lockbox it imports only grantsig, as a real upstream would, and
// internal/httptimeouts, which only names net/http's server timeouts.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// The demo services, named as in the activity catalog.
const (
	Exchange   = "exchange"
	SharePoint = "sharepoint"
	OneDrive   = "onedrive"
)

// Names returns the names of the demo services, sorted.
func Names() []string { return []string{Exchange, OneDrive, SharePoint} }

// UserHeader is the identity header the proxy sends, and Operator its only
// accepted value.
const (
	UserHeader = "X-Lockbox-User"
	Operator   = "Microsoft Operator"
)

// SeenPath is the demo-only inspection endpoint: GET returns the recorded
// calls as JSON, DELETE forgets them. It needs no grant, is never recorded,
// and no catalog route reaches it through the proxy. A real upstream has no
// such endpoint.
const SeenPath = "/_lockbox/seen"

// MaxSeen is how many calls a Service remembers; older ones are dropped.
const MaxSeen = 1000

// Error codes of the JSON errors, {"error":{"code":...,"message":...}}. The
// first two are the upstream checks' refusals (403).
const (
	CodeGrantInvalid     = "lockbox_grant_invalid"
	CodeCredentialLeak   = "credential_leaked"
	CodeNotFound         = "not_found"
	CodeBadRequest       = "bad_request"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeSiteLocked       = "site_locked" // Set-SPOSite locked the site
)

// ServiceConfig configures one demo service.
type ServiceConfig struct {
	// Name is the service: "exchange", "sharepoint" or "onedrive".
	Name string
	// GrantKeys are the proxy's public keys (its JWKS), which verify
	// X-Lockbox-Grant. Required: a service without them could not refuse
	// anything.
	GrantKeys *grantsig.KeySet
	// Issuer is the proxy's assertion issuer; grantsig.DefaultIssuer when
	// empty.
	Issuer string
	// Now is the clock grants are checked against; time.Now if nil.
	Now func() time.Time
	// Logger receives one line per call; discarded if nil.
	Logger *slog.Logger
}

// Seen is one call a Service received, recorded before it was judged, so
// refused calls are there too.
type Seen struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query,omitempty"` // raw, without "?"
	Header http.Header `json:"header"`
	// GrantOK is true when the call passed every upstream check: the user
	// header, no credential, and a grant assertion, not used before, that
	// verified for this call and names this service and the path's tenant.
	GrantOK bool `json:"grant_ok"`
	// Claims are the assertion's claims when its signature verified (even
	// if it was for another call, tenant or service); zero otherwise.
	Claims grantsig.Claims `json:"claims,omitzero"`
	At     time.Time       `json:"at"`
}

// Service is one demo tenant data service, an http.Handler serving every
// route the activity catalog lists for it (without the "/{service}" prefix,
// e.g. "GET /tenants/{tenant}/mailboxes"). It is safe for concurrent use.
type Service struct {
	name   string
	keys   *grantsig.KeySet
	issuer string
	now    func() time.Time
	log    *slog.Logger
	mux    *http.ServeMux
	routes []string // registered patterns, for the test against the catalog

	mu      sync.Mutex
	tenants map[string]*tenantData
	seq     int // last repair request number
	seen    []Seen
	next    int // index the next record goes to once seen is full
	// spent holds the "jti" of each assertion a call passed the checks
	// with, until it expires, and queue the same in the order they came.
	spent map[string]struct{}
	queue []spentAssertion
}

// spentAssertion is an assertion's "jti" and when Verify stops accepting it.
type spentAssertion struct {
	id    string
	until time.Time
}

// NewService returns a service with its demo data seeded.
func NewService(cfg ServiceConfig) (*Service, error) {
	if !slices.Contains(Names(), cfg.Name) {
		return nil, fmt.Errorf("demo: unknown service %q (want one of %s)", cfg.Name, strings.Join(Names(), ", "))
	}
	if cfg.GrantKeys == nil {
		return nil, fmt.Errorf("demo: %s: GrantKeys is required", cfg.Name)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = grantsig.DefaultIssuer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		name:    cfg.Name,
		keys:    cfg.GrantKeys,
		issuer:  cfg.Issuer,
		now:     cfg.Now,
		log:     cfg.Logger.With("component", "demo", "service", cfg.Name),
		mux:     http.NewServeMux(),
		tenants: seed(cfg.Name),
		spent:   make(map[string]struct{}),
	}
	s.registerRoutes()
	// Anything no route matches, including a known path with another
	// method, is a JSON 404 rather than the mux's plain-text answer.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("%s has no route %s %s", s.name, r.Method, r.URL.Path))
	})
	return s, nil
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// handle registers one catalog route. The handler runs only after
// ServeHTTP's checks passed; it checks once more that the tenant the mux
// bound is the one the grant names, so the check and the data lookup can't
// disagree about which tenant a path means.
func (s *Service) handle(pattern string, h func(w http.ResponseWriter, r *http.Request, t *tenantData)) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		c, ok := r.Context().Value(claimsKey{}).(grantsig.Claims)
		if !ok || c.Tenant != tenant {
			writeError(w, http.StatusForbidden, CodeGrantInvalid, "the grant does not cover this tenant")
			return
		}
		// Read the body before taking the lock, so a slow client holds up
		// no one else.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
				writeError(w, http.StatusRequestEntityTooLarge, CodeBadRequest, fmt.Sprintf("the body exceeds %d bytes", maxBody))
				return
			}
			writeError(w, http.StatusBadRequest, CodeBadRequest, "reading the body failed")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Lock()
		defer s.mu.Unlock()
		t, ok := s.tenants[tenant]
		if !ok {
			writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("tenant %q not found", tenant))
			return
		}
		h(w, r, t)
	})
}

type claimsKey struct{}

// ServeHTTP records the call, makes the upstream checks, and serves it only
// if they all passed.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == SeenPath {
		s.serveSeen(w, r)
		return
	}
	now := s.now()
	claims, verified, code, msg := s.check(r, now)
	s.record(Seen{
		Method:  r.Method,
		Path:    r.URL.Path,
		Query:   r.URL.RawQuery,
		Header:  r.Header.Clone(),
		GrantOK: code == "",
		Claims:  verified,
		At:      now,
	})
	if code != "" {
		s.log.Warn("demo upstream refused call", "method", r.Method, "path", r.URL.Path, "code", code, "reason", msg)
		writeError(w, http.StatusForbidden, code, msg)
		return
	}
	if !cleanPath(r.URL.Path) {
		// The mux would answer with a redirect to the cleaned path; an
		// upstream should not guess what a confusing path meant.
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the path has empty or dot segments")
		return
	}
	s.log.Info("demo upstream served call", "method", r.Method, "path", r.URL.Path, "tenant", claims.Tenant, "lockbox_request_id", claims.RequestID)
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
}

// check is the upstream's own check. It returns the claims of a call that
// passed, the claims whose signature verified (for the record, even when
// they name another tenant or service), and for a refused call the error
// code and message.
func (s *Service) check(r *http.Request, now time.Time) (ok, verified grantsig.Claims, code, msg string) {
	// A credential here means the proxy (or something before it) passed on
	// what the operator authenticated with; the upstream would then be
	// trusting a token it has no business seeing.
	for _, h := range []string{"Authorization", "Proxy-Authorization"} {
		if _, present := r.Header[h]; present {
			return ok, verified, CodeCredentialLeak, fmt.Sprintf("the request carries an %s header: an upstream must never receive an operator credential", h)
		}
	}
	// Exactly one value each: with two, a server that reads the first and
	// one that reads the last would disagree on who is calling.
	users := r.Header.Values(UserHeader)
	if len(users) != 1 || users[0] != Operator {
		return ok, verified, CodeGrantInvalid, fmt.Sprintf("%s must be exactly %q", UserHeader, Operator)
	}
	grants := r.Header.Values(grantsig.Header)
	switch len(grants) {
	case 0:
		return ok, verified, CodeGrantInvalid, "missing " + grantsig.Header + " header"
	case 1:
	default:
		return ok, verified, CodeGrantInvalid, "more than one " + grantsig.Header + " header"
	}
	// The assertion must have been issued for this call: this service
	// (the audience), this method and this path, exactly as received. One
	// captured on its way to another call, or to another service, is
	// refused.
	c, err := grantsig.Verify(s.keys, grants[0], grantsig.Expect{
		Issuer: s.issuer, Audience: s.name, Method: r.Method, Path: r.URL.EscapedPath(),
	}, now)
	verified = c // zero unless the signature verified
	if err != nil {
		return ok, verified, CodeGrantInvalid, err.Error()
	}
	if c.Subject != Operator {
		return ok, verified, CodeGrantInvalid, fmt.Sprintf("the grant names operator %q, not %q", c.Subject, Operator)
	}
	if c.Service != s.name {
		return ok, verified, CodeGrantInvalid, fmt.Sprintf("the grant is for service %q, this is %q", c.Service, s.name)
	}
	tenant, found := pathTenant(r)
	if !found {
		return ok, verified, CodeGrantInvalid, "the path names no tenant"
	}
	if c.Tenant != tenant {
		return ok, verified, CodeGrantInvalid, fmt.Sprintf("the grant is for tenant %q, the path names %q", c.Tenant, tenant)
	}
	// Last, so that only a call that passed everything else uses the
	// assertion up.
	if !s.spend(c, now) {
		return ok, verified, CodeGrantInvalid, fmt.Sprintf("the assertion %q was already used: it is good for one call", c.AuditID)
	}
	return c, verified, "", ""
}

// spend records the use of an assertion that verified, and reports whether
// it is the first. The method and path bind an assertion to one call, but
// not its query string or body: without this, one captured on its way here
// would pass again until it expires, for that call with any body (a second
// repair request, another Set-SPOSite change), and the second call would
// have no audit record of its own.
//
// An assertion is remembered only while Verify would still accept it. Each
// one expires at most MaxTTL plus twice the leeway after it arrives, so the
// oldest arrivals are dropped as they expire and the memory is bounded by
// the calls of the last minute or so.
func (s *Service) spend(c grantsig.Claims, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 && !now.Before(s.queue[0].until) {
		delete(s.spent, s.queue[0].id)
		s.queue[0] = spentAssertion{}
		s.queue = s.queue[1:]
	}
	if _, used := s.spent[c.AuditID]; used {
		return false
	}
	s.spent[c.AuditID] = struct{}{}
	s.queue = append(s.queue, spentAssertion{id: c.AuditID, until: time.Unix(c.ExpiresAt, 0).Add(grantsig.DefaultLeeway)})
	return true
}

// pathTenant returns the {tenant} segment of /tenants/{tenant}/..., decoded
// per segment exactly as the mux decodes the wildcard it binds.
func pathTenant(r *http.Request) (string, bool) {
	parts := strings.Split(r.URL.EscapedPath(), "/")
	if len(parts) < 3 || parts[0] != "" || parts[1] != "tenants" || parts[2] == "" {
		return "", false
	}
	t, err := url.PathUnescape(parts[2])
	return t, err == nil
}

// cleanPath reports whether the decoded path has no empty, "." or ".."
// segment (a lone "/" aside).
func cleanPath(p string) bool {
	if p == "/" {
		return true
	}
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return false
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// record adds a call to the ring of the last MaxSeen.
func (s *Service) record(c Seen) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) < MaxSeen {
		s.seen = append(s.seen, c)
		return
	}
	s.seen[s.next] = c
	s.next = (s.next + 1) % MaxSeen
}

// Seen returns the calls the service received, oldest first, at most the
// last MaxSeen. The slice and its headers are the caller's.
func (s *Service) Seen() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Seen, 0, len(s.seen))
	out = append(out, s.seen[s.next:]...)
	out = append(out, s.seen[:s.next]...)
	for i := range out {
		out[i].Header = out[i].Header.Clone()
	}
	return out
}

// Reset forgets the recorded calls. The tenant data is left as it is.
func (s *Service) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = nil
	s.next = 0
}

// serveSeen is the demo-only inspection endpoint, for tests that run the
// real binaries and can't reach in-process state.
//
// Credentials are redacted and X-Lockbox-Grant keeps its header and claims
// but loses its signature: served back whole, the assertion of a call
// refused for another reason (a leaked Authorization header, say), and so
// never used up, could be replayed to the service directly (for the same
// call), past the proxy's checks, until it expires. GrantOK and Claims
// already say what it asserted.
func (s *Service) serveSeen(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		calls := s.Seen()
		for i := range calls {
			redact(calls[i].Header)
		}
		writeJSON(w, http.StatusOK, map[string]any{"service": s.name, "calls": calls})
	case http.MethodDelete:
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use GET or DELETE")
	}
}

// Redacted replaces secret header values on the inspection endpoint.
const Redacted = "REDACTED"

func redact(h http.Header) {
	for _, name := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
		if vs, ok := h[name]; ok {
			for i := range vs {
				vs[i] = Redacted
			}
		}
	}
	if vs, ok := h[grantsig.Header]; ok {
		for i, v := range vs {
			if j := strings.LastIndexByte(v, '.'); j >= 0 {
				vs[i] = v[:j+1] + Redacted
			} else {
				vs[i] = Redacted
			}
		}
	}
}

// errorBody is the JSON error shape of every Lockbox API.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded; this is a bug, not bad input.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// maxBody bounds request bodies; the demo's writes are small.
const maxBody = 64 << 10

// decodeBody decodes a JSON request body (already bounded by handle)
// strictly into v: unknown fields and trailing data are refused. It reports
// whether the body was empty, which the caller may accept.
func decodeBody(r *http.Request, v any) (empty bool, err error) {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		return false, fmt.Errorf("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, errors.New("invalid JSON body: trailing data after the object")
	}
	return false, nil
}
