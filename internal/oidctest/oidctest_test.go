package oidctest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// noRedirects is a client that stops at the provider's redirect, as a test
// browser would look at it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func oauthConfig(t *testing.T, p *oidctest.Provider, ctx context.Context) (*oidc.Provider, *oauth2.Config) {
	t.Helper()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	return op, &oauth2.Config{ClientID: p.ClientID(), ClientSecret: p.ClientSecret(), Endpoint: op.Endpoint(),
		RedirectURL: "http://127.0.0.1:1/callback", Scopes: []string{oidc.ScopeOpenID, "email"}}
}

// authorize follows the authorization endpoint and returns its redirect's
// query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s", resp.Status)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestCodeFlow(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{})
	ctx := context.Background()
	op, oc := oauthConfig(t, p, ctx)
	gina := oidctest.User{Subject: "gina", Claims: map[string]any{"email": "gina@contoso.example", "roles": []string{"global-admin"}}}

	verifier := oauth2.GenerateVerifier()
	p.QueueUser(gina)
	q := authorize(t, oc.AuthCodeURL("st", oidc.Nonce("n0nce"), oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st" || q.Get("iss") != p.Issuer() || q.Get("code") == "" {
		t.Fatalf("redirect back: %v", q)
	}
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: p.ClientID()}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	if err := idt.Claims(&claims); err != nil || idt.Subject != "gina" || idt.Nonce != "n0nce" || claims.Email != "gina@contoso.example" || claims.Roles[0] != "global-admin" {
		t.Fatalf("ID token %+v %+v %v", idt, claims, err)
	}
	// The access token is for the API's audience.
	at, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var ac map[string]any
	if err := json.Unmarshal(at.UnsafePayloadWithoutVerification(), &ac); err != nil || ac["aud"] != p.Audience() || ac["sub"] != "gina" || ac["iss"] != p.Issuer() {
		t.Fatalf("access token claims %v %v", ac, err)
	}

	// The code is used once.
	if _, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("second exchange: %v", err)
	}
	// The refresh token gets new tokens, once.
	next, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || next.AccessToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %+v %v", next, err)
	}
	if _, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a used refresh token worked again")
	}

	t.Run("wrong verifier", func(t *testing.T) {
		p.QueueUser(gina)
		q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		_, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if err == nil || !strings.Contains(err.Error(), "code_verifier does not match") {
			t.Fatalf("exchange: %v", err)
		}
	})
	t.Run("no PKCE", func(t *testing.T) {
		if q := authorize(t, oc.AuthCodeURL("st")); q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Fatalf("redirect back: %v", q)
		}
	})
	t.Run("nobody queued", func(t *testing.T) {
		if q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))); q.Get("error") != "login_required" {
			t.Fatalf("redirect back: %v", q)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		p.QueueUser(gina)
		q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		bad := *oc
		bad.ClientSecret = "nope"
		if _, err := bad.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("exchange: %v", err)
		}
	})
}

func TestDeviceFlow(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{})
	ctx := context.Background()
	_, oc := oauthConfig(t, p, ctx)
	oc.ClientSecret = "" // a CLI is a public client
	da, err := oc.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if da.UserCode == "" || !strings.HasPrefix(da.VerificationURI, p.Issuer()) {
		t.Fatalf("device authorization %+v", da)
	}
	// Pending until the user approves.
	pctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = oc.DeviceAccessToken(pctx, da)
	cancel()
	if err == nil {
		t.Fatal("a token before approval")
	}
	if err := p.ApproveDevice(da.UserCode, oidctest.User{Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	tok, err := oc.DeviceAccessToken(ctx, da)
	if err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("device token %+v %v", tok, err)
	}
	if _, err := oc.DeviceAccessToken(ctx, da); err == nil {
		t.Fatal("the device code worked twice")
	}
}

func TestKeyRotation(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{})
	kids := func() []string {
		resp, err := http.Get(p.JWKSURL())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KeyID)
		}
		return out
	}
	first := p.KeyID()
	second, err := p.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(); len(got) != 2 || got[0] != first || got[1] != second {
		t.Fatalf("after rotation: %v", got)
	}
	tok := p.AccessToken(oidctest.User{Subject: "alice"})
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || jws.Signatures[0].Header.KeyID != second {
		t.Fatalf("signed with %v, want %s (%v)", jws.Signatures[0].Header.KeyID, second, err)
	}
	p.RetireKeys()
	if got := kids(); len(got) != 1 || got[0] != second {
		t.Fatalf("after retiring: %v", got)
	}
	// A retired key still signs when asked to, unpublished.
	if err := p.SignWithKey(first); err != nil {
		t.Fatal(err)
	}
	jws, err = jose.ParseSigned(p.AccessToken(oidctest.User{Subject: "alice"}), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || jws.Signatures[0].Header.KeyID != first {
		t.Fatalf("signed with %v, want the retired %s (%v)", jws.Signatures[0].Header.KeyID, first, err)
	}
	if got := kids(); len(got) != 1 || got[0] != second {
		t.Fatalf("signing with a retired key published it again: %v", got)
	}
	if err := p.SignWithKey("no-such-key"); err == nil {
		t.Error("SignWithKey took a key the provider never had")
	}
}

