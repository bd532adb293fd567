package identity

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/lockbox-oss/lockbox/internal/logurl"
)

const (
	// DefaultLeeway absorbs clock drift between the identity provider and
	// Lockbox. It is small on purpose: every second of leeway is a second an
	// expired or revoked token still works.
	DefaultLeeway = 30 * time.Second

	// maxLeeway keeps a configuration typo from quietly turning expiry off.
	maxLeeway = 5 * time.Minute

	// MaxTokenSize bounds the work an unauthenticated caller can make us do:
	// the size is checked before any decoding or signature math. Access
	// tokens are well under 2 KiB unless they list the user's groups
	// (errTooLarge says so).
	MaxTokenSize = 8 << 10
)

// Defaults of Config.
const (
	// DefaultMaxKeyAge bounds how long keys fetched from a JWKS URL keep
	// verifying while the URL can't be fetched again: long enough to ride
	// out an identity provider's outage, short enough that a key it retired
	// (perhaps because it leaked) does not work forever because Lockbox
	// can't hear of it.
	DefaultMaxKeyAge = 24 * time.Hour
	// DefaultMinRefreshInterval is the least time between two loads of an
	// issuer's keys caused by tokens naming unknown keys, so that a flood of
	// made-up key ids can't make Lockbox hammer the identity provider.
	DefaultMinRefreshInterval = 30 * time.Second
)

// Config says which tokens a Verifier accepts: those of its issuers. Keys
// come only from the configuration (files, or the issuer's JWKS URL), never
// from a token.
type Config struct {
	// Issuer, Audience and one of JWKSURL, JWKSFile or HMACSecretFile
	// configure a single issuer in the shared scope (see SharedScope): the
	// LOCKBOX_JWT_* variables. See IssuerConfig for each field.
	Issuer         string
	Audience       string
	JWKSURL        string
	JWKSFile       string
	HMACSecretFile string

	// Issuers are the trusted issuers, each with its own keys, audience,
	// claims and scope. Set either these or the single issuer above.
	Issuers []IssuerConfig

	// Fetcher fetches JWKS URLs; required when an issuer has one.
	Fetcher KeyFetcher
	// MaxKeyAge is how long keys fetched from a JWKS URL keep verifying
	// when the URL can't be fetched again; zero means DefaultMaxKeyAge.
	// Keys from files are used as long as the file holds them.
	MaxKeyAge time.Duration
	// MinRefreshInterval is the least time between two loads of one
	// issuer's keys (of one JWKS URL, for issuers that share it) asked for
	// by tokens naming an unknown key; zero means
	// DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration

	// Leeway is the allowed clock skew for exp, nbf and iat. Zero means
	// DefaultLeeway, unless NoLeeway is set.
	Leeway time.Duration
	// NoLeeway allows no clock skew at all: exp, nbf and iat are checked
	// to the second (LOCKBOX_JWT_LEEWAY=0). Leeway must then be zero. A
	// field of its own, as zero Leeway already means the default to every
	// caller that leaves it unset.
	NoLeeway bool
	// Now is the clock. Nil means time.Now; tests set it to move time
	// without sleeping.
	Now func() time.Time
	// CacheSize bounds how many verified tokens are remembered so that a
	// token presented again skips the signature check (never the exp, nbf
	// and iat checks). Zero means DefaultCacheSize; negative turns the
	// cache off.
	CacheSize int
	// Logger receives key changes and failed loads; discarded when nil.
	Logger *slog.Logger
}

