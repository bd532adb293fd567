package console

import (
	"cmp"
	"context"
	"crypto/cipher"
	"crypto/rand"
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

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/logurl"
	"github.com/lockbox-oss/lockbox/internal/origin"
)

// OIDCConfig configures OpenID Connect sign-in through one issuer. Claims
// map to the same roles as the API's bearer tokens, and the issuer's scope
// decides whose users it signs in, as it does for the API: a tenant's issuer
// signs in users of that tenant only, with tenant roles only; the
// provider's signs in staff with provider roles only.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes requested besides "openid".
	Scopes []string
	// Scope says whose users the issuer signs in: identity.ProviderScope,
	// identity.TenantScope, or identity.SharedScope (one issuer for
	// everyone, the tenant from TenantClaim). Required.
	Scope identity.Scope
	// Claim names; defaults "sub", "roles", "tid" (read in the shared scope
	// only), "name" and "email".
	SubjectClaim, RolesClaim, TenantClaim, NameClaim, EmailClaim string
	// KeysRefresh is how old the issuer's keys, fetched from its
	// jwks_uri, may be when an ID token is checked: older ones are
	// fetched again first, so a key the JWKS no longer lists stops
	// verifying. KeysMaxAge is how long they keep verifying while they
	// can't be fetched again. Zero: DefaultKeysRefresh,
	// DefaultKeysMaxAge.
	KeysRefresh, KeysMaxAge time.Duration
	// HTTPClient talks to the issuer; a client with a 10 s timeout when
	// nil. Either way redirects are followed only within the origin of
	// the URL each request starts at (see sameOriginRedirects), and no
	// answer is read past maxIdPBody.
	HTTPClient *http.Client
}

// callbackPath is where every redirect URI's path starts. Each issuer has
// its own, PublicURL + callbackPath + "/" + its key (see callbackKey),
// registered at that issuer only: with one redirect URI for all of them, a
// code the provider's identity provider issued could come back to a sign-in
// that went to a tenant's, and be redeemed at that tenant's token endpoint
// (the mix-up attack, RFC 9700 section 4.4). The bare path answers sign-ins
// started before the change with a refusal.
const callbackPath = "/console/oidc/callback"

// callbackKey is the part of an issuer's redirect URI that names it: the
// slot it fills in the configuration, which stays the same while the
// issuer's URL or client changes. "provider" is the issuer that signs in the
// provider's staff (provider or shared scope), "tenant/<id>" a tenant's.
// Tenant ids are URL-safe; the "tenant/" keeps a tenant named "provider"
// apart.
func callbackKey(s identity.Scope) string {
	if t := s.Tenant(); t != "" {
		return "tenant/" + t
	}
	return "provider"
}

// loginTTL bounds a sign-in in progress: the time a user may spend at the
// identity provider's login page.
const loginTTL = 10 * time.Minute

// loginCookie binds a sign-in in progress to the browser that started it,
// so a callback URL planted on someone else (login CSRF) finds no match.
// Under HTTPS it is hostLoginCookie (see loginCookieName). A silent
// re-verification of a session (see silent.go) is kept in a cookie of its
// own, reverifyCookie: in the login cookie it overwrote a sign-in its user
// had started in another tab, which then failed.
const (
	loginCookie        = "lockbox_login"
	hostLoginCookie    = "__Host-lockbox_login"
	reverifyCookie     = "lockbox_reverify"
	hostReverifyCookie = "__Host-lockbox_reverify"
)

// loginCookieName is the name and path of r's login cookie, or with silent
// its re-verification cookie, which is named and scoped alike. Under HTTPS the
// __Host- prefix, as the session cookie has: browsers take such a cookie
// only from this host, Secure and for the whole path. Without it, another
// host of the site (evil.example.com next to lockbox.example.com) could set
// a lockbox_login cookie for the whole domain holding the state of a
// sign-in it started itself, then send the browser to that sign-in's
// callback URL, which would sign the browser in as the attacker (login
// CSRF by cookie tossing). The prefix needs Path=/; plain HTTP (lockbox dev,
// localhost) keeps the callback path.
func (c *Console) loginCookieName(r *http.Request, silent bool) (name, path string) {
	switch secure := c.secureRequest(r); {
	case secure && silent:
		return hostReverifyCookie, "/"
	case secure:
		return hostLoginCookie, "/"
	case silent:
		return reverifyCookie, callbackPath
	}
	return loginCookie, callbackPath
}

// setLoginCookie hands the browser its sign-in in progress (with silent, its
// silent re-verification), sealed (see sealLogin), or with sealed "" forgets
// it. Lax, not Strict: the identity provider's redirect back is a
// cross-site navigation, on which a Strict cookie is not sent.
func (c *Console) setLoginCookie(w http.ResponseWriter, r *http.Request, silent bool, sealed string) {
	name, path := c.loginCookieName(r, silent)
	maxAge := int(loginTTL.Seconds())
	if sealed == "" {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: sealed, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secureRequest(r), SameSite: http.SameSiteLaxMode})
}

// oidcClient is the console's OpenID Connect relying party at one issuer.
// The provider's discovery document is fetched on first use and kept, so an
// identity provider that is down when Lockbox starts stops sign-in through
// it, not the proxy nor the other issuers' sign-in.
type oidcClient struct {
	cfg OIDCConfig
	// key is the issuer's callbackKey; redirectURL ends with it.
	key         string
	redirectURL string
	log         *slog.Logger

	// mu guards the fields below; it is never held across network I/O
	// (see discover).
	mu       sync.Mutex
	provider *oidc.Provider
	// fetching is the discovery in flight, nil when none is.
	fetching *discovery
	// endSession is the discovery document's end_session_endpoint, "" when
	// it names none or one sign-out does not send browsers to (see
	// discover).
	endSession string
	// keys are the issuer's keys, from its jwks_uri (see idkeys.go), and
	// algs the signing algorithms its ID tokens may use.
	keys *issuerKeys
	algs []string

	// assigned reports whether a user of a tenant is an approver the
	// tenant's global administrators assigned (Console.assignedApprover);
	// nil: none is.
	assigned func(ctx context.Context, p identity.Principal) (bool, error)
}

