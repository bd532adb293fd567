// Package client is the typed Go client of Lockbox's control-plane HTTP API
// (/v1/requests, /v1/tenants/{tenant}/settings, /v1/tenants/{tenant}/approvers,
// /v1/audit). lockboxctl and the end-to-end tests use it.
//
// It speaks only HTTP and JSON, in the API's own types (package api/wire,
// with audit/record's Record), so a program using it links none of
// Lockbox's domain: no Redis, no policy engine, no token verifier. It must
// import nothing of Lockbox but api/wire, audit/record and internal/origin
// (the redirect rules every Lockbox client shares, standard library only);
// cmd/lockboxctl's TestDependencies holds lockboxctl to that.
//
// Every non-2xx answer becomes an *APIError carrying the server's stable
// error code, so callers branch with errors.As, never on message text.
package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/origin"
)

// Limits on what the client reads from a server.
const (
	// MaxResponseBytes caps a decoded success body, so a broken or hostile
	// server can't make the client allocate without bound.
	MaxResponseBytes = 32 << 20
	// maxErrorBytes caps what is read of an error body.
	maxErrorBytes = 64 << 10
	// maxSnippet is how much of an undecodable error body an APIError shows.
	maxSnippet = 200
	// DefaultTimeout bounds each call made with the default HTTP client.
	DefaultTimeout = 30 * time.Second
)

// DefaultUserAgent is sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "lockbox-go-client"

// Client calls one Lockbox API server with one bearer token. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	token     string
	hc        *http.Client
	userAgent string
	// maxResponse is MaxResponseBytes; tests lower it.
	maxResponse int64
	// insecureHTTP lets the token go over plain http to a server that is
	// not loopback (AllowInsecureHTTP).
	insecureHTTP bool
	// afterFunc starts ExportAudit's silence timer: time.AfterFunc, or a
	// test's timer that fires when the test moves its clock.
	afterFunc func(time.Duration, func()) stallTimer
}

// stallTimer is the part of *time.Timer that ExportAudit uses.
type stallTimer interface {
	Reset(time.Duration) bool
	Stop() bool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its calls through hc (for custom
// TLS, proxies or timeouts). A nil hc keeps the default. hc's redirect
// policy applies, and on top of it the default client's: no redirect is
// followed off the API's scheme, host and port, so the token goes nowhere
// else, nor takes the token over plain http off loopback without
// AllowInsecureHTTP. hc is copied, not changed.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// AllowInsecureHTTP lets New accept a plain http address of a server that
// is not loopback, although every call then carries the bearer token
// across the network in the clear, for anyone on the path to read and
// replay for as long as it lives. It is for a network the caller trusts
// (lockboxctl's --insecure-http); without it New refuses such an address
// with an *InsecureHTTPError.
func AllowInsecureHTTP() Option {
	return func(c *Client) { c.insecureHTTP = true }
}

// InsecureHTTPError is New's refusal of a plain http address of a server
// that is not loopback, for a client with a token: nothing was sent.
type InsecureHTTPError struct {
	// Address is the API address, without any user information.
	Address string
}

func (e *InsecureHTTPError) Error() string {
	return fmt.Sprintf("client: API address %s is plain http to a server that is not loopback, so the bearer token would cross the network readable by anyone on the way: "+
		"use https, or pass the option AllowInsecureHTTP to send it anyway", e.Address)
}

// WithUserAgent sets the User-Agent header of every call.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// New returns a client of the API at baseURL (an absolute http or https
// URL, optionally with a path prefix such as https://host/lockbox) that
// authenticates with token as a bearer JWT. An empty token sends no
// Authorization header, which only shows how the server refuses anonymous
// calls. With a token, a plain http address is refused (an
// *InsecureHTTPError) unless it is loopback or AllowInsecureHTTP is given.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		// Not %w: a *url.Error here would read like a failed call. Its
		// reason only: the error repeats the address, password and all.
		reason := err
		if ue, ok := errors.AsType[*url.Error](err); ok {
			reason = ue.Err
		}
		return nil, fmt.Errorf("client: API address %q must be an http:// or https:// URL: %v", redacted(baseURL), reason)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("client: API address %q must be an http:// or https:// URL", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("client: API address %q has no host", u.Redacted())
	case u.User != nil:
		// Credentials in the URL would travel beside the bearer token and
		// end up in logs and error messages; this one shows no password.
		return nil, fmt.Errorf("client: API address %q must not contain user information", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("client: API address %q must not have a query or fragment", u.Redacted())
	}
	// A token with whitespace or control characters is a copy-paste
	// mistake (or an attempt to inject a header); refuse it here with a
	// clear message rather than as an opaque transport error.
	for _, r := range token {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("client: token contains whitespace or control characters")
		}
	}
	base := &url.URL{Scheme: u.Scheme, Host: dialedHost(u), Path: strings.TrimSuffix(u.Path, "/")}
	if u.RawPath != "" {
		base.RawPath = strings.TrimSuffix(u.RawPath, "/")
	}
	c := &Client{
		base:      base,
		token:     token,
		hc:        &http.Client{Timeout: DefaultTimeout, CheckRedirect: sameOrigin},
		userAgent: DefaultUserAgent,

		maxResponse: MaxResponseBytes,
		afterFunc:   func(d time.Duration, f func()) stallTimer { return time.AfterFunc(d, f) },
	}
	for _, o := range opts {
		o(c)
	}
	if c.plainHTTPRefused(base) {
		return nil, &InsecureHTTPError{Address: base.Redacted()}
	}
	// The same rules for where a redirect points, whatever hc's own
	// policy: net/http sends Authorization on to the same host name over
	// plain http, so a 307 from https to http:// sent the token in the
	// clear; and to any port of that host name, or a subdomain, so a
	// client given for its TLS settings alone (no policy: net/http's ten
	// redirects anywhere) handed the token to another server on a 307 to
	// https://host:other-port. The caller's policy speaks first, so that
	// its refusal is the one returned (lockboxctl names its own). The
	// caller's client is copied, not changed.
	hc := *c.hc
	hc.Transport = locationCheck{next: hc.Transport}
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if c.plainHTTPRefused(req.URL) {
			return &InsecureHTTPError{Address: withoutUser(req.URL)}
		}
		if next != nil {
			if err := next(req, via); err != nil {
				return err
			}
		} else if len(via) >= 10 {
			return errors.New("client: stopped after 10 redirects")
		}
		return leavesOrigin(req, via)
	}
	c.hc = &hc
	return c, nil
}

