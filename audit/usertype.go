package audit

import (
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
)

// UserTypeOf is the user type of p acting on tenant: the provider's staff
// are datacenter operators (DcAdmin), the tenant's global administrators
// Admin, its other users (assigned approvers) Regular.
func UserTypeOf(p identity.Principal, tenant string) record.UserType {
	switch {
	case p.IsProvider():
		return record.UserTypeDcAdmin
	case p.IsGlobalAdminOf(tenant):
		return record.UserTypeAdmin
	}
	return record.UserTypeRegular
}

// ViewFor returns r as p may see it: whole for the provider's staff, the
// tenant view (record.Record.TenantView) for anyone else. It says nothing
// of whether p may read r at all. (It lives here, not in package record,
// which stays free of identity and its dependencies for lockboxctl.)
func ViewFor(r record.Record, p identity.Principal) record.Record {
	if p.IsProvider() {
		return r
	}
	return r.TenantView()
}
