package identity

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// maxKeyFileSize bounds what a key file read may allocate. Real JWKS
	// documents are a few kilobytes; anything near this size is a mistake
	// (a log file, a binary) that should fail loudly rather than be parsed.
	maxKeyFileSize = 1 << 20

	// minHMACSecret is the RFC 7518 section 3.2 floor for HS256: a key shorter
	// than the hash output makes the MAC easier to brute-force offline from a
	// single captured token.
	minHMACSecret = 32

	// minRSABits refuses keys that are factorable in practice or close to it.
	minRSABits = 2048
)

// verifyKey is one key a token may be checked against, together with the one
// algorithm it may be used with. Binding the algorithm to the key, not to the
// token, is what defeats algorithm confusion: the token's "alg" only has to
// agree with a choice the server already made.
type verifyKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
}

// keySet is an immutable snapshot of the configured keys. Verify reads a whole
// snapshot through an atomic pointer, so a reload never shows it half of an
// old set and half of a new one.
type keySet struct {
	byKID map[string]verifyKey
	// algs lists the algorithms of the configured keys. It is the complete
	// allow-list: a token naming any other algorithm is refused before its
	// signature is looked at.
	algs []jose.SignatureAlgorithm
	// only is set when exactly one key is configured; a token without "kid"
	// may be checked against it and against nothing else.
	only *verifyKey
	// fingerprint identifies the keys (kid, algorithm, key material). A
	// refresh that finds the same keys keeps this set, so tokens verified
	// with it stay remembered; any change makes a new set (a new generation)
	// and every remembered token is verified again against it.
	fingerprint [32]byte
	// confirmed is when the source last confirmed these keys (Unix
	// nanoseconds of the verifier's clock). An issuer with a maximum key age
	// stops using keys it could not confirm for that long.
	confirmed atomic.Int64
}

// stale reports whether ks was last confirmed more than maxAge before now;
// never when maxAge is zero (keys from files, which are there or not).
func (ks *keySet) stale(now time.Time, maxAge time.Duration) bool {
	return maxAge > 0 && now.UnixNano()-ks.confirmed.Load() > int64(maxAge)
}

// kids lists the key ids, for logs.
func (ks *keySet) kids() []string {
	out := make([]string, 0, len(ks.byKID))
	for kid := range ks.byKID {
		out = append(out, kid)
	}
	slices.Sort(out)
	return out
}

// has reports whether ks holds a key with id kid.
func (ks *keySet) has(kid string) bool {
	_, ok := ks.byKID[kid]
	return ok
}

func (ks *keySet) allows(alg string) bool {
	for _, a := range ks.algs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// lookup selects the one key a token is checked against. Trying every key
// until one matches would let a token signed for one purpose pass as another
// and would multiply the work an attacker can make us do per token.
func (ks *keySet) lookup(kid string, hasKID bool) (verifyKey, error) {
	if hasKID {
		k, ok := ks.byKID[kid]
		if !ok {
			return verifyKey{}, errUnknownKey
		}
		return k, nil
	}
	if ks.only == nil {
		return verifyKey{}, errNoKeyID
	}
	return *ks.only, nil
}

func newKeySet(keys []verifyKey) (*keySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("no usable signing keys")
	}
	ks := &keySet{byKID: make(map[string]verifyKey, len(keys))}
	for _, k := range keys {
		if _, dup := ks.byKID[k.kid]; dup {
			if k.kid == "" {
				return nil, errors.New("more than one key without a kid")
			}
			return nil, fmt.Errorf("duplicate kid %q", k.kid)
		}
		ks.byKID[k.kid] = k
		if !ks.allows(string(k.alg)) {
			ks.algs = append(ks.algs, k.alg)
		}
	}
	if len(keys) == 1 {
		only := keys[0]
		ks.only = &only
	}
	fp, err := fingerprint(keys)
	if err != nil {
		return nil, err
	}
	ks.fingerprint = fp
	return ks, nil
}

// fingerprint hashes what a key set verifies with: each key's kid,
// algorithm and material, in kid order.
func fingerprint(keys []verifyKey) ([32]byte, error) {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b verifyKey) int { return cmp.Compare(a.kid, b.kid) })
	h := sha256.New()
	for _, k := range sorted {
		var material []byte
		switch key := k.key.(type) {
		case []byte:
			sum := sha256.Sum256(key)
			material = sum[:]
		default:
			der, err := x509.MarshalPKIXPublicKey(key)
			if err != nil {
				return [32]byte{}, fmt.Errorf("kid %q: %w", k.kid, err)
			}
			material = der
		}
		// Length-prefixed, so no two different sets hash the same input.
		for _, part := range [][]byte{[]byte(k.kid), []byte(k.alg), material} {
			fmt.Fprintf(h, "%d:", len(part))
			h.Write(part)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKeyFileSize)
	}
	return b, nil
}

