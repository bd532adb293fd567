package grantsig

import (
	"encoding/json"
	"errors"
	"time"
)

// SealType is the JOSE "typ" of an audit seal: a type of its own, so that
// a seal can never pass for a grant assertion (Verify wants Type), nor an
// assertion for a seal.
const SealType = "lockbox-audit-seal+jwt"

// SealClaims are what a seal asserts: that the proxy's key saw the
// tenant's audit chain end, at IssuedAt, with the entry Through whose
// chain hash is Hash. Every record up to that entry is covered by Hash,
// so a seal makes them evidence that whoever can write to Redis can't
// rewrite, recomputing the hashes, without the signing key.
type SealClaims struct {
	// Issuer ("iss") names the Lockbox deployment, as in assertions.
	Issuer string `json:"iss"`
	// Tenant is the tenant whose chain is sealed.
	Tenant string `json:"tenant"`
	// Through is the stream id of the sealed entry.
	Through string `json:"sealed_through"`
	// Hash is the sealed entry's chain hash ("h").
	Hash string `json:"h"`
	// IssuedAt ("iat") is when the seal was made, in Unix seconds.
	IssuedAt int64 `json:"iat"`
	// Anchor is the chain's anchor when the seal was made ("<stream id>
	// <hash>" of the last record retention had removed; "" for none), and
	// AnchorsBound says the sealer that made it keeps, with every anchor
	// it sets, the record the anchor is the hash of: an anchor set since,
	// without that record, was not set by retention. Absent from seals of
	// a Lockbox from before anchors kept their record.
	Anchor       string `json:"anchor,omitempty"`
	AnchorsBound bool   `json:"anchors_bound,omitempty"`
}

// SignSeal returns the seal with claims c, signed with the signer's key
// under the signer's kid.
func (s *Signer) SignSeal(c SealClaims) (string, error) {
	if c.Issuer == "" || c.Tenant == "" || c.Through == "" || c.Hash == "" {
		return "", errors.New("grantsig: a seal needs an issuer, a tenant, an entry and its hash")
	}
	if s.alg == AlgHS256 {
		// Whoever checks a seal could make one with a shared secret.
		return "", errors.New("grantsig: a seal is signed with a private key, never an HS256 secret")
	}
	h, err := json.Marshal(joseHeader{Algorithm: s.alg, KeyID: s.kid, Type: SealType})
	if err != nil {
		return "", err
	}
	js, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	b := b64.AppendEncode(nil, h)
	b = b64.AppendEncode(append(b, '.'), js)
	if b, err = s.appendSignature(b, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// VerifySeal checks a seal: its signature by a key of keys (the one its
// "kid" names, with that key's algorithm only), its type, and that it was
// issued by issuer for tenant. It returns the claims and the kid, or an
// error wrapping ErrInvalid; a seal signed by a key keys does not hold
// also wraps ErrUnknownKey (with the kid, and the claims as the token
// states them, unchecked: zero when they do not decode), which tells a retired
// key no longer published from a forgery. A seal has no expiry: it stays
// evidence for as long as the log is kept.
func VerifySeal(keys *KeySet, token, issuer, tenant string) (SealClaims, string, error) {
	if keys == nil || issuer == "" || tenant == "" {
		return SealClaims{}, "", errors.New("grantsig: VerifySeal needs a key set, the issuer and the tenant")
	}
	kid, c64, err := checkJWS(keys, SealType, token)
	if errors.Is(err, ErrUnknownKey) {
		var c SealClaims
		if decodeSegment(c64, &c, false) != nil {
			c = SealClaims{}
		}
		return c, kid, err
	}
	if err != nil {
		return SealClaims{}, kid, err
	}
	if keys.keys[kid].alg == AlgHS256 {
		// An upstream's secret, in a set a tenant checks seals with: it
		// proves nothing to a tenant, whoever holds it could have made it.
		return SealClaims{}, kid, invalid("a seal keyed with an HS256 secret proves nothing")
	}
	var c SealClaims
	if err := decodeSegment(c64, &c, false); err != nil {
		return SealClaims{}, kid, invalid("malformed claims")
	}
	switch {
	case c.Through == "" || c.Hash == "" || c.IssuedAt <= 0:
		return c, kid, invalid("a claim is missing")
	case c.Issuer != issuer:
		return c, kid, invalid("issued by %q, not %q", c.Issuer, issuer)
	case c.Tenant != tenant:
		// Another tenant's seal, copied over this one's.
		return c, kid, invalid("sealed for tenant %q, not %q", c.Tenant, tenant)
	}
	return c, kid, nil
}

// SealedAt returns IssuedAt as a time, in UTC.
func (c SealClaims) SealedAt() time.Time { return time.Unix(c.IssuedAt, 0).UTC() }