// MalformedRedirectError is an answer that redirects to a Location that
// is not a URL: not followed, and not quoted. net/http fails on such a
// Location before any redirect policy sees it, with an error quoting it
// whole, user name and password too; the client refuses the answer first.
type MalformedRedirectError struct {
	// Status is the answer's status: 301, 302, 303, 307 or 308.
	Status int
}

func (e *MalformedRedirectError) Error() string {
	return fmt.Sprintf("client: HTTP %d redirects to a Location that is not a URL: not followed (the Location is not shown: it may hold a password)", e.Status)
}

// locationCheck is next (http.DefaultTransport when nil) refusing, with
// a *MalformedRedirectError, an answer redirecting (301, 302, 303, 307,
// 308) to a Location net/http can't parse: origin.Transport's check, the
// one Lockbox's other clients make, under this package's own error type,
// which its callers already branch on.
type locationCheck struct{ next http.RoundTripper }

func (t locationCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := origin.Transport(t.next).RoundTrip(r)
	if bad, ok := errors.AsType[*origin.MalformedRedirectError](err); ok {
		return nil, &MalformedRedirectError{Status: bad.Status}
	}
	return resp, err
}

// plainHTTPRefused reports whether a call to u would send the token over
// plain http to a server that is not loopback without AllowInsecureHTTP.
func (c *Client) plainHTTPRefused(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, "http") && c.token != "" && !c.insecureHTTP && !isLoopback(u.Hostname())
}

// isLoopback reports whether a connection to host stays on this machine:
// localhost, an address in 127.0.0.0/8 or ::1, or no address at all (""
// and 0.0.0.0 of a listen address copied from LOCKBOX_API_ADDR, which
// dial this machine). lockboxctl's check of --addr is the same.
func isLoopback(host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// dialedHost is u's host and port, with a plain http address that names
// no host (http://:8080, 0.0.0.0, [::]: a listen address copied from
// LOCKBOX_API_ADDR) given the loopback address it dials. net/http sends
// a call to HTTP_PROXY unless its host is localhost or a loopback
// address: to 0.0.0.0 it went, Authorization and all, in the clear to the
// proxy the environment names, while the client took it for loopback
// and sent the token without AllowInsecureHTTP.
func dialedHost(u *url.URL) string {
	host := u.Hostname()
	ip := net.ParseIP(host)
	if !strings.EqualFold(u.Scheme, "http") || (host != "" && (ip == nil || !ip.IsUnspecified())) {
		return u.Host
	}
	loopback := "127.0.0.1"
	if ip != nil && ip.To4() == nil {
		loopback = "::1"
	}
	if u.Port() == "" {
		return strings.Trim(net.JoinHostPort(loopback, ""), ":")
	}
	return net.JoinHostPort(loopback, u.Port())
}

// redacted is raw, an address url.Parse refused, with the password of
// any user information in it replaced by "xxxxx", as url.URL.Redacted
// writes it.
func redacted(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// sameOrigin is the default client's redirect policy: it follows no
// redirect to another scheme, host or port than the call's first. Every
// call carries the bearer token, and net/http sends Authorization on to
// any port and scheme of the same host name (and to its subdomains), so a
// redirect to http://host:other-port, or from https to plain http, handed
// the token to another server or to the network. (lockboxctl's client has
// the same policy, with its own message.)
func sameOrigin(req *http.Request, via []*http.Request) error {
	if err := leavesOrigin(req, via); err != nil {
		return err
	}
	if len(via) >= 10 {
		return errors.New("client: stopped after 10 redirects")
	}
	return nil
}

// leavesOrigin refuses a redirect to another scheme, host or port than
// the call's first.
func leavesOrigin(req *http.Request, via []*http.Request) error {
	if from := via[0].URL; !SameOrigin(req.URL, from) {
		return fmt.Errorf("client: not following a redirect from %s to %s, another server than the API's", withoutUser(from), withoutUser(req.URL))
	}
	return nil
}

// withoutUser is u without its user information, for messages: a
// Location's user name (Redacted keeps it) or password are not the
// caller's to see, and reach terminals and logs with the error.
func withoutUser(u *url.URL) string {
	v := *u
	v.User = nil
	return v.String()
}

// withoutUserInError drops the user information from the address of
// the *url.Error in err: net/http names a refused redirect by its
// Location as sent, password and all.
func withoutUserInError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
			ue.URL = withoutUser(u)
		}
	}
	return err
}

// SameOrigin reports whether a and b have the same scheme, host and port
// (the port filled in when implied): a redirect policy that keeps a
// bearer token on the API's server follows only such redirects.
func SameOrigin(a, b *url.URL) bool { return origin.Of(a) == origin.Of(b) }

// BaseURL returns the API address the client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// NotSentError is a call that failed before it was written whole to a
// connection (refused, a TLS handshake cut short, a name that did not
// resolve): the server can't have acted on it. A call that failed after
// it was written is returned as it is, and the server may have.
type NotSentError struct{ Err error }

