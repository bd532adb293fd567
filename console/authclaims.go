package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
)

// authentication is what an ID token says of the authentication it stems
// from: a sign-in's, or a silent re-verification's, which is an
// authentication too. OpenID Connect Core 1.0 section 12.2 has every ID
// token refreshed from it repeat these: the same sub and aud, the same
// azp (none if the first had none), and an auth_time, when it has one,
// that is the original authentication's time. A nonce in a refreshed ID
// token can only be the authentication request's too: any other was asked
// for by another authentication, perhaps another client's or another
// browser's, and the token is not this session's. The issuer is checked
// by the verifier, against the session's issuer.
//
// The principal's subject alone does not cover sub: it is read from the
// issuer's subject claim, which may be another (oid, say) whose value two
// accounts can share.
type authentication struct {
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	// AZP is the authorized party, "" when the token names none
	// (checkAuthorizedParty refuses one that is not this client).
	AZP string `json:"azp,omitempty"`
	// AuthTime is auth_time in seconds, 0 when the token has none.
	AuthTime int64  `json:"auth_time,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
}

// authenticationOf reads idt's authentication claims. A token whose
// auth_time is not a number is refused: the session could not compare
// the next one's.
func authenticationOf(idt *oidc.IDToken) (authentication, error) {
	var c struct {
		AZP      string       `json:"azp"`
		AuthTime *json.Number `json:"auth_time"`
	}
	if err := idt.Claims(&c); err != nil {
		return authentication{}, err
	}
	a := authentication{Subject: idt.Subject, Audience: slices.Clone(idt.Audience), AZP: c.AZP, Nonce: idt.Nonce}
	if c.AuthTime != nil {
		f, err := c.AuthTime.Float64()
		if err != nil {
			return authentication{}, fmt.Errorf("auth_time %q is not a number", c.AuthTime.String())
		}
		a.AuthTime = int64(f)
	}
	return a, nil
}

// errOtherAuthentication is a refreshed ID token that does not repeat the
// claims of the authentication the session stems from.
var errOtherAuthentication = errors.New("the identity provider's new ID token is not of the session's authentication")

// sameAuthentication checks that refreshed, the claims of an ID token a
// refresh returned, repeat those of orig, the authentication the session
// stems from, as section 12.2 requires (see authentication).
func (orig authentication) sameAuthentication(refreshed authentication) error {
	switch {
	case refreshed.Subject != orig.Subject:
		return fmt.Errorf("%w: its sub is %q, the authentication's %q", errOtherAuthentication, refreshed.Subject, orig.Subject)
	case !sameAudience(refreshed.Audience, orig.Audience):
		return fmt.Errorf("%w: its aud is %q, the authentication's %q", errOtherAuthentication, refreshed.Audience, orig.Audience)
	case refreshed.AZP != orig.AZP:
		return fmt.Errorf("%w: its azp is %q, the authentication's %q", errOtherAuthentication, refreshed.AZP, orig.AZP)
	case refreshed.AuthTime != 0 && refreshed.AuthTime != orig.AuthTime:
		return fmt.Errorf("%w: its auth_time is %d, the authentication's %d", errOtherAuthentication, refreshed.AuthTime, orig.AuthTime)
	case refreshed.Nonce != "" && refreshed.Nonce != orig.Nonce:
		// Neither nonce is logged: the text goes to logs, and the
		// original is what an attacker would need to make one pass.
		return fmt.Errorf("%w: its nonce is not the authentication request's", errOtherAuthentication)
	}
	return nil
}

// sameAudience reports whether a and b list the same audiences, in any
// order.
func sameAudience(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