// TestPublicClient: the public client needs no secret, and what it was
// issued (codes, refresh tokens) is its own: the confidential client can't
// redeem it, nor it what was issued to the confidential client.
func TestPublicClient(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{PublicClientID: "cli"})
	ctx := context.Background()
	_, conf := oauthConfig(t, p, ctx)
	pub := *conf
	pub.ClientID, pub.ClientSecret = "cli", ""
	pub.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier := oauth2.GenerateVerifier()
	u := oidctest.User{Subject: "alice"}

	p.QueueUser(u)
	q := authorize(t, pub.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("the confidential client redeemed the public client's code: %v", err)
	}
	p.QueueUser(u)
	q = authorize(t, pub.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	tok, err := pub.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("the public client's exchange: %+v %v", tok, err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the confidential client used the public client's refresh token")
	}
	// (That attempt spent it: refresh tokens are used once.)
	p.QueueUser(u)
	q = authorize(t, pub.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if tok, err = pub.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("the public client's refresh: %v", err)
	}

	// And the other way round.
	p.QueueUser(u)
	q = authorize(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if _, err := pub.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("the public client redeemed the confidential client's code")
	}
	// A secret doesn't make the public client confidential.
	bad := pub
	bad.ClientSecret = p.ClientSecret()
	p.QueueUser(u)
	q = authorize(t, pub.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if _, err := bad.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("the public client with a secret: %v", err)
	}
}

func TestNoDeviceFlow(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{NoDeviceFlow: true})
	op, err := oidc.NewProvider(context.Background(), p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	if op.Endpoint().DeviceAuthURL != "" {
		t.Fatalf("discovery names a device endpoint: %s", op.Endpoint().DeviceAuthURL)
	}
	resp, err := http.Post(p.DeviceAuthorizationEndpoint(), "application/x-www-form-urlencoded", strings.NewReader("client_id=lockbox"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("device endpoint: %s", resp.Status)
	}
}

// TestRegisteredRedirectURIs: once a client's redirect URIs are registered,
// the provider sends codes to those only, as the console's mix-up test
// needs a real provider to.
func TestRegisteredRedirectURIs(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{})
	_, oc := oauthConfig(t, p, context.Background())
	gina := oidctest.User{Subject: "gina"}
	p.RegisterRedirectURIs(oc.RedirectURL)
	p.QueueUser(gina)
	if q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); q.Get("code") == "" {
		t.Fatalf("registered redirect URI: %v", q)
	}
	other := *oc
	other.RedirectURL = "http://127.0.0.1:1/callback/elsewhere"
	resp, err := noRedirects.Get(other.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("unregistered redirect URI: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
}

// TestNoIssParameter: a provider without RFC 9207 neither sends "iss" back
// nor says it would.
func TestNoIssParameter(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{NoIssParameter: true})
	op, oc := oauthConfig(t, p, context.Background())
	var d map[string]any
	if err := op.Claims(&d); err != nil {
		t.Fatal(err)
	}
	if _, ok := d["authorization_response_iss_parameter_supported"]; ok {
		t.Error("the discovery document promises iss")
	}
	p.QueueUser(oidctest.User{Subject: "gina"})
	if q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); q.Get("code") == "" || q.Has("iss") {
		t.Fatalf("redirect back: %v", q)
	}
}

