// Package api serves Lockbox's control plane: the /v1 JSON API through which
// engineers file lockbox requests, support managers and tenant approvers
// decide them, tenant administrators manage their settings and approvers,
// and auditors search the audit log. openapi.yaml beside this file describes
// every route, and a test keeps the two in step.
//
// Handlers are thin: authenticate, decode, call one domain method, encode.
// Every rule (who may approve what, the two-person rule, tenant isolation,
// the 12 h and 4 h limits) lives in the domain packages; this package only
// turns HTTP into their inputs and their errors into the JSON error shape of
// internal/httperr.
//
// Identity comes only from the bearer token in the Authorization header,
// verified by Config.Auth; the client IP handed to the domain is the socket
// peer, or the client behind a proxy LOCKBOX_TRUSTED_PROXIES trusts
// (internal/peer). No other request header is trusted for either.
//
// It must not import the proxy, the console or cmd/: dependencies point from
// cmd/ to here and from here to the domain packages, never back.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
	"github.com/lockbox-oss/lockbox/tenants"
)

// Authenticator turns a raw bearer token into a verified principal. Every
// failure must match identity.ErrUnauthenticated; any other error is taken
// as the verifier being broken and fails the call closed.
// *identity.Verifier implements it.
type Authenticator interface {
	Verify(ctx context.Context, raw string) (identity.Principal, error)
}

// RequestReader reads lockbox requests as the principal may see them.
type RequestReader interface {
	Get(ctx context.Context, p identity.Principal, id string) (grants.Request, error)
	// ListPage returns a page of the requests p may see, with the cursor
	// of the next page when there is one.
	ListPage(ctx context.Context, p identity.Principal, f grants.Filter) (grants.Page, error)
}

// RequestWriter files lockbox requests and acts on them.
type RequestWriter interface {
	Create(ctx context.Context, actor grants.Actor, in grants.CreateInput) (grants.Request, error)
	// CreateOnce is Create for a filing sent with an Idempotency-Key:
	// sent again with the same request it returns the request the key
	// filed, and replayed true; with another, an error of code
	// grants.CodeKeyReused.
	CreateOnce(ctx context.Context, actor grants.Actor, in grants.CreateInput, key string) (r grants.Request, replayed bool, err error)
	Act(ctx context.Context, id string, act grants.Action, actor grants.Actor, comment string) (grants.Request, error)
	// CanAct returns the error Act returns for p before it looks at the
	// request's state or the comment, nil when p may take act on it.
	CanAct(ctx context.Context, p identity.Principal, id string, act grants.Action) error
}

// RequestActivity reads a request's audit trail: the records tied to it,
// and those of its span that do not decode.
type RequestActivity interface {
	Trail(ctx context.Context, p identity.Principal, id string, pg grants.TrailPage) (grants.Trail, error)
}

// Requests is the request lifecycle the API serves. *grants.Store
// implements it.
type Requests interface {
	RequestReader
	RequestWriter
	RequestActivity
}

// Tenants holds the tenant registry, tenants' lockbox settings and
// approvers, and decides who may read or change them. *tenants.Store
// implements it.
type Tenants interface {
	Onboard(ctx context.Context, p identity.Principal, clientIP string, in tenants.Onboarding) (tenants.Tenant, tenants.Settings, error)
	// OnboardIfAbsent is Onboard refused as a failed precondition
	// (tenant_exists, 412) when the id has a registry entry: the
	// onboarding sent with If-None-Match: *.
	OnboardIfAbsent(ctx context.Context, p identity.Principal, clientIP string, in tenants.Onboarding) (tenants.Tenant, tenants.Settings, error)
	// UpdateTenantWhen, PutSettingsWhen and OffboardWhen judge cond
	// (If-Match and If-None-Match) in the change's own transaction.
	UpdateTenantWhen(ctx context.Context, p identity.Principal, clientIP, tenant string, u tenants.TenantUpdate, cond tenants.Condition) (tenants.Tenant, error)
	Tenant(ctx context.Context, p identity.Principal, tenant string) (tenants.Tenant, error)
	// ListPage names, besides a page of the tenants, those whose registry
	// entry does not decode.
	ListPage(ctx context.Context, p identity.Principal, q tenants.ListQuery) (tenants.Listing, error)
	Settings(ctx context.Context, p identity.Principal, tenant string) (tenants.Settings, error)
	PutSettingsWhen(ctx context.Context, p identity.Principal, clientIP, tenant string, st tenants.Settings, cond tenants.Condition) (tenants.Settings, error)
	// CanAdminister returns the error Onboard and UpdateTenantWhen return
	// for p before they look at the change, nil when p may make one.
	CanAdminister(p identity.Principal) error
	// CanConfigure returns the error PutSettingsWhen returns for p before
	// it looks at the change, nil when p may make one.
	CanConfigure(ctx context.Context, p identity.Principal, tenant string) error
	// OffboardWhen ends the provider's relationship with a tenant if its
	// registry entry meets cond; CanOffboard returns the error it returns
	// for p before it looks at the reason.
	OffboardWhen(ctx context.Context, p identity.Principal, clientIP, tenant, reason string, cond tenants.Condition) (tenants.Tenant, error)
	CanOffboard(p identity.Principal) error
	Approvers(ctx context.Context, p identity.Principal, tenant string) (tenants.ApproverList, error)
	// CanAssign returns the error AddApprover and RemoveApprover return
	// for p before they look at the user, nil when p may make the change.
	CanAssign(ctx context.Context, p identity.Principal, tenant string) error
	AddApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error
	RemoveApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error
}