// CheckAndSetDefaults rejects a configuration that could not verify anything
// safely and fills in the defaults. The keys themselves are loaded (and
// checked) by NewVerifier.
func (c *Config) CheckAndSetDefaults() error {
	single := c.Issuer != "" || c.Audience != "" || c.JWKSURL != "" || c.JWKSFile != "" || c.HMACSecretFile != ""
	switch {
	case single && len(c.Issuers) > 0:
		return errors.New("identity: set Issuers or the single issuer (Issuer, Audience, keys), not both")
	case len(c.Issuers) == 0:
		one := IssuerConfig{Issuer: c.Issuer, Audience: c.Audience, Scope: SharedScope(),
			JWKSURL: c.JWKSURL, JWKSFile: c.JWKSFile, HMACSecretFile: c.HMACSecretFile}
		if err := one.check(); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		c.Issuers = []IssuerConfig{one}
		c.Issuer, c.Audience, c.JWKSURL, c.JWKSFile, c.HMACSecretFile = "", "", "", "", ""
	default:
		c.Issuers = slices.Clone(c.Issuers)
		seen := map[string]bool{}
		for i := range c.Issuers {
			is := &c.Issuers[i]
			if err := is.check(); err != nil {
				return fmt.Errorf("identity: issuer %d (%q): %w", i+1, logurl.Show(is.Issuer), err)
			}
			// One iss, one set of keys and one scope: a second entry could
			// only be a second way in.
			if seen[is.Issuer] {
				return fmt.Errorf("identity: issuer %q is listed twice", logurl.Show(is.Issuer))
			}
			seen[is.Issuer] = true
		}
	}
	for _, is := range c.Issuers {
		if is.JWKSURL != "" && c.Fetcher == nil {
			return fmt.Errorf("identity: issuer %q has a JWKS URL and no Fetcher is configured", logurl.Show(is.Issuer))
		}
	}
	switch {
	case c.Leeway < 0:
		return errors.New("identity: Leeway must not be negative")
	case c.NoLeeway && c.Leeway != 0:
		return fmt.Errorf("identity: Leeway %s with NoLeeway", c.Leeway)
	case c.NoLeeway:
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway > maxLeeway:
		return fmt.Errorf("identity: Leeway %s is above the %s limit", c.Leeway, maxLeeway)
	}
	if c.MaxKeyAge < 0 || c.MinRefreshInterval < 0 {
		return errors.New("identity: MaxKeyAge and MinRefreshInterval must not be negative")
	}
	if c.MaxKeyAge == 0 {
		c.MaxKeyAge = DefaultMaxKeyAge
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Verifier turns bearer tokens into Principals. It is safe for concurrent use,
// including concurrent use with Reload, Watch and background key refreshes.
type Verifier struct {
	cfg     Config
	issuers map[string]*issuer // by "iss"
	files   []*issuer          // issuers whose keys are in files
	cache   *tokenCache        // nil when Config.CacheSize < 0
	// reload serialises Reload so two concurrent reloads cannot publish an
	// older file's keys after a newer one's.
	reload sync.Mutex
	// secrets serialises publishing HMAC secrets (publishSecret).
	secrets sync.Mutex
	// refuse, once set (RefuseSecrets), judges every HMAC secret a load
	// would publish.
	refuse atomic.Pointer[func(secret []byte) error]
}

// RefuseSecrets makes every later load of an HMAC secret file (Reload,
// the watch, the load an unknown key asks for) refuse a secret for which
// refuse returns an error, keeping the keys loaded before, as for a broken
// file. The server refuses the secrets it shares with upstreams: an
// upstream that holds the token secret mints operators' tokens.
func (v *Verifier) RefuseSecrets(refuse func(secret []byte) error) { v.refuse.Store(&refuse) }

// NewVerifier checks cfg and loads its keys. A key file that can't be read
// or holds no usable key fails it, rather than start without keys: a
// Verifier with no keys could only refuse everyone or, worse, be "fixed"
// later by someone loosening a check. A JWKS URL that can't be fetched does
// not: the issuer's tokens are refused until it can be (it is tried again in
// the background and when a token arrives), and the other issuers work
// meanwhile.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, issuers: make(map[string]*issuer, len(cfg.Issuers))}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	var remote []*issuer
	urlLimits := map[string]*refreshLimit{}
	for _, ic := range cfg.Issuers {
		is := &issuer{cfg: ic, now: cfg.Now, limit: &refreshLimit{minInterval: cfg.MinRefreshInterval},
			log: cfg.Logger.With("issuer", logurl.Show(ic.Issuer), "scope", ic.Scope.String())}
		switch {
		case ic.JWKSURL != "":
			is.maxAge = cfg.MaxKeyAge
			is.src = &urlSource{url: ic.JWKSURL, fetcher: cfg.Fetcher}
			if l := urlLimits[ic.JWKSURL]; l != nil {
				is.limit = l
			}
			urlLimits[ic.JWKSURL] = is.limit
			remote = append(remote, is)
		case ic.JWKSFile != "":
			// Issuers sharing a file each read it: a load publishes to
			// its own issuer only.
			is.src = &fileSource{path: ic.JWKSFile, parse: parseJWKS, what: "jwks",
				publish: func(ks *keySet) error { is.publish(ks); return nil }}
			v.files = append(v.files, is)
		default:
			is.src = &fileSource{path: ic.HMACSecretFile, parse: parseHMACSecret, what: "hmac secret",
				publish: func(ks *keySet) error { return v.publishSecret(is, ks) }}
			v.files = append(v.files, is)
		}
		v.issuers[ic.Issuer] = is
	}
	if err := v.Reload(); err != nil {
		return nil, err
	}
	// Identity providers are fetched side by side: one that is down delays
	// start-up by one fetch timeout, not one per issuer, as long as the
	// Fetcher runs as many fetches at once as there are URLs (see
	// jwksfetch.Config.Workers).
	var wg sync.WaitGroup
	for _, is := range remote {
		wg.Go(func() {
			err := cfg.Fetcher.Register(context.Background(), is.cfg.JWKSURL, is.acceptJWKS)
			switch {
			case errors.Is(err, errJWKSRefused):
				is.log.Error("identity: the issuer's JWKS was refused; its tokens are refused until it publishes one Lockbox accepts", "error", err)
			case err != nil:
				is.log.Error("identity: the issuer's keys could not be fetched; its tokens are refused until they can be", "error", err)
			}
		})
	}
	wg.Wait()
	return v, nil
}

// publishSecret makes ks, read from is's HMAC secret file, is's keys,
// unless an issuer of another scope verifies with the same secret. Public
// keys may be shared by any issuers (a cloud identity provider signs every
// directory's tokens with one key set): only the identity provider holds
// their private halves, and the signed "iss" decides the scope. A shared
// secret is the signing key itself, held by each issuer's token service:
// contoso's could sign as the provider's staff, and the scopes would keep
// no one apart. Checked at each load, not only at start-up: a secret file
// rotated to another scope's secret (a copy-paste slip) was taken by
// Reload, the watch and the load an unknown key asks for, and is now
// refused as a broken file is, keeping the keys loaded before. secrets
// makes the check and the publication one step, so two files rotated at
// once can't each pass against the other's old secret.
func (v *Verifier) publishSecret(is *issuer, ks *keySet) error {
	v.secrets.Lock()
	defer v.secrets.Unlock()
	if refuse := v.refuse.Load(); refuse != nil {
		for _, k := range ks.byKID {
			if secret, ok := k.key.([]byte); ok {
				if err := (*refuse)(secret); err != nil {
					return err
				}
			}
		}
	}
	for _, other := range v.files {
		if other == is || other.cfg.HMACSecretFile == "" || other.cfg.Scope == is.cfg.Scope {
			continue
		}
		if cur := other.keys.Load(); cur != nil && cur.fingerprint == ks.fingerprint {
			return fmt.Errorf("issuers %q (%s) and %q (%s) verify with the same HMAC secret: whoever holds it signs tokens as either, "+
				"so their scopes keep no one apart; give each its own secret", logurl.Show(other.cfg.Issuer), other.cfg.Scope, logurl.Show(is.cfg.Issuer), is.cfg.Scope)
		}
	}
	is.publish(ks)
	return nil
}

// SecretOf reports which issuer verifies with secret now, if any: white
// space around either counts for nothing. The server judges a reloaded
// upstream secret by the token secrets in use, not by the files as they
// are now (a changed file may just have been refused).
func (v *Verifier) SecretOf(secret []byte) (issuer string, ok bool) {
	want := bytes.TrimSpace(secret)
	for _, is := range v.files {
		ks := is.keys.Load()
		if is.cfg.HMACSecretFile == "" || ks == nil {
			continue
		}
		for _, k := range ks.byKID {
			if b, isSecret := k.key.([]byte); isSecret && bytes.Equal(bytes.TrimSpace(b), want) {
				return is.cfg.Issuer, true
			}
		}
	}
	return "", false
}

// Reload reads every key file again, for rotation. The new keys replace the
// old ones in one step, and only if the whole file is valid: a half-written
// or broken file keeps the previous keys, so a bad deploy degrades to
// "rotation did not happen" instead of "nobody can log in" or "some check was
// skipped". Keys from URLs are refreshed by the Fetcher.
func (v *Verifier) Reload() error {
	v.reload.Lock()
	defer v.reload.Unlock()
	var errs []error
	for _, is := range v.files {
		if err := is.src.load(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("identity: %w", err))
		}
	}
	return errors.Join(errs...)
}

