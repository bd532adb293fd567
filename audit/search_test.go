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

func TestSearchScopesAndViews(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	log := audit.NewLog(rdb, c.Now)
	onboard(t, rdb, "contoso")
	ctx := context.Background()
	for _, op := range []string{"New-AccessToCustomerDataRequest", "Stop-AccessToCustomerDataRequest"} {
		c.Advance(time.Second)
		if _, err := log.Append(ctx, record.Record{Operation: op, LockboxTenant: "contoso", RecordType: record.RecordTypeExchangeAdmin,
			Workload: "exchange", UserId: record.OperatorUserID, UserType: record.UserTypeDcAdmin, ProviderUserId: "alice", ClientIP: "10.1.2.3"}); err != nil {
			t.Fatal(err)
		}
	}
	p := func(sub, tid string, roles ...identity.Role) identity.Principal {
		return identity.Principal{Subject: sub, TenantID: tid, Roles: roles}
	}
	tests := []struct {
		name     string
		who      identity.Principal
		err      error
		provider bool
	}{
		{"provider auditor", p("sue", "", identity.RoleAuditReader), nil, true},
		{"tenant auditor", p("tom", "contoso", identity.RoleAuditReader), nil, false},
		{"tenant global admin", p("gina", "contoso", identity.RoleGlobalAdmin), nil, false},
		{"other tenant's auditor", p("fay", "fabrikam", identity.RoleAuditReader), fault.ErrForbidden, false},
		{"operator", p("alice", "", identity.RoleOperator), fault.ErrForbidden, false},
		{"approver without audit role", p("adam", "contoso", identity.RoleApprover), fault.ErrForbidden, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := log.Search(ctx, tc.who, audit.Query{Tenant: "contoso"})
			recs := page.Records
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if len(recs) != 2 || recs[0].Operation != "Stop-AccessToCustomerDataRequest" || !recs[0].CreationTime.After(recs[1].CreationTime.Time) {
				t.Fatalf("records not newest first: %+v", recs)
			}
			if got := recs[0].ProviderUserId != ""; got != tc.provider {
				t.Fatalf("ProviderUserId visible = %v, want %v", got, tc.provider)
			}
			if got := recs[0].ClientIP != ""; got != tc.provider {
				t.Fatalf("provider's ClientIP visible = %v, want %v", got, tc.provider)
			}
			if recs[0].Id == "" || recs[0].ResultStatus != record.ResultSucceeded || recs[0].CreationTime.Location() != time.UTC {
				t.Fatalf("record not prepared: %+v", recs[0])
			}
		})
	}
	if _, err := log.Search(ctx, p("sue", "", identity.RoleAuditReader), audit.Query{Tenant: "Contoso}"}); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("bad tenant: %v", err)
	}
}
