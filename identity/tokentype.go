package identity

import (
	"encoding/json"
	"strings"
)

// An identity provider signs more than access tokens with the keys, issuer
// and often the audience Lockbox checks: ID tokens (whose audience is the
// client id, which is the API's audience when one app registration serves
// both, as Entra ID v2 and Google make common), refresh and logout tokens,
// security event tokens. Each would pass every other check, and none says
// who may call an API: an ID token, for one, reaches whoever the user signs
// in to, and the admin center hands its own to the browser at sign-out.
// These checks run where the signature is checked, never on a remembered
// token: a token's bytes, and so what it is, don't change.

// accessTypes are the "typ" headers of access tokens: the JWT most identity
// providers write, and RFC 9068's "at+jwt". A token without "typ" is one
// too (Okta, Cognito). Any other type is explicit typing (RFC 8725 §3.11)
// for something else: "logout+jwt", "secevent+jwt", "dpop+jwt", Lockbox's
// own grant assertions.
var accessTypes = []string{"JWT", "at+jwt"}

// checkTokenType refuses a token whose "typ" header is not one of allowed
// (IssuerConfig.TokenTypes) or, with none allowed, not an access token's.
func checkTokenType(hdr map[string]json.RawMessage, allowed []string) error {
	raw, ok := hdr["typ"]
	if !ok {
		if len(allowed) > 0 {
			return errTokenType
		}
		return nil
	}
	// The type as it is written, without decoding it: most tokens verified
	// are new ones, and this costs them no allocation. One with escapes, or
	// no string, is decoded (and refused if it isn't one).
	typ := string(raw)
	if len(typ) >= 2 && typ[0] == '"' && typ[len(typ)-1] == '"' && !strings.ContainsAny(typ[1:len(typ)-1], "\\\"") {
		typ = typ[1 : len(typ)-1]
	} else {
		var err error
		if typ, err = headerString(hdr, "typ"); err != nil {
			return errMalformed
		}
	}
	if len(allowed) == 0 {
		allowed = accessTypes
	}
	for _, t := range allowed {
		if sameType(typ, t) {
			return nil
		}
	}
	return errTokenType
}

// sameType reports whether the "typ" values a and b name one media type:
// RFC 7515 §4.1.9 compares them without case and lets "application/" be
// left out of a type with no other "/".
func sameType(a, b string) bool {
	return strings.EqualFold(shortType(a), shortType(b))
}

func shortType(t string) string {
	const prefix = "application/"
	if len(t) > len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) && !strings.Contains(t[len(prefix):], "/") {
		return t[len(prefix):]
	}
	return t
}

// keycloakOtherTypes are the values of Keycloak's "typ" claim on the tokens
// it signs besides access tokens ("Bearer"). Keycloak types every token it
// issues in this claim, and the "typ" header of each is "JWT".
var keycloakOtherTypes = []string{"ID", "Refresh", "Offline", "Logout"}

// checkAccessClaims refuses verified claims that mark a token issued for
// something else than calling an API:
//   - "events": a logout token (OpenID Connect Back-Channel Logout) or
//     another security event token (RFC 8417);
//   - Keycloak's "typ" claim naming another kind of token;
//   - the claims only ID tokens carry (idTokenClaims), in a token that
//     grants no scopes. Keycloak before version 25 copied the nonce into
//     its access tokens, which its "typ" claim then says are "Bearer",
//     and Azure AD B2C does, into tokens that carry "scp".
func checkAccessClaims(claims map[string]json.RawMessage) error {
	if _, ok := claims["events"]; ok {
		return errNotAccessToken
	}
	typ, err := claimString(claims, "typ")
	if err != nil {
		return errMalformedClaims
	}
	for _, t := range keycloakOtherTypes {
		if strings.EqualFold(typ, t) {
			return errNotAccessToken
		}
	}
	if strings.EqualFold(typ, "Bearer") {
		return nil
	}
	// The scopes granted (RFC 9068's "scope", Entra ID's and Okta's "scp")
	// are an access token's: no ID token carries them. Azure AD B2C copies
	// the sign-in's nonce into the access tokens it issues with an ID
	// token, which these tell apart.
	for _, c := range accessTokenClaims {
		if _, ok := claims[c]; ok {
			return nil
		}
	}
	for _, c := range idTokenClaims {
		if _, ok := claims[c]; ok {
			return errNotAccessToken
		}
	}
	return nil
}

// accessTokenClaims carry the scopes an access token grants.
var accessTokenClaims = []string{"scope", "scp"}

// idTokenClaims are defined for ID tokens only (OpenID Connect Core 1.0
// §2, §3.1.3.6, §3.3.2.11; FAPI 1.0 "s_hash"): "nonce" binds one to the
// sign-in that asked for it, the hashes to the access token, code or state
// it came with. An ID token refreshed without a nonce (Entra ID, Keycloak
// from 25) often still has "at_hash".
var idTokenClaims = []string{"nonce", "at_hash", "c_hash", "s_hash"}
