package grantsig_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grantsig"
)

func sealClaims() grantsig.SealClaims {
	return grantsig.SealClaims{Issuer: "lockbox", Tenant: "contoso", Through: "1764000000000-3",
		Hash: "5f1c0b1e6f3a4d0e9c2b7a8d6e5f4c3b2a190817", IssuedAt: now.Unix()}
}

func TestSealSignVerify(t *testing.T) {
	for alg, key := range keys(t) {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, key)
			tok, err := s.SignSeal(sealClaims())
			if err != nil {
				t.Fatal(err)
			}
			c, kid, err := grantsig.VerifySeal(keySet(t, key.Public()), tok, "lockbox", "contoso")
			if err != nil {
				t.Fatal(err)
			}
			if c != sealClaims() || kid != s.KeyID() {
				t.Fatalf("got %+v by %s, want %+v by %s", c, kid, sealClaims(), s.KeyID())
			}
			if got := c.SealedAt(); !got.Equal(now) {
				t.Fatalf("sealed at %s, want %s", got, now)
			}
		})
	}
}

// TestSealIsNoAssertion: each kind of token carries its own type, so that
// neither passes where the other is expected, signed by the same key.
func TestSealIsNoAssertion(t *testing.T) {
	key := keys(t)[grantsig.AlgEdDSA]
	s, ks := newSigner(t, key), keySet(t, key.Public())
	seal, err := s.SignSeal(sealClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.Verify(ks, seal, grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: "/"}, now); !errors.Is(err, grantsig.ErrInvalid) || !strings.Contains(err.Error(), "type") {
		t.Fatalf("a seal verified as an assertion: %v", err)
	}
	assertion, err := s.Sign(callClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := grantsig.VerifySeal(ks, assertion, "lockbox", "contoso"); !errors.Is(err, grantsig.ErrInvalid) || !strings.Contains(err.Error(), "type") {
		t.Fatalf("an assertion verified as a seal: %v", err)
	}
}

func TestVerifySealRefuses(t *testing.T) {
	ks := keys(t)
	key, other := ks[grantsig.AlgEdDSA], ks[grantsig.AlgES256]
	s := newSigner(t, key)
	set := keySet(t, key.Public())
	sign := func(c grantsig.SealClaims) string {
		tok, err := s.SignSeal(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(sealClaims())
	otherTenant := sealClaims()
	otherTenant.Tenant = "fabrikam"
	otherIssuer := sealClaims()
	otherIssuer.Issuer = "staging"
	noHash := sealClaims()
	noHash.Hash = ""
	sig := good[strings.LastIndexByte(good, '.')+1:]
	flipped := good[:len(good)-len(sig)] + string(sig[0]^1) + sig[1:]
	for _, c := range []struct {
		name, token, want string
		unknownKey        bool
	}{
		{"another tenant's seal", sign(otherTenant), "tenant", false},
		{"another issuer", sign(otherIssuer), "issued by", false},
		{"corrupted signature", flipped, "signature", false},
		{"unknown key", must(newSigner(t, other).SignSeal(sealClaims())), "not in the set", true},
		{"algorithm not the key's", forge(t, key, map[string]string{"alg": grantsig.AlgES256, "kid": s.KeyID(), "typ": grantsig.SealType}, sealClaims()), "algorithm", false},
		{"claim missing", forge(t, key, map[string]string{"alg": grantsig.AlgEdDSA, "kid": s.KeyID(), "typ": grantsig.SealType}, noHash), "missing", false},
		{"not a JWS", "a.b", "compact", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := grantsig.VerifySeal(set, c.token, "lockbox", "contoso")
			if !errors.Is(err, grantsig.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalid about %q", err, c.want)
			}
			if errors.Is(err, grantsig.ErrUnknownKey) != c.unknownKey {
				t.Fatalf("err = %v: ErrUnknownKey %t, want %t", err, !c.unknownKey, c.unknownKey)
			}
		})
	}
	if _, err := s.SignSeal(noHash); err == nil {
		t.Fatal("a seal without a hash was signed")
	}
}

func must(tok string, err error) string {
	if err != nil {
		panic(err)
	}
	return tok
}
