package audit

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// The states of a chain's seal, as Verification.Seal reports them.
const (
	// SealVerified: the seal is the proxy's, by a published key, and the
	// records up to the entry it names are the ones it sealed.
	SealVerified = "verified"
	// SealNone: the chain has no seal (sealing is off, it was never
	// sealed, or the seal was deleted): the chain alone covers it.
	SealNone = "none"
	// SealUnverifiable: the seal's key is not published (a key retired
	// and no longer in LOCKBOX_PROXY_PUBLISHED_KEY_FILES), so the seal
	// can be neither trusted nor shown forged.
	SealUnverifiable = "unverifiable"
	// SealTrimmed: retention removed the sealed record and others after
	// it, so the seal covers none of the records left.
	SealTrimmed = "trimmed"
	// SealForged: the seal is not Lockbox's (a bad signature by a
	// published key, another type, tenant or issuer): the chain is broken.
	SealForged = "forged"
)

// SetSealKeys makes verification check the chains' seals: against the
// keys published (keys is called at each verification, so a reload that
// publishes other keys applies at once; nil or a nil set leaves seals
// unverifiable), issued by issuer. Call it before serving; without it
// every seal is unverifiable.
func (l *Log) SetSealKeys(issuer string, keys func() *grantsig.KeySet) {
	l.sealIssuer, l.sealKeys = issuer, keys
}

// chainSeal is a chain's seal as verifyOnce checks it along the walk.
type chainSeal struct {
	// check is set when the seal verified and names an entry the walk
	// must meet with hash claims.Hash.
	check  bool
	id     streamID
	claims grantsig.SealClaims
	// seen is set once the walk met the sealed entry.
	seen bool
	// problem is why the seal is not Lockbox's: the chain is broken.
	problem string
}

// readSeal judges the stored seal of v's tenant and fills v's seal
// fields.
func (l *Log) readSeal(v *Verification, stored string) chainSeal {
	if stored == "" {
		v.Seal = SealNone
		return chainSeal{}
	}
	id, tok, _ := strings.Cut(stored, " ")
	var ks *grantsig.KeySet
	if l.sealKeys != nil {
		ks = l.sealKeys()
	}
	if ks == nil || l.sealIssuer == "" {
		v.Seal = SealUnverifiable
		return chainSeal{}
	}
	c, kid, err := grantsig.VerifySeal(ks, tok, l.sealIssuer, v.Tenant)
	v.SealKeyID = kid
	switch {
	case errors.Is(err, grantsig.ErrUnknownKey):
		v.Seal = SealUnverifiable
		return chainSeal{}
	case err != nil:
		v.Seal = SealForged
		return chainSeal{problem: fmt.Sprintf("the chain's seal is not Lockbox's (%s): it was forged, or copied from another tenant's log", strings.TrimPrefix(err.Error(), grantsig.ErrInvalid.Error()+": "))}
	}
	sid, err := parseID(c.Through)
	if err != nil || c.Through != id {
		v.Seal = SealForged
		return chainSeal{problem: fmt.Sprintf("the chain's seal names entry %q, but is stored as the seal of entry %q: it was moved", c.Through, id)}
	}
	v.Seal, v.SealedThrough, v.SealedAt = SealVerified, c.Through, c.SealedAt().Format(time.RFC3339)
	return chainSeal{check: true, id: sid, claims: c}
}

// SealedTime is SealedAt as a time; zero without a verified seal.
func (v Verification) SealedTime() time.Time {
	t, err := time.Parse(time.RFC3339, v.SealedAt)
	if err != nil {
		return time.Time{}
	}
	return t
}

// sealedAt words when a seal was made, for problems.
func (s chainSeal) sealedAt() string { return s.claims.SealedAt().Format(time.RFC3339) }

// rewritten is the problem of a sealed entry whose hash is not the sealed
// one.
func (s chainSeal) rewritten() string {
	return fmt.Sprintf("the records up to this one are not those Lockbox sealed at %s: they were changed and their hashes recomputed", s.sealedAt())
}
