// Package tenanttest onboards tenants for tests the way the provider's
// Lockbox administrator does, through tenants.Store.Onboard, so tests run
// against registry entries the real code wrote.
//
// Each tenant id gets the domain "<id>.example" (its users, and so its
// approvers, are user@<id>.example) and the global administrator contact
// "admin@<id>.example". It imports only tenants and identity, so every
// package's tests can use it.
package tenanttest

import (
	"context"
	"errors"
	"testing"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/tenants"
)

// Admin is the provider's Lockbox administrator that Onboard acts as.
var Admin = identity.Principal{Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}}

// Domain is the user domain Onboard gives tenant id.
func Domain(id string) string { return id + ".example" }

// Onboard onboards each tenant with Customer Lockbox on, or fails t. A
// tenant already onboarded (by another replica of the test's Lockbox) is
// left as it is.
func Onboard(t testing.TB, s *tenants.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		_, _, err := s.Onboard(context.Background(), Admin, "192.0.2.250", tenants.Onboarding{
			ID: id, DisplayName: id + " Ltd", Domains: []string{Domain(id)},
			GlobalAdmins: []string{"admin@" + Domain(id)},
		})
		if fe, ok := errors.AsType[*fault.Error](err); ok && fe.Code == "tenant_exists" {
			continue
		}
		if err != nil {
			t.Fatalf("onboard %s: %v", id, err)
		}
	}
}