// KeyFiles are the files Reload reads: the JWKS and HMAC secret files of
// the issuers, each once, in the order configured.
func (v *Verifier) KeyFiles() []string {
	var out []string
	for _, is := range v.files {
		if p := is.src.String(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Watch reloads the key files every interval until ctx ends, so a rotated
// file takes effect without a restart. A file that fails to load is logged
// and keeps the keys it had.
func (v *Verifier) Watch(ctx context.Context, interval time.Duration) {
	if len(v.files) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := v.Reload(); err != nil {
				v.cfg.Logger.WarnContext(ctx, "identity: a key file could not be loaded; the keys loaded before stay in use", "error", err)
			}
		}
	}
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
// A token is verified with the keys of the issuer its "iss" names (read
// before the signature is checked, only to choose the keys), and mapped to
// a Principal by that issuer's scope. ctx bounds the load of keys a token
// may cause (an unknown key id).
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, errNoToken
	}
	if len(raw) > MaxTokenSize {
		return Principal{}, errTooLarge
	}
	now := v.cfg.Now()
	var ck [32]byte
	if v.cache != nil {
		ck = tokenKey(raw)
		if hit := v.cache.get(ck); hit != nil && hit.valid(now, v.cfg.Leeway) {
			return hit.p, nil
		}
	}
	entry, err := v.verify(ctx, raw, now)
	if err != nil {
		return Principal{}, err
	}
	if v.cache != nil {
		v.cache.put(ck, entry)
	}
	return entry.p, nil
}