func newOIDCClient(cfg OIDCConfig, publicURL string, log *slog.Logger) (*oidcClient, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("console: OIDC issuer is required")
	case cfg.ClientID == "":
		return nil, errors.New("console: OIDC client id is required")
	case publicURL == "":
		return nil, errors.New("console: the public URL is required for OIDC sign-in (it makes the redirect URI)")
	}
	if err := cfg.Scope.Check(); err != nil {
		return nil, fmt.Errorf("console: OIDC issuer %s: %w", logurl.Show(cfg.Issuer), err)
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = "sub"
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "tid"
	}
	if cfg.NameClaim == "" {
		cfg.NameClaim = "name"
	}
	if cfg.EmailClaim == "" {
		cfg.EmailClaim = "email"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	switch {
	case cfg.KeysRefresh < 0 || cfg.KeysMaxAge < 0:
		return nil, fmt.Errorf("console: OIDC issuer %s: key refresh and maximum key age must not be negative", logurl.Show(cfg.Issuer))
	case cfg.KeysRefresh == 0:
		cfg.KeysRefresh = DefaultKeysRefresh
	}
	cfg.KeysMaxAge = cmp.Or(cfg.KeysMaxAge, DefaultKeysMaxAge)
	cfg.HTTPClient = sameOriginRedirects(cfg.HTTPClient)
	key := callbackKey(cfg.Scope)
	return &oidcClient{cfg: cfg, key: key, redirectURL: strings.TrimSuffix(publicURL, "/") + callbackPath + "/" + key, log: log}, nil
}

// maxRedirects bounds the redirects one request to an issuer follows.
const maxRedirects = 3

// sameOriginRedirects is c, copied, with every answer's body bounded
// (bodyLimitTransport) and redirects followed only within the
// origin (scheme, host and port) of the URL a request starts at, as
// identity/jwksfetch fetches keys; c's own rule, if it has one, applies
// too. Each URL the console starts at is one it checked: the issuer's, and
// the token endpoint and jwks_uri its discovery document names (https, or
// http on localhost). A redirect elsewhere is refused: from https to
// http it would carry the request in the clear, and to another host it
// would let whoever controls a path on the identity provider's (an open
// redirect, a page hosted there) answer for it: the discovery document
// that names the endpoints, or the keys that decide who signs in. At the
// token endpoint Go's client resends the form of a 307 or 308 (the code,
// the PKCE verifier, a refresh token, with client_secret_post the client
// secret), and keeps client_secret_basic's Authorization header for the
// same host name on another port. The jwks_uri itself may be on another
// host than the issuer (some providers keep their keys on one); it is
// the redirects from it that stay where it is.
func sameOriginRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.Transport = bodyLimitTransport{next: redirectTransport{next: c.Transport}}
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		if from, to := origin.Of(via[0].URL), origin.Of(req.URL); to != from {
			// Named by its origin only: never the user info a Location
			// may carry.
			return fmt.Errorf("redirect from %s to another origin (%s) refused", from, to)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &cc
}

// redirectTransport refuses an answer that redirects to a Location with
// a user name or password, or one that does not parse, before the client
// reads it: the client would quote it as sent in its error, and the error
// goes to logs. No URL an issuer's requests start at may carry user info
// either (identity.CheckFetchURL).
type redirectTransport struct{ next http.RoundTripper }

func (t redirectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	res, err := next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	switch res.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return res, nil
	}
	loc := res.Header.Get("Location")
	if loc == "" {
		return res, nil
	}
	u, perr := r.URL.Parse(loc)
	if perr == nil && u.User == nil {
		return res, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	res.Body.Close()
	if perr != nil {
		return nil, errors.New("redirect to a Location that is not a URL refused (not shown: it may hold a password)")
	}
	return nil, fmt.Errorf("redirect to a URL with a user name or password refused (%s)", origin.Of(u))
}

// newOIDCClients sorts the configured issuers: at most one signs in the
// provider's staff (provider or shared scope), at most one each tenant's
// users.
func newOIDCClients(cfgs []OIDCConfig, publicURL string, log *slog.Logger) (staff *oidcClient, orgs map[string]*oidcClient, err error) {
	orgs = map[string]*oidcClient{}
	for _, oc := range cfgs {
		cl, err := newOIDCClient(oc, publicURL, log)
		if err != nil {
			return nil, nil, err
		}
		switch t := oc.Scope.Tenant(); {
		case t != "":
			if orgs[t] != nil {
				return nil, nil, fmt.Errorf("console: two OIDC issuers sign in tenant %s", t)
			}
			orgs[t] = cl
		case staff != nil:
			return nil, nil, fmt.Errorf("console: two OIDC issuers sign in the provider's staff (%s and %s)", logurl.Show(staff.cfg.Issuer), logurl.Show(oc.Issuer))
		default:
			staff = cl
		}
	}
	if staff != nil && staff.cfg.Scope.IsShared() && len(orgs) > 0 {
		// The shared issuer signs in anyone's users: next to tenants' own
		// issuers it would be a way around them.
		return nil, nil, errors.New("console: an issuer in the shared scope can't sign in next to tenants' issuers")
	}
	return staff, orgs, nil
}

// discoveryErr is err of the discovery at o's issuer, which may quote the
// issuer's URL (go-oidc's does), with that URL shown as logs may show it
// (logurl.Show): the error goes to logs, and the URL may carry a
// credential in its query or user info.
func (o *oidcClient) discoveryErr(err error) error {
	return fmt.Errorf("console: OIDC discovery at %s: %w", logurl.Show(o.cfg.Issuer), shownURLError{err, o.cfg.Issuer})
}

// shownURLError is err with url, wherever its text names it, shown as logs
// may show it; errors.Is and errors.As still see err.
type shownURLError struct {
	err error
	url string
}

func (e shownURLError) Error() string { return logurl.Replace(e.err.Error(), e.url) }
func (e shownURLError) Unwrap() error { return e.err }

