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