// parseHMACSecret reads an HS256 secret; path names it in errors.
func parseHMACSecret(b []byte, path string) (*keySet, error) {
	// Secrets are usually written with echo or an editor, which add a line
	// ending that is not meant to be part of the key.
	secret := bytes.TrimRight(b, "\r\n")
	if len(secret) < minHMACSecret {
		return nil, fmt.Errorf("hmac secret %s: %d bytes, need at least %d", path, len(secret), minHMACSecret)
	}
	// White space around the secret counts for nothing: a file of spaces
	// (an editor's indentation, a template left empty) or a short secret
	// padded with them is a key anyone can guess, refused as the shortest.
	if n := len(bytes.TrimSpace(secret)); n < minHMACSecret {
		return nil, fmt.Errorf("hmac secret %s: %d bytes besides white space, need at least %d", path, n, minHMACSecret)
	}
	// A JWKS, a JWK or a PEM key here is a key file named by the wrong
	// setting. Used as a secret, it would let anyone who can read those
	// public keys (the identity provider publishes them) MAC tokens that
	// verify: algorithm confusion, set up by the configuration.
	if t := bytes.TrimSpace(secret); (len(t) > 0 && t[0] == '{' && json.Valid(t)) || bytes.Contains(t, []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("hmac secret %s: holds public keys (a JWKS, JWK or PEM file), not a secret; use a JWKS file setting for keys", path)
	}
	return newKeySet([]verifyKey{{alg: jose.HS256, key: secret}})
}

// jwksAlgs are the asymmetric algorithms a JWKS key may be used with. HS256 is
// deliberately absent: a shared secret in a key set that is meant to be
// public would let anyone who can read it mint tokens.
var jwksAlgs = map[jose.SignatureAlgorithm]bool{
	jose.RS256: true,
	jose.ES256: true,
	jose.EdDSA: true,
}

// parseJWKS reads a JWKS document; origin (a file or a URL) names it in
// errors. Files and URLs go through this one function, so a key fetched
// from an identity provider passes exactly the checks a key in a file does.
func parseJWKS(b []byte, path string) (*keySet, error) {
	entries, _, err := readJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", path, err)
	}
	var keys []verifyKey
	for i, e := range entries {
		if e.err != nil {
			return nil, fmt.Errorf("jwks %s: key %d (kid %q): %w", path, i, e.kid, e.err)
		}
		if e.usable {
			keys = append(keys, e.key)
		}
	}
	ks, err := newKeySet(keys)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", path, err)
	}
	return ks, nil
}

// listedKeys reads b, a JWKS document that parseJWKS refused, key by key:
// the fingerprints (see fingerprint) of the keys in it that would be usable
// on their own. ok is false when b is not a key set at all.
func listedKeys(b []byte) (listed map[[32]byte]bool, ok bool) {
	entries, hasKeys, err := readJWKS(b)
	if err != nil || !hasKeys {
		return nil, false
	}
	listed = map[[32]byte]bool{}
	for _, e := range entries {
		if e.err != nil || !e.usable {
			continue
		}
		if fp, err := fingerprint([]verifyKey{e.key}); err == nil {
			listed[fp] = true
		}
	}
	return listed, true
}

// jwksEntry is one key of a JWKS document, as Lockbox reads it: a usable
// key, one skipped (neither usable nor an error), or a plainly wrong one.
type jwksEntry struct {
	key    verifyKey
	usable bool
	err    error
	kid    string // for errors
}

// readJWKS reads the keys of a JWKS document one by one; hasKeys is false
// when it has no "keys" member. Reading them one by one, rather than as a
// go-jose JSONWebKeySet, is what lets a key go-jose can't read be skipped
// when it is not for Lockbox, and gives each key's members, such as
// "key_ops", which go-jose does not read.
func readJWKS(b []byte) (entries []jwksEntry, hasKeys bool, err error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, false, err
	}
	if doc.Keys == nil {
		return nil, false, nil
	}
	for _, raw := range *doc.Keys {
		entries = append(entries, readJWK(raw))
	}
	return entries, true, nil
}

