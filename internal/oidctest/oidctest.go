// Package oidctest is an OpenID Connect provider for tests, in process: the
// discovery document, a JWKS with key rotation, the authorization endpoint
// (authorization code flow, PKCE S256 required), the token endpoint
// (authorization code, refresh token and device code grants), the device
// authorization endpoint (RFC 8628) and, when asked for, the end-session
// endpoint (OpenID Connect RP-Initiated Logout 1.0). Several can run at once, one per
// issuer, as a provider's and its tenants' identity providers would.
//
// Nobody types a password: the authorization endpoint signs in the user a
// test queued (QueueUser), and a device code is approved, denied or slowed
// down by the test (ApproveDevice, DenyDevice, SlowDownDevice). A user signed
// in keeps a session at the provider, with which an authorization request
// with prompt=none is answered without the queue (until EndUserSession).
// Between token issues the test may change an account or revoke its refresh
// tokens (UpdateUser, RevokeRefreshTokens), as administrators do, or make
// the provider fail (FailJWKS, FailPromptNone). Besides the
// confidential client (an admin center), a public one (a command line)
// can be registered. Tokens are signed with go-jose.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of Config.
const (
	DefaultClientID     = "lockbox"
	DefaultClientSecret = "lockbox-test-secret"
	DefaultAudience     = "lockbox"
	DefaultTTL          = 10 * time.Minute
	// DeviceGrantType is the token endpoint's grant type for a device code.
	DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"
)

// Config configures a Provider. The zero value works.
type Config struct {
	// ClientID and ClientSecret are the registered confidential client's.
	ClientID, ClientSecret string
	// PublicClientID, when set, registers a second client, public as a
	// native app such as a command line is (RFC 8252): it has no secret, so
	// its id alone names it for every grant, and PKCE guards its codes.
	// Codes and refresh tokens are bound to the client they were issued to.
	PublicClientID string
	// NoDeviceFlow leaves the device authorization endpoint out of the
	// discovery document, and serves none, as providers without RFC 8628 do.
	NoDeviceFlow bool
	// NoIssParameter leaves "iss" out of authorization responses, and
	// authorization_response_iss_parameter_supported out of the discovery
	// document, as providers without RFC 9207 do.
	NoIssParameter bool
	// IssParameterSupported, when not nil, is the discovery document's
	// authorization_response_iss_parameter_supported instead of true
	// (a malformed one such as the string "true", say).
	IssParameterSupported any
	// EndSession serves an end_session_endpoint (OpenID Connect
	// RP-Initiated Logout 1.0) and names it in the discovery document.
	// Without it the document names none, as many providers' don't.
	EndSession bool
	// EndSessionEndpoint, when set, is the end_session_endpoint the
	// discovery document names instead of the provider's own (one it does
	// not serve, such as a plain-http URL of another host).
	EndSessionEndpoint string
	// NoOfflineAccess leaves offline_access out of the discovery document's
	// scopes_supported and issues no refresh tokens, as providers that keep
	// long-lived access to themselves do.
	NoOfflineAccess bool
	// Audience is the "aud" of access tokens (ID tokens' is the client id).
	Audience string
	// TTL is every token's lifetime.
	TTL time.Duration
	// Now is the provider's clock; time.Now when nil.
	Now func() time.Time
	// Listener, when set, is where the provider serves: a test can name the
	// address before the provider is up. A new loopback listener when nil.
	Listener net.Listener
}

// User is an account at the provider: the subject and the claims its tokens
// carry besides the standard ones (name, email, roles, tid, or whatever
// names the test wants).
type User struct {
	Subject string
	Claims  map[string]any
}

