package audit

import (
	"context"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// MaxLimit caps one page of search results.
const MaxLimit = 1000

// Search returns tenant's records that p may read, newest first. Tenant
// users (the tenant's global admins and audit readers) get the tenant view;
// the provider's audit readers may read any tenant, provider-only fields
// included.
func (l *Log) Search(ctx context.Context, p identity.Principal, tenant string, limit int) ([]Record, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return nil, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	switch {
	case p.IsProvider() && p.Has(identity.RoleAuditReader):
	case p.InTenant(tenant) && (p.Has(identity.RoleGlobalAdmin) || p.Has(identity.RoleAuditReader)):
	default:
		return nil, fault.New(fault.ErrForbidden, "forbidden", "you may not read the audit log of tenant %s", tenant)
	}
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	recs, err := l.List(ctx, tenant, int64(limit))
	if err != nil {
		return nil, err
	}
	if !p.IsProvider() {
		for i := range recs {
			recs[i] = recs[i].TenantView()
		}
	}
	return recs, nil
}
