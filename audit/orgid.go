package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// recordedOrgIDScan bounds how many of a tenant's newest records
// RecordedOrganizationID reads. Every record Lockbox writes for a tenant
// carries its GUID, so the newest one that decodes has it; the bound only
// stops a log of damaged or legacy records from being read whole.
const recordedOrgIDScan = 100

// RecordedOrganizationID returns the organization GUID that tenant's
// newest audit records carry, for a record that must be written when the
// registry entry that holds the GUID can't be read (OrganizationID fails
// with record_unreadable): the lifecycle's records of a request ending,
// whose refusal would keep access open. The GUID of a tenant never
// changes once it is onboarded, and each of its records carries it, so
// the newest one that decodes and names the tenant has the entry's GUID.
// It reads the stream only, never the registry entry, and is not on the
// path of any record whose entry can be read.
//
// The error says that none of the newest records has one (an empty log, or
// one of damaged and legacy records), or that Redis failed
// (ErrUnavailable).
func (l *Log) RecordedOrganizationID(ctx context.Context, tenant string) (string, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	msgs, err := l.rdb.XRevRangeN(ctx, keys.Audit(tenant), "+", "-", recordedOrgIDScan).Result()
	if err != nil {
		return "", fmt.Errorf("%w: audit: recorded organization id of %s: %w", ErrUnavailable, tenant, err)
	}
	for _, m := range msgs {
		s, _ := m.Values[field].(string)
		r, err := record.Unmarshal(s)
		if err != nil || r.LockboxTenant != tenant || !record.IsGUID(r.OrganizationId) {
			continue
		}
		return r.OrganizationId, nil
	}
	return "", errors.New("audit: none of the newest records of " + tenant + " carries its organization id")
}