// Provider is a running OpenID Connect provider.
type Provider struct {
	cfg Config
	srv *httptest.Server

	mu      sync.Mutex
	keys    []signingKey // published; the last one signs
	queue   []User
	codes   map[string]*grant // authorization codes, used once
	refresh map[string]*grant // refresh tokens, rotated on use
	devices map[string]*deviceGrant
	byUser  map[string]string // user code → device code
	// updated are the accounts changed since tokens were issued for them,
	// by the subject they had (see UpdateUser).
	updated map[string]User
	// redirectURIs, once set, are the only ones authorize sends codes to.
	redirectURIs []string
	// logoutURIs, once set, are the only post-logout redirect URIs the
	// end-session endpoint sends browsers back to.
	logoutURIs []string
	logouts    []Logout
	// signedIn are the users with a session at the provider, by subject:
	// those an authorization signed in, until EndUserSession or a
	// sign-out.
	signedIn map[string]User
	// jwksStatus, when not 0, is the JWKS endpoint's answer (FailJWKS).
	jwksStatus int
	// promptNoneError, when set, answers every prompt=none request
	// (FailPromptNone).
	promptNoneError string
	// omitRefreshIDToken leaves the ID token out of refresh answers
	// (OmitRefreshIDToken).
	omitRefreshIDToken bool
	// retired are the keys RetireKeys took out of the JWKS, which
	// SignWithKey can still sign with.
	retired []signingKey
	// signWith, when set, is the id of the key every token is signed
	// with instead of the newest (SignWithKey).
	signWith string
}

// Logout is one request the end-session endpoint accepted.
type Logout struct {
	// IDTokenHint is the id_token_hint as sent ("" without one), Subject
	// the subject of that ID token.
	IDTokenHint, Subject string
	ClientID             string
	// PostLogoutRedirectURI and State are the parameters as sent.
	PostLogoutRedirectURI, State string
}

type signingKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

// grant is what a code or refresh token stands for.
type grant struct {
	clientID    string
	user        User
	redirectURI string
	challenge   string
	nonce       string
	scope       string
	expires     time.Time
}

type deviceGrant struct {
	clientID string
	userCode string
	scope    string
	expires  time.Time
	user     *User // set once approved
	denied   bool
	used     bool
	slowDown bool        // the next poll is answered slow_down
	polls    []time.Time // when the client polled, on the provider's clock
}

// Start runs a provider until the test ends.
func Start(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New runs a provider; Close stops it.
func New(cfg Config) (*Provider, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{cfg: cfg, codes: map[string]*grant{}, refresh: map[string]*grant{},
		devices: map[string]*deviceGrant{}, byUser: map[string]string{}, updated: map[string]User{}, signedIn: map[string]User{}}
	if _, err := p.RotateKey(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	if !cfg.NoDeviceFlow {
		mux.HandleFunc("POST /device_authorization", p.deviceAuthorization)
	}
	if cfg.EndSession {
		mux.HandleFunc("GET /logout", p.endSession)
	}
	p.srv = httptest.NewUnstartedServer(mux)
	if cfg.Listener != nil {
		p.srv.Listener.Close()
		p.srv.Listener = cfg.Listener
	}
	p.srv.Start()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// RegisterRedirectURIs makes uris the only redirect URIs the provider sends
// a browser back to, as a real provider does with those registered for a
// client; any other is refused with an error page. Until it is called, any
// absolute URI goes, so tests need not know the client's address up front.
func (p *Provider) RegisterRedirectURIs(uris ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirectURIs = slices.Clone(uris)
}

// RegisterPostLogoutRedirectURIs makes uris the only post_logout_redirect_uri
// values the end-session endpoint accepts, as a real provider does with those
// registered for a client; any other is refused with an error page. Until it
// is called, any absolute URI goes.
func (p *Provider) RegisterPostLogoutRedirectURIs(uris ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logoutURIs = slices.Clone(uris)
}

// Logouts returns the requests the end-session endpoint accepted, in order.
func (p *Provider) Logouts() []Logout {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.logouts)
}

// EndSessionEndpoint is where a client sends a browser to sign its user out
// of the provider: the discovery document's end_session_endpoint, "" when it
// names none.
func (p *Provider) EndSessionEndpoint() string {
	switch {
	case p.cfg.EndSessionEndpoint != "":
		return p.cfg.EndSessionEndpoint
	case p.cfg.EndSession:
		return p.srv.URL + "/logout"
	}
	return ""
}

// Issuer is the provider's issuer URL, its tokens' "iss".
func (p *Provider) Issuer() string { return p.srv.URL }

// JWKSURL is where the provider publishes its keys.
func (p *Provider) JWKSURL() string { return p.srv.URL + "/jwks" }

// AuthorizationEndpoint is where browsers are sent to sign in.
func (p *Provider) AuthorizationEndpoint() string { return p.srv.URL + "/authorize" }

// TokenEndpoint redeems codes, refresh tokens and device codes.
func (p *Provider) TokenEndpoint() string { return p.srv.URL + "/token" }

// DeviceAuthorizationEndpoint starts a device flow.
func (p *Provider) DeviceAuthorizationEndpoint() string { return p.srv.URL + "/device_authorization" }

// ClientID is the registered client's id.
func (p *Provider) ClientID() string { return p.cfg.ClientID }

// PublicClientID is the public client's id, "" when there is none.
func (p *Provider) PublicClientID() string { return p.cfg.PublicClientID }

// ClientSecret is the registered client's secret.
func (p *Provider) ClientSecret() string { return p.cfg.ClientSecret }

// Audience is the "aud" of the provider's access tokens.
func (p *Provider) Audience() string { return p.cfg.Audience }

// TTL is the lifetime of the provider's tokens.
func (p *Provider) TTL() time.Duration { return p.cfg.TTL }

// Now is the provider's time.
func (p *Provider) Now() time.Time { return p.cfg.Now() }

// QueueUser makes u the user the next authorization signs in. Without a
// queued user the authorization endpoint answers login_required.
func (p *Provider) QueueUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, u)
}

