package proxy

import (
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grantsig"
)

// maxSignedGrants bounds the grant headers kept: one per live grant a
// replica serves, so thousands are already a very busy sidecar.
const maxSignedGrants = 4096

// grantHeader is the signed X-Lockbox-Grant of one grant.
type grantHeader struct {
	key grantKey
	val string
}

// grantKey names what a grant header says: the same request, tenant,
// service and end of the window get the same header.
type grantKey struct {
	requestID, tenant, service string
	expiresAt                  int64 // unix nanoseconds
}

// signCache signs each grant's header once and reuses it for every call in
// the grant's window. The header says what the upstream needs to accept a
// call (request, tenant, service, operator identity, end of the window) and
// none of it changes within the window, so the Ed25519 signature, the
// largest fixed cost of a permitted call after the token check, is paid
// once per grant instead of once per call. Its issued_at is when the proxy
// first signed it.
type signCache struct {
	key ed25519.PrivateKey
	mu  sync.Mutex
	m   map[grantKey]string
}

func newSignCache(key ed25519.PrivateKey) *signCache {
	return &signCache{key: key, m: make(map[grantKey]string)}
}

// header returns the signed header for the grant k at now.
func (s *signCache) header(k grantKey, now time.Time) (string, error) {
	s.mu.Lock()
	v, ok := s.m[k]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := grantsig.Sign(s.key, grantsig.Claims{
		RequestID: k.requestID,
		Tenant:    k.tenant,
		Service:   k.service,
		Operator:  audit.OperatorUserID,
		ExpiresAt: time.Unix(0, k.expiresAt).UTC(),
		IssuedAt:  now.UTC(),
	})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSignedGrants {
		// Drop the headers of windows that ended; if every grant is still
		// live, start over rather than grow.
		for old := range s.m {
			if old.expiresAt <= now.UnixNano() {
				delete(s.m, old)
			}
		}
		if len(s.m) >= maxSignedGrants {
			clear(s.m)
		}
	}
	s.m[k] = v
	return v, nil
}
