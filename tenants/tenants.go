// Package tenants owns each tenant's Customer Lockbox settings (the on/off
// switch, notification addresses) and its assigned approvers, and who may
// read or change them: only a tenant's global administrators change them;
// its approvers and the provider's support managers may read them.
//
// Approver rights come from the assignment kept here, not from a role claim
// in a token, so only the tenant's global admins can create approvers.
package tenants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Settings are a tenant's Customer Lockbox settings.
type Settings struct {
	// LockboxEnabled is the tenant's switch; on by default. Off, the
	// provider manager's approval is final.
	LockboxEnabled bool `json:"lockbox_enabled"`
	// NotificationAddresses receive request e-mails besides the approvers.
	NotificationAddresses []string `json:"notification_addresses"`
}

// Defaults are the settings of a tenant nobody configured.
func Defaults() Settings { return Settings{LockboxEnabled: true, NotificationAddresses: []string{}} }

const maxAddresses = 50

// Validate checks the settings and normalizes the addresses.
func (s *Settings) Validate() error {
	if len(s.NotificationAddresses) > maxAddresses {
		return fault.New(fault.ErrInvalid, "invalid_settings", "at most %d notification addresses", maxAddresses)
	}
	out := make([]string, 0, len(s.NotificationAddresses))
	for _, a := range s.NotificationAddresses {
		addr, err := mail.ParseAddress(a)
		if err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(a) {
			return fault.New(fault.ErrInvalid, "invalid_settings", "notification address %q is not a plain e-mail address", a)
		}
		if !slices.Contains(out, addr.Address) {
			out = append(out, addr.Address)
		}
	}
	s.NotificationAddresses = out
	return nil
}

// Store keeps tenants' settings and approvers in Redis.
type Store struct {
	rdb redis.UniversalClient
	log *audit.Log
	now func() time.Time
}

// NewStore returns a Store. log receives the audit records of changes.
func NewStore(rdb redis.UniversalClient, log *audit.Log, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, log: log, now: now}
}

// Lookup returns the tenant's settings without an access check, for the
// lifecycle and the proxy.
func (s *Store) Lookup(ctx context.Context, tenant string) (Settings, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return Settings{}, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	b, err := s.rdb.Get(ctx, keys.Settings(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Defaults(), nil
	}
	if err != nil {
		return Settings{}, fault.Unavailable("tenants: settings", err)
	}
	st := Defaults()
	if err := json.Unmarshal(b, &st); err != nil {
		return Settings{}, fmt.Errorf("tenants: settings of %s are corrupt: %w", tenant, err)
	}
	if st.NotificationAddresses == nil {
		st.NotificationAddresses = []string{}
	}
	return st, nil
}

// IsApprover reports whether user is an assigned approver of tenant,
// without an access check.
func (s *Store) IsApprover(ctx context.Context, tenant, user string) (bool, error) {
	ok, err := s.rdb.SIsMember(ctx, keys.Approvers(tenant), user).Result()
	if err != nil {
		return false, fault.Unavailable("tenants: approvers", err)
	}
	return ok, nil
}

// CanRead reports whether p may read tenant's settings and approvers: its
// global admins and assigned approvers, and the provider's support managers.
func (s *Store) CanRead(ctx context.Context, p identity.Principal, tenant string) error {
	if err := keys.ValidTenant(tenant); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	if p.IsGlobalAdminOf(tenant) || (p.IsProvider() && p.Has(identity.RoleSupportManager)) {
		return nil
	}
	if p.InTenant(tenant) {
		ok, err := s.IsApprover(ctx, tenant, p.Subject)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return fault.New(fault.ErrForbidden, "forbidden", "you may not read the settings of tenant %s", tenant)
}

func canChange(p identity.Principal, tenant string) error {
	if err := keys.ValidTenant(tenant); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	if !p.IsGlobalAdminOf(tenant) {
		return fault.New(fault.ErrForbidden, "forbidden", "only global administrators of %s can change its lockbox settings and approvers", tenant)
	}
	return nil
}

// Settings returns tenant's settings to p.
func (s *Store) Settings(ctx context.Context, p identity.Principal, tenant string) (Settings, error) {
	if err := s.CanRead(ctx, p, tenant); err != nil {
		return Settings{}, err
	}
	return s.Lookup(ctx, tenant)
}

// PutSettings replaces tenant's settings, for a global admin of it.
func (s *Store) PutSettings(ctx context.Context, p identity.Principal, clientIP, tenant string, st Settings) (Settings, error) {
	if err := canChange(p, tenant); err != nil {
		return Settings{}, err
	}
	if err := st.Validate(); err != nil {
		return Settings{}, err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return Settings{}, err
	}
	rec := audit.Record{
		Operation: audit.OpSetSettings, OrganizationId: tenant, Workload: audit.WorkloadLockbox,
		UserId: p.Subject, ClientIP: clientIP, ObjectId: tenant,
		Comment: fmt.Sprintf("lockbox_enabled=%t notification_addresses=%d", st.LockboxEnabled, len(st.NotificationAddresses)),
	}
	if err := s.remember(ctx, tenant); err != nil {
		return Settings{}, err
	}
	_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.Set(ctx, keys.Settings(tenant), b, 0)
		return s.log.AppendTx(ctx, tx, rec)
	})
	if err != nil {
		return Settings{}, fault.Unavailable("tenants: put settings", err)
	}
	return st, nil
}

