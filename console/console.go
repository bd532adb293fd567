// Package console serves the admin center: the web pages under /console/
// through which tenant approvers and global administrators decide lockbox
// requests, switch Customer Lockbox on or off, manage approvers and search
// their audit log, and through which the provider's engineers file requests
// and support managers work their queue.
//
// The pages are server-rendered (html/template, embedded assets, one small
// script for live lists) and call the same domain methods as the /v1 API with
// the signed-in principal: every rule — who may approve what, the two-person
// rule, tenant isolation — is the domain's, and every action is audited there.
// This package decides only what to show.
//
// Sign-in is OpenID Connect (authorization code with PKCE): tenant users
// through their tenant's issuer (the sign-in page asks for the
// organization, or /console/login?tenant=<id> names it), the provider's
// staff through the provider's; or, in "lockbox dev", a choice of the dev
// identities.
// Sessions live in Redis behind an HttpOnly, SameSite=Strict cookie with idle
// and absolute timeouts; an OpenID Connect session's identity is verified
// again every few minutes with its refresh token (see reverify.go), or by
// the identity provider's sign-in without a page when it has none (see
// silent.go), so roles taken away at the identity provider leave the
// console too.
// Signing out ends the session, and the user's
// session at the identity provider too where its issuer names an
// end_session_endpoint (OpenID Connect RP-Initiated Logout). Every
// state-changing request must come from the console's own origin
// (http.CrossOriginProtection) and carry the session's form token.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
	"github.com/lockbox-oss/lockbox/tenants"
)

// Prefix is where the console is mounted on the API address.
const Prefix = "/console/"

// Requests is the request lifecycle. *grants.Store implements it.
type Requests interface {
	Get(ctx context.Context, p identity.Principal, id string) (grants.Request, error)
	ListPage(ctx context.Context, p identity.Principal, f grants.Filter) (grants.Page, error)
	PendingList(ctx context.Context, p identity.Principal) (grants.PendingList, error)
	Create(ctx context.Context, actor grants.Actor, in grants.CreateInput) (grants.Request, error)
	Act(ctx context.Context, id string, act grants.Action, actor grants.Actor, comment string) (grants.Request, error)
	// Trail is the request page's request and its audit trail.
	Trail(ctx context.Context, p identity.Principal, id string, pg grants.TrailPage) (grants.Trail, error)
	// SelfApproval reports whether the two-person rule refuses p's
	// decision on request id for the tenant, which the tenant view p
	// reads can't tell.
	SelfApproval(ctx context.Context, p identity.Principal, id string) (bool, error)
}

// Tenants holds the tenant registry and tenants' settings and approvers.
// *tenants.Store implements it.
type Tenants interface {
	Onboard(ctx context.Context, p identity.Principal, clientIP string, in tenants.Onboarding) (tenants.Tenant, tenants.Settings, error)
	// OnboardedAs reports whether in.ID is onboarded as in asks, so that
	// an onboarding form sent twice is told from a real conflict.
	OnboardedAs(ctx context.Context, p identity.Principal, in tenants.Onboarding) (bool, error)
	UpdateTenantIf(ctx context.Context, p identity.Principal, clientIP, tenant string, u tenants.TenantUpdate, ifRevision int64) (tenants.Tenant, error)
	Tenant(ctx context.Context, p identity.Principal, tenant string) (tenants.Tenant, error)
	// ListPage names, besides a page of the tenants, those whose registry
	// entry does not decode.
	ListPage(ctx context.Context, p identity.Principal, q tenants.ListQuery) (tenants.Listing, error)
	Settings(ctx context.Context, p identity.Principal, tenant string) (tenants.Settings, error)
	PutSettingsIf(ctx context.Context, p identity.Principal, clientIP, tenant string, st tenants.Settings, ifRevision int64) (tenants.Settings, error)
	// CanAdminister returns the error Onboard and UpdateTenantIf return
	// for p before they look at the change, nil when p may make one.
	CanAdminister(p identity.Principal) error
	// CanConfigure returns the error PutSettingsIf returns for p before
	// it looks at the change, nil when p may make one.
	CanConfigure(ctx context.Context, p identity.Principal, tenant string) error
	// Offboard ends the provider's relationship with a tenant; CanOffboard
	// returns the error it returns for p before it looks at the reason.
	Offboard(ctx context.Context, p identity.Principal, clientIP, tenant, reason string) (tenants.Tenant, error)
	CanOffboard(p identity.Principal) error
	Approvers(ctx context.Context, p identity.Principal, tenant string) (tenants.ApproverList, error)
	// CanRead returns nil when p may read tenant's settings and approvers:
	// the provider's support managers, and the tenant's global
	// administrators and the approvers they assigned, each a user of the
	// tenant. For a tenant's users that is also who decides its requests.
	CanRead(ctx context.Context, p identity.Principal, tenant string) error
	AddApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error
	RemoveApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error
}

