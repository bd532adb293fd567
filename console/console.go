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
// Sign-in is OpenID Connect (authorization code with PKCE) against the
// configured issuer, or, in "lockbox dev", a choice of the dev identities.
// Sessions live in Redis behind an HttpOnly, SameSite=Strict cookie with idle
// and absolute timeouts. Every state-changing request must come from the
// console's own origin (http.CrossOriginProtection) and carry the session's
// form token.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/tenants"
)

// Prefix is where the console is mounted on the API address.
const Prefix = "/console/"

// Requests is the request lifecycle. *grants.Store implements it.
type Requests interface {
	Get(ctx context.Context, p identity.Principal, id string) (grants.Request, error)
	List(ctx context.Context, p identity.Principal, f grants.Filter) ([]grants.Request, error)
	Pending(ctx context.Context, p identity.Principal, limit int) ([]grants.Request, error)
	Create(ctx context.Context, actor grants.Actor, in grants.CreateInput) (grants.Request, error)
	Act(ctx context.Context, id string, act grants.Action, actor grants.Actor, comment string) (grants.Request, error)
	Activity(ctx context.Context, p identity.Principal, id string) (grants.Request, []audit.Record, error)
}

// Tenants holds the tenant registry and tenants' settings and approvers.
// *tenants.Store implements it.
type Tenants interface {
	Onboard(ctx context.Context, p identity.Principal, clientIP string, in tenants.Onboarding) (tenants.Tenant, tenants.Settings, error)
	UpdateTenant(ctx context.Context, p identity.Principal, clientIP, tenant string, u tenants.TenantUpdate) (tenants.Tenant, error)
	Tenant(ctx context.Context, p identity.Principal, tenant string) (tenants.Tenant, error)
	List(ctx context.Context, p identity.Principal) ([]tenants.Tenant, error)
	Settings(ctx context.Context, p identity.Principal, tenant string) (tenants.Settings, error)
	PutSettings(ctx context.Context, p identity.Principal, clientIP, tenant string, st tenants.Settings) (tenants.Settings, error)
	Approvers(ctx context.Context, p identity.Principal, tenant string) ([]string, error)
	AddApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error
	RemoveApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error
}

// Audit searches the audit log. *audit.Log implements it.
type Audit interface {
	Search(ctx context.Context, p identity.Principal, q audit.Query) (audit.Page, error)
	Export(ctx context.Context, p identity.Principal, q audit.Query, w func(audit.Record) error) error
	Verify(ctx context.Context, p identity.Principal, tenant string) (audit.Verification, error)
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
	// OIDC, when set, offers OpenID Connect sign-in.
	OIDC *OIDCConfig
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
	// RefreshInterval is how often live lists poll; 5s when zero.
	RefreshInterval time.Duration
	// Timeout bounds one page's store calls.
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
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
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
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
	oidc     *oidcClient
	secure   bool
}

// New returns the console. Mount it at Prefix on the API address.
func New(cfg Config) (*Console, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger, secure: strings.HasPrefix(cfg.PublicURL, "https://")}
	c.sessions = &sessions{rdb: cfg.Redis, now: cfg.Now, idle: cfg.IdleTimeout, max: cfg.MaxAge}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if cfg.OIDC != nil {
		if c.oidc, err = newOIDCClient(*cfg.OIDC, cfg.PublicURL); err != nil {
			return nil, err
		}
	}
	c.routes()
	return c, nil
}

// routes builds the console's mux. Pages take a session; sign-in does not.
func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticHandler(static)))
	m.HandleFunc("GET /console/{$}", c.home)
	m.HandleFunc("GET /console/signin", c.signinPage)
	m.HandleFunc("POST /console/signin/dev", c.devSignin)
	m.HandleFunc("GET /console/signin/oidc", c.oidcStart)
	m.HandleFunc("GET /console/oidc/callback", c.oidcCallback)
	m.HandleFunc("POST /console/signout", c.signout)

	page := func(pattern string, h pageFunc) { m.Handle(pattern, c.withSession(h, true)) }
	page("GET /console/requests", c.requestsPage)
	m.Handle("GET /console/requests/pending", c.withSession(c.pendingFragment, false))
	page("GET /console/requests/new", c.newRequestPage)
	page("POST /console/requests", c.createRequest)
	page("GET /console/requests/{id}", c.requestPage)
	page("GET /console/requests/{id}/{action}", c.confirmPage)
	page("POST /console/requests/{id}/{action}", c.act)
	page("GET /console/settings", c.settingsPage)
	page("POST /console/settings", c.saveSettings)
	page("GET /console/approvers", c.approversPage)
	page("POST /console/approvers", c.addApprover)
	page("POST /console/approvers/remove", c.removeApprover)
	page("GET /console/tenants", c.tenantsPage)
	page("POST /console/tenants", c.onboardTenant)
	page("GET /console/tenants/{tenant}", c.tenantPage)
	page("POST /console/tenants/{tenant}", c.updateTenant)
	page("GET /console/audit", c.auditPage)
	page("GET /console/audit/export.csv", c.exportAudit)
	c.mux = m
}

// ServeHTTP sets the headers every console response carries, refuses
// cross-origin state changes, then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Pages show people, requests and audit records: no cache keeps them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	// No inline script or style anywhere, no third-party origin, no
	// framing (an Approve button in someone else's frame is clickjacking).
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	if err := crossOrigin.Check(r); err != nil {
		c.log.WarnContext(r.Context(), "console: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		c.renderError(w, r, nil, http.StatusForbidden, "This request came from another site and was refused. Use the admin center's own pages.")
		return
	}
	c.mux.ServeHTTP(w, r)
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
