package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/tenants"
)

func p(sub, tid string, roles ...identity.Role) identity.Principal {
	return identity.Principal{Subject: sub, TenantID: tid, Roles: roles}
}

var (
	admin      = p("gina", "contoso", identity.RoleGlobalAdmin)
	approver   = p("adam", "contoso", identity.RoleApprover)
	outsider   = p("olga", "contoso")
	otherAdmin = p("fabian", "fabrikam", identity.RoleGlobalAdmin)
	manager    = p("mary", "", identity.RoleSupportManager)
	operator   = p("alice", "", identity.RoleOperator)
)

func newStore(t *testing.T) (*tenants.Store, *audit.Log) {
	rdb := redistest.Client(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	log := audit.NewLog(rdb, c.Now)
	return tenants.NewStore(rdb, log, c.Now), log
}

func TestSettings(t *testing.T) {
	s, log := newStore(t)
	ctx := context.Background()
	st, err := s.Settings(ctx, admin, "contoso")
	if err != nil || !st.LockboxEnabled || len(st.NotificationAddresses) != 0 {
		t.Fatalf("defaults = %+v, %v", st, err)
	}
	for _, who := range []identity.Principal{approver, otherAdmin, manager, operator} {
		if _, err := s.PutSettings(ctx, who, "", "contoso", tenants.Settings{}); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("%s changed settings: %v", who.Subject, err)
		}
	}
	if _, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{NotificationAddresses: []string{"Bob <bob@contoso.com>"}}); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("display-name address accepted: %v", err)
	}
	got, err := s.PutSettings(ctx, admin, "203.0.113.9", "contoso", tenants.Settings{LockboxEnabled: false, NotificationAddresses: []string{"sec@contoso.com", "sec@contoso.com"}})
	if err != nil || got.LockboxEnabled || fmt.Sprint(got.NotificationAddresses) != "[sec@contoso.com]" {
		t.Fatalf("put = %+v, %v", got, err)
	}
	if on, _ := s.LockboxEnabled(ctx, "contoso"); on {
		t.Fatal("switch still on")
	}
	// Readers: the tenant's admins and approvers, the provider's managers.
	if err := s.AddApprover(ctx, admin, "", "contoso", "adam"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []identity.Principal{admin, approver, manager} {
		if _, err := s.Settings(ctx, who, "contoso"); err != nil {
			t.Fatalf("%s can't read: %v", who.Subject, err)
		}
	}
	for _, who := range []identity.Principal{outsider, otherAdmin, operator} {
		if _, err := s.Settings(ctx, who, "contoso"); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("%s read settings: %v", who.Subject, err)
		}
	}
	recs, _ := log.List(ctx, "contoso", 10)
	if len(recs) != 2 || recs[1].Operation != audit.OpSetSettings || recs[1].UserId != "gina" || recs[1].ClientIP != "203.0.113.9" {
		t.Fatalf("audit = %+v", recs)
	}
}

func TestApprovers(t *testing.T) {
	s, log := newStore(t)
	ctx := context.Background()
	if err := s.AddApprover(ctx, approver, "", "contoso", "olga"); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("approver assigned an approver: %v", err)
	}
	if err := s.AddApprover(ctx, otherAdmin, "", "contoso", "olga"); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("other tenant's admin assigned an approver: %v", err)
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "bad user"); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("bad user id: %v", err)
	}
	for range 2 { // adding twice is a no-op
		if err := s.AddApprover(ctx, admin, "", "contoso", "adam"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "olga"); err != nil {
		t.Fatal(err)
	}
	list, err := s.Approvers(ctx, approver, "contoso")
	if err != nil || fmt.Sprint(list) != "[adam olga]" {
		t.Fatalf("approvers = %v, %v", list, err)
	}
	if ok, _ := s.IsApprover(ctx, "fabrikam", "adam"); ok {
		t.Fatal("approver of contoso counted for fabrikam")
	}
	if err := s.RemoveApprover(ctx, admin, "", "contoso", "olga"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.IsApprover(ctx, "contoso", "olga"); ok {
		t.Fatal("removed approver still approves")
	}
	recs, _ := log.List(ctx, "contoso", 10)
	var ops []string
	for _, r := range recs {
		ops = append(ops, r.Operation+":"+r.ObjectId)
	}
	want := "[Remove-CustomerLockboxApprover:olga Add-CustomerLockboxApprover:olga Add-CustomerLockboxApprover:adam]"
	if fmt.Sprint(ops) != want {
		t.Fatalf("audit = %v", ops)
	}
}
