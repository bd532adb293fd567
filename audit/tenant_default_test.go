package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

// A tenant user's token names its tenant, the only one it may read: a
// query without a tenant reads that one. The provider's audit readers
// still read every tenant that way; other provider callers must name one.
func TestEmptyTenantIsTheTokensTenant(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	rdb := testRedis(t)
	log := newLog(rdb, c.Now)
	ctx := context.Background()
	// Onboarded tenants, which a search of every tenant reads.
	onboard(t, rdb, "contoso", "fabrikam")
	for _, tenant := range []string{"contoso", "fabrikam", "contoso"} {
		c.Advance(time.Second)
		if _, err := log.Append(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: tenant, Workload: "exchange",
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin,
			UserId: record.OperatorUserID, ProviderUserId: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	admin := identity.Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []identity.Role{identity.RoleGlobalAdmin}}
	approver := identity.Principal{Subject: "adam@contoso.example", TenantID: "contoso", Roles: []identity.Role{identity.RoleApprover}}
	auditor := identity.Principal{Subject: "sue", Roles: []identity.Role{identity.RoleAuditReader}}
	manager := identity.Principal{Subject: "mary", Roles: []identity.Role{identity.RoleSupportManager}}

	t.Run("tenant admin searches its own tenant, page by page", func(t *testing.T) {
		page, err := log.Search(ctx, admin, audit.Query{Limit: 1})
		if err != nil || len(page.Records) != 1 || page.Records[0].LockboxTenant != "contoso" || page.Next == "" {
			t.Fatalf("first page = %+v, %v", page, err)
		}
		if page.Records[0].ProviderUserId != "" {
			t.Errorf("tenant view expected: %+v", page.Records[0])
		}
		// The cursor is a one-tenant cursor, and continues without a tenant.
		next, err := log.Search(ctx, admin, audit.Query{Limit: 1, Cursor: page.Next})
		if err != nil || len(next.Records) != 1 || next.Records[0].LockboxTenant != "contoso" || next.Next != "" {
			t.Fatalf("second page = %+v, %v", next, err)
		}
		if _, err := log.Search(ctx, admin, audit.Query{Tenant: "contoso", Cursor: page.Next}); err != nil {
			t.Errorf("the cursor does not continue the same search with the tenant named: %v", err)
		}
	})
	t.Run("tenant admin exports its own tenant", func(t *testing.T) {
		n := 0
		err := log.Export(ctx, admin, audit.Query{}, func(r record.Record) error {
			if r.LockboxTenant != "contoso" {
				t.Errorf("exported %+v", r)
			}
			n++
			return nil
		})
		if err != nil || n != 2 {
			t.Fatalf("exported %d records, %v", n, err)
		}
	})
	t.Run("a tenant user without audit rights is still refused", func(t *testing.T) {
		if _, err := log.Search(ctx, approver, audit.Query{}); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("err = %v, want forbidden", err)
		}
		if _, err := log.Verify(ctx, approver, ""); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("verify: err = %v, want forbidden", err)
		}
	})
	t.Run("provider auditor reads every tenant", func(t *testing.T) {
		page, err := log.Search(ctx, auditor, audit.Query{})
		if err != nil || len(page.Records) != 3 {
			t.Fatalf("page = %+v, %v", page, err)
		}
	})
	// Only the provider's auditors may read the log; anyone else is refused
	// outright rather than first asked for a tenant.
	t.Run("other provider callers are refused before naming a tenant", func(t *testing.T) {
		if _, err := log.Search(ctx, manager, audit.Query{}); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("err = %v, want forbidden", err)
		}
	})
	t.Run("verify defaults to the token's tenant", func(t *testing.T) {
		v, err := log.Verify(ctx, admin, "")
		if err != nil || !v.OK || v.Tenant != "contoso" || v.Records != 2 {
			t.Fatalf("verification = %+v, %v", v, err)
		}
	})
	t.Run("provider auditors must name the tenant to verify", func(t *testing.T) {
		if _, err := log.Verify(ctx, auditor, ""); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("err = %v, want invalid", err)
		}
		if v, err := log.Verify(ctx, auditor, "fabrikam"); err != nil || !v.OK || v.Records != 1 {
			t.Fatalf("verification = %+v, %v", v, err)
		}
	})
}
