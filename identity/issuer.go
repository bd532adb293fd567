package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/lockbox-oss/lockbox/internal/logurl"
)

// IssuerConfig is one trusted issuer: where its keys come from, which
// tokens of it are for Lockbox, how its claims name things, and whose users
// it signs in.
type IssuerConfig struct {
	// Issuer must equal the token's "iss" exactly. It also picks the
	// issuer: a token is verified with the keys of the issuer it names,
	// and with no other.
	Issuer string
	// Audience must appear in the token's "aud", so tokens the same identity
	// provider issues for other applications are refused here.
	Audience string
	// Scope says whose users the issuer signs in. Required.
	Scope Scope

	// Exactly one key source.
	//
	// JWKSURL is the identity provider's JWKS endpoint (https, or http on a
	// loopback address): fetched through Config.Fetcher, refreshed in the
	// background and when a token names an unknown key.
	JWKSURL string
	// JWKSFile holds the public keys (RS256, ES256, EdDSA); it is read again
	// when it changes (Verifier.Watch) and when a token names an unknown
	// key.
	JWKSFile string
	// HMACSecretFile holds a shared HS256 secret of at least 32 bytes. It is
	// meant for development and closed set-ups: anyone holding the secret can
	// mint tokens.
	HMACSecretFile string

	// Claims names the claims that carry the subject, the roles and the
	// e-mail address.
	Claims ClaimMapping

	// TokenTypes, when set, are the only "typ" headers its tokens may
	// carry, compared as RFC 7515 has it (without case, "application/"
	// optional): "at+jwt" takes RFC 9068 access tokens alone, and a token
	// of another type or with none is refused. Empty: "JWT", "at+jwt" or
	// none. Either way, tokens that are no access token are refused (see
	// checkAccessClaims).
	TokenTypes []string
}

// ClaimMapping names the claims a token's identity is read from. Empty
// names mean the defaults.
type ClaimMapping struct {
	// Subject is the user id; default "sub".
	Subject string
	// Roles is an array of role names; default "roles".
	Roles string
	// Email is the user's e-mail address, shown but never used to decide
	// anything; default "email".
	Email string
}

func (m *ClaimMapping) setDefaults() {
	if m.Subject == "" {
		m.Subject = "sub"
	}
	if m.Roles == "" {
		m.Roles = "roles"
	}
	if m.Email == "" {
		m.Email = "email"
	}
}

// tenantClaim is where the shared scope reads a user's tenant. The other
// scopes never read it.
const tenantClaim = "tid"

func (c *IssuerConfig) check() error {
	switch {
	case c.Issuer == "":
		return errors.New("Issuer is required")
	case c.Audience == "":
		return errors.New("Audience is required")
	}
	if err := c.Scope.Check(); err != nil {
		return err
	}
	n := 0
	for _, s := range []string{c.JWKSURL, c.JWKSFile, c.HMACSecretFile} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("one of JWKSURL, JWKSFile or HMACSecretFile is required")
	case n > 1:
		// Accepting two would put a shared secret next to public keys, and
		// HS256 next to RS256 is the setting algorithm confusion needs.
		return errors.New("JWKSURL, JWKSFile and HMACSecretFile are exclusive")
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			return err
		}
	}
	for _, t := range c.TokenTypes {
		if t == "" || strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") || strings.ContainsFunc(t, unicode.IsSpace) || strings.Contains(t, ",") {
			return fmt.Errorf("token type %q is not a media type", t)
		}
	}
	c.TokenTypes = slices.Clone(c.TokenTypes)
	c.Claims.setDefaults()
	return nil
}

// checkJWKSURL reports whether u may be a JWKS URL: https, or http on a
// loopback address (a local identity provider or a test). Keys fetched in
// the clear from elsewhere could be anyone's.
func checkJWKSURL(u string) error { return CheckFetchURL("JWKS URL", u) }

// CheckFetchURL reports whether u may be fetched for something that decides
// who signs in (keys, codes, tokens): https, or http on a loopback address.
// what names u in the error. The admin center applies it to the endpoints an
// identity provider's discovery document names.
func CheckFetchURL(what, u string) error {
	pu, err := url.Parse(u)
	switch {
	case err != nil && strings.Contains(u, "@"):
		// Neither u nor the parser's error is quoted: a password that is
		// not percent-encoded ends the authority early, and its first part
		// is quoted as the port. This message goes to logs.
		return fmt.Errorf("%s is not a URL (not shown: it may hold a password)", what)
	case err == nil && pu.User != nil:
		// Shown without its user info, which may be a password or a token,
		// nor its query's values.
		return fmt.Errorf("%s %q must not carry a user name or password", what, logurl.Show(u))
	case err != nil || pu.Host == "" || pu.Fragment != "":
		return fmt.Errorf("%s %q is not an absolute URL with a host", what, logurl.Show(u))
	}
	switch pu.Scheme {
	case "https":
		return nil
	case "http":
		if h := pu.Hostname(); h == "localhost" || h == "127.0.0.1" || h == "::1" {
			return nil
		}
	}
	// Its query's values not shown either: an identity provider's
	// endpoint may take a credential there, and this goes to logs.
	return fmt.Errorf("%s %q must be https (http only on localhost)", what, logurl.Show(u))
}