// EndUserSession ends the session at the provider of the user subject, as
// the user signing out of the provider or an administrator ending it does:
// an authorization request with prompt=none for that user is answered
// login_required from now on.
func (p *Provider) EndUserSession(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.signedIn, subject)
}

// FailPromptNone makes the provider answer every authorization request with
// prompt=none with the error code (interaction_required,
// consent_required, temporarily_unavailable, ...), as a provider that wants
// its user's interaction, or is in trouble, does; "" restores the answers of
// the users' sessions.
func (p *Provider) FailPromptNone(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.promptNoneError = code
}

// OmitRefreshIDToken makes the token endpoint answer refresh_token grants
// without an ID token, as OpenID Connect Core 1.0 section 12.2 allows and
// some providers do; false restores it. Codes still get theirs.
func (p *Provider) OmitRefreshIDToken(omit bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.omitRefreshIDToken = omit
}

// FailJWKS makes the JWKS endpoint answer status with no keys, as a key
// server that is down (5xx) or throttling (429) does; 0 restores it. A
// client that meets a key it has not cached can't verify tokens meanwhile.
func (p *Provider) FailJWKS(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jwksStatus = status
}

// UpdateUser changes the account of subject: every token issued for it from
// now on, by a code or a refresh token issued before, names u instead, as
// when an administrator removes a role at the provider. A u of another
// subject makes a provider that answers a refresh with someone else's
// tokens.
func (p *Provider) UpdateUser(subject string, u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.updated[subject] = u
}

// RevokeRefreshTokens makes every refresh token issued for subject unusable
// (the token endpoint answers invalid_grant), as disabling the account or
// ending its sessions at the provider does. It returns how many it revoked.
func (p *Provider) RevokeRefreshTokens(subject string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for rt, g := range p.refresh {
		if g.user.Subject == subject {
			delete(p.refresh, rt)
			n++
		}
	}
	return n
}

// RotateKey adds a new signing key and signs with it from now on. The old
// keys stay published until RetireKeys, as a provider rotating with an
// overlap does. It returns the new key's id.
func (p *Provider) RotateKey() (string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("oidctest: %w", err)
	}
	kid := rand.Text()[:12]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, signingKey{kid: kid, priv: priv})
	return kid, nil
}

// RetireKeys stops publishing every key but the one that signs now.
func (p *Provider) RetireKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired = append(p.retired, p.keys[:len(p.keys)-1]...)
	p.keys = p.keys[len(p.keys)-1:]
}

// SignWithKey makes the provider sign every token with the key kid, one
// it publishes or one RetireKeys took out of its JWKS, as a provider that
// rotated badly, or whoever holds a retired key, does; "" restores the
// newest key. It fails for a key the provider never had.
func (p *Provider) SignWithKey(kid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if kid != "" && !slices.ContainsFunc(slices.Concat(p.keys, p.retired), func(k signingKey) bool { return k.kid == kid }) {
		return fmt.Errorf("oidctest: no key %q", kid)
	}
	p.signWith = kid
	return nil
}