func (e *NotSentError) Error() string { return e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// APIError is a non-2xx answer of the server.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the server's stable, machine-readable error code (e.g.
	// "self_approval"); empty when the body was not a Lockbox error.
	Code string
	// Message is the server's explanation, safe to show to a user.
	Message string
	// TraceID identifies the call in the server's logs (its X-Request-Id
	// header), when it sent one. It is not a lockbox request's id.
	TraceID string
	// RetryAfter is how long the answer asks the caller to wait before
	// trying again (its Retry-After in seconds: the API's 429
	// too_many_reads sends one, and so may a gateway's 503); zero when it
	// sent none, or an HTTP-date.
	RetryAfter time.Duration
	// FromProxy reports that Lockbox's enforcement proxy answered (the
	// answer carries ProxyDecisionHeader), not its API: the address names
	// the proxy's port. Its error document has the API's shape, but its
	// refusal says nothing of what the call named.
	FromProxy bool
	// HTMLPage reports that the answer was a web page, not an error
	// document: something in front of the API answered (a load
	// balancer's 502 page, a sign-in proxy), or the address is not the
	// API's. Message then names the page by its title, not its markup.
	HTMLPage bool
	// PageText is what the page says, when HTMLPage: its title, or the
	// start of its text when it has none; on one line, short, and ""
	// when it says nothing.
	PageText string
}

// DecodeError is a 2xx answer whose body could not be read as the JSON
// the call expects: empty, not JSON (something in front of the API
// answered), cut short, or JSON of another shape. Err is the decoder's
// error (io.EOF, io.ErrUnexpectedEOF, a *json.SyntaxError or
// *json.UnmarshalTypeError), or the error that ended reading the body.
type DecodeError struct {
	// Method and Path name the call, Path relative to the API's address.
	Method, Path string
	Err          error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("client: %s %s: decoding response: %v", e.Method, e.Path, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ProxyDecisionHeader is the header every answer of Lockbox's enforcement
// proxy carries (proxy.HeaderDecisionID) and no answer of the API does.
const ProxyDecisionHeader = "X-Lockbox-Decision-Id"

// Error returns the message, followed by the code and the trace id when
// there are, e.g. "you can't approve your own request (self_approval,
// trace id 6XOG3QOH)".
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	var notes []string
	if e.Code != "" {
		notes = append(notes, e.Code)
	}
	if e.TraceID != "" {
		notes = append(notes, "trace id "+e.TraceID)
	}
	if len(notes) == 0 {
		return msg
	}
	return msg + " (" + strings.Join(notes, ", ") + ")"
}

// ListOptions filter ListRequests. Zero fields don't filter.
type ListOptions struct {
	Tenant       string
	State        wire.State
	CreatedAfter time.Time
	// Limit caps the number of requests of one page; 0 leaves it to the
	// server.
	Limit int
	// Cursor is the NextCursor of the previous page, which the server
	// accepts only with the same Tenant, State and CreatedAfter (Limit may
	// change); empty for the first page.
	Cursor string
}

// RequestPage is one page of requests, newest first, with the cursor of
// the next page when a request after it matched.
type RequestPage = wire.RequestList

// AuditQuery selects audit records. Zero fields don't filter.
type AuditQuery struct {
	// Tenant whose audit log to read. Empty means a tenant user's own
	// tenant, and every tenant for the provider's audit readers.
	Tenant string
	// From and To bound CreationTime, both inclusive. A zero one is sent
	// only with HasFrom (HasTo): the zero time given is a bound (to of it
	// matches nothing), not the absence of one.
	From, To time.Time
	// HasFrom and HasTo send From and To even when zero.
	HasFrom, HasTo bool
	// User is a UserId such as "Microsoft Operator" (the provider's audit
	// readers may also name the provider's staff member).
	User string
	// Operation is an activity such as "Get-Mailbox".
	Operation string
	// RequestID selects the records of one lockbox request.
	RequestID string
	// Cursor is the NextCursor of the previous page (search only).
	Cursor string
	// Limit caps the records of one page; 0 leaves it to the server
	// (search only).
	Limit int
}

// AuditPage is one page of audit search results, newest first.
type AuditPage = wire.RecordPage

// values encodes the query's filters.
func (q AuditQuery) values(search bool) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("tenant", q.Tenant)
	if q.HasFrom || !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if q.HasTo || !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	set("user", q.User)
	set("operation", q.Operation)
	set("request_id", q.RequestID)
	if search {
		set("cursor", q.Cursor)
		if q.Limit > 0 {
			v.Set("limit", strconv.Itoa(q.Limit))
		}
	}
	return v
}

// CreateRequest files a lockbox request.
func (c *Client) CreateRequest(ctx context.Context, in wire.CreateRequest) (wire.Request, error) {
	var r wire.Request
	err := c.do(ctx, http.MethodPost, "/v1/requests", nil, in, &r)
	return r, err
}

// CreateRequestOnce files a lockbox request with the Idempotency-Key key:
// sent again with the same key and in, after an answer was lost, it
// answers with the request the first call filed rather than filing
// another. The key is sent as the Structured Field string the draft
// specifies.
func (c *Client) CreateRequestOnce(ctx context.Context, in wire.CreateRequest, key string) (wire.Request, error) {
	var r wire.Request
	_, err := c.doHeaders(ctx, http.MethodPost, "/v1/requests", nil, http.Header{"Idempotency-Key": {`"` + key + `"`}}, in, &r)
	return r, err
}

// ListRequests returns the requests the caller may see that match opts,
// newest first: one page, the first or the one opts.Cursor names.
// ListRequestsPage also returns the cursor of the page after it.
func (c *Client) ListRequests(ctx context.Context, opts ListOptions) ([]wire.Request, error) {
	p, err := c.ListRequestsPage(ctx, opts)
	if err != nil {
		return nil, err
	}
	return p.Requests, nil
}

