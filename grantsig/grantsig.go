// Package grantsig makes and checks the grant assertion: the header the
// proxy adds to every forwarded call, X-Lockbox-Grant, so that an upstream
// service can check for itself that a call comes through Lockbox, under an
// approved and unexpired lockbox request for its tenant, and that the
// assertion was issued for this very call: its method and path (not its
// query string or body; an upstream that remembers each "jti" until "exp"
// refuses any second use).
//
// The assertion is a compact JWS (a JWT, RFC 7519) signed with EdDSA
// (Ed25519, RFC 8037) or ES256 (ECDSA P-256), whichever key the proxy has,
// or, for an upstream given a secret of its own, keyed with HS256 (see
// AlgHS256); its header names the key ("kid", the key's RFC 7638
// thumbprint) and the type "lockbox-grant+jwt". Its claims (see Claims) bind it to one call:
// the method and path the upstream receives, the audit record written for
// the call ("jti") and a lifetime of at most MaxTTL. An upstream verifies
// it with any JWT library and the proxy's public keys, published as a JWKS
// (see JWKS); Verify does the same for Go upstreams.
//
// The same keys sign the seals of the tenants' audit chains (SignSeal,
// VerifySeal): a seal names the newest entry of a tenant's chain and its
// hash, under a type of its own ("lockbox-audit-seal+jwt"), so that neither
// kind of token can pass for the other. Tenants check seals, as upstreams
// check assertions, against the published keys.
//
// It imports nothing from Lockbox, so upstream services can use it alone.
package grantsig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Header is the name of the header carrying the assertion.
const Header = "X-Lockbox-Grant"

// Type is the assertion's JOSE "typ": an explicit type (RFC 8725 §3.11),
// so that no other JWT, such as an operator's access token, can pass for a
// grant assertion, nor an assertion for an access token.
const Type = "lockbox-grant+jwt"

// The signing algorithms ("alg"): one per key type.
const (
	AlgEdDSA = "EdDSA" // Ed25519 keys
	AlgES256 = "ES256" // ECDSA P-256 keys
)

// DefaultIssuer is the "iss" of a proxy with no configured issuer.
const DefaultIssuer = "lockbox"

// MaxTTL is the longest an assertion may live, from "iat" to "exp". It
// covers the trip from the proxy to the upstream and their clocks'
// difference, and nothing more: an assertion is for one call, now.
const MaxTTL = 60 * time.Second

// DefaultLeeway is the clock difference Verify tolerates when Expect.Leeway
// is zero and Expect.NoLeeway unset.
const DefaultLeeway = 5 * time.Second

// Claims are what an assertion asserts. The registered claims keep their
// JWT meaning; the others are Lockbox's.
type Claims struct {
	// Issuer ("iss") names the Lockbox deployment (the proxy's configured
	// issuer, "lockbox" by default).
	Issuer string `json:"iss"`
	// Subject ("sub") is the identity the upstream sees: "Microsoft
	// Operator", never the engineer.
	Subject string `json:"sub"`
	// Audience ("aud") is the service the call is for, e.g. "exchange".
	Audience string `json:"aud"`
	// Tenant is the tenant whose data the call reaches.
	Tenant string `json:"tenant"`
	// Service is the service the grant is for (the same as Audience).
	Service string `json:"service"`
	// RequestID is the lockbox request that was approved.
	RequestID string `json:"request_id"`
	// AuditID ("jti") is the Id of the audit record written for this call
	// before it was forwarded: unique per call, so an upstream may also
	// remember it until "exp" and refuse a second call with it.
	AuditID string `json:"jti"`
	// Activity is the call's activity in the catalog (e.g. "Get-Mailbox"),
	// one the request's approval covers.
	Activity string `json:"activity"`
	// Method is the call's HTTP method.
	Method string `json:"method"`
	// Path is the path the upstream receives: the canonical path the
	// policy judged, under the upstream's base path. It has no
	// percent-encoding, so it equals both the decoded and the escaped path.
	Path string `json:"path"`
	// IssuedAt ("iat") and ExpiresAt ("exp") are Unix times in seconds.
	// ExpiresAt is at most MaxTTL after IssuedAt and never after the
	// grant's own end.
	IssuedAt  int64 `json:"iat"`
	ExpiresAt int64 `json:"exp"`
}

// joseHeader is the JWS protected header of an assertion.
type joseHeader struct {
	Algorithm string `json:"alg"`
	KeyID     string `json:"kid"`
	Type      string `json:"typ"`
}

// ErrInvalid is wrapped by every error Verify returns for an assertion
// that does not verify or does not fit the call.
var ErrInvalid = errors.New("grantsig: invalid grant assertion")

// b64 is the JWS encoding: base64url without padding. Decoding is strict,
// so an assertion has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// maxAssertion bounds what Verify parses.
const maxAssertion = 8 << 10

// Expect is what the upstream knows about the call it received, which the
// assertion must match. Issuer, Audience, Method and Path are required.
type Expect struct {
	// Issuer is the proxy's configured issuer ("lockbox" by default).
	Issuer string
	// Audience is the upstream's own service name, e.g. "exchange".
	Audience string
	// Method is the received request's method.
	Method string
	// Path is the received request's path as it arrived, escaped
	// (url.URL.EscapedPath).
	Path string
	// Leeway is the clock difference tolerated on "iat" and "exp";
	// DefaultLeeway when zero, unless NoLeeway is set.
	Leeway time.Duration
	// NoLeeway tolerates no clock difference: "iat" and "exp" are held to
	// the second. Leeway must then be zero. A field of its own, as a zero
	// Leeway already means DefaultLeeway to every upstream that leaves it
	// unset.
	NoLeeway bool
}

