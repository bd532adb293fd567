package identity

import (
	"context"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lockbox-oss/lockbox/internal/clock"
)

// tokenTypeCase is a token an identity provider issues for some purpose,
// signed with the issuer's own key, with Lockbox's audience and a subject
// holding a role, and what Verify must answer for it.
type tokenTypeCase struct {
	name       string
	tok        tok
	wantReason string // "" when it is accepted
}

// TestVerifyRefusesTokensThatAreNoAccessToken: an identity provider signs
// other JWTs than access tokens with the same keys and issuer, and often with
// the same audience: the ID token of a client whose id is the configured
// audience (Entra ID v2 and Google tokens name the client id, and one app
// registration often serves the admin center and the API), Keycloak's ID,
// refresh and offline tokens (marked by its "typ" claim), back-channel logout
// tokens and other security event tokens ("events"), or JWTs explicitly
// typed for something else (RFC 8725 §3.11). Each passes every claim check a
// Verifier makes, and none says who may call an API: each is refused. Access
// tokens, typed "JWT", "at+jwt" (RFC 9068) or not at all, still verify, and
// Keycloak's before version 25 and Azure AD B2C's, which copy the
// sign-in's nonce, too.
func TestVerifyRefusesTokensThatAreNoAccessToken(t *testing.T) {
	keys := newTestKeys(t)
	jwk := jose.JSONWebKey{Key: keys.ed.Public(), KeyID: "ed", Algorithm: string(jose.EdDSA), Use: "sig"}
	signed := func(edit func(c map[string]any), headers map[jose.HeaderKey]any) tok {
		return tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: edit, headers: headers}
	}
	typed := func(typ string) map[jose.HeaderKey]any { return map[jose.HeaderKey]any{"typ": typ} }
	idToken := func(c map[string]any) {
		c["nonce"] = "n-0S6_WzA2Mj"
		c["azp"] = testAudience
		c["at_hash"] = "77QmUPtjPfzWtF2AnpK9RQ"
	}
	keycloak := func(typ string, nonce bool) func(c map[string]any) {
		return func(c map[string]any) {
			c["typ"] = typ
			c["azp"] = "lockboxctl"
			if nonce {
				c["nonce"] = "n-0S6_WzA2Mj"
			}
		}
	}
	// Azure AD B2C copies the sign-in's nonce into the access tokens it
	// issues with the ID token; its scopes say what they are.
	b2c := func(c map[string]any) {
		c["nonce"] = "anyRandomValue"
		c["scp"] = "read"
		c["azp"] = "38307aee-303c-4fff-8087-d8d2a0d7f0a1"
		c["tfp"] = "B2C_1_signupsignin1"
		c["ver"] = "1.0"
	}
	logout := func(c map[string]any) {
		c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
		c["jti"] = "bWJq"
		c["sid"] = "08a5019c-17e1-4977-8f42-65a12843ea02"
	}
	cases := []tokenTypeCase{
		{name: "access token typed JWT", tok: signed(nil, nil)},
		{name: "access token typed at+jwt", tok: signed(nil, typed("at+jwt"))},
		{name: "access token typed application/at+jwt", tok: signed(nil, typed("application/at+jwt"))},
		{name: "access token typed AT+JWT", tok: signed(nil, typed("AT+JWT"))},
		{name: "access token typed jwt", tok: signed(nil, typed("jwt"))},
		{name: "access token not typed", tok: tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", noTyp: true}},
		{name: "Keycloak access token", tok: signed(keycloak("Bearer", false), nil)},
		{name: "Keycloak access token before 25, with the nonce", tok: signed(keycloak("Bearer", true), nil)},
		{name: "Azure AD B2C access token, with the nonce", tok: signed(b2c, nil)},
		{name: "RFC 9068 access token with a nonce and its scope", tok: signed(func(c map[string]any) { c["nonce"] = "n"; c["scope"] = "openid lockbox" }, typed("at+jwt"))},
		{name: "access token with other claims", tok: signed(func(c map[string]any) { c["scp"] = "lockbox.access"; c["azp"] = "lockboxctl"; c["jti"] = "x" }, nil)},

		{name: "OIDC ID token", tok: signed(idToken, nil), wantReason: "not an access token"},
		{name: "OIDC ID token not typed", tok: tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", noTyp: true, claims: idToken}, wantReason: "not an access token"},
		{name: "refreshed OIDC ID token", tok: signed(func(c map[string]any) { c["at_hash"] = "77QmUPtjPfzWtF2AnpK9RQ" }, nil), wantReason: "not an access token"},
		{name: "hybrid flow ID token", tok: signed(func(c map[string]any) { c["c_hash"] = "LDktKdoQak3Pk0cnXxCltA" }, nil), wantReason: "not an access token"},
		{name: "Keycloak ID token", tok: signed(keycloak("ID", false), nil), wantReason: "not an access token"},
		{name: "Keycloak ID token before 25", tok: signed(keycloak("ID", true), nil), wantReason: "not an access token"},
		{name: "Keycloak refresh token", tok: signed(keycloak("Refresh", false), nil), wantReason: "not an access token"},
		{name: "Keycloak offline token", tok: signed(keycloak("Offline", false), nil), wantReason: "not an access token"},
		{name: "Keycloak logout token", tok: signed(keycloak("Logout", false), nil), wantReason: "not an access token"},
		{name: "logout token typed JWT", tok: signed(logout, nil), wantReason: "not an access token"},
		{name: "logout token typed logout+jwt", tok: signed(logout, typed("logout+jwt")), wantReason: "token type not allowed"},
		{name: "security event token", tok: signed(logout, typed("secevent+jwt")), wantReason: "token type not allowed"},
		{name: "grant assertion type", tok: signed(nil, typed("lockbox-grant+jwt")), wantReason: "token type not allowed"},
		{name: "DPoP proof type", tok: signed(nil, typed("dpop+jwt")), wantReason: "token type not allowed"},
		{name: "empty type", tok: signed(nil, typed("")), wantReason: "token type not allowed"},
		{name: "type of another JSON type", tok: signed(nil, map[jose.HeaderKey]any{"typ": 1}), wantReason: "malformed token"},
	}
	runTokenTypeCases(t, jwk, nil, cases)
}

// TestVerifyRequiredTokenTypes: an issuer configured with token types
// accepts only tokens whose "typ" header is one of them, compared as RFC
// 7515 §4.1.9 has it (without case, "application/" optional); a token with
// no "typ" is refused. The refusals of tokens that are no access token hold
// whatever the types allowed.
func TestVerifyRequiredTokenTypes(t *testing.T) {
	keys := newTestKeys(t)
	jwk := jose.JSONWebKey{Key: keys.ed.Public(), KeyID: "ed", Algorithm: string(jose.EdDSA), Use: "sig"}
	signed := func(typ string, edit func(c map[string]any)) tok {
		return tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: edit, headers: map[jose.HeaderKey]any{"typ": typ}}
	}
	cases := []tokenTypeCase{
		{name: "at+jwt", tok: signed("at+jwt", nil)},
		{name: "application/at+jwt", tok: signed("application/at+jwt", nil)},
		{name: "Application/AT+JWT", tok: signed("Application/AT+JWT", nil)},
		{name: "JWT", tok: signed("JWT", nil), wantReason: "token type not allowed"},
		{name: "not typed", tok: tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", noTyp: true}, wantReason: "token type not allowed"},
		{name: "at+jwt with a nonce", tok: signed("at+jwt", func(c map[string]any) { c["nonce"] = "n" }), wantReason: "not an access token"},
	}
	runTokenTypeCases(t, jwk, func(is *IssuerConfig) { is.TokenTypes = []string{"at+jwt"} }, cases)

	for _, types := range [][]string{{""}, {"at+jwt", " "}, {"application/"}} {
		cfg := Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, Scope: SharedScope(),
			JWKSFile: "unused.json", TokenTypes: types}}}
		if err := cfg.CheckAndSetDefaults(); err == nil {
			t.Errorf("token types %q: configuration accepted", types)
		}
	}
}

// runTokenTypeCases verifies each case's token twice, with a verifier that
// remembers verified tokens and one that doesn't, over a real JWKS URL; edit,
// when not nil, changes the issuer's configuration. A token refused the first
// time must be refused the second: refusals are never remembered.
func runTokenTypeCases(t *testing.T, jwk jose.JSONWebKey, edit func(*IssuerConfig), cases []tokenTypeCase) {
	t.Helper()
	idp := newJWKSServer(t, jwk)
	clk := clock.NewFake(testNow)
	for name, size := range map[string]int{"cached": 0, "uncached": -1} {
		is := IssuerConfig{Issuer: testIssuer, Audience: testAudience, Scope: SharedScope(), JWKSURL: idp.URL}
		if edit != nil {
			edit(&is)
		}
		v, err := NewVerifier(Config{Fetcher: newFetcher(t), Now: clk.Now, CacheSize: size, Issuers: []IssuerConfig{is}})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					raw := c.tok.sign(t)
					want := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}
					for range 2 {
						p, err := v.Verify(context.Background(), raw)
						checkResult(t, p, err, want, c.wantReason)
					}
				})
			}
		})
	}
}