// verify is the whole check of raw: header, issuer, algorithm, key,
// signature, claims, scope.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*verified, error) {
	hdr, err := protectedHeader(raw)
	if err != nil {
		return nil, err
	}
	for _, f := range forbiddenHeaders {
		if _, ok := hdr[f.name]; ok {
			return nil, f.reason
		}
	}
	alg, err := headerString(hdr, "alg")
	if err != nil || alg == "" {
		return nil, errMalformed
	}
	kid, err := headerString(hdr, "kid")
	if err != nil {
		return nil, errMalformed
	}
	_, hasKID := hdr["kid"]

	// The issuer is read before the signature is checked, only to pick
	// whose keys check it: a token naming an issuer it does not come from
	// then fails the signature check with that issuer's keys.
	payload, claims, err := unverifiedClaims(raw)
	if err != nil {
		return nil, err
	}
	iss, err := claimString(claims, "iss")
	if err != nil {
		return nil, errMalformedClaims
	}
	is := v.issuers[iss]
	if is == nil {
		return nil, errWrongIssuer
	}
	if err := checkTokenType(hdr, is.cfg.TokenTypes); err != nil {
		return nil, err
	}

	ks := is.keys.Load()
	// No keys yet (the identity provider was down), keys not confirmed for
	// too long, or a key id the issuer may have just rotated to: load the
	// keys again, as often as the rate limit allows.
	if ks == nil || ks.stale(now, is.maxAge) || (hasKID && !ks.has(kid) && refreshable(alg)) {
		if is.refreshForUnknownKey(ctx) {
			ks = is.keys.Load()
		}
	}
	switch {
	case ks == nil:
		if is.refused.Load() {
			return nil, errNoKeysRefused
		}
		return nil, errNoKeys
	case ks.stale(now, is.maxAge):
		if is.refused.Load() {
			return nil, errStaleKeysRefused
		}
		return nil, errStaleKeys
	}
	// Only the algorithms of the issuer's keys are allowed. This refuses
	// "none", and it refuses HS256 when the keys are public: otherwise a
	// token MACed with the public key as the secret could pass (algorithm
	// confusion).
	if !ks.allows(alg) {
		return nil, errAlgorithm
	}
	key, err := ks.lookup(kid, hasKID)
	if err != nil {
		return nil, err
	}
	// The key decides the algorithm, the token only has to agree. With keys
	// of several types configured, an allowed alg could still be paired with
	// the wrong key.
	if string(key.alg) != alg {
		return nil, errAlgorithm
	}

	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{key.alg})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errMalformed
	}
	verifiedPayload, err := jws.Verify(key.key)
	if err != nil {
		return nil, errBadSignature
	}
	// The claims were decoded from the same bytes before: reuse them when
	// the library verified exactly those, decode what it verified if not.
	if !bytes.Equal(verifiedPayload, payload) {
		if claims, err = decodeObject(verifiedPayload); err != nil {
			return nil, errMalformedClaims
		}
	}
	p, times, err := is.principal(claims, now, v.cfg.Leeway)
	if err != nil {
		return nil, err
	}
	// After the claim checks, so that a token of another audience or an
	// expired one says so, which is what helps fix a configuration.
	if err := checkAccessClaims(claims); err != nil {
		return nil, err
	}
	return &verified{p: p, iss: is, keys: ks, exp: times.exp, nbf: times.nbf, iat: times.iat}, nil
}

