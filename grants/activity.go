package grants

import (
	"context"
	"slices"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
)

// Activity returns request id as p may see it and every audit record tied
// to it, oldest first: the decisions on it and each operator action done
// under it.
//
// Seeing the request is what grants its activity: an assigned approver may
// not search the tenant's whole log but does see what was done under a
// request they decided. The log is read as the provider's auditor would,
// then tenant users get the tenant view of each record.
func (s *Store) Activity(ctx context.Context, p identity.Principal, id string) (Request, []record.Record, error) {
	req, err := s.Get(ctx, p, id)
	if err != nil {
		return Request{}, nil, err
	}
	reader := identity.Principal{Subject: p.Subject, Roles: []identity.Role{identity.RoleAuditReader}}
	// Nothing is tied to a request before it was filed: the scan ends
	// there rather than at the start of the tenant's log.
	q := audit.Query{Tenant: req.Tenant, RequestID: req.ID}
	if !req.CreatedAt.IsZero() {
		q.From = req.CreatedAt.Add(-audit.ClockSkew)
	}
	recs := []record.Record{}
	err = s.cfg.Audit.Export(ctx, reader, q, func(rec record.Record) error {
		if !p.IsProvider() {
			rec = rec.TenantView()
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return Request{}, nil, err
	}
	slices.Reverse(recs) // Export is newest first
	return req, recs, nil
}