// ListRequestsPage returns a page of the requests the caller may see that
// match opts, newest first. Pass its NextCursor as opts.Cursor, with the
// same filters, for the next page, until NextCursor is empty. Requests
// filed meanwhile come on no later page, and none of the others is
// repeated or skipped.
func (c *Client) ListRequestsPage(ctx context.Context, opts ListOptions) (RequestPage, error) {
	q := url.Values{}
	if opts.Tenant != "" {
		q.Set("tenant", opts.Tenant)
	}
	if opts.State != "" {
		q.Set("state", string(opts.State))
	}
	if !opts.CreatedAfter.IsZero() {
		q.Set("created_after", opts.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var out RequestPage
	if err := c.do(ctx, http.MethodGet, "/v1/requests", q, nil, &out); err != nil {
		return RequestPage{}, err
	}
	if out.Requests == nil {
		out.Requests = []wire.Request{}
	}
	return out, nil
}

// GetRequest returns one request with its history.
func (c *Client) GetRequest(ctx context.Context, id string) (wire.Request, error) {
	p, err := join("/v1/requests", id)
	if err != nil {
		return wire.Request{}, err
	}
	var r wire.Request
	err = c.do(ctx, http.MethodGet, p, nil, nil, &r)
	return r, err
}

// Approve approves request id. The server knows whether the caller decides
// as the provider's support manager or as a tenant approver.
func (c *Client) Approve(ctx context.Context, id, comment string) (wire.Request, error) {
	return c.act(ctx, id, "approve", comment)
}

// Deny denies request id, as its manager or a tenant approver.
func (c *Client) Deny(ctx context.Context, id, comment string) (wire.Request, error) {
	return c.act(ctx, id, "deny", comment)
}

// Cancel withdraws a pending request; only its requester may.
func (c *Client) Cancel(ctx context.Context, id, comment string) (wire.Request, error) {
	return c.act(ctx, id, "cancel", comment)
}

// Revoke ends an approved request's access before its window ends.
func (c *Client) Revoke(ctx context.Context, id, comment string) (wire.Request, error) {
	return c.act(ctx, id, "revoke", comment)
}

func (c *Client) act(ctx context.Context, id, action, comment string) (wire.Request, error) {
	p, err := join("/v1/requests", id)
	if err != nil {
		return wire.Request{}, err
	}
	body := wire.Decision{Comment: comment}
	var r wire.Request
	err = c.do(ctx, http.MethodPost, p+"/"+action, nil, body, &r)
	return r, err
}

// Settings returns tenant's Customer Lockbox settings.
func (c *Client) Settings(ctx context.Context, tenant string) (wire.Settings, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.Settings{}, err
	}
	var s wire.Settings
	err = c.do(ctx, http.MethodGet, p+"/settings", nil, nil, &s)
	return s, err
}

// Onboard onboards a tenant (the provider's Lockbox administrators only).
func (c *Client) Onboard(ctx context.Context, in wire.Onboarding) (wire.OnboardedTenant, error) {
	var out wire.OnboardedTenant
	err := c.do(ctx, http.MethodPost, "/v1/tenants", nil, in, &out)
	return out, err
}

// Offboard ends the provider's relationship with tenant, saying why (the
// provider's Lockbox administrators only), and returns its registry entry
// as offboarded, whatever the entry is now. Offboarding a tenant again
// answers the first offboarding. To offboard the entry as it was read,
// read it with TenantETag and offboard it with OffboardIfMatch.
func (c *Client) Offboard(ctx context.Context, tenant, reason string) (wire.Tenant, error) {
	return c.offboard(ctx, tenant, reason, "")
}

// OffboardIfMatch is Offboard only if the registry entry's ETag is still
// etag, as TenantETag returned it: if anyone saved a change since, nothing
// is done and the error is an *APIError with Status 412 and Code
// CodeTenantChanged. A tenant already offboarded is answered as Offboard
// answers it, whatever etag. An empty etag is refused before anything is
// sent.
func (c *Client) OffboardIfMatch(ctx context.Context, tenant, reason, etag string) (wire.Tenant, error) {
	if etag == "" {
		return wire.Tenant{}, errors.New("client: OffboardIfMatch needs the ETag the tenant was read with")
	}
	return c.offboard(ctx, tenant, reason, etag)
}

// offboard sends POST offboard, with If-Match: etag unless it is empty.
func (c *Client) offboard(ctx context.Context, tenant, reason, etag string) (wire.Tenant, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.Tenant{}, err
	}
	var hdr http.Header
	if etag != "" {
		hdr = http.Header{"If-Match": {etag}}
	}
	var t wire.Tenant
	_, err = c.doHeaders(ctx, http.MethodPost, p+"/offboard", nil, hdr, wire.Offboarding{Reason: reason}, &t)
	return t, err
}

// Tenants lists the onboarded tenants the caller may see. TenantList also
// names those whose registry entry can't be read.
func (c *Client) Tenants(ctx context.Context) ([]wire.Tenant, error) {
	out, err := c.TenantList(ctx)
	return out.Tenants, err
}

// TenantList lists the onboarded tenants the caller may see and, under
// Unreadable, those whose stored registry entry does not decode: the
// others are listed all the same. It reads every page (TenantListPage),
// the largest the server gives.
func (c *Client) TenantList(ctx context.Context) (wire.TenantList, error) {
	out := wire.TenantList{Tenants: []wire.Tenant{}}
	for cursor := ""; ; {
		pg, err := c.TenantListPage(ctx, cursor, maxTenantPage)
		if err != nil {
			return wire.TenantList{}, err
		}
		out.Tenants, out.Unreadable = append(out.Tenants, pg.Tenants...), append(out.Unreadable, pg.Unreadable...)
		if pg.NextCursor == "" {
			return out, nil
		}
		cursor = pg.NextCursor
	}
}

// maxTenantPage is the largest page of tenants the API gives.
const maxTenantPage = 1000

// pageQuery is the query of one page of a listing: its cursor and limit,
// each left out when empty or zero.
func pageQuery(cursor string, limit int) url.Values {
	v := url.Values{}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return v
}

// TenantListPage returns one page of the onboarded tenants the caller may
// see, sorted by id, at most limit (0: the server's default). Pass its
// NextCursor as cursor for the next one.
func (c *Client) TenantListPage(ctx context.Context, cursor string, limit int) (wire.TenantList, error) {
	v := pageQuery(cursor, limit)
	var out wire.TenantList
	if err := c.do(ctx, http.MethodGet, "/v1/tenants", v, nil, &out); err != nil {
		return wire.TenantList{}, err
	}
	if out.Tenants == nil {
		out.Tenants = []wire.Tenant{}
	}
	return out, nil
}

// Tenant returns tenant's registry entry.
func (c *Client) Tenant(ctx context.Context, tenant string) (wire.Tenant, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.Tenant{}, err
	}
	var t wire.Tenant
	err = c.do(ctx, http.MethodGet, p, nil, nil, &t)
	return t, err
}