// KeyID is the id of the key that signs now.
func (p *Provider) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[len(p.keys)-1].kid
}

// AccessToken signs an access token for u, as the token endpoint would
// issue it: iss, aud (Config.Audience), iat, nbf, exp, sub and u's claims.
func (p *Provider) AccessToken(u User) string {
	tok, err := p.sign(p.accessClaims(u, ""))
	if err != nil {
		panic(err) // signing with a key we generated can't fail
	}
	return tok
}

// Sign signs any claims with the provider's current key: for tests that
// need a token no well-behaved provider would issue.
func (p *Provider) Sign(claims map[string]any) (string, error) { return p.sign(claims) }

func (p *Provider) sign(claims map[string]any) (string, error) {
	p.mu.Lock()
	k := p.keys[len(p.keys)-1]
	if p.signWith != "" {
		i := slices.IndexFunc(slices.Concat(p.keys, p.retired), func(k signingKey) bool { return k.kid == p.signWith })
		k = slices.Concat(p.keys, p.retired)[i]
	}
	p.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("oidctest: %w", err)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func (p *Provider) baseClaims(u User, aud string) map[string]any {
	now := p.cfg.Now()
	c := maps.Clone(u.Claims)
	if c == nil {
		c = map[string]any{}
	}
	c["iss"] = p.Issuer()
	c["sub"] = u.Subject
	c["aud"] = aud
	if more, ok := u.Claims["aud"].([]string); ok {
		// The user's own "aud" names more audiences of its tokens, as a
		// provider issuing a token for several clients does.
		c["aud"] = append([]string{aud}, more...)
	}
	c["iat"] = now.Unix()
	c["exp"] = now.Add(p.cfg.TTL).Unix()
	return c
}

func (p *Provider) accessClaims(u User, scope string) map[string]any {
	c := p.baseClaims(u, p.cfg.Audience)
	c["nbf"] = p.cfg.Now().Unix()
	c["jti"] = rand.Text()
	if scope != "" {
		c["scope"] = scope
	}
	return c
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	doc := map[string]any{
		"issuer":                                         p.Issuer(),
		"authorization_endpoint":                         p.AuthorizationEndpoint(),
		"token_endpoint":                                 p.TokenEndpoint(),
		"device_authorization_endpoint":                  p.DeviceAuthorizationEndpoint(),
		"jwks_uri":                                       p.JWKSURL(),
		"response_types_supported":                       []string{"code"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token", DeviceGrantType},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{string(jose.ES256)},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                               []string{"openid", "profile", "email", "offline_access"},
		"authorization_response_iss_parameter_supported": true,
	}
	if p.cfg.IssParameterSupported != nil {
		doc["authorization_response_iss_parameter_supported"] = p.cfg.IssParameterSupported
	}
	if p.cfg.NoIssParameter {
		delete(doc, "authorization_response_iss_parameter_supported")
	}
	if e := p.EndSessionEndpoint(); e != "" {
		doc["end_session_endpoint"] = e
	}
	if p.cfg.NoOfflineAccess {
		doc["scopes_supported"] = []string{"openid", "profile", "email"}
	}
	if p.cfg.NoDeviceFlow {
		delete(doc, "device_authorization_endpoint")
		doc["grant_types_supported"] = []string{"authorization_code", "refresh_token"}
	}
	writeJSON(w, http.StatusOK, doc)
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	if s := p.jwksStatus; s != 0 {
		p.mu.Unlock()
		oauthError(w, s, "temporarily_unavailable", "the keys can't be read now")
		return
	}
	set := jose.JSONWebKeySet{}
	for _, k := range p.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// authorize answers like a provider whose user signed in and consented: a
// redirect back with a code, or with an error the client must handle. The
// user is the one queued, who then has a session at the provider; with
// prompt=none, the one the hint names if that user has a session (see
// silentUser).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	ru, err := url.Parse(redirect)
	clientID := q.Get("client_id")
	p.mu.Lock()
	unregistered := p.redirectURIs != nil && !slices.Contains(p.redirectURIs, redirect)
	p.mu.Unlock()
	if !p.registered(clientID) || err != nil || !ru.IsAbs() || unregistered {
		// Never redirect to an unverified URI: show the error instead.
		oauthError(w, http.StatusBadRequest, "invalid_request", "unknown client or bad redirect_uri")
		return
	}
	back := func(params url.Values) {
		if !p.cfg.NoIssParameter {
			params.Set("iss", p.Issuer())
		}
		if s := q.Get("state"); s != "" {
			params.Set("state", s)
		}
		rq := ru.Query()
		for k, v := range params {
			rq[k] = v
		}
		ru.RawQuery = rq.Encode()
		http.Redirect(w, r, ru.String(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"PKCE with S256 is required"}})
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		back(url.Values{"error": {"invalid_scope"}, "error_description": {"openid is required"}})
		return
	}
	silent := slices.Contains(strings.Fields(q.Get("prompt")), "none")
	var hinted string
	if silent {
		hinted = p.hintedSubject(q, clientID)
	}
	p.mu.Lock()
	var u User
	switch {
	case silent:
		if e := p.promptNoneError; e != "" {
			p.mu.Unlock()
			back(url.Values{"error": {e}})
			return
		}
		var ok bool
		if u, ok = p.signedIn[hinted]; !ok || hinted == "" {
			p.mu.Unlock()
			back(url.Values{"error": {"login_required"}})
			return
		}
	case len(p.queue) == 0:
		p.mu.Unlock()
		back(url.Values{"error": {"login_required"}})
		return
	default:
		u = p.queue[0]
		p.queue = p.queue[1:]
		p.signedIn[u.Subject] = u
	}
	code := rand.Text()
	p.codes[code] = &grant{clientID: clientID, user: u, redirectURI: redirect, challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), scope: q.Get("scope"), expires: p.cfg.Now().Add(time.Minute)}
	p.mu.Unlock()
	back(url.Values{"code": {code}})
}