// AuditSearcher searches and exports a tenant's audit log as the principal
// may see it. *audit.Log implements it.
type AuditSearcher interface {
	Search(ctx context.Context, p identity.Principal, q audit.Query) (audit.Page, error)
	Export(ctx context.Context, p identity.Principal, q audit.Query, w func(record.Record) error) error
	// CheckRead returns the error Search or Export would return for q
	// before reading any record, without reading one.
	CheckRead(ctx context.Context, p identity.Principal, q audit.Query) error
	// CanRead returns the error Search and Export return for p and
	// tenant before they look at the rest of a query, nil when p may read
	// that tenant's log.
	CanRead(ctx context.Context, p identity.Principal, tenant string) error
	// VerifySince re-computes tenant's chain, and checks it against
	// since, a seal of it the caller kept (empty for none).
	VerifySince(ctx context.Context, p identity.Principal, tenant, since string) (audit.Verification, error)
	// CheckVerifySince returns the error VerifySince would return before
	// reading the chain, without reading it.
	CheckVerifySince(ctx context.Context, p identity.Principal, tenant, since string) error
}

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is
// zero. The largest legitimate body, a request with a 2000-character reason
// (at most 8 KB of UTF-8, 24 KB as JSON escapes) and its activities, fits.
const DefaultMaxBodyBytes = 64 << 10

// DefaultTimeout bounds one API call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures the API handler.
type Config struct {
	// Auth verifies bearer tokens. Required.
	Auth Authenticator
	// Requests is the request lifecycle. Required.
	Requests Requests
	// Tenants holds settings and approvers. Required.
	Tenants Tenants
	// Audit searches the audit log. Required.
	Audit AuditSearcher
	// Logger receives server-side failures with their trace id. Nil
	// discards them.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body; larger bodies get 413. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Timeout bounds the work of one call, store round trips included, so
	// a Redis that hangs produces a 503 instead of a hung client. (The
	// Redis client must honour context deadlines: ContextTimeoutEnabled.)
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// GrantKeys is the JWKS of the keys that verify the proxy's
	// X-Lockbox-Grant assertions, served at GET /v1/keys for upstreams to
	// fetch; an empty set when nil.
	GrantKeys []byte
	// CurrentGrantKeys, when set, is asked for that JWKS at each call
	// instead: the keys as last read, which a reload (SIGHUP) may change.
	CurrentGrantKeys func() []byte
	// LongReads bounds the audit exports and verifications running at
	// once, per caller and in all (429 too_many_reads beyond). Share one
	// with the admin center, so a user's reads count together on both.
	// Nil means one of the API's own with readlimit's default bounds.
	LongReads *readlimit.Limiter
}

