package identity

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultCacheSize bounds the verified tokens a Verifier remembers, per
// generation (see tokenCache): enough for every engineer's token on a busy
// replica, small enough (a few hundred bytes each) to never matter.
const DefaultCacheSize = 10_000

// tokenCache remembers tokens whose signature and claims verified, by the
// SHA-256 of the token, so that a token presented again skips the signature
// math (the largest cost of a proxied call) but never the time checks: exp,
// nbf and iat are checked again, against the clock, on every use.
//
// An entry is valid only while its issuer still has the key set that
// verified it: a rotation (a file reload or a JWKS fetch that finds other
// keys) makes every remembered token of that issuer be verified again, so a
// token signed with a retired key is refused once the key leaves the set.
// A fetch that finds the same keys keeps the set, and the remembered tokens.
// Keys from a JWKS URL that were not confirmed for too long end their
// tokens too.
//
// Memory is bounded: two generations of at most size entries each. When
// the current one fills, it becomes the previous one and the oldest is
// dropped; a token found in the previous generation moves to the current.
// Only tokens that verified are remembered, so a flood of bad tokens can't
// fill it, and a flood of good ones only makes it forget sooner.
type tokenCache struct {
	size int
	mu   sync.RWMutex
	cur  map[[32]byte]*verified
	prev map[[32]byte]*verified
}

// verified is one token that passed every check.
type verified struct {
	p             Principal
	iss           *issuer
	keys          *keySet   // the issuer's keys that verified it
	exp, nbf, iat time.Time // zero when the claim is absent (exp never is)
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{size: size, cur: make(map[[32]byte]*verified)}
}

// tokenKey is the SHA-256 of raw. Tokens up to a few KiB are copied to the
// stack to be hashed, not to a new heap slice: this runs on every call.
func tokenKey(raw string) [32]byte {
	var buf [4096]byte
	if len(raw) <= len(buf) {
		n := copy(buf[:], raw)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(raw))
}

func (c *tokenCache) get(k [32]byte) *verified {
	c.mu.RLock()
	v, current := c.cur[k]
	if !current {
		v = c.prev[k]
	}
	c.mu.RUnlock()
	if v != nil && !current {
		c.put(k, v) // keep what is in use in the current generation
	}
	return v
}

func (c *tokenCache) put(k [32]byte, v *verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[[32]byte]*verified, c.size)
	}
	c.cur[k] = v
}

// valid reports whether a remembered verification still holds at now: its
// issuer still has the keys that verified it, they are not stale, and the
// same time checks a fresh verification makes (go-jose's
// ValidateWithLeeway) pass, so a cached token expires exactly when an
// uncached one would.
func (v *verified) valid(now time.Time, leeway time.Duration) bool {
	if ks := v.iss.keys.Load(); ks != v.keys || ks.stale(now, v.iss.maxAge) {
		return false
	}
	if now.Add(-leeway).After(v.exp) {
		return false
	}
	if !v.nbf.IsZero() && now.Add(leeway).Before(v.nbf) {
		return false
	}
	if !v.iat.IsZero() && now.Add(leeway).Before(v.iat) {
		return false
	}
	return true
}