// hintedSubject is the user an authorization request with prompt=none asks
// for: the subject of its id_token_hint (one of the provider's ID tokens
// for clientID, expired or not), else its login_hint; "" for none. A real
// provider knows its user by a cookie; this one, which many tests'
// browsers share, by the hint, and signs that user in while the user has a
// session here.
func (p *Provider) hintedSubject(q url.Values, clientID string) string {
	hint := q.Get("id_token_hint")
	if hint == "" {
		return q.Get("login_hint")
	}
	sub, aud, err := p.idTokenHint(hint)
	if err != nil || aud != clientID {
		return ""
	}
	return sub
}

// endSession is the end-session endpoint (RP-Initiated Logout 1.0 section
// 2): it checks the request as a careful provider does, records it, and
// sends the browser back to the post-logout redirect URI. An ID token hint
// must be one of the provider's, issued to a registered client, which
// client_id (when sent too) must name; its expiry does not matter, as the
// specification says. A redirect URI needs a client to be registered for.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l := Logout{IDTokenHint: q.Get("id_token_hint"), ClientID: q.Get("client_id"),
		PostLogoutRedirectURI: q.Get("post_logout_redirect_uri"), State: q.Get("state")}
	client := l.ClientID
	if l.IDTokenHint != "" {
		sub, aud, err := p.idTokenHint(l.IDTokenHint)
		if err != nil || (client != "" && client != aud) {
			oauthError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("bad id_token_hint (aud %q, client_id %q): %v", aud, client, err))
			return
		}
		l.Subject, client = sub, aud
	}
	if client != "" && !p.registered(client) {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unknown client")
		return
	}
	var back *url.URL
	if l.PostLogoutRedirectURI != "" {
		ru, err := url.Parse(l.PostLogoutRedirectURI)
		p.mu.Lock()
		unregistered := p.logoutURIs != nil && !slices.Contains(p.logoutURIs, l.PostLogoutRedirectURI)
		p.mu.Unlock()
		if client == "" || err != nil || !ru.IsAbs() || unregistered {
			// Never redirect to an unverified URI: show the error instead.
			oauthError(w, http.StatusBadRequest, "invalid_request", "bad post_logout_redirect_uri")
			return
		}
		back = ru
	}
	p.mu.Lock()
	p.logouts = append(p.logouts, l)
	if l.Subject != "" {
		delete(p.signedIn, l.Subject)
	}
	p.mu.Unlock()
	if back == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("You are signed out.\n"))
		return
	}
	if l.State != "" {
		rq := back.Query()
		rq.Set("state", l.State)
		back.RawQuery = rq.Encode()
	}
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// idTokenHint checks that hint is an ID token the provider signed, with any
// key it still publishes, and returns its subject and audience.
func (p *Provider) idTokenHint(hint string) (sub, aud string, err error) {
	tok, err := jwt.ParseSigned(hint, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", "", err
	}
	if len(tok.Headers) != 1 {
		return "", "", errors.New("not one signature")
	}
	p.mu.Lock()
	i := slices.IndexFunc(p.keys, func(k signingKey) bool { return k.kid == tok.Headers[0].KeyID })
	var k signingKey
	if i >= 0 {
		k = p.keys[i]
	}
	p.mu.Unlock()
	if i < 0 {
		return "", "", errors.New("signed with no key of the provider's")
	}
	var c jwt.Claims
	if err := tok.Claims(k.priv.Public(), &c); err != nil {
		return "", "", err
	}
	if c.Issuer != p.Issuer() || len(c.Audience) != 1 {
		return "", "", fmt.Errorf("issuer %q, audience %v", c.Issuer, c.Audience)
	}
	return c.Subject, c.Audience[0], nil
}