// discovery is one fetch of an issuer's discovery document, which every
// caller that comes while it runs waits for.
type discovery struct {
	done chan struct{}
	p    *oidc.Provider
	err  error
}

// discoveryTimeout bounds one fetch of a discovery document and of what
// discover fetches with it, whoever waits for it.
const discoveryTimeout = 10 * time.Second

// discover returns the provider, fetching its discovery document once.
// The fetch runs apart from its callers, one at a time per issuer
// (callers that come while it runs wait for it), and each caller waits
// only as long as its own ctx lets it. It used to run under o.mu: an
// identity provider that hung held the lock for the whole fetch, and
// every sign-in, callback and page of the issuer's sessions queued behind
// it, each past its own deadline, for one fetch's time after another.
func (o *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	if o.provider != nil {
		p := o.provider
		o.mu.Unlock()
		return p, nil
	}
	d := o.fetching
	if d == nil {
		d = &discovery{done: make(chan struct{})}
		o.fetching = d
		// Under the first caller's values (its logger's), not its
		// cancellation: the callers that wait for the fetch are not
		// only the first's.
		go o.fetchDiscovery(context.WithoutCancel(ctx), d)
	}
	o.mu.Unlock()
	select {
	case <-d.done:
		return d.p, d.err
	case <-ctx.Done():
		return nil, o.discoveryErr(ctx.Err())
	}
}

// fetchDiscovery runs d: it fetches the discovery document, within
// discoveryTimeout, keeps the provider when it is one Lockbox uses, and
// wakes d's callers. A failed fetch is not kept: the next caller tries
// again.
func (o *oidcClient) fetchDiscovery(ctx context.Context, d *discovery) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	d.p, d.err = o.fetchProvider(ctx)
	o.mu.Lock()
	if d.err == nil {
		o.provider = d.p
	}
	o.fetching = nil
	o.mu.Unlock()
	close(d.done)
}

// fetchProvider fetches and checks the discovery document. It sets the
// fields the document fills, besides provider, under o.mu.
func (o *oidcClient) fetchProvider(ctx context.Context) (*oidc.Provider, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.cfg.HTTPClient), o.cfg.Issuer)
	if err != nil {
		return nil, o.discoveryErr(err)
	}
	// The configuration's issuer URL is checked at start-up; the endpoints
	// the document names are the identity provider's to say. The code and
	// client secret go to the token endpoint, and the keys that verify ID
	// tokens come from jwks_uri: neither may travel in the clear, as the
	// API's JWKS URLs may not.
	var d struct {
		JWKSURI    string   `json:"jwks_uri"`
		EndSession string   `json:"end_session_endpoint"`
		Algs       []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&d); err != nil {
		return nil, o.discoveryErr(err)
	}
	for _, e := range []struct{ what, u string }{{"token_endpoint", p.Endpoint().TokenURL}, {"jwks_uri", d.JWKSURI}} {
		if err := identity.CheckFetchURL(e.what, e.u); err != nil {
			return nil, o.discoveryErr(err)
		}
	}
	// Sign-out sends the browser to end_session_endpoint with the ID token
	// of the sign-in in the URL, so it is held to the same rule. One that
	// breaks it is ignored, not refused: it is optional, and sign-in through
	// the issuer worked without it; sign-out then ends the Lockbox session
	// only, as it does with an issuer that names none.
	var endSession string
	if d.EndSession != "" {
		if err := checkEndSession(d.EndSession); err != nil {
			o.log.WarnContext(ctx, "console: OIDC issuer's end_session_endpoint ignored; signing out of Lockbox will not sign users out of it",
				"issuer", logurl.Show(o.cfg.Issuer), "error", echoErr(err))
		} else {
			endSession = d.EndSession
		}
	}
	keys, algs := newIssuerKeys(o.cfg.HTTPClient, d.JWKSURI, o.cfg.KeysRefresh, o.cfg.KeysMaxAge), signingAlgs(d.Algs)
	o.mu.Lock()
	o.endSession, o.keys, o.algs = endSession, keys, algs
	o.mu.Unlock()
	return p, nil
}

// maxEndSession bounds the end_session_endpoint Lockbox keeps. A tenant's
// identity provider writes its own discovery document, and each session it
// signs in keeps a copy of the endpoint in the Redis every tenant and the
// provider share, which every page reads: unbounded, one hostile
// identity provider could fill it with a few sign-ins of its own users.
// Real ones are well under this, and a sign-out URL much longer would not
// pass the request line of common servers anyway (see maxIDTokenHint).
const maxEndSession = 2 << 10

// checkEndSession checks an end_session_endpoint: a URL of bounded length
// (maxEndSession) the ID token may travel to (https, http only on
// localhost), whose origin can also go into the pages'
// Content-Security-Policy (see formActionSource).
func checkEndSession(u string) error {
	if len(u) > maxEndSession {
		return fmt.Errorf("end_session_endpoint is %d bytes long, more than the %d Lockbox keeps", len(u), maxEndSession)
	}
	if err := identity.CheckFetchURL("end_session_endpoint", u); err != nil {
		return err
	}
	if _, ok := formActionSource(u); !ok {
		return fmt.Errorf("end_session_endpoint %q has a host Lockbox can't name in a Content-Security-Policy", u)
	}
	return nil
}

// authorizationEndpoint is the discovery document's authorization_endpoint,
// "" before the document was read.
func (o *oidcClient) authorizationEndpoint() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		return ""
	}
	return o.provider.Endpoint().AuthURL
}

// endSessionURL is the issuer's end_session_endpoint, as discover accepted
// it; "" when there is none.
func (o *oidcClient) endSessionURL() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.endSession
}

// requiresIss reports whether p's discovery document promises the "iss"
// parameter in every authorization response (RFC 9207): from such a
// provider, a response without it did not come from it. A value that is
// present but not a JSON boolean (the string "true", a number, null) counts
// as a promise: a malformed document fails closed, and so does one whose
// claims can't be read at all.
func requiresIss(p *oidc.Provider) bool {
	var d struct {
		Supported json.RawMessage `json:"authorization_response_iss_parameter_supported"`
	}
	if err := p.Claims(&d); err != nil {
		return true
	}
	switch string(d.Supported) {
	case "", "false":
		return false
	}
	return true
}

