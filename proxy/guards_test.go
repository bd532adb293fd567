package proxy_test

import (
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/proxy"
	"github.com/lockbox-oss/lockbox/tenants"
)

// The domain types cmd/ wires into the proxy satisfy its interfaces. The
// guards live here, where both sides are visible: proxy must not depend on
// how the domain packages are built, and they must not import proxy.
var (
	_ proxy.Authenticator  = (*identity.Verifier)(nil)
	_ proxy.GrantLookup    = (*grants.Store)(nil)
	_ proxy.TenantLookup   = (*tenants.Store)(nil)
	_ proxy.PolicySnapshot = (*policy.Snapshot)(nil)
	_ proxy.Auditor        = (*audit.Log)(nil)
)

// What "lockbox serve" wires: the caches, and the group-commit writer.
var (
	_ proxy.GrantLookup    = (*grants.GrantCache)(nil)
	_ proxy.GrantPeeker    = (*grants.GrantCache)(nil)
	_ proxy.TenantLookup   = (*tenants.SettingsCache)(nil)
	_ proxy.SettingsPeeker = (*tenants.SettingsCache)(nil)
	_ proxy.BoundedAuditor = (*audit.GroupCommit)(nil)
)
