package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// An ID token's signature is checked with the issuer's keys, fetched from
// its jwks_uri when the token names a key not seen before (go-oidc's
// RemoteKeySet; identity providers rotate keys). A re-verification must
// tell a token that does not verify, which ends the session, from keys
// that can't be fetched, which says nothing of the user: the identity
// provider is down (see idpDown and reverifyGrace). go-oidc reports both as
// one error text ("failed to verify signature: %v" drops the cause's type),
// so the console fetches the keys through a client of its own, whose
// answers it sorts by type (keysUnavailable), and watches each check
// (watchedKeys).

// keysUnavailable is a JWKS endpoint that answered with a server error
// (5xx) or 429 too many requests: no keys, for now.
type keysUnavailable struct{ status int }

func (e *keysUnavailable) Error() string {
	return fmt.Sprintf("the JWKS endpoint answered %d %s", e.status, http.StatusText(e.status))
}

// keysTransport fetches an issuer's keys, turning an answer that is the
// identity provider's trouble into a *keysUnavailable error, which the
// http.Client hands on inside a *url.Error like a failure to connect.
type keysTransport struct{ next http.RoundTripper }

func (t keysTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	res, err := next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= http.StatusInternalServerError || res.StatusCode == http.StatusTooManyRequests {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		res.Body.Close()
		return nil, &keysUnavailable{status: res.StatusCode}
	}
	return res, nil
}

// newKeySet is the issuer's key set at jwksURL, fetched with client (its
// timeout and transport) when a token names a key it does not hold, and
// otherwise kept: go-oidc never fetches it again for a key it holds, so a
// key the identity provider retired would verify for as long as the
// process runs. issuerKeys replaces it when it is too old.
func newKeySet(client *http.Client, jwksURL string) *oidc.RemoteKeySet {
	kc := *client
	kc.Transport = keysTransport{next: client.Transport}
	return oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), &kc), jwksURL)
}

// Defaults of OIDCConfig's KeysRefresh and KeysMaxAge, those of the API's
// JWKS URLs (LOCKBOX_JWT_JWKS_REFRESH, LOCKBOX_JWT_JWKS_MAX_AGE).
const (
	DefaultKeysRefresh = 5 * time.Minute
	DefaultKeysMaxAge  = 24 * time.Hour
)

// issuerKeys is an issuer's keys, from its jwks_uri, fetched again before
// a check once those fetched last are refresh old: a key the identity
// provider took out of its JWKS (retired, or compromised) stops verifying
// within refresh, as a key of the API's JWKS URLs does. While the JWKS
// can't be fetched (no answer, 5xx, 429), the keys fetched last keep
// verifying until they are maxAge old; then nothing does until it answers.
type issuerKeys struct {
	client          *http.Client
	url             string
	refresh, maxAge time.Duration

	mu sync.Mutex
	// set holds the keys last fetched, at (on the console's clock); nil
	// before the first fetch.
	set *oidc.RemoteKeySet
	at  time.Time
}

func newIssuerKeys(client *http.Client, jwksURL string, refresh, maxAge time.Duration) *issuerKeys {
	return &issuerKeys{client: client, url: jwksURL, refresh: refresh, maxAge: maxAge}
}

// verify checks jwt's signature with the issuer's keys at now.
func (k *issuerKeys) verify(ctx context.Context, now time.Time, jwt string) ([]byte, error) {
	k.mu.Lock()
	cur, at := k.set, k.at
	k.mu.Unlock()
	if cur != nil && now.Before(at.Add(k.refresh)) {
		// A key it does not hold makes it fetch them again: a key the
		// identity provider rotated to verifies at once.
		return cur.VerifySignature(ctx, jwt)
	}
	// Only a token that parses makes the fresh set fetch; one that does
	// not would leave it empty, taken for keys fetched.
	if _, err := jose.ParseSigned(jwt, supportedAlgs); err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	// One fetch per check that finds them old: sign-ins and
	// re-verifications are few, and a fetch that fails leaves the keys
	// old for the next check to try again.
	fresh := newKeySet(k.client, k.url)
	payload, err := fresh.VerifySignature(ctx, jwt)
	if err != nil && keysNotFetched(err) {
		if cur != nil && now.Before(at.Add(k.maxAge)) {
			return cur.VerifySignature(ctx, jwt)
		}
		return nil, err
	}
	k.mu.Lock()
	if k.set == cur {
		k.set, k.at = fresh, now
	}
	k.mu.Unlock()
	return payload, err
}

// keysNotFetched reports whether err, of a key set's check, is a fetch
// of the keys that got no usable answer: a *url.Error is one without an
// answer (refused, reset, timed out) or with a server error
// (keysTransport); a deadline, one that did not finish in the request's
// time.
func keysNotFetched(err error) bool {
	_, ok := errors.AsType[*url.Error](err)
	return ok || errors.Is(err, context.DeadlineExceeded)
}

// watchedKeys is the issuer's key set for one check of one ID token at
// now: it remembers when the keys could not be fetched, which the
// verifier's error no longer says.
type watchedKeys struct {
	keys *issuerKeys
	now  time.Time
	// unavailable is why the keys could not be fetched; nil when they
	// could, or were not needed.
	unavailable error
}

func (w *watchedKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := w.keys.verify(ctx, w.now, jwt)
	if err != nil && keysNotFetched(err) {
		w.unavailable = err
	}
	return payload, err
}

// signingAlgs are the algorithms of the discovery document's
// id_token_signing_alg_values_supported that go-oidc verifies, as its own
// provider keeps them; none makes the verifier accept RS256 only, the
// specification's default.
func signingAlgs(d []string) []string {
	var out []string
	for _, a := range d {
		if slices.Contains(supportedAlgs, jose.SignatureAlgorithm(a)) {
			out = append(out, a)
		}
	}
	return out
}

// supportedAlgs are the algorithms go-oidc verifies.
var supportedAlgs = []jose.SignatureAlgorithm{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}