func readJWK(raw json.RawMessage) jwksEntry {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return jwksEntry{err: errors.New("not a JSON object")}
	}
	var e jwksEntry
	e.kid, _ = memberString(members, "kid")
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(raw, &jwk); err != nil {
		// An identity provider may publish keys go-jose does not know
		// (an X25519 encryption key, a post-quantum signing key) next to
		// its signing keys; adding one must not break Lockbox. One that
		// claims to be a key Lockbox verifies with is wrong, though.
		if !verifiesWith(members) {
			return e
		}
		e.err = err
		return e
	}
	e.key, e.usable, e.err = jwksKey(jwk, members)
	return e
}

// verifiesWith reports whether a key go-jose could not read says, by its
// members, that it is one Lockbox would verify with: for signatures, with
// an algorithm of jwksAlgs, and of a type those use.
func verifiesWith(m map[string]json.RawMessage) bool {
	if use, ok := memberString(m, "use"); ok && use != "sig" {
		return false
	}
	if raw, ok := m["key_ops"]; ok {
		var ops []string
		if json.Unmarshal(raw, &ops) == nil && !slices.Contains(ops, "verify") {
			return false
		}
	}
	if alg, ok := memberString(m, "alg"); ok && !jwksAlgs[jose.SignatureAlgorithm(alg)] {
		return false
	}
	kty, _ := memberString(m, "kty")
	crv, _ := memberString(m, "crv")
	switch kty {
	case "RSA":
		return true
	case "EC":
		return crv == "P-256"
	case "OKP":
		return crv == "Ed25519"
	}
	return false
}

// memberString reads a string member of a JSON object; ok is false when
// it is absent or not a string.
func memberString(m map[string]json.RawMessage, name string) (s string, ok bool) {
	raw, present := m[name]
	if !present || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jwksKey turns one JWK into a verification key. Keys meant for something
// else (encryption, or a signature algorithm Lockbox does not accept) are
// skipped, because identity providers publish those next to the signing keys
// and rotating one should not break Lockbox. Keys that are plainly wrong for
// this file (secrets, private keys, weak or mislabelled keys) are errors: the
// file is misconfigured and loading it would mean trusting it.
func jwksKey(jwk jose.JSONWebKey, members map[string]json.RawMessage) (verifyKey, bool, error) {
	if jwk.Use != "" && jwk.Use != "sig" {
		return verifyKey{}, false, nil
	}
	if raw, ok := members["key_ops"]; ok {
		// RFC 7517 section 4.3: the operations the key is for. A public key
		// for anything but "verify" (an encryption key, or one listed as
		// "sign" only) is not one to check signatures with, whatever its
		// type and alg say.
		var ops []string
		if string(raw) == "null" || json.Unmarshal(raw, &ops) != nil {
			return verifyKey{}, false, errors.New("key_ops is not an array of strings")
		}
		if !slices.Contains(ops, "verify") {
			return verifyKey{}, false, nil
		}
	}
	if _, symmetric := jwk.Key.([]byte); symmetric {
		return verifyKey{}, false, errors.New("symmetric key in a JWKS; use an HMAC secret file instead")
	}
	if !jwk.IsPublic() {
		return verifyKey{}, false, errors.New("private key material in a JWKS; publish only public keys")
	}
	if !jwk.Valid() {
		return verifyKey{}, false, errors.New("invalid key")
	}

	var derived jose.SignatureAlgorithm
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return verifyKey{}, false, fmt.Errorf("RSA key of %d bits, need at least %d", pub.N.BitLen(), minRSABits)
		}
		derived = jose.RS256
	case *ecdsa.PublicKey:
		if pub.Curve == elliptic.P256() {
			derived = jose.ES256
		}
	case ed25519.PublicKey:
		derived = jose.EdDSA
	}

	if jwk.Algorithm == "" {
		if derived == "" {
			return verifyKey{}, false, nil
		}
		return verifyKey{kid: jwk.KeyID, alg: derived, key: jwk.Key}, true, nil
	}
	alg := jose.SignatureAlgorithm(jwk.Algorithm)
	if !jwksAlgs[alg] {
		return verifyKey{}, false, nil
	}
	if alg != derived {
		return verifyKey{}, false, fmt.Errorf("alg %s does not match the key type", alg)
	}
	return verifyKey{kid: jwk.KeyID, alg: alg, key: jwk.Key}, true, nil
}
