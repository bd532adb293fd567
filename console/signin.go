package console

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// OIDCConfig configures OpenID Connect sign-in. Claims map to the same
// roles as the API's bearer tokens: the roles claim carries role names
// (operator, support-manager, global-admin, lockbox-approver,
// audit-reader; others are ignored) and the tenant claim, when present,
// makes the user a tenant user.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes requested besides "openid".
	Scopes []string
	// Claim names; defaults "sub", "roles", "tid" and "name".
	SubjectClaim, RolesClaim, TenantClaim, NameClaim string
	// HTTPClient talks to the issuer; a client with a 10 s timeout when
	// nil.
	HTTPClient *http.Client
}

// callbackPath is the redirect URI's path, registered at the identity
// provider as PublicURL + callbackPath.
const callbackPath = "/console/oidc/callback"

// loginTTL bounds a sign-in in progress: the time a user may spend at the
// identity provider's login page.
const loginTTL = 10 * time.Minute

// loginCookie binds a sign-in in progress to the browser that started it,
// so a callback URL planted on someone else (login CSRF) finds no match.
const loginCookie = "lockbox_login"

// oidcClient is the console's OpenID Connect relying party. The provider's
// discovery document is fetched on first use and kept, so an identity
// provider that is down when Lockbox starts stops sign-in, not the proxy.
type oidcClient struct {
	cfg         OIDCConfig
	redirectURL string

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCClient(cfg OIDCConfig, publicURL string) (*oidcClient, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("console: OIDC issuer is required")
	case cfg.ClientID == "":
		return nil, errors.New("console: OIDC client id is required")
	case publicURL == "":
		return nil, errors.New("console: the public URL is required for OIDC sign-in (it makes the redirect URI)")
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
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &oidcClient{cfg: cfg, redirectURL: strings.TrimSuffix(publicURL, "/") + callbackPath}, nil
}

// discover returns the provider, fetching its discovery document once.
func (o *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.cfg.HTTPClient), o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("console: OIDC discovery at %s: %w", o.cfg.Issuer, err)
	}
	o.provider = p
	return p, nil
}

func (o *oidcClient) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: o.redirectURL,
		Scopes: append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...),
	}
}

// pendingLogin is what the console remembers of a sign-in in progress.
type pendingLogin struct {
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
}

// signinPage offers the ways to sign in this server has.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, err := c.session(r, false); err == nil {
		http.Redirect(w, r, "/console/requests", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "signin", nil, signinView{
		OIDC: c.oidc != nil, Dev: c.cfg.DevIdentities, Problem: signinProblems[r.URL.Query().Get("problem")],
	})
}

// signinProblems are the messages the sign-in page shows after a failed
// attempt, by a fixed code: the page never echoes text from the URL.
var signinProblems = map[string]string{
	"expired":  "Your sign-in took too long or was started in another browser. Please sign in again.",
	"denied":   "The identity provider did not sign you in.",
	"failed":   "Signing in failed. Please try again; if it keeps failing, ask your administrator to check Lockbox's log.",
	"no_roles": "Your account has no Lockbox role. Ask your administrator for one of: operator, support-manager, global-admin, lockbox-approver, audit-reader.",
	"invalid":  "Your account's identity can't be used by Lockbox (its user or tenant id has characters Lockbox does not accept).",
}

type signinView struct {
	OIDC    bool
	Dev     []DevIdentity
	Problem string
}

// devSignin signs in as one of the configured dev identities.
func (c *Console) devSignin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	subject := r.PostFormValue("subject")
	i := slices.IndexFunc(c.cfg.DevIdentities, func(d DevIdentity) bool { return d.Principal.Subject == subject })
	if i < 0 {
		c.renderError(w, r, nil, http.StatusForbidden, "There is no such dev identity. Dev sign-in exists only in \"lockbox dev\".")
		return
	}
	c.startSession(w, r, c.cfg.DevIdentities[i].Principal, subject, "dev", false)
}

// startSession signs the browser in as p. afterRedirect is true when the
// request arrived by a redirect from another site (the identity provider):
// the browser would not send a SameSite=Strict cookie on a redirect that
// continues that chain, so the page moves on with a same-site navigation
// of its own instead.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, p identity.Principal, name, via string, afterRedirect bool) {
	if ck, err := r.Cookie(c.cookieName(r)); err == nil {
		_ = c.sessions.delete(r.Context(), ck.Value)
	}
	sess, err := c.sessions.create(r.Context(), p, name, via)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.setSessionCookie(w, r, sess.token)
	c.log.InfoContext(r.Context(), "console sign-in", "user", p.Subject, "tenant", p.TenantID, "via", via)
	if afterRedirect {
		c.render(w, r, http.StatusOK, "continue", nil, nil)
		return
	}
	http.Redirect(w, r, "/console/requests", http.StatusSeeOther)
}