func (o *oidcClient) oauth2(p *oidc.Provider) *oauth2.Config {
	ep := p.Endpoint()
	ep.AuthStyle = authStyle(p)
	scopes := append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...)
	if offersOfflineAccess(p) && !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		// A refresh token is how a session's identity is verified again
		// (see reverify.go). Asked for only where the issuer lists the
		// scope: an unknown scope can fail the whole sign-in.
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	return &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret,
		Endpoint: ep, RedirectURL: o.redirectURL,
		Scopes: scopes,
	}
}

// offersOfflineAccess reports whether p's discovery document lists the
// offline_access scope in scopes_supported.
func offersOfflineAccess(p *oidc.Provider) bool {
	var d struct {
		Scopes []string `json:"scopes_supported"`
	}
	return p.Claims(&d) == nil && slices.Contains(d.Scopes, oidc.ScopeOfflineAccess)
}

// authStyle is how the client authenticates at the token endpoint, as the
// provider's discovery document says. Guessing (oauth2's default) sends a
// code twice when the first attempt fails, and a code works once: the
// provider's real answer (a PKCE mismatch, say) is lost behind "invalid
// code".
func authStyle(p *oidc.Provider) oauth2.AuthStyle {
	var d struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&d); err != nil {
		return oauth2.AuthStyleAutoDetect
	}
	switch {
	case len(d.Methods) == 0 || slices.Contains(d.Methods, "client_secret_basic"):
		// Basic is OpenID Connect's default method.
		return oauth2.AuthStyleInHeader
	case slices.Contains(d.Methods, "client_secret_post"):
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleAutoDetect
}

// client returns the issuer that signs in tenant's users ("": the
// provider's staff), or nil.
func (c *Console) client(tenant string) *oidcClient {
	if tenant == "" {
		return c.staff
	}
	return c.orgs[tenant]
}

// signinPage offers the ways to sign in this server has. ?tenant= names the
// organization whose identity provider the user signs in with.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	ret := returnParam(r.URL.Query().Get("return"))
	if _, err := c.session(r, false); err == nil {
		http.Redirect(w, r, cmp.Or(ret, defaultReturn), http.StatusSeeOther)
		return
	}
	v := signinView{Dev: c.cfg.DevIdentities, Problem: signinProblems[r.URL.Query().Get("problem")], Orgs: len(c.orgs) > 0,
		SignedOut: r.URL.Query().Get("signed_out") == "1", Return: ret}
	if c.staff != nil {
		v.Staff, v.StaffOnly = true, len(c.orgs) == 0
	}
	// The organization form comes back here: the sign-in page is a form's
	// target, and its Content-Security-Policy (form-action 'self') would
	// stop a form from landing at an identity provider. The next step is a
	// link.
	switch t := orgName(r); {
	case t == "":
	case c.orgs[t] != nil:
		v.Tenant = t
	case v.Problem == "":
		v.Problem = signinProblems["unknown_org"]
		if v.Orgs {
			v.Typed = t
		}
	}
	c.render(w, r, http.StatusOK, "signin", nil, v)
}

// orgName is the organization the request names, as users type it.
func orgName(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.URL.Query().Get("tenant")))
}

// login is the sign-in link an organization hands its users:
// /console/login?tenant=contoso goes on to contoso's identity provider
// (followed from another site, by way of the sign-in page's "Continue to
// contoso's sign-in": see oidcStart), /console/login to the sign-in page. A link no identity provider
// here can serve lands on the sign-in page with the reason: sent on to
// /console/signin/oidc, it met a bare 404 where no OIDC is configured at
// all (lockbox dev, a server without console issuers).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	t := orgName(r)
	switch {
	case t == "" || !identity.ValidTenantID(t):
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	case c.orgs[t] != nil:
		http.Redirect(w, r, "/console/signin/oidc?tenant="+url.QueryEscape(t), http.StatusSeeOther)
	case c.staff == nil && len(c.orgs) == 0:
		http.Redirect(w, r, "/console/signin?problem=no_oidc", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/console/signin?problem=unknown_org", http.StatusSeeOther)
	}
}

// signinProblems are the messages the sign-in page shows after a failed
// attempt, by a fixed code: the page never echoes text from the URL.
var signinProblems = map[string]string{
	"expired":     "Your sign-in took too long or was started in another browser. Please sign in again.",
	"denied":      "The identity provider did not sign you in.",
	"failed":      "Signing in failed. Please try again; if it keeps failing, ask your administrator to check Lockbox's log.",
	"no_roles":    "Your account has no Lockbox role. Ask your administrator for one of: operator, support-manager, global-admin, lockbox-approver, audit-reader; or ask a global administrator of your organization to assign you as a Customer Lockbox access approver.",
	"invalid":     "Your account's identity can't be used by Lockbox (its user or tenant id has characters Lockbox does not accept).",
	"unknown_org": "No organization of that name signs in here. Check its name, or ask your administrator for your organization's sign-in link.",
	"no_oidc":     "Organization sign-in links don't work on this server: it has no identity provider set up for the admin center.",
	"not_sent": "Your session had ended (you signed out, or it was left unused too long), so what you submitted was not sent. " +
		"Sign in again to go back to the page and submit it again.",
	"redirect_uri": "Your identity provider sent you back to an address the admin center no longer signs in at. Please sign in again; " +
		"if it keeps happening, ask your administrator to register the admin center's redirect URI for your identity provider.",
}

type signinView struct {
	// SignedOut: the identity provider sent the browser back after
	// signing its user out (see signedOutPath).
	SignedOut bool
	// Staff: an issuer signs in the provider's staff (StaffOnly: and no
	// tenant has its own).
	Staff, StaffOnly bool
	// Orgs: tenants sign in through their own issuers; Tenant is the one
	// the URL named, when it has one.
	Orgs    bool
	Tenant  string
	Dev     []DevIdentity
	Problem string
	// Typed is the organization the user typed that no issuer here signs
	// in: the form shows it again, marked as what Problem is about.
	Typed string
	// Return is the console page the sign-in goes on to (see
	// signinAgain), "" for the requests page.
	Return string
}