// keySource loads an issuer's keys from where they are kept and publishes
// them to the issuer. An error keeps the keys published before.
type keySource interface {
	load(ctx context.Context) error
	String() string
}

// issuer is one trusted issuer at run time.
type issuer struct {
	cfg    IssuerConfig
	keys   atomic.Pointer[keySet]
	src    keySource
	now    func() time.Time
	maxAge time.Duration // of fetched keys; zero for files
	log    *slog.Logger

	// publishing serialises publish, so a slow old document can't replace
	// a newer one's keys in between the comparison and the store.
	publishing sync.Mutex

	// Refreshes asked for by unknown key ids; shared by the issuers of
	// one JWKS URL.
	limit *refreshLimit

	// refused is set while the last JWKS document fetched from the URL
	// was refused. Read only when a token is refused for want of keys,
	// to say why.
	refused atomic.Bool
}

// acceptJWKS is what the issuer does with a JWKS document fetched from its
// URL: publish its keys, or refuse it (see withdrawUnlisted).
func (is *issuer) acceptJWKS(b []byte) error {
	ks, err := parseJWKS(b, is.cfg.JWKSURL)
	if err != nil {
		is.refused.Store(true)
		is.withdrawUnlisted(b)
		return fmt.Errorf("%w: %w", errJWKSRefused, err)
	}
	is.refused.Store(false)
	is.publish(ks)
	return nil
}

// refreshLimit rate limits the loads of a key source that tokens ask for.
// Issuers that share a JWKS URL share one: a fetch of the URL brings every
// one of them the keys, and with a limit each, tokens naming made-up key
// ids of each issuer in turn would fetch the URL once per issuer.
type refreshLimit struct {
	mu          sync.Mutex
	minInterval time.Duration
	lastForced  time.Time
	inflight    chan struct{}
}

// publish makes ks the issuer's keys. The same keys as before keep the
// current set (and generation), only marked confirmed now, so tokens
// verified with them stay remembered.
func (is *issuer) publish(ks *keySet) {
	is.publishing.Lock()
	defer is.publishing.Unlock()
	now := is.now().UnixNano()
	if cur := is.keys.Load(); cur != nil && cur.fingerprint == ks.fingerprint {
		cur.confirmed.Store(now)
		return
	}
	ks.confirmed.Store(now)
	old := is.keys.Swap(ks)
	if old != nil {
		is.log.Info("identity: the issuer's keys changed", "issuer", logurl.Show(is.cfg.Issuer), "source", is.src.String(), "kids", ks.kids())
	}
}

// withdrawUnlisted ends the keys that b, a JWKS document fetched from the
// issuer's URL and refused, no longer lists as usable. The document is
// refused (its new keys are not loaded), but it still says which keys the
// provider stands by: one it retired, perhaps because it leaked, must stop
// working now and not when MaxKeyAge runs out, even if the provider
// published some key Lockbox refuses in the same document. An answer that
// is not a key set (an error page) says nothing and changes nothing. Key
// files are not narrowed: a broken file is a deploy in progress or a
// mistake, and keeps the keys loaded before.
func (is *issuer) withdrawUnlisted(b []byte) {
	listed, ok := listedKeys(b)
	if !ok {
		return
	}
	is.publishing.Lock()
	defer is.publishing.Unlock()
	cur := is.keys.Load()
	if cur == nil {
		return
	}
	var kept []verifyKey
	for _, k := range cur.byKID {
		if fp, err := fingerprint([]verifyKey{k}); err == nil && listed[fp] {
			kept = append(kept, k)
		}
	}
	if len(kept) == len(cur.byKID) {
		return
	}
	ks, err := newKeySet(kept) // a part of a valid set: fails only when empty
	if err != nil {
		// None left: the issuer's tokens are refused until a document is
		// accepted.
		is.keys.Store(nil)
		is.log.Warn("identity: the issuer's JWKS was refused and lists none of the keys in use; its tokens are refused until one is accepted", "issuer", logurl.Show(is.cfg.Issuer), "source", is.src.String())
		return
	}
	// Not a confirmation: the keys left age as they did.
	ks.confirmed.Store(cur.confirmed.Load())
	is.keys.Store(ks)
	is.log.Warn("identity: the issuer's JWKS was refused; the keys it no longer lists stop verifying", "issuer", logurl.Show(is.cfg.Issuer), "source", is.src.String(), "kids", ks.kids())
}

