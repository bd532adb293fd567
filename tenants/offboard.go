package tenants

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/text"
)

// Offboarded records the end of the provider's relationship with a tenant.
type Offboarded struct {
	At time.Time `json:"at"`
	// By is the Lockbox administrator who offboarded the tenant: a
	// provider identity, which the tenant's own users see as the provider
	// label (Store.Tenant).
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// MaxOffboardReason bounds the reason given for offboarding, in
// characters, as openapi.yaml's maxLength counts.
const MaxOffboardReason = 1000

// IsOffboarded reports whether the provider offboarded the tenant.
func (t Tenant) IsOffboarded() bool { return t.Offboarded != nil }

// active returns nil for a tenant Lockbox still serves, and the
// tenant_offboarded conflict for one that was offboarded.
func (t Tenant) active() error {
	if t.Offboarded == nil {
		return nil
	}
	return fault.New(fault.ErrConflict, "tenant_offboarded",
		"tenant %s was offboarded on %s: it takes no new requests, decisions or configuration changes; its audit log stays readable",
		t.ID, t.Offboarded.At.Format(time.RFC3339))
}

// Active returns nil when tenant is onboarded and not offboarded; an error
// wrapping fault.ErrNotFound (tenant_not_found) when it is not onboarded;
// and one wrapping fault.ErrConflict with code tenant_offboarded when the
// provider offboarded it. It is what filing, deciding and configuring ask;
// reading a tenant's audit log and request history asks Onboarded, which an
// offboarded tenant still is, so its records outlive the relationship.
func (s *Store) Active(ctx context.Context, tenant string) error {
	t, err := s.Get(ctx, tenant)
	if err != nil {
		return err
	}
	return t.active()
}

// CanOffboard returns nil when p may offboard tenants, the error Offboard
// returns first otherwise: the rule for onboarding (canAdminister). A
// front end asks it before it reads the reason.
func (s *Store) CanOffboard(p identity.Principal) error { return canAdminister(p) }

// Offboard ends the provider's relationship with tenant, for the provider's
// Lockbox administrators. In one transaction on the tenant's hash slot it
// marks the registry entry offboarded (when, by whom, reason), writes the
// audit record Remove-CustomerLockboxTenant and, through the Guard, ends
// every request still open: approved grants are revoked and pending
// requests canceled, each with its lifecycle audit record and the event
// every replica's grant cache listens to. From then on the tenant takes no
// new request, decision, settings or approver change, and its id can't be
// onboarded again; its audit log and request history stay readable to
// those who could read them (deleting them is a separate decision).
//
// Offboarding a tenant already offboarded changes and records nothing,
// and returns the entry as the first offboarding left it.
func (s *Store) Offboard(ctx context.Context, p identity.Principal, clientIP, tenant, reason string) (Tenant, error) {
	return s.OffboardIf(ctx, p, clientIP, tenant, reason, AnyRevision)
}

// OffboardIf is Offboard if the registry entry's revision is still
// ifRevision (the Revision of the entry the decision was based on): with
// one that is no longer current nothing is written and the error is
// fault.ErrPrecondition "tenant_changed", as UpdateTenantIf's. The check
// and the write are one transaction. A tenant already offboarded is
// answered as Offboard answers it, whatever ifRevision: a retry whose
// answer was lost finds its own offboarding done rather than a conflict
// with it (RFC 9110 13.1.1 lets a change already applied answer 2xx).
// AnyRevision offboards whatever the revision.
func (s *Store) OffboardIf(ctx context.Context, p identity.Principal, clientIP, tenant, reason string, ifRevision int64) (Tenant, error) {
	return s.OffboardWhen(ctx, p, clientIP, tenant, reason, Condition{IfRevision: ifRevision})
}

// OffboardWhen is OffboardIf under a whole Condition. Its If-None-Match
// conditions are judged even on a tenant already offboarded: the
// exception that lets a retry find its offboarding done is If-Match's
// alone (RFC 9110 13.1.1), and the entry exists whatever its state. One
// that fails does nothing and is fault.ErrPrecondition
// "precondition_failed".
func (s *Store) OffboardWhen(ctx context.Context, p identity.Principal, clientIP, tenant, reason string, cond Condition) (Tenant, error) {
	if err := canAdminister(p); err != nil {
		return Tenant{}, err
	}
	if err := keys.ValidTenant(tenant); err != nil {
		return Tenant{}, invalid("%v", err)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > MaxOffboardReason || !text.Line(reason) {
		e := fault.New(fault.ErrInvalid, "invalid_reason", "reason is required: 1-%d printable characters on one line, with no control or bidirectional characters, saying why the tenant is offboarded", MaxOffboardReason)
		e.Field = "reason"
		return Tenant{}, e
	}
	if s.guard == nil {
		return Tenant{}, errors.New("tenants: no guard: offboarding could not end the tenant's grants and requests")
	}
	key := keys.Tenant(tenant)
	var out Tenant
	var committed func()
	change := func(tx *redis.Tx) error {
		committed = nil
		old, err := s.get(ctx, tx, tenant)
		if err != nil {
			return err
		}
		what := "the registry entry of tenant " + tenant
		if old.Offboarded != nil {
			if err := cond.judgeNone(old.Revision, what); err != nil {
				return err
			}
			out = old
			return nil
		}
		// Read under WATCH, as UpdateTenantIf reads it: the comparison
		// and the write are atomic.
		if err := cond.judge(old.Revision, func() error { return tenantChanged(tenant) }, what); err != nil {
			return err
		}
		out = old
		next := old
		next.Offboarded = &Offboarded{At: s.now().UTC().Truncate(time.Second), By: p.Subject, Reason: reason}
		next.Revision = old.Revision + 1
		b, err := encodeTenant(next, next.Revision)
		if err != nil {
			return err
		}
		end, ended, err := s.guard.OffboardTx(ctx, tx, tenant, p, clientIP)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, key, b, 0)
			events.PublishTx(ctx, pipe, tenant)
			rec := changeRecord(record.OpOffboardTenant, tenant, tenant, []record.ModifiedProperty{
				{Name: "State", OldValue: "active", NewValue: "offboarded"},
			}, old.OrganizationID)
			rec.Comment = reason
			rec.Parameters = append(rec.Parameters, record.Parameter{Name: "Reason", Value: reason})
			if err := s.log.AppendTx(ctx, pipe, providerRecord(p, clientIP, rec)); err != nil {
				return err
			}
			if end != nil {
				return end(pipe)
			}
			return nil
		})
		if err == nil {
			out, committed = next, ended
		}
		return err
	}
	// A transition of one of the tenant's requests committing meanwhile
	// (the guard watches them and the tenant's indexes) fails the
	// optimistic lock: judged again on what it wrote.
	var err error
	for range maxRetries {
		if err = s.rdb.Watch(ctx, change, key); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return Tenant{}, storeErr("tenants: offboard", err)
	}
	if committed != nil {
		committed()
	}
	s.changed(tenant)
	s.scheduled(ctx, tenant)
	return out, nil
}