// devSignin signs in as one of the configured dev identities.
func (c *Console) devSignin(w http.ResponseWriter, r *http.Request) {
	if c.formTooLarge(w, r, nil) {
		return
	}
	subject := r.PostFormValue("subject")
	i := slices.IndexFunc(c.cfg.DevIdentities, func(d DevIdentity) bool { return d.Principal.Subject == subject })
	if i < 0 {
		c.renderError(w, r, nil, http.StatusForbidden, "There is no such dev identity. Dev sign-in exists only in \"lockbox dev\".")
		return
	}
	c.startSession(w, r, c.cfg.DevIdentities[i].Principal, subject, "dev", devIssuer, nil, "", nil, false, returnParam(r.PostFormValue("return")))
}

// startSession signs the browser in as p; logout, when not nil, is how
// signing out ends the user's session at the identity provider too, and
// refreshToken, when not "", how the session's identity is verified again,
// and auth, when not nil, what the sign-in's ID token said of the
// authentication, which refreshed ID tokens must repeat.
// afterRedirect is true when the request arrived by a redirect from another
// site (the identity provider): the browser would not send a
// SameSite=Strict cookie on a redirect that continues that chain, so the
// page moves on with a same-site navigation of its own instead. to is the
// page it moves on to, a returnParam; "" for the requests page.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, p identity.Principal, name, via, issuer string, logout *idpLogout, refreshToken string, auth *authentication, afterRedirect bool, to string) {
	if ck, err := r.Cookie(c.cookieName(r)); err == nil {
		_ = c.sessions.delete(r.Context(), ck.Value)
	}
	sess, err := c.sessions.create(r.Context(), p, name, via, issuer, logout, refreshToken, auth)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.setSessionCookie(w, r, sess.token)
	c.log.InfoContext(r.Context(), "console sign-in", "user", p.Subject, "tenant", p.TenantID, "via", via)
	to = cmp.Or(to, defaultReturn)
	if afterRedirect {
		c.render(w, r, http.StatusOK, "continue", nil, pageLink{To: to})
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// oidcStart sends the browser to the identity provider: the one of the
// organization ?tenant= names, or the provider's. A sign-in another site
// started goes to the sign-in page instead.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.staff == nil && len(c.orgs) == 0 {
		http.NotFound(w, r)
		return
	}
	tenant := orgName(r)
	oc := c.client(tenant)
	if oc == nil {
		// An organization without its own issuer, or a name that is none.
		http.Redirect(w, r, "/console/signin?problem=unknown_org", http.StatusSeeOther)
		return
	}
	if startedElsewhere(r) {
		// Another site sent the browser here (a link, a script, the
		// /console/login link followed from an e-mail). An identity
		// provider in the wrong hands (a tenant's) signs in whoever it
		// likes without asking anyone, so going on would bring the
		// browser back signed in as the attacker's choice, its own session
		// ended (login CSRF). The sign-in page names the organization and
		// the user chooses to continue, a navigation of the console's own.
		q := url.Values{}
		if tenant != "" {
			q.Set("tenant", tenant)
		}
		if ret := returnParam(r.URL.Query().Get("return")); ret != "" {
			q.Set("return", ret)
		}
		to := "/console/signin"
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout)
	defer cancel()
	p, err := oc.discover(ctx)
	if err != nil {
		c.log.ErrorContext(ctx, "console: sign-in unavailable", "issuer", logurl.Show(oc.cfg.Issuer), "error", echoErr(err))
		c.renderError(w, r, nil, http.StatusServiceUnavailable, "The identity provider can't be reached; sign-in is unavailable. Try again in a minute.")
		return
	}
	login := pendingLogin{Tenant: tenant, Return: returnParam(r.URL.Query().Get("return"))}
	if ck, err := r.Cookie(c.cookieName(r)); err == nil && ck.Value != "" && len(ck.Value) <= maxSessionToken {
		login.Replaces = tokenHash(ck.Value)
	}
	to, err := c.beginLogin(ctx, w, r, oc, p, login)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// beginLogin starts login at oc, whose discovered provider is p: it gives
// login a fresh state, nonce and PKCE verifier and its expiry, hands it to
// the browser sealed, and returns the URL of its authorization request,
// with opts. The sign-in in progress goes to the browser: nothing is
// written per sign-in (see logincookie.go). The key is read from Redis
// at each start (see sealingKey).
func (c *Console) beginLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, oc *oidcClient, p *oidc.Provider, login pendingLogin,
	opts ...oauth2.AuthCodeOption) (string, error) {
	aead, err := c.sealingKey(ctx, c.cfg.Now())
	if err != nil {
		return "", fault.Unavailable("console: start sign-in", err)
	}
	login.State, login.Nonce, login.Verifier = rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	login.Expires = c.cfg.Now().Add(loginTTL).Unix()
	c.setLoginCookie(w, r, login.Reverify != "", sealLogin(aead, login))
	return oc.oauth2(p).AuthCodeURL(login.State, append([]oauth2.AuthCodeOption{oidc.Nonce(login.Nonce), oauth2.S256ChallengeOption(login.Verifier)}, opts...)...), nil
}

