package identity

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestCachedTokenKeepsTimeChecks: a remembered token is refused exactly when
// a fresh verification refuses it. A cached and an uncached verifier see the
// same tokens at the same clock readings, around every time claim and its
// leeway, and must answer alike.
func TestCachedTokenKeepsTimeChecks(t *testing.T) {
	keys := newTestKeys(t)
	path := writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), keys.jwks()...)
	var now atomic.Int64
	now.Store(testNow.Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	cached, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: clock})
	must0(t, err)
	plain, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: clock, CacheSize: -1})
	must0(t, err)
	if plain.cache != nil || cached.cache == nil {
		t.Fatal("CacheSize does not say whether tokens are remembered")
	}
	leeway := int64(DefaultLeeway / time.Second)
	base := testNow.Unix()
	toks := map[string]string{
		"nbf+iat+exp": tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: func(c map[string]any) {
			c["nbf"], c["iat"], c["exp"] = base+100, base+50, base+200
		}}.sign(t),
		"exp only": tok{alg: jose.ES256, key: keys.ec, kid: "ec", claims: func(c map[string]any) {
			delete(c, "nbf")
			delete(c, "iat")
			c["exp"] = base + 300
		}}.sign(t),
	}
	// Every second from before the nbf/iat leeway to after the exp leeway:
	// each reading is checked twice, the second time from the cache.
	for at := base; at <= base+300+leeway+2; at++ {
		now.Store(at)
		for name, raw := range toks {
			for range 2 {
				pc, errc := cached.Verify(context.Background(), raw)
				pp, errp := plain.Verify(context.Background(), raw)
				if fmt.Sprint(pc, errc) != fmt.Sprint(pp, errp) {
					t.Fatalf("%s at +%ds: cached %v %v, uncached %v %v", name, at-base, pc, errc, pp, errp)
				}
			}
		}
	}
}

// TestCacheRemembersOnlyGoodTokens: a token that failed is never remembered,
// and a tampered copy of a remembered token is not the remembered one.
func TestCacheRemembersOnlyGoodTokens(t *testing.T) {
	keys := newTestKeys(t)
	v, _ := newJWKSVerifier(t, keys.jwks()...)
	good := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t)
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	tampered := good[:len(good)-4] + "AAAA"
	for range 2 {
		if _, err := v.Verify(context.Background(), tampered); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("tampered token: %v", err)
		}
	}
	wrongIssuer := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: func(c map[string]any) { c["iss"] = "https://evil.test" }}.sign(t)
	for range 2 {
		if _, err := v.Verify(context.Background(), wrongIssuer); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("wrong issuer: %v", err)
		}
	}
	if n := len(v.cache.cur) + len(v.cache.prev); n != 1 {
		t.Fatalf("%d tokens remembered, want only the good one", n)
	}
}

// TestCacheBounded: however many distinct good tokens arrive, at most two
// generations of CacheSize are kept.
func TestCacheBounded(t *testing.T) {
	keys := newTestKeys(t)
	path := writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), keys.jwks()...)
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: fixedNow, CacheSize: 8})
	must0(t, err)
	for i := range 50 {
		raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: func(c map[string]any) { c["sub"] = fmt.Sprintf("u%d@example.test", i) }}.sign(t)
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
		if n := len(v.cache.cur) + len(v.cache.prev); n > 16 {
			t.Fatalf("after %d tokens the cache holds %d", i+1, n)
		}
	}
}

// BenchmarkVerifyCached is the proxy's common case: the same engineer's
// token on every call.
func BenchmarkVerifyCached(b *testing.B) {
	keys := newTestKeys(b)
	v, _ := newJWKSVerifier(b, keys.jwks()...)
	raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
