package identity

import (
	"errors"
	"fmt"
)

// ErrUnauthenticated is the one error category a caller of Verify needs: the
// request carries no identity Lockbox can trust. Every verification failure
// wraps it, so the caller can branch with errors.Is and answer 401 without
// looking at the reason.
var ErrUnauthenticated = errors.New("unauthenticated")

// authError is a verification failure with a reason from the closed set
// below. The reasons are fixed strings on purpose: they end up in logs and
// error messages, so they must never carry any part of the token (a token in a
// log is a credential in a log), and they must stay few enough to be a
// bounded metric label.
type authError struct{ reason string }

func (e *authError) Error() string { return ErrUnauthenticated.Error() + ": " + e.reason }
func (e *authError) Unwrap() error { return ErrUnauthenticated }

func deny(reason string) error { return &authError{reason: reason} }

// The reasons Verify gives. They describe which check failed, which helps an
// operator fix a misconfigured identity provider, without helping an attacker
// more than the check itself already does.
var (
	errNoToken         = deny("missing token")
	errMalformed       = deny("malformed token")
	errMalformedClaims = deny("malformed claims")
	errAlgorithm       = deny("algorithm not allowed")
	errEmbeddedKey     = deny("token names its own key")
	errCritical        = deny("unsupported critical header")
	errUnknownKey      = deny("unknown signing key")
	errNoKeyID         = deny("missing key id")
	errBadSignature    = deny("bad signature")
	errWrongIssuer     = deny("wrong issuer")
	errWrongAudience   = deny("wrong audience")
	errNoExpiry        = deny("missing exp")
	errExpired         = deny("token expired")
	errNotYetValid     = deny("token not yet valid")
	errIssuedInFuture  = deny("token issued in the future")
	errNoSubject       = deny("missing sub")
	errBadSubject      = deny("invalid sub")
	errBadTenant       = deny("invalid tid")
	errTokenType       = deny("token type not allowed")
	errNotAccessToken  = deny("not an access token")
	errNoKeys          = deny("no verification keys")
	errStaleKeys       = deny("verification keys too old")
	// The same two, when the last JWKS fetched from the issuer's URL was
	// refused: the identity provider answers, with keys Lockbox won't use,
	// and is not unreachable.
	errNoKeysRefused    = deny("no verification keys (JWKS refused)")
	errStaleKeysRefused = deny("verification keys too old (JWKS refused)")
)

// errTooLarge names the limit and its usual cause, so that an engineer's
// 401 leads to the identity provider's token configuration: Entra ID puts
// up to 200 group ids in a token, which alone take it past the limit. It
// starts with the reason it always gave.
var errTooLarge = deny(fmt.Sprintf("token too large: over %d KiB (%d bytes), the most Lockbox takes; "+
	"the user's groups in the token (Entra ID's groups claim) usually make it so: Lockbox reads roles, "+
	"so have the identity provider leave groups out of tokens for Lockbox's audience", MaxTokenSize>>10, MaxTokenSize))

// errJWKSRefused marks the error of a JWKS document fetched from an
// issuer's URL and refused, through the fetcher's wrapping, so that logs
// tell it from a URL that could not be fetched.
var errJWKSRefused = errors.New("JWKS refused")