// startedElsewhere reports whether the browser says another site started
// the navigation r is (Sec-Fetch-Site cross-site or same-site, which a
// redirect chain keeps from its start). A bookmark or a typed address
// (none) and the console's own links (same-origin) did not; neither did a
// request without the header, as http.CrossOriginProtection lets it
// through: every browser since 2023 sends it, and a client that doesn't is
// no browser another site can steer.
func startedElsewhere(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// oidcCallback finishes a sign-in: it opens the browser's sealed sign-in
// and checks its state and expiry, redeems the code with the PKCE
// verifier, verifies the ID token (signature, issuer, audience, expiry,
// nonce) and maps its claims (redeem). A silent re-verification of a
// session comes back here too, and is finished by silentAnswer.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.staff == nil && len(c.orgs) == 0 {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout)
	defer cancel()
	// matched: the browser's sign-in in progress this answer is to, and
	// silent whether it came in the re-verification cookie; forget
	// clears that cookie.
	var matched, silent bool
	forget := func() {
		if matched {
			c.setLoginCookie(w, r, silent, "")
		}
	}
	// ret is the page the failed sign-in was to come back to (see
	// retryReturn), which the sign-in page hands on to the next attempt.
	var ret string
	problem := func(code string, err error) {
		if err != nil {
			c.log.WarnContext(ctx, "console: OIDC sign-in failed", "problem", code, "error", echoErr(err))
		}
		forget()
		q := url.Values{"problem": {code}}
		if ret != "" {
			q.Set("return", ret)
		}
		http.Redirect(w, r, "/console/signin?"+q.Encode(), http.StatusSeeOther)
	}
	q := r.URL.Query()
	state := q.Get("state")
	now := c.cfg.Now()
	// The browser's sealed sign-in must open, be the one of this state and
	// not have expired. It can't be used up on the server, which keeps
	// nothing of it: a replayed callback finds its code redeemed (codes
	// are single-use, and bound to the PKCE verifier), and every answer
	// below clears the cookie. A cookie that does not open or expired is
	// cleared too; one of another live sign-in (errOtherSignin) is not.
	var login pendingLogin
	var aeads []cipher.AEAD
	err := errors.New("state does not match the browser's sign-in")
	for _, s := range []bool{false, true} {
		name, _ := c.loginCookieName(r, s)
		ck, cerr := r.Cookie(name)
		if cerr != nil || state == "" {
			continue
		}
		if aeads == nil {
			var kerr error
			if aeads, kerr = c.openingKeys(ctx, now, false); kerr != nil {
				c.fail(w, r, nil, fault.Unavailable("console: read sign-in", kerr))
				return
			}
		}
		l, oerr := openLogin(aeads, ck.Value, state, now)
		if errors.Is(oerr, errLoginCookie) {
			// Perhaps sealed by another replica with a key that replaced
			// one Redis lost, which this one still keeps: read them again.
			if again, kerr := c.openingKeys(ctx, now, true); kerr == nil {
				aeads = again
				l, oerr = openLogin(aeads, ck.Value, state, now)
			}
		}
		switch {
		case oerr == nil:
			login, matched, silent = l, true, s
			ret = retryReturn(l)
		case errors.Is(oerr, errOtherSignin):
			// Not this answer's sign-in: one the browser started since,
			// which its user may be finishing in another tab. Clearing
			// its cookie would make that one fail instead.
			err = oerr
		default:
			c.setLoginCookie(w, r, s, "")
			err = oerr
			if !errors.Is(oerr, errLoginCookie) && ret == "" {
				// Expired, and sealed by this console: its page is the
				// user's, and the sign-in they try next goes back to it.
				ret = retryReturn(l)
			}
		}
		if matched {
			break
		}
	}
	if !matched {
		if e := q.Get("error"); e != "" {
			problem("denied", fmt.Errorf("identity provider error %q", echo(e)))
			return
		}
		problem("expired", err)
		return
	}
	// The sign-in says which identity provider the browser went to; the
	// code is redeemed there and its ID token checked with its keys.
	oc := c.client(login.Tenant)
	if oc == nil {
		problem("failed", fmt.Errorf("no issuer signs in %q any more", login.Tenant))
		return
	}
	if key := r.PathValue("key"); key != oc.key {
		// The answer came back to another issuer's redirect URI, which
		// only that issuer sends browsers to: its code is not the one
		// this sign-in's issuer would redeem (a mix-up attack, RFC 9700
		// section 4.4). The browser's sign-in is cleared, so it can't
		// be tried again.
		problem("failed", fmt.Errorf("the answer came back to the redirect URI of %q, the sign-in went to %s", echo(key), logurl.Show(oc.cfg.Issuer)))
		return
	}
	if e := q.Get("error"); e != "" && login.Reverify == "" {
		problem("denied", fmt.Errorf("identity provider error %q", echo(e)))
		return
	}
	p, err := oc.discover(ctx)
	if err != nil {
		problem("failed", err)
		return
	}
	switch iss := q.Get("iss"); {
	case iss != "" && iss != oc.cfg.Issuer:
		// RFC 9207: the answer comes from another identity provider than
		// the one this sign-in went to (a mix-up attack).
		problem("failed", fmt.Errorf("the answer names issuer %q, the sign-in went to %s", echo(iss), logurl.Show(oc.cfg.Issuer)))
		return
	case iss == "" && requiresIss(p):
		// The issuer always names itself, so an answer that doesn't is
		// not its own.
		problem("failed", fmt.Errorf("the answer names no issuer, and %s always does", logurl.Show(oc.cfg.Issuer)))
		return
	}
	if login.Reverify != "" {
		// The answer to a silent re-verification of a session, which is
		// the session's, not a sign-in.
		c.silentAnswer(w, r.WithContext(ctx), oc, p, login, forget, problem)
		return
	}
	id, rt, err := oc.redeem(ctx, p, q.Get("code"), login, c.cfg.Now)
	if cp, ok := errors.AsType[*claimsProblem](err); ok {
		problem(cp.code, err)
		return
	}
	if err != nil {
		problem("failed", err)
		return
	}
	// The session the browser had when it started the sign-in ends, as
	// startSession ends the one whose cookie it brings: this request,
	// the identity provider's cross-site redirect, brings none.
	if login.Replaces != "" {
		if err := c.sessions.deleteID(ctx, login.Replaces); err != nil {
			c.fail(w, r, nil, err)
			return
		}
	}
	// The sign-in is done: the browser forgets it, so it needn't send it
	// with every request (the cookie's path is / under HTTPS) until it
	// expires.
	forget()
	c.startSession(w, r, id.principal, id.name, "oidc", oc.cfg.Issuer, oc.logout(ctx, id.rawIDToken), oc.keptRefreshToken(ctx, rt), &id.auth, true, returnParam(login.Return))
}

