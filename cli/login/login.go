// Package login signs a lockboxctl user in at an OpenID Connect provider
// (the Lockbox provider's own or a tenant's) and keeps the token: the
// device authorization flow (RFC 8628) when the provider offers it, the
// authorization code flow with PKCE and a loopback redirect (RFC 8252)
// when it doesn't. Tokens are stored per Lockbox server in the user's
// config directory, readable by the user alone, and refreshed before they
// expire.
//
// It knows nothing of lockboxctl's commands or how it prints: package cli
// wires it in and says what the user must do.
package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/lockbox-oss/lockbox/internal/origin"
)

// DeviceGrantType is the token request's grant type for a device code.
const DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// DefaultScopes are requested at every sign-in: offline_access asks for
// the refresh token that keeps the user signed in.
var DefaultScopes = []string{"openid", "offline_access"}

// maxBody bounds what is read of a provider's answer.
const maxBody = 1 << 20

// Errors of a sign-in the user can act on.
var (
	// ErrDenied: the user (or the provider) refused the sign-in.
	ErrDenied = errors.New("the sign-in was denied")
	// ErrExpired: the device code expired before the user approved it.
	ErrExpired = errors.New("the sign-in code expired before it was approved")
)

// Issuer is what an issuer's discovery document says of it.
type Issuer struct {
	URL           string `json:"issuer"`
	AuthURL       string `json:"authorization_endpoint"`
	TokenURL      string `json:"token_endpoint"`
	DeviceAuthURL string `json:"device_authorization_endpoint"`
	// IssParam: the provider names itself in the authorization response
	// (RFC 9207), so a response from another issuer can be told apart.
	IssParam bool `json:"authorization_response_iss_parameter_supported"`
}

// Discover reads the discovery document of issuer. The document must name
// the issuer it was fetched for, and every endpoint must be https (plain
// http only on a loopback address, for development): device codes, codes
// and refresh tokens go there.
func Discover(ctx context.Context, hc *http.Client, issuer string) (Issuer, error) {
	if err := CheckIssuer(issuer); err != nil {
		return Issuer{}, err
	}
	issuer = strings.TrimSuffix(strings.TrimSpace(issuer), "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return Issuer{}, fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client(hc).Do(req)
	if err != nil {
		return Issuer{}, fmt.Errorf("discovery of %s: %w", issuer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Issuer{}, fmt.Errorf("discovery of %s: HTTP %d", issuer, resp.StatusCode)
	}
	var doc Issuer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&doc); err != nil {
		return Issuer{}, fmt.Errorf("discovery of %s: %w", issuer, err)
	}
	if strings.TrimSuffix(doc.URL, "/") != issuer {
		return Issuer{}, fmt.Errorf("discovery of %s: the document is the issuer %q's", issuer, doc.URL)
	}
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", doc.AuthURL}, {"token_endpoint", doc.TokenURL}, {"device_authorization_endpoint", doc.DeviceAuthURL},
	} {
		if e.url == "" && e.name != "token_endpoint" {
			continue
		}
		if err := checkEndpoint(e.name, e.url); err != nil {
			return Issuer{}, fmt.Errorf("discovery of %s: %w", issuer, err)
		}
	}
	if doc.AuthURL == "" && doc.DeviceAuthURL == "" {
		return Issuer{}, fmt.Errorf("discovery of %s: neither an authorization nor a device authorization endpoint", issuer)
	}
	return doc, nil
}

// CheckIssuer refuses an issuer Discover would not ask: one that is not
// an absolute URL, or not https (plain http only on a loopback address).
func CheckIssuer(issuer string) error {
	return checkEndpoint("issuer", strings.TrimSuffix(strings.TrimSpace(issuer), "/"))
}

