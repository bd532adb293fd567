// Package grantsigtest makes signing keys for tests, as net/http/httptest
// makes servers: a fresh Ed25519 key's Signer, which signs assertions and
// audit seals as the proxy's key does, and the KeySet that publishes its
// public half, as a deployment's GET /v1/keys does.
package grantsigtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// NewKey returns the Signer of a fresh Ed25519 key and the KeySet of its
// public half.
func NewKey(t testing.TB) (*grantsig.Signer, *grantsig.KeySet) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := grantsig.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := grantsig.NewKeySet(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return signer, keys
}
