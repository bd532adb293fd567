package proxy

import (
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/tenants"
)

// Call is one operator call as the proxy canonicalized and classified it:
// what the policy judges, the audit records and the upstream receives.
type Call struct {
	// Method is the request method, e.g. "GET".
	Method string
	// Service is the first segment of the target, a configured service.
	Service string
	// Path is the canonical path within the service, e.g.
	// "/tenants/contoso/mailboxes": the target without its service segment
	// and query.
	Path string
	// Activity is the catalog entry Method and Path invoke.
	Activity policy.Activity
	// Tenant is the {tenant} wildcard of the activity's pattern.
	Tenant string
	// ClientIP is the socket peer, or the client behind a trusted proxy
	// (internal/peer); never a header the client alone wrote.
	ClientIP string
}

// BuildInput returns the policy input for call c by operator p, under
// grant g (nil when there is none), for a tenant with settings s, at now.
//
// It is pure, and the one place where grants.Grant becomes the policy's
// view of it, so policy never imports grants. Slices are never nil (Rego
// sees [] rather than null) and times are RFC 3339 in UTC with
// nanoseconds, the form Rego's time.parse_rfc3339_ns reads.
//
// input.now is the call's time truncated to the second. The policy engine
// remembers a decision for identical inputs, so the calls of one second
// that are otherwise identical are decided once; a grant's exact expiry is
// not left to that second: the proxy checks now < expires_at itself, to the
// nanosecond, before it asks the policy.
func BuildInput(p identity.Principal, c Call, g *grants.Grant, s tenants.Settings, now time.Time) policy.Input {
	var pg *policy.Grant
	if g != nil {
		pg = policyGrant(g)
	}
	return buildInput(p, c, pg, s, formatTime(now.Truncate(time.Second)))
}

// buildInput is BuildInput with the grant's view and input.now already
// made: the handler keeps both from call to call (grantViews, nowText).
func buildInput(p identity.Principal, c Call, g *policy.Grant, s tenants.Settings, now string) policy.Input {
	roles := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		roles[i] = string(r)
	}
	in := policy.Input{
		Operator: policy.Operator{ID: p.Subject, Roles: roles},
		Call: policy.Call{
			Method:   c.Method,
			Path:     c.Path,
			Service:  c.Service,
			Activity: c.Activity.Name,
			Access:   string(c.Activity.Access),
			Tenant:   c.Tenant,
			ClientIP: c.ClientIP,
		},
		Tenant: policy.Tenant{ID: c.Tenant, LockboxEnabled: s.LockboxEnabled},
		Grant:  g,
		Now:    now,
	}
	return in
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
