package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// DefaultLeeway absorbs clock drift between the identity provider and
	// Lockbox. It is small on purpose: every second of leeway is a second an
	// expired or revoked token still works.
	DefaultLeeway = 30 * time.Second

	// maxLeeway keeps a configuration typo from quietly turning expiry off.
	maxLeeway = 5 * time.Minute

	// MaxTokenSize bounds the work an unauthenticated caller can make us do:
	// the size is checked before any decoding or signature math. Real access
	// tokens are well under 2 KiB.
	MaxTokenSize = 8 << 10
)

// Config says which tokens a Verifier accepts. Keys come from files rather
// than from the network so that a compromised or spoofed endpoint cannot hand
// Lockbox new keys; rotation is a file change followed by Reload.
type Config struct {
	// Issuer must equal the token's "iss" exactly.
	Issuer string
	// Audience must appear in the token's "aud", so tokens the same identity
	// provider issues for other applications are refused here.
	Audience string
	// JWKSFile holds the provider's public keys (RS256, ES256, EdDSA).
	JWKSFile string
	// HMACSecretFile holds a shared HS256 secret of at least 32 bytes. It is
	// meant for development and closed set-ups: anyone holding the secret can
	// mint tokens, so it is exclusive with JWKSFile.
	HMACSecretFile string
	// Leeway is the allowed clock skew for exp, nbf and iat. Zero means
	// DefaultLeeway.
	Leeway time.Duration
	// Now is the clock. Nil means time.Now; tests set it to move time
	// without sleeping.
	Now func() time.Time
	// CacheSize bounds how many verified tokens are remembered so that a
	// token presented again skips the signature check (never the exp, nbf
	// and iat checks). Zero means DefaultCacheSize; negative turns the
	// cache off.
	CacheSize int
}

// CheckAndSetDefaults rejects a configuration that could not verify anything
// safely and fills in the defaults. The key files themselves are read (and
// checked) by NewVerifier and Reload.
func (c *Config) CheckAndSetDefaults() error {
	if c.Issuer == "" {
		return errors.New("identity: Issuer is required")
	}
	if c.Audience == "" {
		return errors.New("identity: Audience is required")
	}
	switch {
	case c.JWKSFile == "" && c.HMACSecretFile == "":
		return errors.New("identity: one of JWKSFile or HMACSecretFile is required")
	case c.JWKSFile != "" && c.HMACSecretFile != "":
		// Accepting both would put a shared secret next to public keys, and
		// HS256 next to RS256 is the setting algorithm confusion needs.
		return errors.New("identity: JWKSFile and HMACSecretFile are exclusive")
	}
	switch {
	case c.Leeway < 0:
		return errors.New("identity: Leeway must not be negative")
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway > maxLeeway:
		return fmt.Errorf("identity: Leeway %s is above the %s limit", c.Leeway, maxLeeway)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	return nil
}

// Verifier turns bearer tokens into Principals. It is safe for concurrent use,
// including concurrent use with Reload.
type Verifier struct {
	cfg   Config
	keys  atomic.Pointer[keySet]
	cache *tokenCache // nil when Config.CacheSize < 0
	// reload serialises Reload so two concurrent reloads cannot publish an
	// older file's keys after a newer one's.
	reload sync.Mutex
}

// NewVerifier checks cfg and loads its keys. It fails rather than start
// without keys, since a Verifier with no keys could only refuse everyone or,
// worse, be "fixed" later by someone loosening a check.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	if err := v.Reload(); err != nil {
		return nil, err
	}
	return v, nil
}

// Reload re-reads the key file, for rotation. The new keys replace the old
// ones in one step, and only if the whole file is valid: a half-written or
// broken file keeps the previous keys, so a bad deploy degrades to "rotation
// did not happen" instead of "nobody can log in" or "some check was skipped".
func (v *Verifier) Reload() error {
	v.reload.Lock()
	defer v.reload.Unlock()
	ks, err := loadKeySet(&v.cfg)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	v.keys.Store(ks)
	return nil
}