// Audit searches the audit log. *audit.Log implements it.
type Audit interface {
	Search(ctx context.Context, p identity.Principal, q audit.Query) (audit.Page, error)
	Export(ctx context.Context, p identity.Principal, q audit.Query, w func(record.Record) error) error
	// CheckRead returns the error Search or Export would return for q
	// before reading any record, without reading one.
	CheckRead(ctx context.Context, p identity.Principal, q audit.Query) error
	// CanRead returns the error Search and Export return for p and
	// tenant before they look at the rest of a query, nil when p may read
	// that tenant's log.
	CanRead(ctx context.Context, p identity.Principal, tenant string) error
	Verify(ctx context.Context, p identity.Principal, tenant string) (audit.Verification, error)
	// VerifySince is Verify that also checks the chain against since, a
	// seal of it the auditor kept outside Redis; an empty since is Verify.
	VerifySince(ctx context.Context, p identity.Principal, tenant, since string) (audit.Verification, error)
	// CheckVerifySince returns the error VerifySince would return before
	// reading the chain (a kept seal it refuses included), without
	// reading it.
	CheckVerifySince(ctx context.Context, p identity.Principal, tenant, since string) error
}

// Catalog lists the services and their activities for the new-request form.
// *policy.Catalog implements it.
type Catalog interface {
	Services() []string
	Activities(service string) ([]string, bool)
}

// DevIdentity is an identity the dev sign-in page offers. Only "lockbox
// dev" configures any; the server never takes roles from the browser, only
// the choice of one of these.
type DevIdentity struct {
	Principal   identity.Principal
	Description string // e.g. "support manager"
}

// Defaults of the session timeouts.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 8 * time.Hour
)

// DefaultReverify is how often an OpenID Connect session's identity is
// verified again when Config.Reverify is zero.
const DefaultReverify = 15 * time.Minute

// DefaultTimeout bounds one page's work when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures the console.
type Config struct {
	Requests Requests
	Tenants  Tenants
	Audit    Audit
	// Catalog returns the current activity catalog (it changes on policy
	// reload).
	Catalog func() Catalog
	// Redis keeps the sessions. Required.
	Redis redis.UniversalClient
	// OIDC are the issuers that sign users in with OpenID Connect: at most
	// one for the provider's staff, at most one for each tenant.
	OIDC []OIDCConfig
	// DevIdentities, when set, offers a one-click sign-in as each. For
	// "lockbox dev" only.
	DevIdentities []DevIdentity
	// PublicURL is the console's external base URL (scheme and host, e.g.
	// https://lockbox.example.com). Its scheme decides whether cookies are
	// Secure; a request over TLS always gets Secure cookies.
	PublicURL string
	// IdleTimeout ends a session nobody used for that long; MaxAge ends any
	// session that old.
	IdleTimeout, MaxAge time.Duration
	// Reverify is how often an OpenID Connect session's identity is
	// verified again with its refresh token, so roles removed at the
	// identity provider (or a disabled user) leave the console within
	// about that long; DefaultReverify when zero. A session without a
	// refresh token is verified by the identity provider's sign-in
	// without a page then (see silent.go).
	Reverify time.Duration
	// RefreshInterval is how often live lists poll; 5s when zero.
	RefreshInterval time.Duration
	// Timeout bounds one page's store calls.
	Timeout time.Duration
	// LongReads bounds the audit exports and verifications running at
	// once, per user and in all (a 429 page beyond). Share the API's, so
	// a user's reads count together on both. Nil means one of the
	// console's own with readlimit's default bounds.
	LongReads *readlimit.Limiter
	Now       func() time.Time
	Logger    *slog.Logger
}

