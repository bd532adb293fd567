package grantsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadPrivateKey reads a signing key from a PEM file: an Ed25519 key in
// PKCS#8 ("PRIVATE KEY", as "openssl genpkey -algorithm ed25519" writes
// it), or a P-256 key in PKCS#8 or SEC 1 ("EC PRIVATE KEY", as "openssl
// ecparam -name prime256v1 -genkey" writes it).
func LoadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParsePrivateKey parses a signing key in PEM; see LoadPrivateKey.
func ParsePrivateKey(b []byte) (crypto.Signer, error) {
	blk, err := keyBlock(b)
	if err != nil {
		return nil, err
	}
	if blk == nil {
		return nil, errors.New("grantsig: not a PEM private key")
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("grantsig: a PEM %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("grantsig: %w", err)
	}
	if err := checkKey(k); err != nil {
		return nil, err
	}
	return k.(crypto.Signer), nil
}

// LoadPublicKey reads a public key from a PEM file: PKIX ("PUBLIC KEY", as
// "openssl pkey -pubout" writes it), or the public half of a private key
// file. Upstreams verify assertions with it.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePublicKey parses an Ed25519 or P-256 public key in PEM; a private
// key's PEM gives its public half.
func ParsePublicKey(b []byte) (crypto.PublicKey, error) {
	blk, err := keyBlock(b)
	if err != nil {
		return nil, err
	}
	if blk == nil {
		return nil, errors.New("grantsig: not a PEM public key")
	}
	if blk.Type != "PUBLIC KEY" {
		k, err := ParsePrivateKey(b)
		if err != nil {
			return nil, err
		}
		return k.Public(), nil
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("grantsig: %w", err)
	}
	if err := checkKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// keyBlock returns the one PEM block of b, nil if it has none. A file
// with a second key is refused rather than read in part: its other key
// would be published, or used, by no one, which is how a rotation goes
// wrong unseen (a "next" key pasted after the current one is never
// published, and upstreams refuse it on the switch). The "EC PARAMETERS"
// block "openssl ecparam -genkey" writes before its key is skipped: a
// SEC 1 key names its curve itself.
func keyBlock(b []byte) (*pem.Block, error) {
	blk, rest := pem.Decode(b)
	if blk != nil && blk.Type == "EC PARAMETERS" {
		blk, rest = pem.Decode(rest)
	}
	if blk == nil {
		return nil, nil
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("grantsig: a PEM %q follows the %q: give each key a file of its own", next.Type, blk.Type)
	}
	return blk, nil
}

// checkKey accepts the key types assertions are signed with.
func checkKey(k any) error {
	switch k := k.(type) {
	case ed25519.PrivateKey, ed25519.PublicKey:
		return nil
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return nil
		}
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return nil
		}
	}
	return fmt.Errorf("grantsig: a %T is not an Ed25519 or P-256 key", k)
}

// PublicKeyPEM encodes pub in PKIX PEM.
func PublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// EnsureKeyFiles loads the private key at privPath, creating a new Ed25519
// key (mode 0600) when there is none, and writes its public key to pubPath.
// It is for "lockbox dev" and tests; production keys are made and rotated
// by their owners.
func EnsureKeyFiles(privPath, pubPath string) (crypto.Signer, error) {
	key, err := LoadPrivateKey(privPath)
	if errors.Is(err, os.ErrNotExist) {
		var ek ed25519.PrivateKey
		if _, ek, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(ek)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		key = ek
	} else if err != nil {
		return nil, err
	}
	pub, err := PublicKeyPEM(key.Public())
	if err != nil {
		return nil, err
	}
	return key, os.WriteFile(pubPath, pub, 0o644)
}