// forbiddenHeaders are header parameters that let a token choose how it is
// verified: by carrying its own key (jwk, x5c), by pointing at one (jku, x5u),
// or by changing how the signature covers the payload (crit, b64). Lockbox
// only trusts keys from its own configuration, so a token that asks for
// anything else is refused outright rather than having the header ignored;
// ignoring it would leave us one library change away from honouring it.
var forbiddenHeaders = []struct {
	name   string
	reason error
}{
	{"jwk", errEmbeddedKey},
	{"jku", errEmbeddedKey},
	{"x5c", errEmbeddedKey},
	{"x5u", errEmbeddedKey},
	{"crit", errCritical},
	{"b64", errCritical},
}

// Verify checks raw and returns who it identifies. Every failure wraps
// ErrUnauthenticated with a fixed, token-free reason.
//
// ctx is accepted so that key retrieval can gain I/O later without changing
// callers; verification itself is CPU-bound and does not block.
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, errNoToken
	}
	if len(raw) > MaxTokenSize {
		return Principal{}, errTooLarge
	}
	ks := v.keys.Load()
	if ks == nil {
		return Principal{}, errNoKeys
	}
	var ck [32]byte
	if v.cache != nil {
		ck = tokenKey(raw)
		if hit := v.cache.get(ck); hit != nil && hit.valid(ks, v.cfg.Now(), v.cfg.Leeway) {
			return hit.p, nil
		}
	}
	p, times, err := v.verify(raw, ks)
	if err != nil {
		return Principal{}, err
	}
	if v.cache != nil {
		v.cache.put(ck, &verified{p: p, keys: ks, exp: times.exp, nbf: times.nbf, iat: times.iat})
	}
	return p, nil
}

// tokenTimes are a verified token's time claims, for the cache.
type tokenTimes struct{ exp, nbf, iat time.Time }

// verify is the whole check of raw against the key set ks: header,
// algorithm, key, signature, claims.
func (v *Verifier) verify(raw string, ks *keySet) (Principal, tokenTimes, error) {
	hdr, err := protectedHeader(raw)
	if err != nil {
		return Principal{}, tokenTimes{}, err
	}
	for _, f := range forbiddenHeaders {
		if _, ok := hdr[f.name]; ok {
			return Principal{}, tokenTimes{}, f.reason
		}
	}
	alg, err := headerString(hdr, "alg")
	if err != nil || alg == "" {
		return Principal{}, tokenTimes{}, errMalformed
	}
	// Only the algorithms of configured keys are allowed. This refuses
	// "none", and it refuses HS256 when the keys are public: otherwise a
	// token MACed with the public key as the secret could pass (algorithm
	// confusion).
	if !ks.allows(alg) {
		return Principal{}, tokenTimes{}, errAlgorithm
	}
	kid, err := headerString(hdr, "kid")
	if err != nil {
		return Principal{}, tokenTimes{}, errMalformed
	}
	_, hasKID := hdr["kid"]
	key, err := ks.lookup(kid, hasKID)
	if err != nil {
		return Principal{}, tokenTimes{}, err
	}
	// The key decides the algorithm, the token only has to agree. With keys
	// of several types configured, an allowed alg could still be paired with
	// the wrong key.
	if string(key.alg) != alg {
		return Principal{}, tokenTimes{}, errAlgorithm
	}

	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{key.alg})
	if err != nil || len(jws.Signatures) != 1 {
		return Principal{}, tokenTimes{}, errMalformed
	}
	payload, err := jws.Verify(key.key)
	if err != nil {
		return Principal{}, tokenTimes{}, errBadSignature
	}
	claims, err := decodeObject(payload)
	if err != nil {
		return Principal{}, tokenTimes{}, errMalformedClaims
	}
	return v.principal(claims)
}

