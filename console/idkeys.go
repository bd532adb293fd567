package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
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
// timeout and transport) and cached for as long as the process runs.
func newKeySet(client *http.Client, jwksURL string) *oidc.RemoteKeySet {
	kc := *client
	kc.Transport = keysTransport{next: client.Transport}
	return oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), &kc), jwksURL)
}

// watchedKeys is the issuer's key set for one check of one ID token: it
// remembers when the keys could not be fetched, which the verifier's error
// no longer says.
type watchedKeys struct {
	keys oidc.KeySet
	// unavailable is why the keys could not be fetched; nil when they
	// could, or were not needed.
	unavailable error
}

func (w *watchedKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := w.keys.VerifySignature(ctx, jwt)
	if err != nil {
		// A *url.Error is a fetch without an answer (refused, reset,
		// timed out) or with a server error (keysTransport); a deadline,
		// a fetch that did not finish in the request's time.
		if _, ok := errors.AsType[*url.Error](err); ok || errors.Is(err, context.DeadlineExceeded) {
			w.unavailable = err
		}
	}
	return payload, err
}

// signingAlgs are the algorithms of the discovery document's
// id_token_signing_alg_values_supported that go-oidc verifies, as its own
// provider keeps them; none makes the verifier accept RS256 only, the
// specification's default.
func signingAlgs(d []string) []string {
	supported := []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}
	var out []string
	for _, a := range d {
		if slices.Contains(supported, a) {
			out = append(out, a)
		}
	}
	return out
}
