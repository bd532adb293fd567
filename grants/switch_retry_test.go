package grants_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// beforeFirstTx runs do once, just before its client sends its first
// transaction: another replica's change landing between the reads of an
// optimistic transaction and its EXEC.
type beforeFirstTx struct {
	once sync.Once
	do   func()
}

func (b *beforeFirstTx) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (b *beforeFirstTx) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (b *beforeFirstTx) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// A cluster client hands the hook a transaction without MULTI:
		// the settings' SET tells it apart from the reads.
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "multi" || c.Name() == "set" }) {
			b.once.Do(b.do)
		}
		return next(ctx, cmds)
	}
}

// TestLockboxOnCountedOnceWhenRetried: turning the switch on revokes a
// manager-only grant in the settings change's transaction. Another change
// of the settings commits between that transaction's reads and its EXEC,
// which fails, and the change is judged again and commits. The revocation
// happened once: one record, and one count in the transition metrics, not
// one for each attempt.
func TestLockboxOnCountedOnceWhenRetried(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	reg := prometheus.NewPedanticRegistry()
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ts.SetGuard(s)
	tenanttest.Onboard(t, ts, "contoso")
	ctx := context.Background()
	if _, err := ts.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Act(ctx, r.ID, grants.ActionApprove, manager, ""); err != nil || got.State != grants.StateApproved {
		t.Fatalf("manager's approval with the switch off: %s, %v", got.State, err)
	}

	// The replica that turns the switch on; another admin's change of the
	// notification addresses (the switch still off) commits first.
	hooked := redistest.Clone(t, rdb)
	h := &beforeFirstTx{do: func() {
		if _, err := ts.PutSettings(ctx, globalAdmin.Principal, "", "contoso",
			tenants.Settings{LockboxEnabled: false, NotificationAddresses: []string{"sec@contoso.example"}}); err != nil {
			t.Errorf("the concurrent change: %v", err)
		}
	}}
	hooked.AddHook(h)
	if cc, ok := hooked.(*redis.ClusterClient); ok {
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(h) })
	}
	replica := tenants.NewStore(hooked, audit.NewLog(hooked, c.Now), c.Now)
	replica.SetGuard(s)
	st, err := replica.PutSettings(ctx, globalAdmin.Principal, "203.0.113.5", "contoso", tenants.Settings{LockboxEnabled: true})
	if err != nil || !st.LockboxEnabled || st.Revision != 4 {
		// Onboarding, off, the addresses, on.
		t.Fatalf("switch on: %+v, %v; want on at revision 4, after the concurrent change", st, err)
	}

	got, err := s.Get(ctx, manager.Principal, r.ID)
	if err != nil || got.State != grants.StateRevoked || len(got.History) != 3 {
		t.Fatalf("request after the switch: %s with %d events, %v; want revoked once", got.State, len(got.History), err)
	}
	recs, err := log.List(ctx, "contoso", 100)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(recs, func(r record.Record) bool { return r.Operation != record.OpRevokeAccess })); n != 1 {
		t.Fatalf("%d revocation records, want 1", n)
	}
	want := `
# HELP lockbox_request_transitions_total Committed request transitions by action and resulting state.
# TYPE lockbox_request_transitions_total counter
lockbox_request_transitions_total{action="approve",state="approved"} 1
lockbox_request_transitions_total{action="create",state="pending_manager"} 1
lockbox_request_transitions_total{action="revoke",state="revoked"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "lockbox_request_transitions_total"); err != nil {
		t.Fatal(err)
	}
}
