package grantsig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// AlgHS256 is the algorithm of assertions keyed with a secret the proxy
// shares with one upstream (HMAC-SHA256, RFC 7518 §3.2).
//
// It costs the proxy about a microsecond a call where an Ed25519 signature
// costs thirteen (docs/performance.md), and binds the assertion to the
// call exactly as a signature does. What it gives up is proof to anyone
// else: the upstream holds the key, so it could make assertions of its
// own. That harms no one but itself (an assertion is only ever checked by
// the upstream it is for, and each upstream has its own secret), but its
// assertions are no evidence to a third party; the audit log stays the
// record of what was forwarded. Seals are never keyed this way: tenants
// check them, and must not be able to make them.
const AlgHS256 = "HS256"

// MinSecretSize is the fewest bytes, white space aside, of an HS256
// secret: RFC 7518 §3.2 wants a key at least as long as the hash.
const MinSecretSize = 32

// ErrWeakSecret is wrapped by the errors of a secret too short, or one
// that is a key file in disguise.
var ErrWeakSecret = errors.New("grantsig: not a usable HS256 secret")

// CheckSecret returns an error wrapping ErrWeakSecret unless secret can key
// HS256 assertions: at least MinSecretSize bytes besides white space, and
// not a JWKS, JWK or PEM file (a public key used as a shared secret lets
// anyone who can read it make assertions).
func CheckSecret(secret []byte) error {
	t := bytes.TrimSpace(secret)
	switch {
	case len(t) < MinSecretSize:
		return fmt.Errorf("%w: %d bytes besides white space, need at least %d", ErrWeakSecret, len(t), MinSecretSize)
	case (t[0] == '{' && json.Valid(t)) || bytes.Contains(t, []byte("-----BEGIN ")):
		return fmt.Errorf("%w: it holds keys (a JWKS, JWK or PEM file), not a secret", ErrWeakSecret)
	}
	return nil
}

// SecretKeyID returns the "kid" of assertions keyed with secret: the RFC
// 7638 thumbprint of its JWK ({"k":…,"kty":"oct"}). It tells the upstream
// which of its secrets to check with while a new one comes in, and tells
// nothing of the secret (a SHA-256 of at least 32 secret bytes).
func SecretKeyID(secret []byte) string {
	sum := sha256.Sum256([]byte(`{"k":"` + b64.EncodeToString(secret) + `","kty":"oct"}`))
	return b64.EncodeToString(sum[:])
}

// NewSecretSigner returns a Signer of HS256 assertions keyed with secret,
// which the proxy shares with one upstream only (see AlgHS256). It can't
// sign seals, and has no public key to publish.
func NewSecretSigner(secret []byte) (*Signer, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, err
	}
	key := bytes.Clone(secret)
	s := &Signer{alg: AlgHS256, kid: SecretKeyID(key)}
	// A keyed HMAC is a hash state worth keeping: Reset brings it back to
	// the key, so a call costs the hash of its own bytes only.
	s.macs = &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}
	h, err := json.Marshal(joseHeader{Algorithm: s.alg, KeyID: s.kid, Type: Type})
	if err != nil {
		return nil, err
	}
	s.header = append(b64.AppendEncode(nil, h), '.')
	return s, nil
}

// macState is a keyed HMAC and room for its sum, pooled together so that
// a MAC allocates nothing.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// appendMAC appends "." and the base64url HMAC-SHA256 of input to dst.
func (s *Signer) appendMAC(dst, input []byte) []byte {
	m := s.macs.Get().(*macState)
	m.h.Write(input)
	dst = b64.AppendEncode(append(dst, '.'), m.h.Sum(m.sum[:0]))
	m.h.Reset()
	s.macs.Put(m)
	return dst
}

// NewSecretKeySet returns the set an upstream checks HS256 assertions
// with: its secret, or during a change its old and new secrets, each named
// by its SecretKeyID. A set of secrets checks assertions only, never
// seals.
func NewSecretKeySet(secrets ...[]byte) (*KeySet, error) {
	if len(secrets) == 0 {
		return nil, errors.New("grantsig: no secrets")
	}
	ks := &KeySet{keys: make(map[string]verifyKey, len(secrets))}
	for i, s := range secrets {
		if err := CheckSecret(s); err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		ks.keys[SecretKeyID(s)] = verifyKey{alg: AlgHS256, secret: bytes.Clone(s)}
	}
	return ks, nil
}

// verifyMAC reports whether sig is the HMAC-SHA256 of input under secret,
// in time that does not depend on where they differ.
func verifyMAC(secret, input, sig []byte) bool {
	m := hmac.New(sha256.New, secret)
	m.Write(input)
	return hmac.Equal(m.Sum(nil), sig)
}

// maxSecretFile bounds what LoadSecret reads: a secret is tens of bytes,
// and a wrong path (a log, a disk image) must not be read whole.
const maxSecretFile = 64 << 10

// LoadSecret reads an HS256 secret from a file, as the proxy and a Go
// upstream must read the same file alike: its bytes with every trailing CR
// and LF removed (echo and editors add a line ending; other white space is
// kept; "openssl rand -base64 48 > file" makes a good one), checked by
// CheckSecret.
func LoadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a secret", path, maxSecretFile)
	}
	b = bytes.TrimRight(b, "\r\n")
	if err := CheckSecret(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// JoinKeySets returns one set holding the keys of every set, for an
// upstream that takes assertions made either way while it moves from the
// published keys to a secret of its own, or back (the proxy's replicas
// switch when each restarts). Each key still verifies with its own
// algorithm only, and a seal never verifies with a secret; a kid in two
// sets is refused.
func JoinKeySets(sets ...*KeySet) (*KeySet, error) {
	out := &KeySet{keys: map[string]verifyKey{}}
	for _, ks := range sets {
		if ks == nil {
			return nil, errors.New("grantsig: JoinKeySets: a nil set")
		}
		for kid, k := range ks.keys {
			if _, dup := out.keys[kid]; dup {
				return nil, fmt.Errorf("grantsig: JoinKeySets: kid %q is in two sets", kid)
			}
			out.keys[kid] = k
		}
	}
	if len(out.keys) == 0 {
		return nil, errors.New("grantsig: JoinKeySets: no keys")
	}
	return out, nil
}