// refreshForUnknownKey loads the keys again because a token named a key the
// issuer does not have: the identity provider may have rotated. Anyone can
// send such a token, so loads are rate limited (at most one per
// minInterval); a caller arriving while one runs waits for it. Every
// caller, the one that started the load too, stops waiting when ctx ends.
// It reports whether keys were loaded.
func (is *issuer) refreshForUnknownKey(ctx context.Context) bool {
	l := is.limit
	l.mu.Lock()
	if ch := l.inflight; ch != nil {
		l.mu.Unlock()
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	now := is.now()
	if !l.lastForced.IsZero() && now.Sub(l.lastForced) < l.minInterval {
		l.mu.Unlock()
		return false
	}
	l.lastForced = now
	ch := make(chan struct{})
	l.inflight = ch
	l.mu.Unlock()

	// The load is shared by everyone waiting: one caller giving up must
	// not cancel it for the others. It runs on its own, bounded by the
	// fetch timeout, so that the caller that started it can give up too:
	// a slow identity provider must not hold a request past its deadline.
	loaded := make(chan error, 1)
	lctx := context.WithoutCancel(ctx)
	go func() {
		err := is.src.load(lctx)
		l.mu.Lock()
		l.inflight = nil
		close(ch)
		l.mu.Unlock()
		switch {
		case errors.Is(err, errJWKSRefused):
			is.log.WarnContext(lctx, "identity: a token names an unknown key and the JWKS fetched again was refused", "issuer", logurl.Show(is.cfg.Issuer), "source", is.src.String(), "error", err)
		case err != nil:
			is.log.WarnContext(lctx, "identity: a token names an unknown key and the keys could not be loaded again", "issuer", logurl.Show(is.cfg.Issuer), "source", is.src.String(), "error", err)
		}
		loaded <- err
	}()
	select {
	case err := <-loaded:
		return err == nil
	case <-ctx.Done():
		return false
	}
}

// fileSource reads a JWKS or HMAC secret file.
type fileSource struct {
	path    string
	parse   func(b []byte, path string) (*keySet, error)
	publish func(*keySet) error // refuses keys as parse does, keeping the previous ones
	what    string              // "jwks" or "hmac secret", for errors

	mu   sync.Mutex
	last [32]byte // hash of the bytes published last
	// Loads are numbered as they begin to read. Reload and the load a
	// token's unknown key asks for may overlap, and one that began before
	// the load that published last may have read the file before it was
	// rotated: it publishes nothing, or the retired keys would come back
	// until the next reload.
	began, published uint64
}

func (f *fileSource) String() string { return f.path }

func (f *fileSource) load(context.Context) error {
	f.mu.Lock()
	f.began++
	n := f.began
	f.mu.Unlock()
	b, err := readKeyFile(f.path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.what, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n < f.published {
		return nil
	}
	sum := sha256.Sum256(b)
	if sum == f.last {
		f.published = n
		return nil
	}
	ks, err := f.parse(b, f.path)
	if err != nil {
		return err
	}
	if err := f.publish(ks); err != nil {
		return fmt.Errorf("%s %s: %w", f.what, f.path, err)
	}
	f.last, f.published = sum, n
	return nil
}

// urlSource fetches a JWKS URL through the Fetcher, which calls accept with
// every document, fetched on demand or in the background.
type urlSource struct {
	url     string
	fetcher KeyFetcher
}

// String is the URL as logs show it (logurl.Show): its query may carry a
// credential.
func (u *urlSource) String() string { return logurl.Show(u.url) }

func (u *urlSource) load(ctx context.Context) error { return u.fetcher.Refresh(ctx, u.url) }

// KeyFetcher fetches JWKS documents from URLs and keeps them fresh.
// identity/jwksfetch implements it over HTTP.
type KeyFetcher interface {
	// Register starts keeping url fresh and fetches it once now; every
	// document fetched from it goes to accept, which returns an error for
	// one it refuses. It returns the first fetch's error: url stays
	// registered either way.
	Register(ctx context.Context, url string, accept func([]byte) error) error
	// Refresh fetches url now, returning once its document was handed to
	// accept (or could not be fetched).
	Refresh(ctx context.Context, url string) error
}