// oidcStart sends the browser to the identity provider.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout)
	defer cancel()
	p, err := c.oidc.discover(ctx)
	if err != nil {
		c.log.ErrorContext(ctx, "console: sign-in unavailable", "error", err)
		c.renderError(w, r, nil, http.StatusServiceUnavailable, "The identity provider can't be reached; sign-in is unavailable. Try again in a minute.")
		return
	}
	state, login := rand.Text(), pendingLogin{Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier()}
	b, _ := json.Marshal(login)
	if err := c.cfg.Redis.Set(ctx, keys.ConsoleLogin(state), b, loginTTL).Err(); err != nil {
		c.fail(w, r, nil, fault.Unavailable("console: save sign-in", err))
		return
	}
	// Lax, not Strict: the identity provider's redirect back is a
	// cross-site navigation, on which a Strict cookie is not sent.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: state, Path: callbackPath, MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: c.secureRequest(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, c.oidc.oauth2(p).AuthCodeURL(state, oidc.Nonce(login.Nonce), oauth2.S256ChallengeOption(login.Verifier)), http.StatusFound)
}

// oidcCallback finishes a sign-in: it checks the state against the
// browser's cookie, redeems the code with the PKCE verifier, verifies the ID
// token (signature, issuer, audience, expiry, nonce) and maps its claims.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout)
	defer cancel()
	problem := func(code string, err error) {
		if err != nil {
			c.log.WarnContext(ctx, "console: OIDC sign-in failed", "problem", code, "error", err)
		}
		http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: callbackPath, MaxAge: -1, HttpOnly: true, Secure: c.secureRequest(r), SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/console/signin?problem="+code, http.StatusSeeOther)
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		problem("denied", fmt.Errorf("identity provider error %q", e))
		return
	}
	state := q.Get("state")
	ck, err := r.Cookie(loginCookie)
	if state == "" || err != nil || ck.Value != state {
		problem("expired", errors.New("state does not match the browser's sign-in"))
		return
	}
	b, err := c.cfg.Redis.GetDel(ctx, keys.ConsoleLogin(state)).Bytes()
	if errors.Is(err, redis.Nil) {
		problem("expired", errors.New("unknown or used state"))
		return
	}
	if err != nil {
		c.fail(w, r, nil, fault.Unavailable("console: read sign-in", err))
		return
	}
	var login pendingLogin
	if err := json.Unmarshal(b, &login); err != nil {
		problem("failed", err)
		return
	}
	p, err := c.oidc.discover(ctx)
	if err != nil {
		problem("failed", err)
		return
	}
	tok, err := c.oidc.oauth2(p).Exchange(oidc.ClientContext(ctx, c.oidc.cfg.HTTPClient), q.Get("code"), oauth2.VerifierOption(login.Verifier))
	if err != nil {
		problem("failed", fmt.Errorf("code exchange: %w", err))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		problem("failed", errors.New("token response has no id_token"))
		return
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: c.oidc.cfg.ClientID, Now: c.cfg.Now}).Verify(ctx, raw)
	if err != nil {
		problem("failed", fmt.Errorf("id token: %w", err))
		return
	}
	if idt.Nonce != login.Nonce {
		problem("failed", errors.New("id token nonce does not match"))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		problem("failed", err)
		return
	}
	principal, name, code := c.oidc.principal(claims)
	if code != "" {
		problem(code, fmt.Errorf("claims of %q can't be used", idt.Subject))
		return
	}
	c.startSession(w, r, principal, name, "oidc", true)
}

// principal maps ID token claims to a Principal with the rules the API's
// verifier applies to bearer tokens. It returns a sign-in problem code
// when the claims can't make one.
func (o *oidcClient) principal(claims map[string]any) (identity.Principal, string, string) {
	sub, _ := claims[o.cfg.SubjectClaim].(string)
	tid, _ := claims[o.cfg.TenantClaim].(string)
	if !identity.ValidSubject(sub) || (tid != "" && !identity.ValidTenantID(tid)) {
		return identity.Principal{}, "", "invalid"
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
	var roles []identity.Role
	for _, n := range names {
		if r := identity.Role(n); r.Known() && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return identity.Principal{}, "", "no_roles"
	}
	name, _ := claims[o.cfg.NameClaim].(string)
	if name = strings.TrimSpace(name); name == "" || len(name) > 200 {
		name = sub
	}
	return identity.Principal{Subject: sub, Roles: roles, TenantID: tid}, name, ""
}

// signout ends the session everywhere and forgets the cookie.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	if sess, err := c.session(r, false); err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
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
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