// UpdateTenant changes tenant's registry entry, whatever it is now; nil
// fields of u stay, and the lists it sets are replaced whole. To change a
// list as read (add a domain), read the entry with TenantETag and write
// it with UpdateTenantIfMatch, so a change saved in between is not undone.
func (c *Client) UpdateTenant(ctx context.Context, tenant string, u wire.TenantUpdate) (wire.Tenant, error) {
	t, _, err := c.updateTenant(ctx, tenant, u, "")
	return t, err
}

// UpdateTenantETag is UpdateTenant, and also returns the ETag of the entry
// as stored, to pass to OffboardIfMatch or UpdateTenantIfMatch; empty from
// a server that predates revisions of the registry.
func (c *Client) UpdateTenantETag(ctx context.Context, tenant string, u wire.TenantUpdate) (wire.Tenant, string, error) {
	return c.updateTenant(ctx, tenant, u, "")
}

// CodeTenantChanged is the APIError.Code of UpdateTenantIfMatch's 412:
// the registry entry changed since it was read, and nothing was written.
const CodeTenantChanged = "tenant_changed"

// TenantETag returns tenant's registry entry with the ETag of its
// revision, to pass to UpdateTenantIfMatch. The ETag is empty from a
// server that predates revisions of the registry.
func (c *Client) TenantETag(ctx context.Context, tenant string) (wire.Tenant, string, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.Tenant{}, "", err
	}
	var t wire.Tenant
	h, err := c.doHeaders(ctx, http.MethodGet, p, nil, nil, nil, &t)
	return t, h.Get("ETag"), err
}

// UpdateTenantIfMatch changes tenant's registry entry as UpdateTenant
// does, only if its ETag is still etag, as TenantETag returned it, and
// returns it as stored with its new ETag. If anyone saved a change since,
// nothing is written and the error is an *APIError with Status 412 and
// Code CodeTenantChanged: read it again. An empty etag is refused before
// anything is sent.
func (c *Client) UpdateTenantIfMatch(ctx context.Context, tenant string, u wire.TenantUpdate, etag string) (wire.Tenant, string, error) {
	if etag == "" {
		return wire.Tenant{}, "", errors.New("client: UpdateTenantIfMatch needs the ETag the tenant was read with")
	}
	return c.updateTenant(ctx, tenant, u, etag)
}

// updateTenant sends PATCH tenant, with If-Match: etag unless it is empty.
func (c *Client) updateTenant(ctx context.Context, tenant string, u wire.TenantUpdate, etag string) (wire.Tenant, string, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.Tenant{}, "", err
	}
	var hdr http.Header
	if etag != "" {
		hdr = http.Header{"If-Match": {etag}}
	}
	var t wire.Tenant
	h, err := c.doHeaders(ctx, http.MethodPatch, p, nil, hdr, u, &t)
	return t, h.Get("ETag"), err
}

// PutSettings replaces tenant's settings with s (a full replacement, not a
// merge), whatever they are now, and returns them as stored. To change
// some of them, read them with SettingsETag and write them back with
// PutSettingsIfMatch, so a change saved in between is not undone.
func (c *Client) PutSettings(ctx context.Context, tenant string, s wire.Settings) (wire.Settings, error) {
	out, _, err := c.putSettings(ctx, tenant, s, "")
	return out, err
}

// CodeSettingsChanged is the APIError.Code of PutSettingsIfMatch's 412:
// the settings changed since they were read, and nothing was written.
const CodeSettingsChanged = "settings_changed"

// SettingsETag returns tenant's settings with the ETag of their revision,
// to pass to PutSettingsIfMatch. The ETag is empty from a server that
// predates revisions.
func (c *Client) SettingsETag(ctx context.Context, tenant string) (wire.Settings, string, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.Settings{}, "", err
	}
	var s wire.Settings
	h, err := c.doHeaders(ctx, http.MethodGet, p+"/settings", nil, nil, nil, &s)
	return s, h.Get("ETag"), err
}

// PutSettingsIfMatch replaces tenant's settings with s (a full
// replacement) only if their ETag is still etag, as SettingsETag returned
// it, and returns them as stored with their new ETag. If anyone saved a
// change since, nothing is written and the error is an *APIError with
// Status 412 and Code CodeSettingsChanged: read them again. An empty etag
// is refused before anything is sent.
func (c *Client) PutSettingsIfMatch(ctx context.Context, tenant string, s wire.Settings, etag string) (wire.Settings, string, error) {
	if etag == "" {
		return wire.Settings{}, "", errors.New("client: PutSettingsIfMatch needs the ETag the settings were read with")
	}
	return c.putSettings(ctx, tenant, s, etag)
}

// putSettings sends PUT settings, with If-Match: etag unless it is empty.
func (c *Client) putSettings(ctx context.Context, tenant string, s wire.Settings, etag string) (wire.Settings, string, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.Settings{}, "", err
	}
	if s.NotificationAddresses == nil {
		// A full replacement: say "no addresses", never null.
		s.NotificationAddresses = []string{}
	}
	var hdr http.Header
	if etag != "" {
		hdr = http.Header{"If-Match": {etag}}
	}
	var out wire.Settings
	h, err := c.doHeaders(ctx, http.MethodPut, p+"/settings", nil, hdr, s, &out)
	return out, h.Get("ETag"), err
}

// Approvers lists tenant's assigned Customer Lockbox approvers whose
// approval counts: ApproverList without the assignments that approve
// nothing.
func (c *Client) Approvers(ctx context.Context, tenant string) ([]string, error) {
	l, err := c.ApproverList(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return l.Approvers, nil
}

// ApproverList lists tenant's approver assignments: the approvers whose
// approval counts, and apart, with why, those that approve nothing (users
// no longer in one of the tenant's domains).
func (c *Client) ApproverList(ctx context.Context, tenant string) (wire.ApproverList, error) {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return wire.ApproverList{}, err
	}
	var out wire.ApproverList
	if err := c.do(ctx, http.MethodGet, p+"/approvers", nil, nil, &out); err != nil {
		return wire.ApproverList{}, err
	}
	if out.Approvers == nil {
		out.Approvers = []string{}
	}
	return out, nil
}

