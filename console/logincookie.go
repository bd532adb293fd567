package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// A sign-in in progress is kept by the browser that started it, not by the
// server: the login cookie holds it sealed (AES-256-GCM) under a key only
// the console's replicas know, so the browser can neither read its PKCE
// verifier and nonce nor make one up. Starting a sign-in needs no
// credential; if it wrote a key in Redis, anyone could fill the Redis that
// also holds the grants and the audit log by asking for sign-ins, stopping
// the audit writes every permitted call needs. Now a start writes nothing,
// and a flood of them costs the server no memory.
//
// The cookie's value is base64url(nonce || AES-256-GCM(key, pendingLogin,
// loginAAD)), the nonce random and 12 bytes (cipher.NewGCMWithRandomNonce).
// It is bound to the sign-in's state, which the callback's state parameter
// must equal, and carries an absolute expiry the callback checks: a cookie
// kept past loginTTL is refused whatever its Max-Age said.
//
// A sealed sign-in can't be taken back before it expires, so the callback
// does not rely on it being used once: the identity provider's code is
// single-use and bound to the PKCE verifier, so a callback replayed with a
// copy of the cookie finds the code redeemed; and the cookie is cleared
// after every callback of its sign-in, successful or not. A callback of
// another state leaves it (see errOtherSignin): it used nothing of it.

// pendingLogin is a sign-in in progress, as its cookie holds it.
type pendingLogin struct {
	// State is the sign-in's OAuth state, which the callback's state
	// parameter must equal.
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	// Tenant is the organization whose issuer the sign-in went to; "" for
	// the provider's.
	Tenant string `json:"tenant,omitempty"`
	// Expires is when the sign-in ends, in Unix seconds: loginTTL after it
	// started.
	Expires int64 `json:"exp"`
	// Reverify, set for a silent re-verification of a session (see
	// silent.go), names that session in Redis (its tokenHash): the answer
	// updates it, and signs nobody in. Return is the console page the
	// browser goes back to then, or after a sign-in (see signinAgain), a
	// path and query of the console's own.
	Reverify string `json:"reverify,omitempty"`
	Return   string `json:"return,omitempty"`
	// Form says a form posted on Return started the re-verification: it
	// was not sent, and Return says so.
	Form bool `json:"form,omitempty"`
	// Replaces names the session the browser had when it started the
	// sign-in (its tokenHash), "" for none: the sign-in ends it. The
	// callback can't find it by its cookie, which browsers keep off the
	// identity provider's cross-site redirect (SameSite=Strict).
	Replaces string `json:"replaces,omitempty"`
}

// loginAAD is the additional data every sealed sign-in is bound to, so the
// key seals nothing that could be taken for one.
var loginAAD = []byte("lockbox console login v1")

// errLoginCookie is a login cookie that does not open: tampered with,
// truncated, or sealed under another key.
var errLoginCookie = errors.New("the login cookie does not open")

// loginKeyPeriod is how long one key seals sign-ins in progress. Each
// period has a key of its own (keys.ConsoleLoginKey): a sign-in is sealed
// under its period's and opens under it or, started just before the period
// began, the one before (a sign-in lasts loginTTL, far less than a period).
// So a key that leaked, from a Redis backup say, opens nothing two periods
// later, and no one has to rotate it.
const loginKeyPeriod = 24 * time.Hour

// loginPeriod is the key period t falls in.
func loginPeriod(t time.Time) int64 { return t.Unix() / int64(loginKeyPeriod/time.Second) }

// loginSealer holds the keys that open sign-ins in progress, by period,
// as last read from Redis: the current period's and the one before, at
// most.
type loginSealer struct {
	mu   sync.Mutex
	keys map[int64]cipher.AEAD
}

// sealingKey returns the key that seals a sign-in started at now: its
// period's, created in Redis by whichever replica needs it first. It is
// read from Redis at every start, never only from memory: a key Redis lost
// (a restart from a file without its last writes, a failover to a replica
// it had not reached) is replaced there by the next replica that needs
// one, and a replica sealing with the lost one would start sign-ins no
// other replica can finish, for the rest of the period.
func (c *Console) sealingKey(ctx context.Context, now time.Time) (cipher.AEAD, error) {
	aead, _, err := c.loginKey(ctx, loginPeriod(now), true, true)
	return aead, err
}

