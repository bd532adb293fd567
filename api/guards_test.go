package api_test

import (
	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/tenants"
)

// The domain types cmd/ wires into the API satisfy its interfaces. The
// guards live here, where both sides are visible, because api must not
// depend on how the domain packages are built and they must not import api.
var (
	_ api.Authenticator = (*identity.Verifier)(nil)
	_ api.Requests      = (*grants.Store)(nil)
	_ api.Tenants       = (*tenants.Store)(nil)
	_ api.AuditSearcher = (*audit.Log)(nil)
)
