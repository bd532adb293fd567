package grants

import (
	"testing"
	"time"
)

// TestEndedAt: a request in a final state ended at the event that moved it
// there, whatever ended it, and one pending or approved has not ended.
func TestEndedAt(t *testing.T) {
	filed, err := New(input(), operator, "r1", t0, catalog)
	if err != nil {
		t.Fatal(err)
	}
	on := func(at time.Time) Env { return Env{Now: at, LockboxEnabled: true, TenantUser: true} }
	must := func(r Request, err error) Request {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	atTenant := must(Apply(filed, ActionApprove, manager, "", on(t0.Add(time.Minute))))
	approved := must(Apply(atTenant, ActionApprove, globalAdmin, "", on(t0.Add(2*time.Minute))))
	windowEnd := t0.Add(2*time.Minute + 2*time.Hour)
	settled := func(r Request, at time.Time) Request { r, _ = Settle(r, at); return r }
	offboarded := func(r Request, at time.Time) Request { r, _ = EndForOffboarding(r, manager, at); return r }

	for _, tc := range []struct {
		name  string
		r     Request
		ended time.Time // zero: not ended
	}{
		{"pending at the manager", filed, time.Time{}},
		{"pending at the tenant", atTenant, time.Time{}},
		{"approved", approved, time.Time{}},
		{"approved, a minute before the end", settled(approved, windowEnd.Add(-time.Minute)), time.Time{}},
		{"revoked", must(Apply(approved, ActionRevoke, globalAdmin, "", on(t0.Add(time.Hour)))), t0.Add(time.Hour)},
		{"denied by the manager", must(Apply(filed, ActionDeny, manager, "", on(t0.Add(3*time.Minute)))), t0.Add(3 * time.Minute)},
		{"denied by the tenant", must(Apply(atTenant, ActionDeny, globalAdmin, "", on(t0.Add(4*time.Hour)))), t0.Add(4 * time.Hour)},
		{"canceled", must(Apply(filed, ActionCancel, operator, "", on(t0.Add(5*time.Minute)))), t0.Add(5 * time.Minute)},
		// Time settles these when they are read: they ended when their
		// window did, not when they were read.
		{"expired at the manager", settled(filed, t0.Add(20*time.Hour)), t0.Add(DecisionWindow)},
		{"expired at the tenant", settled(atTenant, t0.Add(20*time.Hour)), t0.Add(time.Minute + DecisionWindow)},
		{"completed", settled(approved, windowEnd.Add(time.Hour)), windowEnd},
		{"revoked by offboarding", offboarded(approved, t0.Add(90*time.Minute)), t0.Add(90 * time.Minute)},
		{"canceled by offboarding", offboarded(filed, t0.Add(6*time.Minute)), t0.Add(6 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := EndedAt(tc.r)
			switch {
			case tc.ended.IsZero() && ok:
				t.Errorf("%s: ended at %v; it has not ended", tc.r.State, at)
			case !tc.ended.IsZero() && (!ok || !at.Equal(tc.ended)):
				t.Errorf("%s: EndedAt = %v, %v; want %v", tc.r.State, at, ok, tc.ended)
			}
		})
	}
	// A history that does not show the event that ended the request tells
	// no time, rather than another event's.
	lost := must(Apply(filed, ActionCancel, operator, "", on(t0.Add(5*time.Minute))))
	lost.History = lost.History[:1]
	if at, ok := EndedAt(lost); ok {
		t.Errorf("canceled, without its cancellation in its history: ended at %v", at)
	}
}
