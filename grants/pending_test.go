package grants_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

func TestPending(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "198.51.100.4", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	file := func(by grants.Actor, tenant, service string) grants.Request {
		t.Helper()
		r, err := e.store.Create(ctx, by, grants.CreateInput{Tenant: tenant, Service: service, ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bob := who("bob", "", identity.RoleOperator)
	old := file(operator, "contoso", "exchange") // deadline t0+12h
	e.clock.Advance(time.Hour)
	atTenant := file(operator, "contoso", "sharepoint")
	e.act(t, atTenant.ID, grants.ActionApprove, manager) // deadline reset: t0+13h
	approved := file(bob, "contoso", "exchange")
	e.act(t, approved.ID, grants.ActionApprove, manager)
	e.act(t, approved.ID, grants.ActionApprove, approver)
	denied := file(bob, "contoso", "onedrive")
	e.act(t, denied.ID, grants.ActionDeny, manager)
	e.clock.Advance(time.Minute)
	other := file(bob, "fabrikam", "sharepoint") // deadline t0+13h01m

	ids := func(rs []grants.Request) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name string
		p    grants.Actor
		want []string
	}{
		{"manager: every tenant, soonest deadline first", manager, []string{old.ID, atTenant.ID, other.ID}},
		{"operator: own only", operator, []string{old.ID, atTenant.ID}},
		{"tenant admin: own tenant only", globalAdmin, []string{old.ID, atTenant.ID}},
		{"assigned approver", approver, []string{old.ID, atTenant.ID}},
		{"other tenant sees none of contoso", otherAdmin, []string{other.ID}},
		{"unassigned tenant user sees nothing", who("zed", "contoso", identity.RoleApprover), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := e.store.Pending(ctx, tc.p.Principal)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(rs)) != fmt.Sprint(tc.want) {
				t.Fatalf("ids = %v, want %v", ids(rs), tc.want)
			}
		})
	}

	// Tenant users see provider staff as "Microsoft Operator".
	rs, _ := e.store.Pending(ctx, globalAdmin.Principal)
	if len(rs) == 0 || rs[0].Requester != "Microsoft Operator" {
		t.Fatalf("tenant view: %+v", rs)
	}
	// Past its deadline, a request no one swept yet is not pending.
	e.clock.Advance(11*time.Hour + 30*time.Minute) // t0+12h31m: old expired, the rest not
	rs, err := e.store.Pending(ctx, manager.Principal)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids(rs)) != fmt.Sprint([]string{atTenant.ID, other.ID}) {
		t.Fatalf("after old's deadline: %v", ids(rs))
	}
}

// TestPendingAll: every pending request comes back, however many; the
// list was cut at 100 (1000 at most) without a word, and the approver
// never saw the rest.
func TestPendingAll(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	for i := range 120 {
		want[e.createAs(t, fmt.Sprintf("op-%03d", i), "contoso").ID] = true
		if i%10 == 0 {
			e.clock.Advance(time.Second)
		}
	}
	rs, err := e.store.Pending(context.Background(), manager.Principal)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		delete(want, r.ID)
	}
	if len(rs) != 120 || len(want) != 0 {
		t.Fatalf("%d pending listed, %d of them missing", len(rs), len(want))
	}
}

// BenchmarkPendingList compares the two ways to list what is pending for a
// tenant's approvers with a long history: List with a state filter pages
// through every request; Pending reads the pending index.
func BenchmarkPendingList(b *testing.B) {
	for _, history := range []int{100, 2000} {
		e := newEnv(b)
		ctx := context.Background()
		for i := range history {
			r, err := e.store.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			if i < history-1 { // the last one stays pending
				if _, err := e.store.Act(ctx, r.ID, grants.ActionCancel, operator, ""); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(fmt.Sprintf("list/history=%d", history), func(b *testing.B) {
			for b.Loop() {
				n := 0
				for _, st := range []grants.State{grants.StatePendingManager, grants.StatePendingCustomer} {
					rs, err := e.store.List(ctx, globalAdmin.Principal, grants.Filter{State: st, Limit: 200})
					if err != nil {
						b.Fatal(err)
					}
					n += len(rs)
				}
				if n != 1 {
					b.Fatalf("%d pending", n)
				}
			}
		})
		b.Run(fmt.Sprintf("index/history=%d", history), func(b *testing.B) {
			for b.Loop() {
				rs, err := e.store.Pending(ctx, globalAdmin.Principal)
				if err != nil || len(rs) != 1 {
					b.Fatalf("%d pending, %v", len(rs), err)
				}
			}
		})
	}
}
