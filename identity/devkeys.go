package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The dev helpers let `lockbox dev` act as its own identity provider: it
// signs tokens with a local key and points the same Verifier production uses
// at the matching JWKS. Going through the real verification path, rather
// than a bypass switch, keeps development from exercising code that
// production never runs (and production from carrying a switch that turns
// authentication off).

// File names WriteDevKeys uses inside its directory.
const (
	DevSigningKeyFile = "dev-signing-key.pem"
	DevJWKSFile       = "jwks.json"
)

// DefaultDevTokenTTL is the lifetime Mint gives a token when Claims.TTL is
// zero: long enough for a working session, short enough that a dev token
// pasted somewhere stops working the same day.
const DefaultDevTokenTTL = time.Hour

// GenerateDevKey returns a fresh Ed25519 signing key. Ed25519 because its
// keys are small, it has no parameters to get wrong, and it is one of the
// algorithms the Verifier accepts from a JWKS.
func GenerateDevKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate dev key: %w", err)
	}
	return priv, nil
}

// WriteDevKeys writes key (PKCS#8 PEM, readable only by its owner) and the
// JWKS with its public half into dir, creating dir if needed. Each file is
// written to a temporary name and renamed into place, so a Verifier reloading
// the JWKS never sees a half-written file.
func WriteDevKeys(dir string, key ed25519.PrivateKey) (privPath, jwksPath string, err error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", "", errors.New("identity: invalid Ed25519 private key")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("identity: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("identity: encode dev key: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	jwks, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       pub,
		KeyID:     devKeyID(pub),
		Algorithm: string(jose.EdDSA),
		Use:       "sig",
	}}}, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("identity: encode dev jwks: %w", err)
	}

	privPath = filepath.Join(dir, DevSigningKeyFile)
	jwksPath = filepath.Join(dir, DevJWKSFile)
	if err := writeFileAtomic(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(jwksPath, append(jwks, '\n'), 0o644); err != nil {
		return "", "", err
	}
	return privPath, jwksPath, nil
}

// writeFileAtomic sets the mode on the temporary file before any data goes
// in, so the private key is never readable by others, not even briefly and
// not when it replaces an older file that had looser permissions.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

// LoadDevKey reads a key written by WriteDevKeys, so a `lockbox dev` restart
// keeps the tokens it handed out valid.
func LoadDevKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: %s: no PKCS#8 PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: %s: not an Ed25519 key", path)
	}
	return priv, nil
}

// devKeyID derives the kid from the public key itself, so the key file and
// the JWKS can never disagree about it and a new key always gets a new kid.
func devKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:16]
}

// Claims is what Mint puts in a development token.
type Claims struct {
	Subject  string
	Roles    []Role
	TenantID string // empty for provider staff
	// Email, when set, is written as the "email" claim (tests of users
	// whose subject is not an address).
	Email string
	// TTL is the token's lifetime; zero means DefaultDevTokenTTL.
	TTL time.Duration
}

// mintedClaims is the wire form of Claims. Roles are always written, as an
// empty array if need be, because "roles": null reads as a mistake.
type mintedClaims struct {
	jwt.Claims
	Roles    []Role `json:"roles"`
	TenantID string `json:"tid,omitempty"`
	Email    string `json:"email,omitempty"`
}

// Mint signs a development token. It checks c with the same rules Verify
// applies, so a bad subject or tenant fails here, with a clear message,
// instead of as an opaque 401 later.
func Mint(key ed25519.PrivateKey, issuer, audience string, c Claims, now time.Time) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", errors.New("identity: invalid Ed25519 private key")
	}
	if issuer == "" || audience == "" {
		return "", errors.New("identity: issuer and audience are required")
	}
	if !ValidSubject(c.Subject) {
		return "", fmt.Errorf("identity: invalid subject %q", c.Subject)
	}
	if c.TenantID != "" && !ValidTenantID(c.TenantID) {
		return "", fmt.Errorf("identity: invalid tenant id %q", c.TenantID)
	}
	for _, r := range c.Roles {
		if !r.Known() {
			return "", fmt.Errorf("identity: unknown role %q", r)
		}
	}
	ttl := c.TTL
	switch {
	case ttl < 0:
		return "", errors.New("identity: negative TTL")
	case ttl == 0:
		ttl = DefaultDevTokenTTL
	}

	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	roles := c.Roles
	if roles == nil {
		roles = []Role{}
	}
	claims := mintedClaims{
		Claims: jwt.Claims{
			Issuer:    issuer,
			Audience:  jwt.Audience{audience},
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(ttl)),
			ID:        hex.EncodeToString(jti[:]),
		},
		Roles:    roles,
		TenantID: c.TenantID,
		Email:    c.Email,
	}

	pub := key.Public().(ed25519.PublicKey)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: devKeyID(pub)}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("identity: sign dev token: %w", err)
	}
	return tok, nil
}