// CheckAndSetDefaults rejects missing dependencies and fills the defaults.
func (c *Config) CheckAndSetDefaults() error {
	switch {
	case c.Requests == nil:
		return errors.New("console: Requests is required")
	case c.Tenants == nil:
		return errors.New("console: Tenants is required")
	case c.Audit == nil:
		return errors.New("console: Audit is required")
	case c.Catalog == nil:
		return errors.New("console: Catalog is required")
	case c.Redis == nil:
		return errors.New("console: Redis is required")
	case c.IdleTimeout < 0 || c.MaxAge < 0:
		return errors.New("console: session timeouts must not be negative")
	case c.Reverify < 0:
		return errors.New("console: the re-verification interval must not be negative")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("console: public URL %q must be an http or https URL with a host", c.PublicURL)
		}
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Reverify == 0 {
		c.Reverify = DefaultReverify
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.LongReads == nil {
		var err error
		if c.LongReads, err = readlimit.New(readlimit.DefaultPerCaller, readlimit.DefaultTotal); err != nil {
			return fmt.Errorf("console: %w", err)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the admin center's handler.
type Console struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	staff    *oidcClient            // signs in the provider's staff
	orgs     map[string]*oidcClient // sign in each tenant's users
	secure   bool
	// loginSealer seals the sign-ins in progress the browsers keep.
	loginSealer loginSealer
}

// New returns the console. Mount it at Prefix on the API address.
func New(cfg Config) (*Console, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger}
	// By the parsed scheme, which is case-insensitive ("HTTPS://" is as
	// much https as the configuration accepts it to be): a prefix test
	// on the text sent cookies without Secure or __Host- for such a URL.
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme == "https" {
		c.secure = true
	}
	c.sessions = &sessions{rdb: cfg.Redis, now: cfg.Now, idle: cfg.IdleTimeout, max: cfg.MaxAge}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if c.staff, c.orgs, err = newOIDCClients(cfg.OIDC, cfg.PublicURL, c.log); err != nil {
		return nil, err
	}
	for _, oc := range c.orgs {
		oc.assigned = c.assignedApprover
	}
	if c.staff != nil {
		// In the shared scope the tenant claim makes a tenant's users.
		c.staff.assigned = c.assignedApprover
	}
	c.routes()
	return c, nil
}

// route is one entry of the console's route table.
type route struct {
	// pattern is a ServeMux pattern, "METHOD /path".
	pattern string
	handler func(c *Console) http.Handler
}

// pageRoute is a route served to a signed-in user; touch says whether it counts
// as activity for the idle timeout.
func pageRoute(pattern string, h func(c *Console) pageFunc, touch bool) route {
	return route{pattern, func(c *Console) http.Handler { return c.withSession(h(c), touch) }}
}

// publicRoute is a route served without a session.
func publicRoute(pattern string, h func(c *Console) http.HandlerFunc) route {
	return route{pattern, func(c *Console) http.Handler { return h(c) }}
}

// routeTable is the whole admin center. Pages take a session; sign-in does
// not.
var routeTable = []route{
	{"GET /console/static/", func(*Console) http.Handler {
		static, _ := fs.Sub(staticFS, "static")
		return http.StripPrefix("/console/static/", staticHandler(static))
	}},
	publicRoute("GET /console/{$}", func(c *Console) http.HandlerFunc { return c.home }),
	publicRoute("GET /console/signin", func(c *Console) http.HandlerFunc { return c.signinPage }),
	publicRoute("GET /console/login", func(c *Console) http.HandlerFunc { return c.login }),
	publicRoute("POST /console/signin/dev", func(c *Console) http.HandlerFunc { return c.devSignin }),
	publicRoute("GET /console/signin/oidc", func(c *Console) http.HandlerFunc { return c.oidcStart }),
	publicRoute("GET /console/oidc/callback/{key...}", func(c *Console) http.HandlerFunc { return c.oidcCallback }),
	publicRoute("GET /console/oidc/callback", func(c *Console) http.HandlerFunc { return c.oldCallback }),
	publicRoute("POST /console/signout", func(c *Console) http.HandlerFunc { return c.signout }),

	pageRoute("GET /console/requests", func(c *Console) pageFunc { return c.requestsPage }, true),
	// The live list's poll is not activity.
	pageRoute("GET /console/requests/pending", func(c *Console) pageFunc { return c.pendingFragment }, false),
	pageRoute("GET /console/requests/new", func(c *Console) pageFunc { return c.newRequestPage }, true),
	pageRoute("POST /console/requests", func(c *Console) pageFunc { return c.createRequest }, true),
	pageRoute("GET /console/requests/{id}", func(c *Console) pageFunc { return c.requestPage }, true),
	pageRoute("GET /console/requests/{id}/{action}", func(c *Console) pageFunc { return c.confirmPage }, true),
	pageRoute("POST /console/requests/{id}/{action}", func(c *Console) pageFunc { return c.act }, true),
	pageRoute("GET /console/settings", func(c *Console) pageFunc { return c.settingsPage }, true),
	pageRoute("POST /console/settings", func(c *Console) pageFunc { return c.saveSettings }, true),
	pageRoute("GET /console/approvers", func(c *Console) pageFunc { return c.approversPage }, true),
	pageRoute("POST /console/approvers", func(c *Console) pageFunc { return c.addApprover }, true),
	pageRoute("POST /console/approvers/remove", func(c *Console) pageFunc { return c.removeApprover }, true),
	pageRoute("GET /console/tenants", func(c *Console) pageFunc { return c.tenantsPage }, true),
	pageRoute("POST /console/tenants", func(c *Console) pageFunc { return c.onboardTenant }, true),
	pageRoute("GET /console/tenants/{tenant}", func(c *Console) pageFunc { return c.tenantPage }, true),
	pageRoute("POST /console/tenants/{tenant}", func(c *Console) pageFunc { return c.updateTenant }, true),
	pageRoute("GET /console/tenants/{tenant}/offboard", func(c *Console) pageFunc { return c.offboardPage }, true),
	pageRoute("POST /console/tenants/{tenant}/offboard", func(c *Console) pageFunc { return c.offboardTenant }, true),
	pageRoute("GET /console/audit", func(c *Console) pageFunc { return c.auditPage }, true),
	pageRoute("GET /console/audit/export.csv", func(c *Console) pageFunc { return c.exportAudit }, true),
}

// Routes lists the admin center's ServeMux patterns ("METHOD /path"), for
// tests that walk every page (such as the check that no tenant view names a
// provider identity), so a new page is walked without anyone adding it to
// a list.
func Routes() []string {
	out := make([]string, len(routeTable))
	for i, rt := range routeTable {
		out[i] = rt.pattern
	}
	return out
}

// routes builds the console's mux from the route table.
func (c *Console) routes() {
	m := http.NewServeMux()
	for _, rt := range routeTable {
		m.Handle(rt.pattern, rt.handler(c))
	}
	c.mux = m
}

// ServeHTTP sets the headers every console response carries, refuses
// cross-origin state changes, then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.setHeaders(w, r)
	if !c.answersAt(r.Host) {
		c.log.WarnContext(r.Context(), "console: request for another host refused: the dev sign-in answers only at a loopback name or address", "host", echo(r.Host),
			"method", echo(r.Method), "path", echo(r.URL.Path))
		c.renderError(w, r, nil, http.StatusMisdirectedRequest, "This admin center signs in dev identities without a password, so it answers only at localhost, a loopback address or the host of LOCKBOX_CONSOLE_URL.")
		return
	}
	if err := crossOrigin.Check(r); err != nil {
		c.log.WarnContext(r.Context(), "console: cross-origin request refused", "method", echo(r.Method), "path", echo(r.URL.Path),
			"origin", echo(r.Header.Get("Origin")), "sec_fetch_site", echo(r.Header.Get("Sec-Fetch-Site")))
		c.renderError(w, r, nil, http.StatusForbidden, "This request came from another site and was refused. Use the admin center's own pages.")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// answersAt reports whether the console serves a request naming host (its
// Host header). With dev identities, which sign in with no credential,
// only at a loopback name or address, or the host of PublicURL: the
// listener is on loopback, but a web page the developer opens reaches it
// by DNS rebinding (its own name made to resolve to 127.0.0.1, so the
// browser takes the dev server for the page's own origin and the
// cross-origin checks pass), and could sign in as the provider's
// administrator. Such a page's requests name its own host.
func (c *Console) answersAt(host string) bool {
	if len(c.cfg.DevIdentities) == 0 {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // RFC 6761: resolved to loopback, never to a page's server
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	u, err := url.Parse(c.cfg.PublicURL)
	return err == nil && c.cfg.PublicURL != "" && strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), host)
}

// Front returns next, the mux c is mounted on, with the headers every
// console response carries on what next answers for the console's paths
// before c sees them: the redirect of /console to /console/, the redirects
// that clean a path (/console/./requests, //console), and the root's
// redirect to the console. A browser follows those like any page, and one
// without frame-ancestors or no-store could be framed or kept by a cache
// where the pages themselves can't.
func (c *Console) Front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if consolePath(r) {
			c.setHeaders(w, r)
		}
		next.ServeHTTP(w, r)
	})
}

