package proxy

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
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
// under it, derived once: the policy's view of the grant, the template of
// its calls' X-Lockbox-Grant assertions and the audit record's approval
// time. It is shared by concurrent calls and never modified.
//
// An assertion binds one call (its method, path and audit record), so each
// call is signed; what all of a grant's assertions share (the JOSE header
// and the grant's claims) is encoded here, once, and a call only encodes
// its own claims and signs (grantView.assertion).
type grantView struct {
	policy       *policy.Grant
	assertion    *grantsig.Template
	requestID    []string // X-Lockbox-Request-Id's value
	approvalTime *record.Time
	approvedAt   time.Time
	// signer made assertion: a view of a signer swapped out since
	// (SetSigningKey, SetAssertionSecrets) is derived again, so no call is
	// signed with a retired key.
	signer *grantsig.Signer
}

// grantViews keeps each grant's view.
type grantViews struct {
	// signer signs from the next call on once swapped: one atomic load a
	// call, so a new key costs the calls nothing.
	signer atomic.Pointer[grantsig.Signer]
	// secrets are the services with a secret of their own
	// (Config.AssertionSecrets), swapped whole like signer.
	secrets atomic.Pointer[map[string]serviceSecret]
	issuer  string // the assertions' "iss"
	mu      sync.Mutex
	m       map[grantKey]*grantView
}

func newGrantViews(signer *grantsig.Signer, issuer string) *grantViews {
	s := &grantViews{issuer: issuer, m: make(map[grantKey]*grantView)}
	s.signer.Store(signer)
	return s
}

// view returns g's view, deriving it the first time, and again after the
// signing key changed.
func (s *grantViews) view(g *grants.Grant, now time.Time) (*grantView, error) {
	k := keyOf(g)
	signer := s.signerFor(g.Service)
	s.mu.Lock()
	v, ok := s.m[k]
	s.mu.Unlock()
	if ok && v.signer == signer && v.sameGrant(g) {
		return v, nil
	}
	tpl, err := signer.Template(grantsig.GrantClaims{
		Issuer: s.issuer, Subject: record.OperatorUserID,
		// The upstream is the audience: an assertion for exchange is no
		// use at sharepoint.
		Audience: g.Service,
		Tenant:   g.Tenant, Service: g.Service, RequestID: g.RequestID,
		NotAfter: g.ExpiresAt,
	})
	if err != nil {
		return nil, err
	}
	approved := record.TimeOf(g.ApprovedAt)
	v = &grantView{policy: policyGrant(g), assertion: tpl, requestID: []string{g.RequestID}, approvalTime: &approved, approvedAt: g.ApprovedAt, signer: signer}
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

// serviceSecret is a service's assertion secret and the signer it keys.
type serviceSecret struct {
	signer *grantsig.Signer
	secret []byte
}

// signerFor returns the signer of service's assertions: its secret's if
// it has one, else the signing key's.
func (s *grantViews) signerFor(service string) *grantsig.Signer {
	if m := s.secrets.Load(); m != nil {
		if ss, ok := (*m)[service]; ok {
			return ss.signer
		}
	}
	return s.signer.Load()
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

// assertionBuffer is room for a usual assertion (about 650 bytes); a call
// with a very long path spills to the heap.
const assertionBuffer = 1024

// assert signs the call's X-Lockbox-Grant assertion into c.assertion: the
// grant's template, with the call's own claims. The assertion names the
// audit record that will be written for the call (c.auditID) and the
// method and path the upstream receives, and ends AssertionTTL from now or
// at the grant's end, whichever is sooner.
func (h *Handler) assert(c *call) (Reason, error) {
	// The buffer stays on the stack: Append only hands it back, and the
	// header value is a copy.
	var buf [assertionBuffer]byte
	b, err := c.view.assertion.Append(buf[:0], grantsig.CallClaims{
		AuditID:  c.auditID,
		Activity: c.Activity.Name,
		Method:   c.Method,
		// What the upstream receives (rewrite): no allocation when the
		// upstream has no base path.
		Path:      c.route.up.basePath + c.Path,
		IssuedAt:  c.now,
		ExpiresAt: c.now.Add(h.cfg.AssertionTTL),
	})
	switch {
	case errors.Is(err, grantsig.ErrLifetime):
		// The grant ends within the second: an assertion can't outlive
		// it, and one that expires when issued is no use.
		return ReasonGrantExpired, fmt.Errorf("the grant of request %s ends at %s", c.grant.RequestID, c.grant.ExpiresAt.UTC().Format(time.RFC3339Nano))
	case err != nil:
		return ReasonStoreUnavailable, fmt.Errorf("sign the grant assertion: %w", err)
	}
	c.assertion[0] = string(b)
	return "", nil
}