// checkEndpoint refuses all but https URLs, and http on loopback.
func checkEndpoint(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", name, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%s %q must be https (http only on a loopback address)", name, raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Prompt is what the user must do to sign in: enter UserCode at
// VerificationURI (device flow), or open URL in a browser (code flow).
type Prompt struct {
	VerificationURI, VerificationURIComplete, UserCode string
	URL                                                string
}

// Flow is one sign-in at an issuer, as a public client (a command line
// keeps no secret).
type Flow struct {
	Issuer   Issuer
	ClientID string
	Scopes   []string
	// Tell shows the user what to do; it is called once.
	Tell func(Prompt)
	// HTTP reaches the provider; a client with a 30 s timeout when nil.
	HTTP *http.Client
	// Now decides when a device code has expired and when a token will;
	// time.Now when nil.
	Now func() time.Time
	// Sleep waits between device polls; a timer when nil.
	Sleep func(context.Context, time.Duration) error
	// redirectTimeouts are Browser's loopback server's; its defaults
	// where zero. Tests shorten them.
	redirectTimeouts redirectTimeouts
}

// Run signs the user in: through the device flow when the issuer offers
// it, else through the code flow with a loopback redirect.
func (f *Flow) Run(ctx context.Context) (Token, error) {
	if f.Issuer.DeviceAuthURL != "" {
		return f.Device(ctx)
	}
	return f.Browser(ctx)
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Flow) sleep(ctx context.Context, d time.Duration) error {
	if f.Sleep != nil {
		return f.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (f *Flow) config(redirect string) *oauth2.Config {
	scopes := f.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	return &oauth2.Config{
		ClientID:    f.ClientID,
		RedirectURL: redirect,
		Scopes:      scopes,
		Endpoint: oauth2.Endpoint{AuthURL: f.Issuer.AuthURL, TokenURL: f.Issuer.TokenURL,
			DeviceAuthURL: f.Issuer.DeviceAuthURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

// httpContext makes oauth2 use f's HTTP client.
func (f *Flow) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, client(f.HTTP))
}

// token turns a token response into a Token stamped with f's issuer.
func (f *Flow) token(t *oauth2.Token) (Token, error) {
	return fromOAuth2(t, f.Issuer.URL, f.ClientID, f.Issuer.TokenURL, f.now())
}

func fromOAuth2(t *oauth2.Token, issuer, clientID, tokenURL string, now time.Time) (Token, error) {
	if t.AccessToken == "" {
		return Token{}, errors.New("the token response has no access token")
	}
	if t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer") {
		return Token{}, fmt.Errorf("the token response's token type is %q, not Bearer", t.TokenType)
	}
	tok := Token{Issuer: issuer, ClientID: clientID, TokenURL: tokenURL, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken}
	// expires_in, on our clock: oauth2's Expiry is on its own.
	if t.ExpiresIn > 0 {
		tok.Expiry = now.Add(time.Duration(t.ExpiresIn) * time.Second).UTC()
	} else if exp, ok := jwtExpiry(t.AccessToken); ok {
		// expires_in is only RECOMMENDED (RFC 6749 §5.1): without it
		// the token had no expiry, was never refreshed, and once it
		// expired every command got 401 until the user signed in again,
		// with a refresh token stored all along. Lockbox's tokens are
		// JWTs: their exp says when (on the provider's clock, which
		// RefreshMargin covers for a small skew).
		tok.Expiry = exp
	}
	return tok, nil
}

// jwtExpiry returns the exp claim of raw when it is a JWT that has one.
// The signature is not checked: the time only decides when to refresh,
// and the API verifies every token it is sent.
func jwtExpiry(raw string) (time.Time, bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp > float64(1<<40) {
		return time.Time{}, false
	}
	return time.Unix(int64(exp), 0).UTC(), true
}

// client is hc (defaultClient when nil), made to follow a redirect only
// within the origin (scheme, host and port) of the URL a request starts
// at: what goes to the identity provider (a refresh token, a device code,
// a code and its PKCE verifier) is resent on a 307 or 308, and must go
// neither in the clear nor to a server the discovery document did not
// name; a discovery document redirected elsewhere would name, believed,
// the endpoints it all goes to. It is the JWKS fetcher's origin rule
// (identity/jwksfetch.CheckRedirect), written out here so that the command
// line does not link the server's identity packages. A redirect to a
// Location that does not parse is refused without quoting it
// (origin.Transport): net/http's error would, password and all.
func client(hc *http.Client) *http.Client {
	if hc == nil {
		return defaultClient
	}
	c := *hc
	c.Transport = origin.Transport(hc.Transport)
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := sameOrigin(req, via); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return defaultRedirects(req, via)
	}
	return &c
}

var defaultClient = &http.Client{Timeout: 30 * time.Second, Transport: origin.Transport(nil), CheckRedirect: func(req *http.Request, via []*http.Request) error {
	if err := sameOrigin(req, via); err != nil {
		return err
	}
	return defaultRedirects(req, via)
}}

// sameOrigin refuses a redirect that leaves https, or the origin of the
// URL the request started at.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
	}
	if from, to := origin.Of(via[0].URL), origin.Of(req.URL); to != from {
		// Named by its origin only: never the user info a Location may
		// carry.
		return fmt.Errorf("redirect from %s to another origin (%s) refused", from, to)
	}
	return nil
}

// defaultRedirects is net/http's policy when CheckRedirect is nil.
func defaultRedirects(_ *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}