// Approvers lists tenant's assigned approvers, sorted, for p.
func (s *Store) Approvers(ctx context.Context, p identity.Principal, tenant string) ([]string, error) {
	if err := s.CanRead(ctx, p, tenant); err != nil {
		return nil, err
	}
	users, err := s.rdb.SMembers(ctx, keys.Approvers(tenant)).Result()
	if err != nil {
		return nil, fault.Unavailable("tenants: approvers", err)
	}
	slices.Sort(users)
	return users, nil
}

// AddApprover assigns user as an approver of tenant. Adding an existing
// approver is a no-op that succeeds (and is not audited twice).
func (s *Store) AddApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error {
	return s.changeApprover(ctx, p, clientIP, tenant, user, true)
}

// RemoveApprover removes user from tenant's approvers. Removing a user who
// is not an approver is a no-op that succeeds.
func (s *Store) RemoveApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string) error {
	return s.changeApprover(ctx, p, clientIP, tenant, user, false)
}

func (s *Store) changeApprover(ctx context.Context, p identity.Principal, clientIP, tenant, user string, add bool) error {
	if err := canChange(p, tenant); err != nil {
		return err
	}
	if err := keys.ValidUser(user); err != nil {
		return fault.New(fault.ErrInvalid, "invalid_user", "%v", err)
	}
	if err := s.remember(ctx, tenant); err != nil {
		return err
	}
	key := keys.Approvers(tenant)
	op := audit.OpAddApprover
	if !add {
		op = audit.OpRemoveApprover
	}
	// WATCH makes "change and audit only if it changes anything" atomic.
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		is, err := tx.SIsMember(ctx, key, user).Result()
		if err != nil {
			return err
		}
		if is == add {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			if add {
				pipe.SAdd(ctx, key, user)
			} else {
				pipe.SRem(ctx, key, user)
			}
			return s.log.AppendTx(ctx, pipe, audit.Record{
				Operation: op, OrganizationId: tenant, Workload: audit.WorkloadLockbox,
				UserId: p.Subject, ClientIP: clientIP, ObjectId: user,
			})
		})
		return err
	}, key)
	if errors.Is(err, redis.TxFailedErr) {
		return fault.New(fault.ErrConflict, "conflict", "approvers of %s changed concurrently; retry", tenant)
	}
	if err != nil {
		return fault.Unavailable("tenants: change approver", err)
	}
	return nil
}

// remember adds tenant to the set of known tenants. It runs outside the
// tenant's transaction because the set lives in another Cluster slot; an
// entry for a tenant whose change then failed is harmless.
func (s *Store) remember(ctx context.Context, tenant string) error {
	if err := s.rdb.SAdd(ctx, keys.Tenants(), tenant).Err(); err != nil {
		return fault.Unavailable("tenants: remember tenant", err)
	}
	return nil
}

// LockboxEnabled reports the tenant's switch, without an access check.
func (s *Store) LockboxEnabled(ctx context.Context, tenant string) (bool, error) {
	st, err := s.Lookup(ctx, tenant)
	return st.LockboxEnabled, err
}