// retryReturn is the page a sign-in tried again after l failed goes on
// to: l's, a returnParam ("" for the requests page). Without it the user,
// sent to sign in from a page (signinAgain), landed on the requests list
// once the first attempt failed (expired, refused). A silent
// re-verification's page is not: it failed without its user signing in
// anywhere (an answer brought to another browser, or naming another
// issuer), and its session, when it still has one, goes on as before.
func retryReturn(l pendingLogin) string {
	if l.Reverify != "" {
		return ""
	}
	return returnParam(l.Return)
}

// verifyIDToken returns the ID token of a token endpoint's answer, checked
// (signature, issuer, audience, expiry against now), and as sent. Sign-in
// and every re-verification of a session check it here, so both hold it
// to the same rules. When the issuer's keys could not be fetched to check
// it, the error is an *idpDown. p is the discovered provider, which
// discover filled the key set for.
func (o *oidcClient) verifyIDToken(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, now func() time.Time) (*oidc.IDToken, string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", errors.New("token response has no id_token")
	}
	o.mu.Lock()
	keys := &watchedKeys{keys: o.keys, now: now()}
	algs := o.algs
	o.mu.Unlock()
	idt, err := oidc.NewVerifier(o.cfg.Issuer, keys, &oidc.Config{ClientID: o.cfg.ClientID, Now: now, SupportedSigningAlgs: algs}).Verify(ctx, raw)
	if err != nil {
		if keys.unavailable != nil {
			return nil, "", &idpDown{fmt.Errorf("id token: the issuer's keys can't be fetched: %w", keys.unavailable)}
		}
		return nil, "", fmt.Errorf("id token: %w", err)
	}
	if err := o.checkAuthorizedParty(idt); err != nil {
		return nil, "", fmt.Errorf("id token: %w", err)
	}
	return idt, raw, nil
}

// checkAuthorizedParty holds idt to the client it was issued to, as
// OpenID Connect Core 1.0 section 3.1.3.7 has clients do and go-oidc
// does not: with several audiences it must name that party (azp), and a
// party it names must be this client. Otherwise another client of the
// issuer may have asked for it, ours being only one audience among more.
func (o *oidcClient) checkAuthorizedParty(idt *oidc.IDToken) error {
	var c struct {
		AZP *string `json:"azp"`
	}
	if err := idt.Claims(&c); err != nil {
		return err
	}
	switch {
	case c.AZP != nil && *c.AZP != o.cfg.ClientID:
		return fmt.Errorf("its authorized party (azp) is %q, not this client", *c.AZP)
	case c.AZP == nil && len(idt.Audience) > 1:
		return fmt.Errorf("it has %d audiences and names no authorized party (azp)", len(idt.Audience))
	}
	return nil
}

// identified is who a verified ID token says its user is here, and what
// it says of the authentication it stems from.
type identified struct {
	principal identity.Principal
	name      string
	auth      authentication
}

// identify maps a verified ID token's claims with the issuer's scope (see
// principal), for a sign-in and for a re-verification alike. When they
// can't make a principal it returns the sign-in problem code and why.
//
// A user with no Lockbox role is refused unless they are a user of a
// tenant whom its global administrators assigned as an approver: that
// assignment, kept in Lockbox, is the Customer Lockbox access approver
// role of the product contract, and the lockbox-approver role in a token
// grants nothing by itself, so an identity provider need not send it. An
// approver who decides through the API without the claim decides here too.
// The session names the role the assignment gives, and only while it
// does: a token's lockbox-approver claim without the assignment is
// dropped, so a user it was the only role of is refused as one with none,
// and a re-verification asks again, so a removed assignment ends the
// session whether the token claims the role or not (each page asks too:
// Console.heldRoles).
func (o *oidcClient) identify(ctx context.Context, idt *oidc.IDToken) (identified, string, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return identified{}, "failed", err
	}
	auth, err := authenticationOf(idt)
	if err != nil {
		return identified{}, "failed", err
	}
	p, name, code := o.principal(claims)
	if code == "" && p.TenantID != "" && (len(p.Roles) == 0 || p.Has(identity.RoleApprover)) {
		ok := false
		if o.assigned != nil {
			var err error
			if ok, err = o.assigned(ctx, p); err != nil {
				return identified{}, "failed", fmt.Errorf("whether %q is an approver of %s: %w", p.Subject, p.TenantID, err)
			}
		}
		p.Roles = slices.DeleteFunc(p.Roles, func(r identity.Role) bool { return r == identity.RoleApprover })
		if ok {
			p.Roles = append(p.Roles, identity.RoleApprover)
		}
	}
	if code == "" && len(p.Roles) == 0 {
		code = "no_roles"
	}
	if code != "" {
		return identified{}, code, fmt.Errorf("claims of %q from %s can't be used", idt.Subject, logurl.Show(o.cfg.Issuer))
	}
	return identified{principal: p, name: name, auth: auth}, "", nil
}

// maxRefreshToken bounds the refresh token a session keeps, for the reason
// maxEndSession bounds its endpoint: every session of every issuer shares
// the Redis each page reads it from. Real ones are a few hundred bytes to
// two kilobytes.
const maxRefreshToken = 8 << 10

// keptRefreshToken is the part of a refresh token a session keeps: all of
// it, or nothing when it is larger than maxRefreshToken (the session then
// ends when it is due to be verified again, as one without any does).
func (o *oidcClient) keptRefreshToken(ctx context.Context, rt string) string {
	if len(rt) > maxRefreshToken {
		o.log.WarnContext(ctx, "console: the refresh token is too large to keep; the session will end when it is due to be verified again",
			"issuer", logurl.Show(o.cfg.Issuer), "bytes", len(rt), "max", maxRefreshToken)
		return ""
	}
	return rt
}

// maxIDTokenHint bounds the ID token a session keeps for sign-out. Most are
// one or two kilobytes; one that lists a user's groups can be tens, which
// would make every page's read of the session that much larger, and a URL
// longer than the request line many servers in front of identity providers
// take (8 KB). A larger one is not kept: sign-out goes to the endpoint
// without a hint, where identity providers ask their user to confirm.
const maxIDTokenHint = 6 << 10

