// Package grantsig signs and verifies the header the proxy adds to every
// forwarded call, X-Lockbox-Grant, so an upstream service can check for
// itself that a call comes through Lockbox under an approved, unexpired
// lockbox request for its tenant.
//
// The header is "<payload>.<signature>": the payload is base64url (no
// padding) of a JSON object {"request_id","tenant","service","operator":
// "Microsoft Operator","expires_at","issued_at"} and the signature is
// base64url of the Ed25519 signature over the payload's base64url text.
// Upstreams verify with the proxy's public key (an Ed25519 JWK or PEM); they
// can't forge headers, since they hold no private key.
//
// It imports nothing from Lockbox, so upstream services can use it alone.
package grantsig

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Header is the name of the signed header.
const Header = "X-Lockbox-Grant"

// Claims are what the header asserts.
type Claims struct {
	RequestID string    `json:"request_id"`
	Tenant    string    `json:"tenant"`
	Service   string    `json:"service"`
	Operator  string    `json:"operator"`
	ExpiresAt time.Time `json:"expires_at"`
	IssuedAt  time.Time `json:"issued_at"`
}

// ErrInvalid is returned for a header that does not verify.
var ErrInvalid = errors.New("grantsig: invalid grant header")

var b64 = base64.RawURLEncoding

// Sign returns the header value for c.
func Sign(key ed25519.PrivateKey, c Claims) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	payload := b64.EncodeToString(b)
	return payload + "." + b64.EncodeToString(ed25519.Sign(key, []byte(payload))), nil
}

// MaxSkew is the clock difference Verify tolerates on issued_at.
const MaxSkew = time.Minute

// Verify checks the header's signature with pub and that it is in force at
// now, and returns its claims.
func Verify(pub ed25519.PublicKey, header string, now time.Time) (Claims, error) {
	payload, sig, ok := strings.Cut(header, ".")
	if !ok || len(header) > 4096 {
		return Claims{}, fmt.Errorf("%w: malformed", ErrInvalid)
	}
	s, err := b64.DecodeString(sig)
	if err != nil || !ed25519.Verify(pub, []byte(payload), s) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	b, err := b64.DecodeString(payload)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: malformed payload", ErrInvalid)
	}
	var c Claims
	if err := json.Unmarshal(b, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: malformed payload", ErrInvalid)
	}
	if !now.Before(c.ExpiresAt) {
		return Claims{}, fmt.Errorf("%w: grant expired at %s", ErrInvalid, c.ExpiresAt.Format(time.RFC3339))
	}
	if c.IssuedAt.After(now.Add(MaxSkew)) {
		return Claims{}, fmt.Errorf("%w: issued in the future", ErrInvalid)
	}
	return c, nil
}