// token is the token endpoint.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	grantType := r.PostForm.Get("grant_type")
	// A device client is public (a CLI keeps no secret); the code and
	// refresh grants are the confidential client's, or the public one's.
	clientID, ok := p.clientAuthenticated(r, grantType == DeviceGrantType)
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	switch grantType {
	case "authorization_code":
		p.redeemCode(w, r, clientID)
	case "refresh_token":
		p.redeemRefresh(w, r, clientID)
	case DeviceGrantType:
		p.redeemDevice(w, r, clientID)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", grantType)
	}
}

// registered reports whether id names one of the provider's clients.
func (p *Provider) registered(id string) bool {
	return id != "" && (id == p.cfg.ClientID || id == p.cfg.PublicClientID)
}

// clientAuthenticated returns the client a token request comes from and
// whether it proved it is that client. public lets the confidential
// client go without its secret (the device grant's rule).
func (p *Provider) clientAuthenticated(r *http.Request, public bool) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	switch {
	case !p.registered(id):
		return "", false
	case id == p.cfg.PublicClientID:
		return id, secret == ""
	case public && secret == "":
		return id, true
	}
	return id, subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) == 1
}

func (p *Provider) redeemCode(w http.ResponseWriter, r *http.Request, clientID string) {
	code := r.PostForm.Get("code")
	p.mu.Lock()
	g := p.codes[code]
	delete(p.codes, code) // used once, even when the exchange fails
	p.mu.Unlock()
	switch {
	case g == nil || p.cfg.Now().After(g.expires) || g.clientID != clientID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case r.PostForm.Get("redirect_uri") != g.redirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	p.issue(w, g, true, false)
}

func (p *Provider) redeemRefresh(w http.ResponseWriter, r *http.Request, clientID string) {
	rt := r.PostForm.Get("refresh_token")
	p.mu.Lock()
	g := p.refresh[rt]
	delete(p.refresh, rt)
	p.mu.Unlock()
	if g == nil || g.clientID != clientID {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or used refresh token")
		return
	}
	p.issue(w, g, false, true)
}

// issue answers a token request for g: an access token, an ID token when
// the grant was for openid (unless a refresh's and OmitRefreshIDToken),
// and a new refresh token (unless NoOfflineAccess). The tokens name the
// grant's user as UpdateUser last changed it. withNonce is set for a code,
// refreshed for a refresh token.
func (p *Provider) issue(w http.ResponseWriter, g *grant, withNonce, refreshed bool) {
	p.mu.Lock()
	if u, ok := p.updated[g.user.Subject]; ok {
		g = &grant{clientID: g.clientID, user: u, nonce: g.nonce, scope: g.scope}
	}
	omitIDToken := refreshed && p.omitRefreshIDToken
	p.mu.Unlock()
	access, err := p.sign(p.accessClaims(g.user, g.scope))
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(p.cfg.TTL.Seconds())}
	if slices.Contains(strings.Fields(g.scope), "openid") && !omitIDToken {
		idc := p.baseClaims(g.user, p.cfg.ClientID)
		if withNonce && g.nonce != "" {
			idc["nonce"] = g.nonce
		}
		if resp["id_token"], err = p.sign(idc); err != nil {
			oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
	}
	if !p.cfg.NoOfflineAccess {
		rt := rand.Text()
		p.mu.Lock()
		p.refresh[rt] = &grant{clientID: g.clientID, user: g.user, scope: g.scope}
		p.mu.Unlock()
		resp["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

// deviceAuthorization starts a device flow (RFC 8628 section 3.1).
func (p *Provider) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	clientID, ok := p.clientAuthenticated(r, true)
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	device, user := rand.Text(), strings.ToUpper(rand.Text()[:8])
	user = user[:4] + "-" + user[4:]
	p.mu.Lock()
	p.devices[device] = &deviceGrant{clientID: clientID, userCode: user, scope: r.PostForm.Get("scope"), expires: p.cfg.Now().Add(p.cfg.TTL)}
	p.byUser[user] = device
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": device, "user_code": user,
		"verification_uri":          p.Issuer() + "/device",
		"verification_uri_complete": p.Issuer() + "/device?user_code=" + url.QueryEscape(user),
		"expires_in":                int(p.cfg.TTL.Seconds()),
		"interval":                  1,
	})
}

// ApproveDevice signs u in on the device flow whose user code is userCode,
// as u would at the verification URI.
func (p *Provider) ApproveDevice(userCode string, u User) error {
	return p.decideDevice(userCode, func(d *deviceGrant) { d.user = &u })
}

// SlowDownDevice makes the provider answer the next poll of the device flow
// whose user code is userCode with slow_down, as a provider that finds the
// client polling too often does; the client must then poll 5 s less often.
func (p *Provider) SlowDownDevice(userCode string) error {
	return p.decideDevice(userCode, func(d *deviceGrant) { d.slowDown = true })
}

// DevicePolls returns when the client polled for the device flow whose
// user code is userCode, on the provider's clock.
func (p *Provider) DevicePolls(userCode string) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.devices[p.byUser[userCode]]; d != nil {
		return slices.Clone(d.polls)
	}
	return nil
}