// logout is what a session signed in with idToken needs to end the user's
// session at the issuer when it ends (OpenID Connect RP-Initiated Logout
// 1.0): nil when the issuer names no end_session_endpoint.
func (o *oidcClient) logout(ctx context.Context, idToken string) *idpLogout {
	ep := o.endSessionURL()
	if ep == "" {
		return nil
	}
	l := &idpLogout{Endpoint: ep, ClientID: o.cfg.ClientID, IDToken: idToken}
	if len(idToken) > maxIDTokenHint {
		o.log.InfoContext(ctx, "console: the ID token is too large to keep for sign-out; the identity provider will ask its user to confirm signing out",
			"issuer", logurl.Show(o.cfg.Issuer), "bytes", len(idToken), "max", maxIDTokenHint)
		l.IDToken = ""
	}
	return l
}

// oldCallback answers at the redirect URI all issuers shared before each had
// its own. Nothing arriving there is redeemed: it can't say which issuer's
// code it carries. Only a sign-in started before the change, or an identity
// provider still registered with the old redirect URI, ends here.
func (c *Console) oldCallback(w http.ResponseWriter, r *http.Request) {
	if c.staff == nil && len(c.orgs) == 0 {
		http.NotFound(w, r)
		return
	}
	c.log.WarnContext(r.Context(), "console: an OIDC sign-in came back to "+callbackPath+", which no issuer uses any more; "+
		"register each issuer's own redirect URI ("+callbackPath+"/provider or "+callbackPath+"/tenant/<id>)")
	c.setLoginCookie(w, r, false, "")
	http.Redirect(w, r, "/console/signin?problem=redirect_uri", http.StatusSeeOther)
}

// principal maps ID token claims to a Principal with the issuer's scope,
// as the API's verifier maps bearer tokens. It returns a sign-in problem
// code when the claims can't make one. A principal without roles is
// returned as it is: identify decides whether it signs in.
func (o *oidcClient) principal(claims map[string]any) (identity.Principal, string, string) {
	sub, _ := claims[o.cfg.SubjectClaim].(string)
	var tid string
	if o.cfg.Scope.IsShared() {
		// The API's rule: a tenant claim that is there but null, empty or
		// not a string is no tenant, which would make the user the
		// provider's staff.
		v, ok := claims[o.cfg.TenantClaim]
		var err error
		if tid, err = identity.ClaimedTenant(v, ok); err != nil {
			return identity.Principal{}, "", "invalid"
		}
	}
	var names []string
	switch v := claims[o.cfg.RolesClaim].(type) {
	case string:
		names = strings.Fields(v)
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				names = append(names, s)
			}
		}
	}
	p, err := o.cfg.Scope.Principal(sub, names, tid)
	if err != nil {
		return identity.Principal{}, "", "invalid"
	}
	email, _ := claims[o.cfg.EmailClaim].(string)
	p.Email = identity.PlainAddress(email)
	name, _ := claims[o.cfg.NameClaim].(string)
	if name = strings.TrimSpace(name); name == "" || len(name) > 200 {
		name = sub
	}
	return p, name, ""
}

// signout ends the session everywhere and forgets the cookie. A session
// that can't be read (Redis down) is not taken for none: the user would be
// told they signed out of a session that works again, for anyone holding
// its cookie, as soon as Redis answers. They get the error instead, and the
// browser keeps its cookie to sign out with again.
//
// A session whose issuer names an end_session_endpoint then sends the
// browser there (OpenID Connect RP-Initiated Logout 1.0), so the identity
// provider's own session ends too: otherwise the next person at a shared
// workstation to click "Sign in" would be signed in as this user, without a
// password, by the identity provider's single sign-on. Only this POST, with
// the session's form token, gets there: the redirect carries the ID token
// of the sign-in, and another site can't have a browser sign out.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout)
	defer cancel()
	r = r.WithContext(ctx)
	sess, err := c.session(r, false)
	if err != nil && !errors.Is(err, errNoSession) {
		c.fail(w, r, nil, err)
		return
	}
	if err == nil {
		if c.formTooLarge(w, r, &sess) {
			return
		}
		if !sess.validCSRF(r) {
			c.renderError(w, r, &sess, http.StatusForbidden, "This form has expired. Go back, reload and try again.")
			return
		}
		if err := c.sessions.delete(r.Context(), sess.token); err != nil {
			c.fail(w, r, &sess, err)
			return
		}
	}
	c.clearSessionCookie(w, r)
	if err == nil && sess.Logout != nil {
		to, err := c.endSessionRedirect(sess.Logout)
		if err == nil {
			c.log.InfoContext(ctx, "console sign-out, on to the identity provider's", "user", sess.Principal.Subject,
				"tenant", sess.Principal.TenantID, "issuer", logurl.Show(sess.Issuer))
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		c.log.WarnContext(ctx, "console: sign-out can't go on to the identity provider's", "issuer", logurl.Show(sess.Issuer), "error", echoErr(err))
	}
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

// signedOutPath is where identity providers send browsers back after
// signing their users out: the post_logout_redirect_uri, which operators
// register at each identity provider with an end_session_endpoint. It is
// fixed, so there is one URI to register per client and nothing in it to
// steer.
const signedOutPath = "/console/signin?signed_out=1"

// endSessionRedirect is the URL of l's end-session request: its endpoint
// with id_token_hint (when the session kept one), client_id and
// post_logout_redirect_uri added to any query the endpoint has. No state:
// the way back lands on a page that does nothing but say so.
func (c *Console) endSessionRedirect(l *idpLogout) (string, error) {
	u, err := url.Parse(l.Endpoint)
	if err != nil {
		return "", fmt.Errorf("end_session_endpoint %q: %w", l.Endpoint, err)
	}
	q := u.Query()
	if l.IDToken != "" {
		q.Set("id_token_hint", l.IDToken)
	}
	q.Set("client_id", l.ClientID)
	q.Set("post_logout_redirect_uri", strings.TrimSuffix(c.cfg.PublicURL, "/")+signedOutPath)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