// CheckAndSetDefaults rejects missing dependencies and fills the defaults.
func (c *Config) CheckAndSetDefaults() error {
	switch {
	case c.Auth == nil:
		return errors.New("api: Auth is required")
	case c.Requests == nil:
		return errors.New("api: Requests is required")
	case c.Tenants == nil:
		return errors.New("api: Tenants is required")
	case c.Audit == nil:
		return errors.New("api: Audit is required")
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("api: MaxBodyBytes must not be negative, got %d", c.MaxBodyBytes)
	case c.Timeout < 0:
		return fmt.Errorf("api: Timeout must not be negative, got %s", c.Timeout)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.GrantKeys == nil {
		c.GrantKeys = []byte(`{"keys":[]}`)
	}
	if c.LongReads == nil {
		var err error
		if c.LongReads, err = readlimit.New(readlimit.DefaultPerCaller, readlimit.DefaultTotal); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	return nil
}

// server holds the checked configuration the handlers use.
type server struct {
	cfg Config
	log *slog.Logger
}

// handlerFunc is the shape of every handler: it writes the success response
// itself and returns any failure for the adapter to render. The principal is
// an argument, not a context value, so no handler can run without one or
// pick it up from anywhere else. Public routes get the zero Principal.
type handlerFunc func(s *server, w http.ResponseWriter, r *http.Request, p identity.Principal) error

// route is one entry of the API's route table.
type route struct {
	method string
	// path is a net/http ServeMux path pattern; {name} segments are
	// read with r.PathValue and are the same names openapi.yaml uses.
	path string
	// public routes are served without a bearer token.
	public bool
	// params are the query parameters the route takes. The adapter
	// refuses any other, and repeated ones, before the handler runs, so
	// a handler reads r.URL.Query() knowing each key is one of these.
	params []string
	handle handlerFunc
}

// pattern is the ServeMux pattern of the route.
func (rt route) pattern() string { return rt.method + " " + rt.path }

// routes is the whole API. openapi_test.go checks that openapi.yaml
// documents exactly these.
var routes = []route{
	{method: http.MethodPost, path: "/v1/requests", handle: (*server).createRequest},
	{method: http.MethodGet, path: "/v1/requests", params: []string{"tenant", "state", "created_after", "cursor", "limit"}, handle: (*server).listRequests},
	{method: http.MethodGet, path: "/v1/requests/{id}", handle: (*server).getRequest},
	{method: http.MethodPost, path: "/v1/requests/{id}/approve", handle: act(grants.ActionApprove)},
	{method: http.MethodPost, path: "/v1/requests/{id}/deny", handle: act(grants.ActionDeny)},
	{method: http.MethodPost, path: "/v1/requests/{id}/cancel", handle: act(grants.ActionCancel)},
	{method: http.MethodPost, path: "/v1/requests/{id}/revoke", handle: act(grants.ActionRevoke)},
	{method: http.MethodGet, path: "/v1/requests/{id}/activity", params: []string{"cursor", "limit"}, handle: (*server).requestActivity},
	{method: http.MethodPost, path: "/v1/tenants", handle: (*server).onboardTenant},
	{method: http.MethodGet, path: "/v1/tenants", params: []string{"cursor", "limit"}, handle: (*server).listTenants},
	{method: http.MethodGet, path: "/v1/tenants/{tenant}", handle: (*server).getTenant},
	{method: http.MethodPatch, path: "/v1/tenants/{tenant}", handle: (*server).updateTenant},
	{method: http.MethodPost, path: "/v1/tenants/{tenant}/offboard", handle: (*server).offboardTenant},
	{method: http.MethodGet, path: "/v1/tenants/{tenant}/settings", handle: (*server).getSettings},
	{method: http.MethodPut, path: "/v1/tenants/{tenant}/settings", handle: (*server).putSettings},
	{method: http.MethodGet, path: "/v1/tenants/{tenant}/approvers", handle: (*server).listApprovers},
	{method: http.MethodPut, path: "/v1/tenants/{tenant}/approvers/{user}", handle: (*server).addApprover},
	{method: http.MethodDelete, path: "/v1/tenants/{tenant}/approvers/{user}", handle: (*server).removeApprover},
	{method: http.MethodGet, path: "/v1/audit", params: append(auditFilters, "cursor", "limit"), handle: (*server).searchAudit},
	{method: http.MethodGet, path: "/v1/audit/export", params: append(auditFilters, "format"), handle: (*server).exportAudit},
	{method: http.MethodGet, path: "/v1/audit/verify", params: []string{"tenant", "since_seal"}, handle: (*server).verifyAudit},
	{method: http.MethodGet, path: "/v1/openapi.yaml", public: true, handle: (*server).openAPI},
	{method: http.MethodGet, path: "/v1/keys", public: true, handle: (*server).grantKeys},
}

// Route names one route of the API.
type Route struct {
	Method string
	// Path is the ServeMux path pattern; {name} wildcards are those of
	// openapi.yaml.
	Path string
	// Public routes are served without a bearer token.
	Public bool
}

// Routes lists every route the API serves, for tests and tools that walk
// them all (such as the check that no tenant view names a provider
// identity), so a new route is walked without anyone adding it to a list.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		out[i] = Route{Method: rt.method, Path: rt.path, Public: rt.public}
	}
	return out
}

// New returns the API handler. Mount it at the root of the API address.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, log: cfg.Logger}
	mux := http.NewServeMux()
	known := make(map[string]bool, len(routes))
	for _, rt := range routes {
		mux.Handle(rt.pattern(), s.adapt(rt))
		known[rt.pattern()] = true
	}
	return &router{mux: mux, known: known, methods: allowMethods(routes)}, nil
}