// Verify checks an assertion: its signature by a key of keys (the one its
// "kid" names, with that key's algorithm only), its type, that it is in
// force at now and lives no longer than MaxTTL, and that it was issued by
// want.Issuer for want.Audience and for this call (want.Method and
// want.Path). It returns the claims, or an error wrapping ErrInvalid; when
// the signature verified but the claims do not fit, it returns them with
// the error, for the upstream's log, never as an authorization.
func Verify(keys *KeySet, token string, want Expect, now time.Time) (Claims, error) {
	if keys == nil || want.Issuer == "" || want.Audience == "" || want.Method == "" || want.Path == "" {
		return Claims{}, errors.New("grantsig: Verify needs a key set and the expected issuer, audience, method and path")
	}
	if want.NoLeeway && want.Leeway != 0 {
		return Claims{}, fmt.Errorf("grantsig: Verify's expectation has a Leeway of %s and NoLeeway", want.Leeway)
	}
	leeway := want.Leeway
	if leeway == 0 && !want.NoLeeway {
		leeway = DefaultLeeway
	}
	_, c64, err := checkJWS(keys, Type, token)
	if err != nil {
		return Claims{}, err
	}
	var c Claims
	if err := decodeSegment(c64, &c, false); err != nil {
		return Claims{}, invalid("malformed claims")
	}
	iat, exp := time.Unix(c.IssuedAt, 0), time.Unix(c.ExpiresAt, 0)
	switch {
	case c.Tenant == "" || c.Service == "" || c.RequestID == "" || c.AuditID == "" || c.Activity == "" || c.Subject == "":
		return c, invalid("a claim is missing")
	case c.Issuer != want.Issuer:
		return c, invalid("issued by %q, not %q", c.Issuer, want.Issuer)
	case c.Audience != want.Audience:
		return c, invalid("for %q, not %q", c.Audience, want.Audience)
	case c.ExpiresAt <= c.IssuedAt || exp.Sub(iat) > MaxTTL:
		return c, invalid("lifetime %ds is not within (0, %s]", c.ExpiresAt-c.IssuedAt, MaxTTL)
	case !now.Before(exp.Add(leeway)):
		return c, invalid("expired at %s", exp.UTC().Format(time.RFC3339))
	case iat.After(now.Add(leeway)):
		return c, invalid("issued in the future (%s)", iat.UTC().Format(time.RFC3339))
	case c.Method != want.Method || c.Path != want.Path:
		// A replay of an assertion for another call.
		return c, invalid("issued for %s %s, not this call (%s %s)", c.Method, c.Path, want.Method, want.Path)
	}
	return c, nil
}

// ErrUnknownKey is wrapped, with ErrInvalid, by the errors of a token
// signed by a key the set does not hold: it may be a retired key whose
// public half is no longer published, so the token can be neither trusted
// nor shown forged.
var ErrUnknownKey = errors.New("signed by a key not in the set")

// checkJWS checks the header and the signature of token, a compact JWS
// of type typ: its key is one of keys (the one its "kid" names), with
// that key's algorithm only. It returns the kid and the encoded claims,
// which only the signature's check makes worth decoding (with
// ErrUnknownKey, they are returned unchecked).
func checkJWS(keys *KeySet, typ, token string) (kid, c64 string, err error) {
	if len(token) > maxAssertion || strings.Count(token, ".") != 2 {
		return "", "", invalid("not a compact JWS")
	}
	h64, rest, _ := strings.Cut(token, ".")
	c64, s64, _ := strings.Cut(rest, ".")
	var h joseHeader
	if err := decodeSegment(h64, &h, true); err != nil {
		return "", "", invalid("malformed header")
	}
	k, ok := keys.keys[h.KeyID]
	switch {
	case !ok:
		// The claims go with the error, for callers that must know what
		// a token by a retired key claimed (VerifySeal); never trusted.
		return h.KeyID, c64, fmt.Errorf("%w: %w (kid %q)", ErrInvalid, ErrUnknownKey, h.KeyID)
	case h.Algorithm != k.alg:
		// The key decides the algorithm, never the token: no "none", no
		// algorithm confusion.
		return h.KeyID, "", invalid("algorithm %q does not match key %s (%s)", h.Algorithm, h.KeyID, k.alg)
	case h.Type != typ:
		return h.KeyID, "", invalid("type %q is not %q", h.Type, typ)
	}
	sig, err := b64.DecodeString(s64)
	if err != nil || !k.verify([]byte(token[:len(h64)+1+len(c64)]), sig) {
		return h.KeyID, "", invalid("bad signature")
	}
	return h.KeyID, c64, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// decodeSegment decodes one base64url JSON segment into v. The header must
// have no member beyond alg, kid and typ: a "crit" or an embedded key
// ("jwk", "jku", "x5u") is refused rather than ignored.
func decodeSegment(seg string, v any, strict bool) error {
	b, err := b64.DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// verifyKey is one key of a KeySet with the algorithm it verifies: a
// public key, or an upstream's HS256 secret.
type verifyKey struct {
	alg    string
	ed     ed25519.PublicKey
	ec     *ecdsa.PublicKey
	secret []byte
}

func (k verifyKey) verify(input, sig []byte) bool {
	switch k.alg {
	case AlgEdDSA:
		return ed25519.Verify(k.ed, input, sig)
	case AlgHS256:
		return verifyMAC(k.secret, input, sig)
	case AlgES256:
		// JWS carries r||s, 32 bytes each (RFC 7518 §3.4), not ASN.1.
		if len(sig) != 64 {
			return false
		}
		d := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, d[:], r, s)
	}
	return false
}
