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

// Someone who may read no audit log is told so whatever the query: asking
// them for a tenant first (400) only sent them to name one and be refused
// then. Those who may read some log still get the query's errors.
func TestNoAuditRightIsForbiddenFirst(t *testing.T) {
	rdb := testRedis(t)
	log := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
	onboard(t, rdb, "contoso")
	ctx := context.Background()
	p := func(sub, tid string, roles ...identity.Role) identity.Principal {
		return identity.Principal{Subject: sub, TenantID: tid, Roles: roles}
	}
	search := func(who identity.Principal, q audit.Query) error {
		_, err := log.Search(ctx, who, q)
		return err
	}
	export := func(who identity.Principal, q audit.Query) error {
		return log.Export(ctx, who, q, func(record.Record) error { return nil })
	}
	verify := func(who identity.Principal, q audit.Query) error {
		_, err := log.Verify(ctx, who, q.Tenant)
		return err
	}
	reads := map[string]func(identity.Principal, audit.Query) error{"search": search, "export": export, "verify": verify}
	for _, who := range []identity.Principal{
		p("alice", "", identity.RoleOperator),
		p("mary", "", identity.RoleSupportManager),
		p("lara", "", identity.RoleLockboxAdmin),
		p("adam", "contoso", identity.RoleApprover),
	} {
		for name, read := range reads {
			for _, q := range []audit.Query{{}, {Tenant: "Contoso}"}} {
				err := read(who, q)
				if !errors.Is(err, fault.ErrForbidden) || err.Error() != "you may not read the audit log" {
					t.Errorf("%s %s (tenant %q): %v, want forbidden", name, who.Subject, q.Tenant, err)
				}
			}
		}
	}
	auditor := p("sue", "", identity.RoleAuditReader)
	if err := verify(auditor, audit.Query{}); !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("verify as a provider auditor without a tenant: %v, want invalid", err)
	}
	if err := search(auditor, audit.Query{Tenant: "Contoso}"}); !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("search as a provider auditor, bad tenant: %v, want invalid", err)
	}
}