// openingKeys returns the keys a sign-in cookie may be sealed under at
// now: the period's and the one before's, those that exist. With fresh,
// they are read from Redis, not memory: for a cookie the kept keys do not
// open, which another replica may have sealed with a key that replaced
// one Redis lost.
func (c *Console) openingKeys(ctx context.Context, now time.Time, fresh bool) ([]cipher.AEAD, error) {
	var out []cipher.AEAD
	for _, p := range []int64{loginPeriod(now), loginPeriod(now) - 1} {
		aead, ok, err := c.loginKey(ctx, p, false, fresh)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, aead)
		}
	}
	return out, nil
}

// loginKey returns the key of period shared by every replica: with create,
// created in Redis (SET NX, by whichever replica needs it first) and read
// back, so all of them seal and open with the same one. ok is false for a
// period without a key (nobody signed in during it, or it expired). A key
// is kept after each read, with the one before it, and served from memory
// unless fresh; an error or a missing key is not kept, so Redis is asked
// again next time.
func (c *Console) loginKey(ctx context.Context, period int64, create, fresh bool) (aead cipher.AEAD, ok bool, err error) {
	s := &c.loginSealer
	s.mu.Lock()
	defer s.mu.Unlock()
	if aead := s.keys[period]; aead != nil && !fresh {
		return aead, true, nil
	}
	k := keys.ConsoleLoginKey(period)
	if create {
		fresh := make([]byte, 32)
		rand.Read(fresh)
		// Two periods and a sign-in's life from its creation, which is in
		// its period: past the end of the period after it, the last in
		// which it opens a sign-in.
		if err := c.cfg.Redis.SetNX(ctx, k, base64.StdEncoding.EncodeToString(fresh), 2*loginKeyPeriod+loginTTL).Err(); err != nil {
			return nil, false, fmt.Errorf("console: create the sign-in key: %w", err)
		}
	}
	v, err := c.cfg.Redis.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) && !create {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("console: read the sign-in key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(raw) != 32 {
		return nil, false, fmt.Errorf("console: the sign-in key %s is not 32 bytes in base64", k)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, false, err
	}
	aead, err = cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, false, err
	}
	if s.keys == nil {
		s.keys = map[int64]cipher.AEAD{}
	}
	s.keys[period] = aead
	for p := range s.keys {
		if p < period-1 {
			delete(s.keys, p)
		}
	}
	return aead, true, nil
}

// sealLogin is the login cookie's value for l.
func sealLogin(aead cipher.AEAD, l pendingLogin) string {
	b, _ := json.Marshal(l)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nil, nil, b, loginAAD))
}

// openLogin opens a login cookie under one of aeads and checks that it is
// the sign-in of state, and that it has not expired at now.
func openLogin(aeads []cipher.AEAD, value, state string, now time.Time) (pendingLogin, error) {
	var l pendingLogin
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return l, errLoginCookie
	}
	var b []byte
	err = errLoginCookie
	for _, aead := range aeads {
		if b, err = aead.Open(nil, nil, sealed, loginAAD); err == nil {
			break
		}
	}
	if err != nil {
		return l, errLoginCookie
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, errLoginCookie
	}
	if !now.Before(time.Unix(l.Expires, 0)) {
		return l, fmt.Errorf("the sign-in expired at %s", time.Unix(l.Expires, 0).UTC().Format(time.RFC3339))
	}
	if state == "" || subtle.ConstantTimeCompare([]byte(l.State), []byte(state)) != 1 {
		return l, errOtherSignin
	}
	return l, nil
}

// errOtherSignin is a callback whose state is not the one of the sign-in in
// progress the browser holds, which is live: the answer is a late one to a
// sign-in or re-verification that sign-in replaced (the browser has one
// login cookie), or one planted on the browser. That sign-in is the
// browser's newest, and stays.
var errOtherSignin = errors.New("state does not match the browser's sign-in")