// consolePath reports whether r is for the console: a path that cleans to
// /console or under Prefix, or a GET or HEAD of the root, which the API
// address redirects to the console.
func consolePath(r *http.Request) bool {
	p := path.Clean("/" + r.URL.Path)
	if p == "/" {
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	return p == strings.TrimSuffix(Prefix, "/") || strings.HasPrefix(p, Prefix)
}

// setHeaders sets the headers every console response carries.
func (c *Console) setHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Pages show people, requests and audit records: no cache keeps them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", contentSecurityPolicy(""))
	h.Set("X-Frame-Options", "DENY")
	// A page another site opens (window.open, a link with an opener) gets
	// no handle on the console's window, and no other origin may embed
	// the console's responses (pages, exports, assets) as its own
	// resources: Spectre-class reads need one or the other.
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if c.secureRequest(r) {
		// Once a browser has reached the console over HTTPS it never
		// tries plain HTTP again, where a network attacker could strip
		// TLS before the sign-in. Not includeSubDomains: the console's
		// host does not speak for its siblings.
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// contentSecurityPolicy is the pages' Content-Security-Policy: no inline
// script or style anywhere, no third-party origin, no framing (an Approve
// button in someone else's frame is clickjacking). Forms post to the
// console only; formAction are more origins they may end up at (see
// Console.renderTemplate), "" none.
func contentSecurityPolicy(formAction ...string) string {
	fa := "'self'"
	for _, src := range formAction {
		if src != "" {
			fa += " " + src
		}
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action " + fa + "; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
}

// formActionSource is the CSP source expression of u's origin
// ("https://idp.example.com:8443"), and false when its host has anything
// besides letters, digits, dots, hyphens (and an IPv6 literal's colons and
// brackets) that could end the source list or the directive.
func formActionSource(u string) (string, bool) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return "", false
	}
	for _, r := range pu.Host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".-:[]", r):
		default:
			return "", false
		}
	}
	return pu.Scheme + "://" + pu.Host, true
}

// crossOrigin refuses non-safe methods unless the browser says the request
// came from the console's own origin (Sec-Fetch-Site, else Origin vs Host).
var crossOrigin = http.NewCrossOriginProtection()

// staticHandler serves the embedded assets with a short cache: they change
// only with the binary.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

// home sends a signed-in user to their requests, anyone else to sign in.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if _, err := c.session(r, false); err == nil {
		http.Redirect(w, r, "/console/requests", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
