package grants_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestSweepBacksOffAnUnreadableRequest: the sweep tries a request that
// does not decode again 5 s after it first met it, then twice as long
// after each try, up to 30 minutes between tries (under the hour over which
// LockboxRecordsUnreadable looks, so the alert holds while the record
// stays). The tenant was due again 5 s after every visit, so the sweep
// read the record, logged it at error and counted it every 5 s for as long
// as it stayed. The tenant's other requests are settled on time all the
// same, and once the record is put back the next try settles it.
func TestSweepBacksOffAnUnreadableRequest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	logs := &lockedBuffer{}
	u := &unreadableEnv{reg: prometheus.NewRegistry()}
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Registerer: u.reg})
	if err != nil {
		t.Fatal(err)
	}
	file := func(op, service string) grants.Request {
		t.Helper()
		r, err := s.Create(ctx, who(op, "", identity.RoleOperator), grants.CreateInput{
			Tenant: "contoso", Service: service, ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bad, others := file("alice", "exchange"), []grants.Request{file("alice", "sharepoint"), file("bob", "exchange")}
	good, err := e.rdb.Get(ctx, keys.Request("contoso", bad.ID)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, keys.Request("contoso", bad.ID), damaged, 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A request whose deadline falls between two tries.
	e.clock.Advance(10 * time.Minute)
	late := file("carol", "exchange")

	state := func(id string) grants.State {
		t.Helper()
		r, err := s.Get(ctx, identity.Principal{Subject: "mia", Roles: []identity.Role{identity.RoleSupportManager}}, id)
		if err != nil {
			t.Fatal(err)
		}
		return r.State
	}
	sweep := func(what string, settled int, tried bool) {
		t.Helper()
		before := u.counted(t)
		n, err := s.Sweep(ctx)
		if n != settled {
			t.Fatalf("%s: settled %d, want %d (%v)", what, n, settled, err)
		}
		if got := u.counted(t) - before; tried != (got == 1) || got > 1 {
			t.Fatalf("%s: the unreadable request was read %v times, want it read: %v", what, got, tried)
		}
		if tried != (err != nil) {
			t.Fatalf("%s: err %v, want one only when the unreadable request was tried", what, err)
		}
		if err != nil && !strings.Contains(err.Error(), bad.ID) {
			t.Fatalf("%s: %v does not name the unreadable request", what, err)
		}
	}

	e.clock.Set(*bad.DecideBy)
	sweep("the deadline", 2, true)
	for _, r := range others {
		if got := state(r.ID); got != grants.StateExpired {
			t.Fatalf("request %s is %s, want expired", r.ID, got)
		}
	}
	const ms = time.Millisecond
	gap := 5 * time.Second
	for try := 2; try <= 12; try++ {
		next := e.clock.Now().Add(gap)
		if d := *late.DecideBy; e.clock.Now().Before(d) && d.Before(next) {
			e.clock.Set(d)
			sweep("the other request's deadline", 1, false)
			if got := state(late.ID); got != grants.StateExpired {
				t.Fatalf("the request due at %s is %s at its deadline, want expired", d, got)
			}
		}
		e.clock.Set(next.Add(-ms))
		sweep(fmt.Sprintf("a millisecond before try %d (%s on)", try, gap), 0, false)
		e.clock.Set(next)
		sweep(fmt.Sprintf("try %d (%s on)", try, gap), 0, true)
		gap = min(2*gap, 30*time.Minute)
	}
	if gap != 30*time.Minute {
		t.Fatalf("the test did not reach the longest gap: %s", gap)
	}
	if got := state(late.ID); got != grants.StateExpired {
		t.Fatalf("the request due between two tries is %s, want expired", got)
	}

	// Put back, it is settled at the next try, and not tried again.
	if err := e.rdb.Set(ctx, keys.Request("contoso", bad.ID), good, 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(gap - ms)
	sweep("before the try after the repair", 0, false)
	e.clock.Advance(ms)
	sweep("the try after the repair", 1, false)
	if got := state(bad.ID); got != grants.StateExpired {
		t.Fatalf("the repaired request is %s, want expired", got)
	}
	e.clock.Advance(time.Hour)
	sweep("an hour on", 0, false)
}