// AddApprover assigns user the Customer Lockbox access approver role of
// tenant. Adding an existing approver succeeds.
func (c *Client) AddApprover(ctx context.Context, tenant, user string) error {
	return c.approver(ctx, http.MethodPut, tenant, user)
}

// CodeApproverNotFound is the APIError.Code of RemoveApprover's 404 for a
// user who is not an approver of the tenant: nothing was changed.
const CodeApproverNotFound = "approver_not_found"

// RemoveApprover takes the approver role of tenant from user. Removing a
// user who is no approver is refused, 404 CodeApproverNotFound (a server
// before that answered it as a removal).
func (c *Client) RemoveApprover(ctx context.Context, tenant, user string) error {
	return c.approver(ctx, http.MethodDelete, tenant, user)
}

func (c *Client) approver(ctx context.Context, method, tenant, user string) error {
	p, err := join("/v1/tenants", tenant)
	if err != nil {
		return err
	}
	if p, err = join(p+"/approvers", user); err != nil {
		return err
	}
	return c.do(ctx, method, p, nil, nil, nil)
}

// Audit returns the first page of tenant audit records, newest first.
// SearchAudit also returns the cursor of the next page.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]record.Record, error) {
	p, err := c.SearchAudit(ctx, q)
	return p.Records, err
}

// SearchAudit returns one page of the audit records matching q, newest
// first. Pass the page's NextCursor as q.Cursor (with the same filters) for
// the next one.
func (c *Client) SearchAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	var out AuditPage
	if err := c.do(ctx, http.MethodGet, "/v1/audit", q.values(true), nil, &out); err != nil {
		return AuditPage{}, err
	}
	if out.Records == nil {
		out.Records = []record.Record{}
	}
	return out, nil
}

