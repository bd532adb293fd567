package tenants_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// midway runs change once, just before the first transaction its client
// sends: after the change that transaction commits read
// its rights, and before it commits, as a concurrent change committing
// there would.
type midway struct {
	change func() error

	mu        sync.Mutex
	done      bool
	changeErr error
}

func (m *midway) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (m *midway) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (m *midway) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// A cluster client hands the hook the transaction's commands
		// without MULTI: its writes tell it apart from the reads.
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool {
			return slices.Contains([]string{"multi", "set", "sadd", "srem"}, c.Name())
		}) {
			m.mu.Lock()
			if !m.done {
				m.done = true
				m.changeErr = m.change()
			}
			m.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

// TestConfigurationLosesToRightsRemovedMidway takes a tenant user's right
// to configure Customer Lockbox, or to assign its approvers, away after the
// change checked it and before it committed: the approver unassigned, or
// the domain that makes a global admin a user of the tenant removed. That
// change commits first, so this one must not: an approver a global admin
// just removed does not turn the switch off, and a global admin whose
// domain the provider just removed assigns nobody.
func TestConfigurationLosesToRightsRemovedMidway(t *testing.T) {
	dropDomains := func(ctx context.Context, s *tenants.Store) error {
		domains := []string{"contoso-new.example"}
		_, err := s.UpdateTenant(ctx, tenanttest.Admin, "192.0.2.250", "contoso", tenants.TenantUpdate{Domains: &domains})
		return err
	}
	tests := []struct {
		name   string
		by     identity.Principal
		remove func(ctx context.Context, s *tenants.Store) error
		// attempt is the change the removed right no longer allows, and
		// unchanged checks that it was not made.
		attempt   func(ctx context.Context, s *tenants.Store, by identity.Principal) error
		unchanged func(ctx context.Context, t *testing.T, s *tenants.Store, rdb redis.UniversalClient)
	}{
		{
			name: "approver unassigned turns the switch off", by: approver,
			remove: func(ctx context.Context, s *tenants.Store) error {
				return s.RemoveApprover(ctx, admin, "203.0.113.1", "contoso", approver.Subject)
			},
			attempt: func(ctx context.Context, s *tenants.Store, by identity.Principal) error {
				_, err := s.PutSettings(ctx, by, "203.0.113.2", "contoso", tenants.Settings{LockboxEnabled: false})
				return err
			},
			unchanged: switchStaysOn,
		},
		{
			name: "global admin's domain removed turns the switch off", by: admin,
			remove: dropDomains,
			attempt: func(ctx context.Context, s *tenants.Store, by identity.Principal) error {
				_, err := s.PutSettings(ctx, by, "203.0.113.2", "contoso", tenants.Settings{LockboxEnabled: false})
				return err
			},
			unchanged: switchStaysOn,
		},
		{
			name: "global admin's domain removed assigns an approver", by: admin,
			remove: dropDomains,
			attempt: func(ctx context.Context, s *tenants.Store, by identity.Principal) error {
				return s.AddApprover(ctx, by, "203.0.113.2", "contoso", "newt@contoso.example")
			},
			unchanged: func(ctx context.Context, t *testing.T, _ *tenants.Store, rdb redis.UniversalClient) {
				t.Helper()
				// The set itself: an assignment outside the tenant's
				// domains would not count, but must not be made either.
				if ok, err := rdb.SIsMember(ctx, keys.Approvers("contoso"), "newt@contoso.example").Result(); err != nil || ok {
					t.Fatalf("newt assigned after the refused change: %v, %v", ok, err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testRedis(t)
			s, _ := newStoreOn(t, rdb)
			s.SetGuard(noGrants{})
			ctx := context.Background()
			if err := s.AddApprover(ctx, admin, "203.0.113.1", "contoso", approver.Subject); err != nil {
				t.Fatal(err)
			}
			// The acting user's replica: its client runs the removal, through
			// the other replica's store, right before its transaction starts.
			hooked := redistest.Clone(t, rdb)
			m := &midway{change: func() error { return tc.remove(ctx, s) }}
			hooked.AddHook(m)
			if c, ok := hooked.(*redis.ClusterClient); ok {
				// A cluster client runs a transaction on the node client of
				// its slot, with that client's hooks.
				c.OnNewNode(func(n *redis.Client) { n.AddHook(m) })
			}
			c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
			replica := tenants.NewStore(hooked, audit.NewLog(hooked, c.Now), c.Now)
			replica.SetGuard(noGrants{})
			err := tc.attempt(ctx, replica, tc.by)
			if m.changeErr != nil {
				t.Fatalf("removing the right: %v", m.changeErr)
			}
			if !m.done {
				t.Fatal("the change sent no transaction: the right was never removed midway")
			}
			if !errors.Is(err, fault.ErrForbidden) {
				t.Fatalf("change by %s after their right was removed: err = %v, want forbidden", tc.by.Subject, err)
			}
			tc.unchanged(ctx, t, s, rdb)
		})
	}
}

func switchStaysOn(ctx context.Context, t *testing.T, s *tenants.Store, _ redis.UniversalClient) {
	t.Helper()
	if on, err := s.LockboxEnabled(ctx, "contoso"); err != nil || !on {
		t.Fatalf("switch after the refused change: on=%v, %v; want on", on, err)
	}
}