// refreshable reports whether alg is one a key could be loaded for. A token
// naming "none" or an algorithm Lockbox never accepts can't make it load
// keys.
func refreshable(alg string) bool {
	return jwksAlgs[jose.SignatureAlgorithm(alg)] || alg == string(jose.HS256)
}

// tokenTimes are a verified token's time claims, for the cache.
type tokenTimes struct{ exp, nbf, iat time.Time }

// principal applies the claim checks and the issuer's scope. It runs only on
// a payload whose signature was verified, so nothing here is attacker-chosen
// unless the identity provider is compromised or lets its users shape some
// claims; the scope bounds what even that can do.
func (is *issuer) principal(claims map[string]json.RawMessage, now time.Time, leeway time.Duration) (Principal, tokenTimes, error) {
	var (
		c       jwt.Claims
		subject string
		roles   []string
		email   string
	)
	m := is.cfg.Claims
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"iss", &c.Issuer},
		{"aud", &c.Audience},
		{"exp", &c.Expiry},
		{"nbf", &c.NotBefore},
		{"iat", &c.IssuedAt},
		{m.Subject, &subject},
		{m.Roles, &roles},
		{m.Email, &email},
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
		Issuer:      is.cfg.Issuer,
		AnyAudience: jwt.Audience{is.cfg.Audience},
		Time:        now,
	}, leeway)
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

	if subject == "" {
		return Principal{}, tokenTimes{}, errNoSubject
	}
	var tid string
	if raw, ok := claims[tenantClaim]; ok && is.cfg.Scope.IsShared() {
		// The other scopes never read it: their tenant is the
		// configuration's.
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return Principal{}, tokenTimes{}, errBadTenant
		}
		if tid, err = ClaimedTenant(v, true); err != nil {
			return Principal{}, tokenTimes{}, errBadTenant
		}
	}
	p, err := is.cfg.Scope.Principal(subject, roles, tid)
	switch {
	case errors.Is(err, ErrInvalidSubject):
		return Principal{}, tokenTimes{}, errBadSubject
	case errors.Is(err, ErrInvalidTenant):
		return Principal{}, tokenTimes{}, errBadTenant
	case err != nil:
		return Principal{}, tokenTimes{}, errMalformedClaims
	}
	p.Email = PlainAddress(email)
	times := tokenTimes{exp: c.Expiry.Time()}
	if c.NotBefore != nil {
		times.nbf = c.NotBefore.Time()
	}
	if c.IssuedAt != nil {
		times.iat = c.IssuedAt.Time()
	}
	return p, times, nil
}

// PlainAddress returns s if it is a plain e-mail address ("a@b.example",
// no display name), "" otherwise. The address is only shown, so one Lockbox
// can't read is dropped rather than refusing the token. net/mail takes any
// non-ASCII in an address (RFC 6532), format characters too: a
// right-to-left override would show one address as another to whoever
// reads it, so those are dropped, with control characters.
func PlainAddress(s string) string {
	if s == "" || len(s) > 254 {
		return ""
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) }) {
		return ""
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return ""
	}
	return s
}

// unverifiedClaims decodes the payload of a compact JWS, before its
// signature is checked: the bytes, and the claims with their names exactly.
func unverifiedClaims(raw string) ([]byte, map[string]json.RawMessage, error) {
	_, rest, _ := strings.Cut(raw, ".")
	enc, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, nil, errMalformed
	}
	claims, err := decodeObject(b)
	if err != nil {
		return nil, nil, errMalformedClaims
	}
	return b, claims, nil
}

// claimString reads an optional string claim; "" when absent, an error for
// any other JSON type.
func claimString(claims map[string]json.RawMessage, name string) (string, error) {
	raw, ok := claims[name]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
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