// TestEndSession: with EndSession, the discovery document names an
// end-session endpoint that takes an ID token of the provider's as its
// hint, checks client_id against it and sends the browser back to a
// registered post-logout redirect URI with the state; without it, the
// document names none.
func TestEndSession(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{EndSession: true})
	ctx := context.Background()
	op, oc := oauthConfig(t, p, ctx)
	var d struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := op.Claims(&d); err != nil || d.EndSession != p.EndSessionEndpoint() || d.EndSession != p.Issuer()+"/logout" {
		t.Fatalf("end_session_endpoint %q, want %q (%v)", d.EndSession, p.EndSessionEndpoint(), err)
	}
	verifier := oauth2.GenerateVerifier()
	p.QueueUser(oidctest.User{Subject: "gina"})
	q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken := tok.Extra("id_token").(string)
	const back = "http://127.0.0.1:1/signed-out"
	p.RegisterPostLogoutRedirectURIs(back)
	endSession := func(v url.Values) *http.Response {
		t.Helper()
		resp, err := noRedirects.Get(p.EndSessionEndpoint() + "?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	for name, v := range map[string]url.Values{
		"hint of another issuer":      {"id_token_hint": {p.AccessToken(oidctest.User{Subject: "gina"}) + "x"}},
		"client_id not the hint's":    {"id_token_hint": {idToken}, "client_id": {"other"}},
		"unregistered redirect URI":   {"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://127.0.0.1:1/elsewhere"}},
		"redirect URI without client": {"post_logout_redirect_uri": {back}},
	} {
		if resp := endSession(v); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s", name, resp.Status)
		}
	}
	if l := p.Logouts(); len(l) != 0 {
		t.Fatalf("refused requests recorded: %+v", l)
	}

	resp := endSession(url.Values{"id_token_hint": {idToken}, "client_id": {p.ClientID()}, "post_logout_redirect_uri": {back}, "state": {"s1"}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != back+"?state=s1" {
		t.Fatalf("end session: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	want := oidctest.Logout{IDTokenHint: idToken, Subject: "gina", ClientID: p.ClientID(), PostLogoutRedirectURI: back, State: "s1"}
	if l := p.Logouts(); len(l) != 1 || l[0] != want {
		t.Fatalf("logouts %+v", l)
	}

	plain := oidctest.Start(t, oidctest.Config{})
	if plain.EndSessionEndpoint() != "" {
		t.Errorf("a provider without EndSession names %q", plain.EndSessionEndpoint())
	}
	pop, _ := oauthConfig(t, plain, ctx)
	d.EndSession = ""
	if err := pop.Claims(&d); err != nil || d.EndSession != "" {
		t.Errorf("its discovery document names %q (%v)", d.EndSession, err)
	}
}

// TestUpdateUserAndRevoke: a refresh token issued before an account changed
// gets tokens of the account as it is now; a revoked one gets none.
func TestUpdateUserAndRevoke(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{})
	ctx := context.Background()
	op, oc := oauthConfig(t, p, ctx)
	verify := op.Verifier(&oidc.Config{ClientID: p.ClientID()})
	signIn := func(u oidctest.User) *oauth2.Token {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		p.QueueUser(u)
		q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	refresh := func(rt string) (sub string, roles []string, next string, err error) {
		t.Helper()
		tok, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			return "", nil, "", err
		}
		idt, err := verify.Verify(ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Roles []string }
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		return idt.Subject, c.Roles, tok.RefreshToken, nil
	}
	mgr := oidctest.User{Subject: "mia", Claims: map[string]any{"roles": []string{"operator", "support-manager"}}}
	tok := signIn(mgr)
	other := signIn(oidctest.User{Subject: "otto", Claims: map[string]any{"roles": []string{"operator"}}})

	p.UpdateUser("mia", oidctest.User{Subject: "mia", Claims: map[string]any{"roles": []string{"operator"}}})
	sub, roles, rt, err := refresh(tok.RefreshToken)
	if err != nil || sub != "mia" || strings.Join(roles, " ") != "operator" {
		t.Fatalf("refresh after the update: %s %v %v", sub, roles, err)
	}
	// The rotated token keeps the update.
	if sub, roles, rt, err = refresh(rt); err != nil || sub != "mia" || strings.Join(roles, " ") != "operator" {
		t.Fatalf("second refresh: %s %v %v", sub, roles, err)
	}

	// Another subject: the provider answers with someone else's tokens.
	p.UpdateUser("mia", oidctest.User{Subject: "eve"})
	if sub, _, rt, err = refresh(rt); err != nil || sub != "eve" {
		t.Fatalf("refresh after the swap: %s %v", sub, err)
	}

	if n := p.RevokeRefreshTokens("eve"); n != 1 {
		t.Errorf("revoked %d of eve's refresh tokens, want 1", n)
	}
	if _, _, _, err := refresh(rt); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("a revoked refresh token: %v", err)
	}
	// Others' tokens are untouched.
	if sub, _, _, err := refresh(other.RefreshToken); err != nil || sub != "otto" {
		t.Errorf("otto's refresh: %s %v", sub, err)
	}
}

// TestNoOfflineAccess: such a provider does not offer offline_access and
// issues no refresh token.
func TestNoOfflineAccess(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{NoOfflineAccess: true})
	ctx := context.Background()
	op, oc := oauthConfig(t, p, ctx)
	var d struct {
		Scopes []string `json:"scopes_supported"`
	}
	if err := op.Claims(&d); err != nil || slices.Contains(d.Scopes, "offline_access") || !slices.Contains(d.Scopes, "openid") {
		t.Errorf("scopes_supported %v %v", d.Scopes, err)
	}
	verifier := oauth2.GenerateVerifier()
	p.QueueUser(oidctest.User{Subject: "gina"})
	q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.Extra("id_token") == nil || tok.RefreshToken != "" {
		t.Fatalf("exchange: refresh token %q, %v", tok.RefreshToken, err)
	}
}