// ExportAudit streams every audit record matching q to w, as "csv" (the
// columns of the Microsoft 365 audit log export) or "jsonl". q.Cursor and
// q.Limit are not used. The export as a whole is bounded by ctx only, not
// by the client's per-call timeout, and its size is not capped; but that
// timeout (DefaultTimeout, or the one of WithHTTPClient's client) bounds
// the wait for the response and each wait for more of it, so a server that
// stops sending fails the export (an error matching
// context.DeadlineExceeded) instead of hanging it. An export the server had
// to cut short returns an error (after w got what came).
func (c *Client) ExportAudit(ctx context.Context, q AuditQuery, format string, w io.Writer) error {
	switch format {
	case "csv", "jsonl":
	default:
		return fmt.Errorf("client: export format %q must be csv or jsonl", format)
	}
	// Without a deadline of its own, an export from a server that accepted
	// the connection and then sent nothing waited for ever.
	silence := c.hc.Timeout
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := stallError{silence}
	var timer stallTimer
	if silence > 0 {
		timer = c.afterFunc(silence, func() { cancel(stalled) })
		defer timer.Stop()
	}
	isStall := func() bool { return errors.Is(context.Cause(ctx), stalled) }

	v := q.values(false)
	v.Set("format", format)
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/audit/export", v, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "*/*")
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		err = withoutUserInError(err)
		if ue, ok := errors.AsType[*url.Error](err); ok && isStall() {
			// As a call that timed out says it: the *url.Error, with the
			// reason rather than "context canceled".
			ue.Err = stalled
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	// A page is never the export: something in front of the API (a
	// sign-in proxy, a captive portal) answered 200 with HTML, which was
	// written out as the export and reported a success. The API sends
	// text/csv or application/jsonl.
	if mt := htmlPage(resp.Header); mt != "" {
		return fmt.Errorf("client: audit export: the answer is an HTML page (%s), not an audit export: is %s the API's address?", mt, c.base.Redacted())
	}
	var body io.Reader = resp.Body
	if timer != nil {
		timer.Stop()
		body = &silenceReader{r: resp.Body, timer: timer, silence: silence}
	}
	if _, err := io.Copy(w, body); err != nil {
		if isStall() {
			err = stalled
		}
		return fmt.Errorf("client: audit export: %w", err)
	}
	return nil
}

// htmlPage returns the media type of an answer that is a web page
// (text/html, application/xhtml+xml), "" for any other.
func htmlPage(h http.Header) string {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "text/html" || mt == "application/xhtml+xml" {
		return mt
	}
	return ""
}

// silenceReader runs timer for silence during each Read only: it measures
// how long the server leaves the reader waiting, not how long a slow
// writer (a paused pager) leaves the server's bytes unread.
type silenceReader struct {
	r       io.Reader
	timer   stallTimer
	silence time.Duration
}

func (s *silenceReader) Read(p []byte) (int, error) {
	s.timer.Reset(s.silence)
	defer s.timer.Stop()
	return s.r.Read(p)
}

// stallError is how ExportAudit reports a server that stopped sending.
type stallError struct{ silence time.Duration }

func (e stallError) Error() string {
	return fmt.Sprintf("the server sent nothing for %s", e.silence)
}

// Timeout marks it a timeout, as net/http's own are (os.IsTimeout).
func (stallError) Timeout() bool { return true }

// Unwrap makes it match context.DeadlineExceeded, as a call that timed out.
func (stallError) Unwrap() error { return context.DeadlineExceeded }

// Activity returns every audit record tied to request id, oldest first:
// the decisions on it and each operator action done under it.
// RequestActivity also names the records that can't be read.
func (c *Client) Activity(ctx context.Context, id string) ([]record.Record, error) {
	out, err := c.RequestActivity(ctx, id)
	if err != nil {
		return nil, err
	}
	return out.Records, nil
}

// RequestActivity returns every audit record tied to request id, oldest
// first, and, under Unreadable, the records of the tenant's log within
// the request's span that the server can't read, oldest first: each may be
// one of the request's. It reads every page (RequestActivityPage) of the
// request's trail, the largest the server gives.
func (c *Client) RequestActivity(ctx context.Context, id string) (wire.RecordList, error) {
	out := wire.RecordList{Records: []record.Record{}}
	seen := map[string]bool{}
	for cursor := ""; ; {
		pg, err := c.RequestActivityPage(ctx, id, cursor, maxActivityPage)
		if err != nil {
			return wire.RecordList{}, err
		}
		out.Records = append(out.Records, pg.Records...)
		for _, u := range pg.Unreadable {
			// A late record may be named on two pages' stretches.
			if !seen[u.Tenant+" "+u.StreamID] {
				seen[u.Tenant+" "+u.StreamID] = true
				out.Unreadable = append(out.Unreadable, u)
			}
		}
		if pg.NextCursor == "" {
			break
		}
		cursor = pg.NextCursor
	}
	slices.Reverse(out.Records)
	slices.Reverse(out.Unreadable)
	return out, nil
}

// maxActivityPage is the largest page of a request's activity the API
// gives.
const maxActivityPage = 1000

// RequestActivityPage returns one page of the audit records tied to
// request id, newest first, at most limit (0: the server's default). Pass
// the page's NextCursor as cursor for the older records, its PrevCursor
// for the newer. A page may hold fewer than limit records, or none, while
// NextCursor is set.
func (c *Client) RequestActivityPage(ctx context.Context, id, cursor string, limit int) (wire.RecordPage, error) {
	p, err := join("/v1/requests", id)
	if err != nil {
		return wire.RecordPage{}, err
	}
	v := pageQuery(cursor, limit)
	var out wire.RecordPage
	if err := c.do(ctx, http.MethodGet, p+"/activity", v, nil, &out); err != nil {
		return wire.RecordPage{}, err
	}
	if out.Records == nil {
		out.Records = []record.Record{}
	}
	return out, nil
}

// VerifyAudit asks the server to re-compute tenant's audit hash chain. An
// empty tenant means a tenant user's own; provider callers must name one.
//
// The server answers once it has read the tenant's whole log, which for
// millions of records takes longer than any per-call timeout, and sends
// nothing meanwhile. So, unlike the other calls, a verification is
// bounded by ctx only, not by the client's timeout (DefaultTimeout, or
// the one of WithHTTPClient's client); ending ctx ends it on the server
// too.
func (c *Client) VerifyAudit(ctx context.Context, tenant string) (wire.AuditVerification, error) {
	return c.VerifyAuditSince(ctx, tenant, "")
}

// VerifyAuditSince is VerifyAudit that also has the chain checked against
// sealToken, a seal of it kept from an earlier verification (its
// SealToken); empty for none. A seal the server can't check is an error
// (400 invalid_since_seal), never a verification without it.
func (c *Client) VerifyAuditSince(ctx context.Context, tenant, sealToken string) (wire.AuditVerification, error) {
	q := url.Values{}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	if sealToken != "" {
		q.Set("since_seal", sealToken)
	}
	hc := *c.hc
	hc.Timeout = 0
	long := *c
	long.hc = &hc
	var out wire.AuditVerification
	err := long.do(ctx, http.MethodGet, "/v1/audit/verify", q, nil, &out)
	return out, err
}

// join appends one escaped path segment to the escaped path p.
// url.PathEscape leaves "." and ".." as they are, and an empty segment
// would make "//": each could make the call address another resource than
// the one named, so they are refused before anything is sent.
func join(p, segment string) (string, error) {
	if segment == "" || segment == "." || segment == ".." {
		return "", fmt.Errorf("client: invalid path segment %q", segment)
	}
	return p + "/" + url.PathEscape(segment), nil
}

// do sends one call. path is already escaped. in, when not nil, is sent as
// JSON; out, when not nil, receives the decoded JSON answer.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	_, err := c.doHeaders(ctx, method, path, q, nil, in, out)
	return err
}

// doHeaders is do that also sends the headers hdr and returns the
// answer's headers (never nil: empty when there was no answer).
func (c *Client) doHeaders(ctx context.Context, method, path string, q url.Values, hdr http.Header, in, out any) (http.Header, error) {
	respHeader := http.Header{}
	req, err := c.newRequest(ctx, method, path, q, in)
	if err != nil {
		return respHeader, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	}))
	resp, err := c.hc.Do(req)
	if err != nil {
		err = withoutUserInError(err)
		if !wrote.Load() {
			err = &NotSentError{Err: err}
		}
		return respHeader, err
	}
	respHeader = resp.Header
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return respHeader, decodeError(resp)
	}
	// The API answers JSON, or 204 with nothing. A page is something in
	// front of it (a sign-in proxy, a default backend answering every
	// path): a call that expects no body took its 200 for the change
	// made, and one that expects JSON failed on a '<' that named neither
	// the page nor the address to check.
	if mt := htmlPage(resp.Header); mt != "" {
		return respHeader, fmt.Errorf("client: %s %s: the answer is an HTML page (%s), not the API's: is %s the API's address?",
			method, path, mt, c.base.Redacted())
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return respHeader, nil
	}
	lr := &limitedReader{r: resp.Body, n: c.maxResponse}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		if lr.exceeded {
			return respHeader, fmt.Errorf("client: %s %s: response larger than %d bytes", method, path, c.maxResponse)
		}
		return respHeader, &DecodeError{Method: method, Path: path, Err: err}
	}
	return respHeader, nil
}

// newRequest builds one call. path is already escaped. in, when not nil,
// is sent as JSON.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, in any) (*http.Request, error) {
	raw := c.base.EscapedPath() + path
	unescaped, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("client: path %q: %w", raw, err)
	}
	u := url.URL{Scheme: c.base.Scheme, Host: c.base.Host, Path: unescaped, RawPath: raw, RawQuery: q.Encode()}

	var body io.Reader
	if in != nil {
		// json.Marshal turns each byte that is not UTF-8 into U+FFFD
		// without a word, so a reason or a comment would be filed as
		// other text than the caller's; the API refuses such a body, but
		// would never see it.
		if field, ok := notUTF8(reflect.ValueOf(in), ""); ok {
			return nil, fmt.Errorf("client: %s %s: %s is not UTF-8 text", method, path, field)
		}
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("client: encoding %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// notUTF8 returns the JSON path (such as "reason") of the first string in
// v that is not valid UTF-8, and whether there is one; at is v's own path.
func notUTF8(v reflect.Value, at string) (string, bool) {
	name := func(at, field string) string {
		if at == "" {
			return field
		}
		return at + "." + field
	}
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return cmp.Or(at, "the body"), true
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return notUTF8(v.Elem(), at)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if f, ok := notUTF8(v.Index(i), at+"["+strconv.Itoa(i)+"]"); ok {
				return f, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if f, ok := notUTF8(it.Key(), name(at, "(a key)")); ok {
				return f, true
			}
			if f, ok := notUTF8(it.Value(), name(at, fmt.Sprint(it.Key()))); ok {
				return f, true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			field, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if field == "-" {
				continue
			}
			if field == "" {
				field = f.Name
			}
			if p, ok := notUTF8(v.Field(i), name(at, field)); ok {
				return p, true
			}
		}
	}
	return "", false
}

// decodeError turns a non-2xx response into an *APIError.
func decodeError(resp *http.Response) *APIError {
	// The server sends the trace id as X-Request-Id only; the error body
	// is {"error":{"code","message"}} and carries none.
	e := &APIError{Status: resp.StatusCode, TraceID: resp.Header.Get("X-Request-Id"),
		FromProxy: resp.Header.Get(ProxyDecisionHeader) != ""}
	// Delta-seconds only: a date would need the client's clock to agree
	// with the server's, and the API sends seconds.
	if n, err := strconv.ParseUint(strings.TrimSpace(resp.Header.Get("Retry-After")), 10, 32); err == nil && n > 0 {
		e.RetryAfter = time.Duration(n) * time.Second
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil && (body.Error.Code != "" || body.Error.Message != "") {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	e.Message = strings.TrimSpace(fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	// By its Content-Type, or by its content when it names none or a
	// wrong one: a page's markup shown as the error said nothing a user
	// could act on, and filled the line before the page said anything.
	if htmlPage(resp.Header) != "" || strings.HasPrefix(http.DetectContentType(b), "text/html") {
		e.HTMLPage, e.PageText = true, pageText(b)
		e.Message += ": an HTML page"
		if e.PageText != "" {
			e.Message += fmt.Sprintf(" saying %q", e.PageText)
		}
		return e
	}
	if s, ok := problem(b, http.StatusText(resp.StatusCode)); ok {
		if s != "" {
			e.Message += ": " + s
		}
	} else if s := snippet(b); s != "" {
		e.Message += ": " + s
	}
	return e
}

// problem returns the title and detail of an RFC 9457 problem details
// document (application/problem+json, which gateways and proxies in
// front of the API answer with), or "" when b is none. Its start, which
// snippet would show, is a type URI that may fill the snippet before the
// detail comes. It is not Lockbox's error, so it sets no Code. A title
// that is only status, the status's own text (as RFC 9457 suggests and
// many gateways write it), is left out: the message already says it. ok
// is false when b is no such document.
func problem(b []byte, status string) (text string, ok bool) {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(b, &p) != nil || (p.Title == "" && p.Detail == "") {
		return "", false
	}
	var parts []string
	if strings.EqualFold(strings.TrimSpace(p.Title), status) {
		p.Title = ""
	}
	for _, s := range []string{p.Title, p.Detail} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return snippet([]byte(strings.Join(parts, ": "))), true
}

// snippet returns the start of an undecodable body on one line, without
// control or format characters, which a terminal could take for commands
// (an escape sequence in a page someone else wrote).
func snippet(b []byte) string {
	return excerpt(string(b), maxSnippet)
}

// excerpt is s on one line, its runs of spaces and of control and format
// characters each one space, cut to at most n runes.
func excerpt(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "..."
	}
	return s
}

// maxPageText is how much of what a page says an APIError shows.
const maxPageText = 80

// pageText returns the text of b's <title>, or, when it has none, the
// start of the text of b without its tags, scripts and styles: one line
// and short, or "". A page in front of the API names its answer there
// ("502 Bad Gateway", "blocked by policy"), where its markup is no
// message. Not an HTML parser: what it returns is only shown.
func pageText(b []byte) string {
	// ASCII only, so that its offsets are b's: Unicode lowering changes
	// some characters' lengths.
	lower := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	if inner, ok := element(b, lower, "title"); ok {
		if t := excerpt(html.UnescapeString(string(inner)), maxPageText); t != "" {
			return t
		}
	}
	var text []byte
	for i := 0; i < len(b); {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			text = append(text, b[i:]...)
			break
		}
		text = append(append(text, b[i:i+lt]...), ' ')
		i += lt
		// A script's or a style's content is no text (nor is an empty
		// title's end).
		for _, name := range []string{"script", "style", "title"} {
			if bytes.HasPrefix(lower[i+1:], []byte(name)) {
				if end := bytes.Index(lower[i:], []byte("</"+name)); end >= 0 {
					i += end + 1
				}
				break
			}
		}
		gt := bytes.IndexByte(b[i:], '>')
		if gt < 0 {
			break
		}
		i += gt + 1
	}
	return excerpt(html.UnescapeString(string(text)), maxPageText)
}

// element returns the content of the first <name ...>...</name> in b
// (lower is b in lower case), and whether there is one.
func element(b, lower []byte, name string) ([]byte, bool) {
	i := bytes.Index(lower, []byte("<"+name))
	if i < 0 {
		return nil, false
	}
	gt := bytes.IndexByte(lower[i:], '>')
	if gt < 0 {
		return nil, false
	}
	start := i + gt + 1
	end := bytes.Index(lower[start:], []byte("</"+name))
	if end < 0 {
		return nil, false
	}
	return b[start : start+end], true
}

// limitedReader is io.LimitReader that remembers it hit the limit, so a
// too-large body is reported as such rather than as truncated JSON.
type limitedReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe one byte: a body of exactly the limit is fine.
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.exceeded = true
			return 0, errors.New("response too large")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
