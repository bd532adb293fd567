package grantsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
)

// JWK is a public key in JSON Web Key form (RFC 7517): an Ed25519 key as
// {"kty":"OKP","crv":"Ed25519","x"} (RFC 8037), a P-256 key as
// {"kty":"EC","crv":"P-256","x","y"}.
type JWK struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv"`
	X         string `json:"x"`
	Y         string `json:"y,omitempty"`
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"`
	Use       string `json:"use"`
}

// JWKS is a JSON Web Key Set: what the proxy publishes, as a file and at
// GET /v1/keys, for upstreams to verify assertions with.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK returns pub, an ed25519.PublicKey or an *ecdsa.PublicKey on
// P-256, as a JWK for signatures, named by its thumbprint.
func PublicJWK(pub crypto.PublicKey) (JWK, error) {
	var k JWK
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return JWK{}, errors.New("grantsig: malformed Ed25519 public key")
		}
		k = JWK{KeyType: "OKP", Curve: "Ed25519", X: b64.EncodeToString(p), Algorithm: AlgEdDSA}
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return JWK{}, errors.New("grantsig: an ECDSA key must be on P-256 (ES256)")
		}
		b, err := p.Bytes() // 0x04 || X || Y
		if err != nil {
			return JWK{}, fmt.Errorf("grantsig: %w", err)
		}
		k = JWK{KeyType: "EC", Curve: "P-256", X: b64.EncodeToString(b[1:33]), Y: b64.EncodeToString(b[33:]), Algorithm: AlgES256}
	default:
		return JWK{}, fmt.Errorf("grantsig: a %T is not an Ed25519 or P-256 public key", pub)
	}
	k.Use = "sig"
	k.KeyID = k.thumbprint()
	return k, nil
}

// KeyID returns the "kid" of pub: its JWK thumbprint (RFC 7638), SHA-256,
// base64url. The same key always has the same kid, whoever computes it.
func KeyID(pub crypto.PublicKey) (string, error) {
	k, err := PublicJWK(pub)
	return k.KeyID, err
}

// thumbprint is RFC 7638: the hash of the required members, in
// lexicographic order, without white space. Key material is base64url, so
// nothing in it needs escaping.
func (k JWK) thumbprint() string {
	var s string
	if k.KeyType == "OKP" {
		s = `{"crv":"` + k.Curve + `","kty":"OKP","x":"` + k.X + `"}`
	} else {
		s = `{"crv":"` + k.Curve + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
	}
	sum := sha256.Sum256([]byte(s))
	return b64.EncodeToString(sum[:])
}

// NewJWKS returns the set publishing pubs, in order, each once.
func NewJWKS(pubs ...crypto.PublicKey) (JWKS, error) {
	set := JWKS{Keys: []JWK{}}
	seen := map[string]bool{}
	for _, p := range pubs {
		k, err := PublicJWK(p)
		if err != nil {
			return JWKS{}, err
		}
		if !seen[k.KeyID] {
			seen[k.KeyID] = true
			set.Keys = append(set.Keys, k)
		}
	}
	return set, nil
}

// publicKey returns the key a JWK describes and the algorithm it verifies.
func (k JWK) publicKey() (verifyKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return verifyKey{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	var v verifyKey
	switch {
	case k.KeyType == "OKP" && k.Curve == "Ed25519":
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return verifyKey{}, errors.New("malformed Ed25519 key")
		}
		v = verifyKey{alg: AlgEdDSA, ed: ed25519.PublicKey(x)}
	case k.KeyType == "EC" && k.Curve == "P-256":
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return verifyKey{}, errors.New("malformed P-256 key")
		}
		// ParseUncompressedPublicKey refuses a point off the curve.
		p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return verifyKey{}, fmt.Errorf("malformed P-256 key: %w", err)
		}
		v = verifyKey{alg: AlgES256, ec: p}
	default:
		return verifyKey{}, fmt.Errorf("kty %q, crv %q: not an Ed25519 or P-256 key", k.KeyType, k.Curve)
	}
	if k.Algorithm != "" && k.Algorithm != v.alg {
		return verifyKey{}, fmt.Errorf("alg %q does not fit a %s key", k.Algorithm, k.Curve)
	}
	return v, nil
}

// KeySet is the public keys Verify trusts, each under its kid with the one
// algorithm it verifies.
type KeySet struct {
	keys map[string]verifyKey
}

// NewKeySet returns the set of pubs, each named by its thumbprint.
func NewKeySet(pubs ...crypto.PublicKey) (*KeySet, error) {
	set, err := NewJWKS(pubs...)
	if err != nil {
		return nil, err
	}
	return set.KeySet()
}

// ParseJWKS reads a JWKS, as the proxy publishes it, into a KeySet. Every
// key must be an Ed25519 or P-256 signature key with a kid of its own
// (without one, its thumbprint); a set with no key is refused, and so is a
// key with its private part ("d"): whoever read the set could sign with it,
// so its assertions would prove nothing.
func ParseJWKS(b []byte) (*KeySet, error) {
	var set JWKS
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("grantsig: JWKS: %w", err)
	}
	// JWK has no "d", so it is looked for separately (JWK tools write a
	// key pair as one JWK, and a set made from one would otherwise parse).
	var private struct {
		Keys []struct {
			D *json.RawMessage `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &private); err != nil {
		return nil, fmt.Errorf("grantsig: JWKS: %w", err)
	}
	for i, k := range private.Keys {
		if k.D != nil {
			return nil, fmt.Errorf("grantsig: JWKS: key %d holds a private key (\"d\"): publish only public keys, and replace a key published this way", i)
		}
	}
	return set.KeySet()
}

// KeySet returns the set's keys for Verify.
func (s JWKS) KeySet() (*KeySet, error) {
	if len(s.Keys) == 0 {
		return nil, errors.New("grantsig: JWKS: no keys")
	}
	ks := &KeySet{keys: make(map[string]verifyKey, len(s.Keys))}
	for i, k := range s.Keys {
		v, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("grantsig: JWKS: key %d: %w", i, err)
		}
		kid := k.KeyID
		if kid == "" {
			kid = k.thumbprint()
		}
		if _, dup := ks.keys[kid]; dup {
			return nil, fmt.Errorf("grantsig: JWKS: kid %q appears twice", kid)
		}
		ks.keys[kid] = v
	}
	return ks, nil
}

// KeyIDs returns the kids of the set, in no particular order.
func (ks *KeySet) KeyIDs() []string {
	out := make([]string, 0, len(ks.keys))
	for kid := range ks.keys {
		out = append(out, kid)
	}
	return out
}
