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
	log := newLog(rdb, c.Now)
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
		{"tenant auditor", p("tom@contoso.example", "contoso", identity.RoleAuditReader), nil, false},
		{"tenant global admin", p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin), nil, false},
		{"other tenant's auditor", p("fay@fabrikam.example", "fabrikam", identity.RoleAuditReader), fault.ErrForbidden, false},
		{"operator", p("alice", "", identity.RoleOperator), fault.ErrForbidden, false},
		{"approver without audit role", p("adam@contoso.example", "contoso", identity.RoleApprover), fault.ErrForbidden, false},
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

// TestTenantReadNeedsTenantUser is the reviewer's repro for the audit log:
// the shared issuer's token for mgr2@provider.example with contoso's tid
// and global-admin or audit-reader searched, exported and verified
// contoso's log. A tenant's global admins and audit readers read it only
// as users of the tenant (user@ one of its registered domains) whose tokens
// carry no provider-only role; the registry's answer is never guessed.
func TestTenantReadNeedsTenantUser(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	onboard(t, rdb, "contoso")
	log := newLog(rdb, c.Now)
	ctx := context.Background()
	if _, err := log.Append(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", RecordType: record.RecordTypeDataCenterSecurityCmdlet,
		Workload: "exchange", UserId: record.OperatorUserID, UserType: record.UserTypeDcAdmin, ProviderUserId: "alice"}); err != nil {
		t.Fatal(err)
	}
	p := func(sub, tid string, roles ...identity.Role) identity.Principal {
		return identity.Principal{Subject: sub, TenantID: tid, Roles: roles}
	}
	reads := func(l *audit.Log) map[string]func(identity.Principal, string) error {
		return map[string]func(identity.Principal, string) error{
			"search": func(who identity.Principal, tenant string) error {
				_, err := l.Search(ctx, who, audit.Query{Tenant: tenant})
				return err
			},
			"export": func(who identity.Principal, tenant string) error {
				return l.Export(ctx, who, audit.Query{Tenant: tenant}, func(record.Record) error { return nil })
			},
			"verify": func(who identity.Principal, tenant string) error {
				_, err := l.Verify(ctx, who, tenant)
				return err
			},
		}
	}
	for _, who := range []identity.Principal{
		p("mgr2@provider.example", "contoso", identity.RoleGlobalAdmin),
		p("mgr2@provider.example", "contoso", identity.RoleAuditReader),
		p("mgr2@provider.example", "contoso", identity.RoleSupportManager, identity.RoleGlobalAdmin),
		p("gina", "contoso", identity.RoleGlobalAdmin),
		p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleOperator),
		p("tom@contoso.example", "contoso", identity.RoleAuditReader, identity.RoleLockboxAdmin),
	} {
		for name, read := range reads(log) {
			for _, tenant := range []string{"contoso", ""} { // named, and the token's own
				if err := read(who, tenant); !errors.Is(err, fault.ErrForbidden) {
					t.Errorf("%s %v: %s (tenant %q): %v, want forbidden", who.Subject, who.Roles, name, tenant, err)
				}
			}
		}
	}
	for _, who := range []identity.Principal{
		p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin),
		p("tom@contoso.example", "contoso", identity.RoleAuditReader),
		p("Tom@CONTOSO.example", "contoso", identity.RoleAuditReader, identity.RoleGlobalAdmin),
	} {
		for name, read := range reads(log) {
			for _, tenant := range []string{"contoso", ""} {
				if err := read(who, tenant); err != nil {
					t.Errorf("%s %v: %s (tenant %q): %v", who.Subject, who.Roles, name, tenant, err)
				}
			}
		}
	}

	// Fail closed: a registry that can't answer, or none at all, is an
	// error for a tenant user; the provider's audit readers don't ask it.
	down := errors.New("registry down")
	broken := audit.NewLog(rdb, c.Now)
	broken.SetTenantDirectory(exampleUsers{err: down})
	unset := audit.NewLog(rdb, c.Now)
	gina := p("gina@contoso.example", "contoso", identity.RoleGlobalAdmin)
	for name, read := range reads(broken) {
		if err := read(gina, "contoso"); !errors.Is(err, down) {
			t.Errorf("%s with the registry down: %v, want its error", name, err)
		}
		if err := read(p("sue", "", identity.RoleAuditReader), "contoso"); err != nil {
			t.Errorf("%s as the provider's auditor with the registry down: %v", name, err)
		}
	}
	for name, read := range reads(unset) {
		if err := read(gina, "contoso"); err == nil || errors.Is(err, fault.ErrForbidden) {
			t.Errorf("%s without a tenant directory: %v, want an error", name, err)
		}
	}
}