// TestPromptNone: an authorization request with prompt=none signs in,
// without a queued user, the user the hint names while that user's session
// at the provider lives (from an earlier sign-in, until EndUserSession), and
// answers login_required otherwise; FailPromptNone makes it answer another
// error, as a provider wanting its user's interaction does.
func TestPromptNone(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{})
	ctx := context.Background()
	op, oc := oauthConfig(t, p, ctx)
	gina := oidctest.User{Subject: "gina", Claims: map[string]any{"roles": []string{"global-admin"}}}
	verifier := oauth2.GenerateVerifier()
	silent := func(hint oauth2.AuthCodeOption) url.Values {
		t.Helper()
		return authorize(t, oc.AuthCodeURL("st", oidc.Nonce("n2"), oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none"), hint))
	}
	byName := oauth2.SetAuthURLParam("login_hint", "gina")

	// Nobody signed in at the provider yet.
	if q := silent(byName); q.Get("error") != "login_required" || q.Get("code") != "" || q.Get("state") != "st" {
		t.Fatalf("prompt=none before any sign-in: %v", q)
	}
	p.QueueUser(gina)
	q := authorize(t, oc.AuthCodeURL("st", oidc.Nonce("n1"), oauth2.S256ChallengeOption(verifier)))
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken := tok.Extra("id_token").(string)

	// The queue is not consulted: gina's session answers, twice.
	p.QueueUser(oidctest.User{Subject: "queued"})
	for _, hint := range []oauth2.AuthCodeOption{byName, oauth2.SetAuthURLParam("id_token_hint", idToken)} {
		q := silent(hint)
		if q.Get("code") == "" || q.Get("error") != "" {
			t.Fatalf("prompt=none with gina signed in: %v", q)
		}
		tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := op.Verifier(&oidc.Config{ClientID: p.ClientID()}).Verify(ctx, tok.Extra("id_token").(string))
		if err != nil || idt.Subject != "gina" || idt.Nonce != "n2" {
			t.Fatalf("ID token of the silent sign-in: %+v %v", idt, err)
		}
	}
	if q := silent(oauth2.SetAuthURLParam("login_hint", "someone")); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none for a user not signed in: %v", q)
	}
	if q := silent(oauth2.SetAuthURLParam("id_token_hint", "not-a-token")); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none with a bad hint: %v", q)
	}
	if q := silent(oauth2.SetAuthURLParam("prompt", "none")); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none without a hint: %v", q)
	}

	p.FailPromptNone("interaction_required")
	if q := silent(byName); q.Get("error") != "interaction_required" || q.Get("code") != "" {
		t.Fatalf("prompt=none told to fail: %v", q)
	}
	p.FailPromptNone("")
	if q := silent(byName); q.Get("code") == "" {
		t.Fatalf("prompt=none no longer told to fail: %v", q)
	}

	p.EndUserSession("gina")
	if q := silent(byName); q.Get("error") != "login_required" || q.Get("code") != "" {
		t.Fatalf("prompt=none after gina's session ended: %v", q)
	}
	// The queued user is still there for an interactive sign-in.
	if q := authorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))); q.Get("code") == "" {
		t.Fatalf("interactive sign-in: %v", q)
	}
}

// TestFailJWKS: while FailJWKS is set, the JWKS endpoint answers that
// status, and a client that meets a new key can't verify its tokens.
func TestFailJWKS(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{})
	get := func() int {
		t.Helper()
		resp, err := http.Get(p.JWKSURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != http.StatusOK {
		t.Fatalf("JWKS: %d", s)
	}
	p.FailJWKS(http.StatusServiceUnavailable)
	if s := get(); s != http.StatusServiceUnavailable {
		t.Fatalf("JWKS told to fail: %d", s)
	}
	p.FailJWKS(0)
	if s := get(); s != http.StatusOK {
		t.Fatalf("JWKS no longer told to fail: %d", s)
	}
}
