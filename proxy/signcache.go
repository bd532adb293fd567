package proxy

import (
	"crypto/ed25519"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/policy"
)

// maxGrantViews bounds the grants whose views are kept: one per live grant a
// replica serves, so thousands are already a very busy sidecar.
const maxGrantViews = 4096

// grantKey names one grant: the same request, tenant, service, operator and
// end of the window is the same grant, and everything derived from it is
// the same.
type grantKey struct {
	requestID, tenant, service, operator string
	expiresAt                            int64 // unix nanoseconds
}

func keyOf(g *grants.Grant) grantKey {
	return grantKey{requestID: g.RequestID, tenant: g.Tenant, service: g.Service, operator: g.Operator, expiresAt: g.ExpiresAt.UnixNano()}
}

// grantView is what the proxy derives from a grant for every call made
// under it, derived once: the policy's view of the grant, the signed
// X-Lockbox-Grant header and the audit record's approval time. It is shared
// by concurrent calls and never modified.
//
// The header says what the upstream needs to accept a call (request,
// tenant, service, operator identity, end of the window) and none of it
// changes within the window, so the Ed25519 signature, the largest fixed
// cost of a permitted call after the token check, is paid once per grant;
// its issued_at is when the proxy first signed it.
type grantView struct {
	policy       *policy.Grant
	header       []string // X-Lockbox-Grant's value
	requestID    []string // X-Lockbox-Request-Id's value
	approvalTime *audit.Time
	approvedAt   time.Time
}

// grantViews keeps each grant's view.
type grantViews struct {
	key ed25519.PrivateKey
	mu  sync.Mutex
	m   map[grantKey]*grantView
}

func newGrantViews(key ed25519.PrivateKey) *grantViews {
	return &grantViews{key: key, m: make(map[grantKey]*grantView)}
}

// view returns g's view, signing its header at now the first time.
func (s *grantViews) view(g *grants.Grant, now time.Time) (*grantView, error) {
	k := keyOf(g)
	s.mu.Lock()
	v, ok := s.m[k]
	s.mu.Unlock()
	if ok && v.sameGrant(g) {
		return v, nil
	}
	sig, err := grantsig.Sign(s.key, grantsig.Claims{
		RequestID: g.RequestID,
		Tenant:    g.Tenant,
		Service:   g.Service,
		Operator:  audit.OperatorUserID,
		ExpiresAt: g.ExpiresAt.UTC(),
		IssuedAt:  now.UTC(),
	})
	if err != nil {
		return nil, err
	}
	approved := audit.TimeOf(g.ApprovedAt)
	v = &grantView{policy: policyGrant(g), header: []string{sig}, requestID: []string{g.RequestID}, approvalTime: &approved, approvedAt: g.ApprovedAt}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxGrantViews {
		// Drop the views of windows that ended; if every grant is still
		// live, start over rather than grow.
		for old := range s.m {
			if old.expiresAt <= now.UnixNano() {
				delete(s.m, old)
			}
		}
		if len(s.m) >= maxGrantViews {
			clear(s.m)
		}
	}
	s.m[k] = v
	return v, nil
}

// sameGrant reports whether v was derived from a grant equal to g in all
// the policy sees, not only in its key: a grant rewritten under the same
// request and window (new approver, activities) gets a fresh view rather
// than a stale one, whatever the store's rules about rewriting.
func (v *grantView) sameGrant(g *grants.Grant) bool {
	p := v.policy
	return p.Approver == g.Approver && p.TenantApproved == g.TenantApproved() &&
		v.approvedAt.Equal(g.ApprovedAt) && slices.Equal(p.Activities, g.Activities)
}

// policyGrant is the policy's view of g: the one place where grants.Grant
// becomes it, so policy never imports grants.
func policyGrant(g *grants.Grant) *policy.Grant {
	acts := slices.Clone(g.Activities)
	if acts == nil {
		acts = []string{}
	}
	return &policy.Grant{
		RequestID:      g.RequestID,
		Tenant:         g.Tenant,
		Operator:       g.Operator,
		Service:        g.Service,
		Activities:     acts,
		Approver:       g.Approver,
		TenantApproved: g.TenantApproved(),
		ApprovedAt:     formatTime(g.ApprovedAt),
		ExpiresAt:      formatTime(g.ExpiresAt),
	}
}

// nowText formats input.now: a call's time truncated to the second, the
// same string for every call of a second, so it is formatted once a second.
type nowText struct{ last atomic.Pointer[secondText] }

type secondText struct {
	sec  int64
	text string
}

func (n *nowText) format(now time.Time) string {
	sec := now.Unix()
	if l := n.last.Load(); l != nil && l.sec == sec {
		return l.text
	}
	t := formatTime(time.Unix(sec, 0))
	n.last.Store(&secondText{sec: sec, text: t})
	return t
}
