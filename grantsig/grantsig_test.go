package grantsig_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
)

func TestSignVerify(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	c := grantsig.Claims{RequestID: "r1", Tenant: "contoso", Service: "exchange", Operator: "Microsoft Operator", ExpiresAt: now.Add(time.Hour), IssuedAt: now}
	h, err := grantsig.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := grantsig.Verify(pub, h, now)
	if err != nil || got.RequestID != "r1" || got.Tenant != "contoso" || !got.ExpiresAt.Equal(c.ExpiresAt) {
		t.Fatalf("verify: %+v %v", got, err)
	}
	payload, sig, _ := strings.Cut(h, ".")
	forged, _ := grantsig.Sign(key, grantsig.Claims{Tenant: "fabrikam", ExpiresAt: now.Add(time.Hour)})
	forgedPayload, _, _ := strings.Cut(forged, ".")
	tests := []struct {
		name   string
		pub    ed25519.PublicKey
		header string
		now    time.Time
	}{
		{"other key", otherPub, h, now},
		{"expired", pub, h, now.Add(time.Hour)},
		{"issued in the future", pub, h, now.Add(-2 * time.Minute)},
		{"payload swapped", pub, forgedPayload + "." + sig, now},
		{"no signature", pub, payload, now},
		{"garbage", pub, "x.y", now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := grantsig.Verify(tc.pub, tc.header, tc.now); !errors.Is(err, grantsig.ErrInvalid) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := dir+"/k.pem", dir+"/k.pub.pem"
	key, err := grantsig.EnsureKeyFiles(priv, pub)
	if err != nil {
		t.Fatal(err)
	}
	again, err := grantsig.EnsureKeyFiles(priv, pub)
	if err != nil || !again.Equal(key) {
		t.Fatalf("second call made a new key: %v", err)
	}
	p, err := grantsig.LoadPublicKey(pub)
	if err != nil || !p.Equal(key.Public()) {
		t.Fatalf("public key: %v", err)
	}
	if _, err := grantsig.LoadPrivateKey(pub); err == nil {
		t.Fatal("a public key loaded as a private key")
	}
}