// DenyDevice refuses the device flow whose user code is userCode.
func (p *Provider) DenyDevice(userCode string) error {
	return p.decideDevice(userCode, func(d *deviceGrant) { d.denied = true })
}

func (p *Provider) decideDevice(userCode string, decide func(*deviceGrant)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.devices[p.byUser[userCode]]
	if d == nil {
		return errors.New("oidctest: no such user code")
	}
	decide(d)
	return nil
}

// redeemDevice is the token request of a device flow (RFC 8628 section 3.4).
func (p *Provider) redeemDevice(w http.ResponseWriter, r *http.Request, clientID string) {
	p.mu.Lock()
	d := p.devices[r.PostForm.Get("device_code")]
	var (
		u      User
		scope  string
		status string
	)
	if d != nil && d.clientID == clientID {
		d.polls = append(d.polls, p.cfg.Now())
	}
	switch {
	case d == nil || d.used || d.clientID != clientID:
		status = "invalid_grant"
	case d.slowDown:
		d.slowDown = false
		status = "slow_down"
	case p.cfg.Now().After(d.expires):
		status = "expired_token"
	case d.denied:
		status = "access_denied"
	case d.user == nil:
		status = "authorization_pending"
	default:
		d.used = true
		u, scope = *d.user, d.scope
	}
	p.mu.Unlock()
	if status != "" {
		oauthError(w, http.StatusBadRequest, status, "")
		return
	}
	p.issue(w, &grant{clientID: clientID, user: u, scope: scope}, false, false)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