// principal applies the claim checks. It runs only on a payload whose
// signature was verified, so nothing here is attacker-chosen unless the
// identity provider is compromised or lets its users shape some claims.
func (v *Verifier) principal(claims map[string]json.RawMessage) (Principal, tokenTimes, error) {
	var (
		c     jwt.Claims
		roles []string
	)
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"iss", &c.Issuer},
		{"sub", &c.Subject},
		{"aud", &c.Audience},
		{"exp", &c.Expiry},
		{"nbf", &c.NotBefore},
		{"iat", &c.IssuedAt},
		{"roles", &roles},
	} {
		if raw, ok := claims[f.name]; ok {
			// A claim of the wrong JSON type (a numeric sub, a string
			// roles) refuses the token: guessing what an odd claim meant
			// is how identities get confused.
			if err := json.Unmarshal(raw, f.dst); err != nil {
				return Principal{}, tokenTimes{}, errMalformedClaims
			}
		}
	}

	if c.Expiry == nil {
		// A token without exp never stops working, so a single leak is
		// permanent. RFC 7519 makes exp optional; Lockbox does not.
		return Principal{}, tokenTimes{}, errNoExpiry
	}
	err := c.ValidateWithLeeway(jwt.Expected{
		Issuer:      v.cfg.Issuer,
		AnyAudience: jwt.Audience{v.cfg.Audience},
		Time:        v.cfg.Now(),
	}, v.cfg.Leeway)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return Principal{}, tokenTimes{}, errWrongIssuer
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Principal{}, tokenTimes{}, errWrongAudience
	case errors.Is(err, jwt.ErrExpired):
		return Principal{}, tokenTimes{}, errExpired
	case errors.Is(err, jwt.ErrNotValidYet):
		return Principal{}, tokenTimes{}, errNotYetValid
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Principal{}, tokenTimes{}, errIssuedInFuture
	default:
		return Principal{}, tokenTimes{}, errMalformedClaims
	}

	if c.Subject == "" {
		return Principal{}, tokenTimes{}, errNoSubject
	}
	if !ValidSubject(c.Subject) {
		return Principal{}, tokenTimes{}, errBadSubject
	}
	p := Principal{Subject: c.Subject}
	if raw, ok := claims["tid"]; ok {
		// A principal without a tenant is the provider's own staff, so a
		// tid that is present but null, empty or not a string must refuse
		// the token, never read as "no tenant".
		var tid string
		if string(raw) == "null" || json.Unmarshal(raw, &tid) != nil || !ValidTenantID(tid) {
			return Principal{}, tokenTimes{}, errBadTenant
		}
		p.TenantID = tid
	}
	for _, r := range roles {
		role := Role(r)
		// Unknown roles are dropped rather than refused: providers put
		// roles for other applications in the same token, and none of them
		// grant anything here.
		if role.Known() && !slices.Contains(p.Roles, role) {
			p.Roles = append(p.Roles, role)
		}
	}
	times := tokenTimes{exp: c.Expiry.Time()}
	if c.NotBefore != nil {
		times.nbf = c.NotBefore.Time()
	}
	if c.IssuedAt != nil {
		times.iat = c.IssuedAt.Time()
	}
	return p, times, nil
}

// protectedHeader decodes the JOSE header of a compact JWS. Lockbox reads the
// header itself, before the library does, so that the refusals in Verify
// depend on the bytes the signer sent and not on which parameters a library
// version happens to recognise.
func protectedHeader(raw string) (map[string]json.RawMessage, error) {
	if strings.Count(raw, ".") != 2 {
		// Five parts would be an encrypted token (JWE); Lockbox accepts only
		// signed ones.
		return nil, errMalformed
	}
	enc, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, errMalformed
	}
	hdr, err := decodeObject(b)
	if err != nil {
		return nil, errMalformed
	}
	return hdr, nil
}

// decodeObject decodes a JSON object keeping its member names exactly.
// Decoding straight into a struct would not: encoding/json matches field
// names case-insensitively, so a "Tid" or "ROLES" claim (which some providers
// let users set) would be read as "tid" or "roles".
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// headerString reads an optional string header parameter; a value of any
// other JSON type is an error rather than "absent".
func headerString(hdr map[string]json.RawMessage, name string) (string, error) {
	v, ok := hdr[name]
	if !ok {
		return "", nil
	}
	var s string
	if string(v) == "null" || json.Unmarshal(v, &s) != nil {
		return "", errMalformed
	}
	return s, nil
}
