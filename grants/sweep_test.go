package grants_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// replica is one Lockbox replica's lifecycle store over its own client.
func replica(t *testing.T, rdb redis.UniversalClient, c *clock.Fake) *grants.Store {
	t.Helper()
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts.SetGuard(s)
	return s
}

// TestSweepOnceAcrossReplicas: three replicas sweep many tenants at once
// while a fourth is killed in the middle of its sweep; every request that
// ran out of time is expired, audited and counted exactly once, the dead
// replica's tenants included once its claim ends.
func TestSweepOnceAcrossReplicas(t *testing.T) {
	// The audit record's append is the last write of a transition's
	// MULTI: the whole transaction has been answered by then.
	isAudit := func(c redis.Cmder) bool {
		n := strings.ToLower(c.Name())
		return (n == "eval" || n == "evalsha") && len(c.Args()) > 3 && strings.HasSuffix(fmt.Sprint(c.Args()[3]), ":audit")
	}
	for _, kill := range []struct {
		name string
		when func(redis.Cmder) bool
	}{
		// The claim is the first script on the schedule's key; EVAL when
		// the server did not have it cached yet.
		{"after claiming", func(c redis.Cmder) bool {
			return redistest.Command("evalsha", keys.Due("sweep"))(c) || redistest.Command("eval", keys.Due("sweep"))(c)
		}},
		{"after one transition of a tenant committed", isAudit},
	} {
		t.Run(kill.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			c := clock.NewFake(t0)
			setup := replica(t, rdb, c)
			var ids []string
			tenantOf := map[string]string{}
			for i := range 12 {
				tn := fmt.Sprintf("tenant-%02d", i)
				tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, c.Now), c.Now), tn)
				for _, op := range []string{"alice", "bob", "carol"} {
					r, err := setup.Create(ctx, who(op, "", identity.RoleOperator), grants.CreateInput{
						Tenant: tn, Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, r.ID)
					tenantOf[r.ID] = tn
				}
			}
			c.Advance(12 * time.Hour)

			dying := redistest.Killable(t, rdb)
			dying.KillAfter(kill.when)
			dead, err := replica(t, dying, c).Sweep(ctx)
			if err == nil || !dying.Killed() {
				t.Fatalf("the killed replica's sweep: %d, %v (killed %v)", dead, err, dying.Killed())
			}
			var mu sync.Mutex
			settled := 0
			sweepAll := func() {
				var wg sync.WaitGroup
				for range 3 {
					s := replica(t, redistest.Killable(t, rdb), c)
					wg.Go(func() {
						n, err := s.Sweep(ctx)
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						settled += n
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			sweepAll()
			// The dead replica claimed every tenant (they fit in one
			// claim); they are its until its lease ends.
			if settled != 0 {
				t.Fatalf("the live replicas settled %d requests of tenants a dead replica still held", settled)
			}
			c.Advance(time.Minute)
			sweepAll()

			expiries := map[string]int{}
			for i := range 12 {
				recs, err := audit.NewLog(rdb, c.Now).List(ctx, fmt.Sprintf("tenant-%02d", i), 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if r.Operation == record.OpExpireRequest {
						expiries[r.LockboxRequestId]++
					}
				}
			}
			committedByDead := 0
			if kill.name != "after claiming" {
				committedByDead = 1
			}
			if settled+committedByDead != len(ids) {
				t.Errorf("the live replicas settled %d requests and the dead one %d, want %d in all", settled, committedByDead, len(ids))
			}
			for _, id := range ids {
				// Read as stored: Get would settle it on the way.
				var r grants.Request
				if err := json.Unmarshal([]byte(rdb.Get(ctx, keys.Request(tenantOf[id], id)).Val()), &r); err != nil {
					t.Fatal(err)
				}
				if r.State != grants.StateExpired || expiries[id] != 1 {
					t.Errorf("request %s: %s, %d expiry records", id, r.State, expiries[id])
				}
			}
		})
	}
}

// afterCommand runs do once, right after the first command matching
// match has been answered: another replica's work landing at that point
// of this one's.
type afterCommand struct {
	match func(redis.Cmder) bool
	once  sync.Once
	do    func()
}

func (a *afterCommand) DialHook(next redis.DialHook) redis.DialHook { return next }
func (a *afterCommand) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && a.match(cmd) {
			a.once.Do(a.do)
		}
		return err
	}
}
func (a *afterCommand) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRequestFiledDuringASweepVisitIsSwept: a request filed while the sweep
// visits its tenant (after the visit read the tenant's next deadline,
// before it rescheduled the tenant by it) expires when its own deadline
// passes. Filing it marks the tenant for that deadline while the visit
// holds the tenant's claim, and the visit's answer, read before the
// request existed, knows of no deadline; that answer must not undo the
// mark, or the request would stay pending past its 12 hours until the
// hourly rescan found it.
func TestRequestFiledDuringASweepVisitIsSwept(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, c.Now), c.Now), "contoso")
	filer := replica(t, rdb, c)
	file := func(op string) grants.Request {
		r, err := filer.Create(ctx, who(op, "", identity.RoleOperator), grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := file("alice")
	c.Advance(12 * time.Hour)

	// The sweeping replica reads contoso's next deadline last (ZRANGE
	// ... 0 0 WITHSCORES); bob's request is filed right after.
	sweeperRdb := redistest.Clone(t, rdb)
	var second grants.Request
	sweeperRdb.AddHook(&afterCommand{match: redistest.Command("zrange", keys.TenantDeadlines("contoso")), do: func() { second = file("bob") }})
	sweeper := replica(t, sweeperRdb, c)
	if n, err := sweeper.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("first sweep: %d settled, %v; want alice's request expired", n, err)
	}
	if second.ID == "" {
		t.Fatal("bob's request was not filed during the visit")
	}
	stored := func(id string) grants.State {
		t.Helper()
		// Read as stored: Get would settle it on the way.
		var r grants.Request
		if err := json.Unmarshal([]byte(rdb.Get(ctx, keys.Request("contoso", id)).Val()), &r); err != nil {
			t.Fatal(err)
		}
		return r.State
	}
	if s := stored(first.ID); s != grants.StateExpired {
		t.Fatalf("alice's request is %s", s)
	}
	c.Advance(12 * time.Hour)
	if n, err := replica(t, rdb, c).Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep past bob's deadline: %d settled, %v", n, err)
	}
	if s := stored(second.ID); s != grants.StateExpired {
		t.Fatalf("bob's request, 12 hours past its deadline, is %s", s)
	}
}

// TestSweepProbeThatCantReadLooks: a rescan whose read of a tenant's
// deadlines fails schedules the tenant's sweep at once, as due.Probe asks
// of a probe that can't tell: a needless visit is cheap, while answering
// "nothing to do" leaves a lost mark lost for another rescan interval,
// and requests pending past their deadline meanwhile.
func TestSweepProbeThatCantReadLooks(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, c.Now), c.Now), "contoso")
	if err := rdb.SAdd(ctx, keys.Tenants(), "contoso").Err(); err != nil {
		t.Fatal(err)
	}
	r, err := replica(t, rdb, c).Create(ctx, who("alice", "", identity.RoleOperator), grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// The request's mark was lost (the process died before writing it).
	if err := rdb.ZRem(ctx, keys.Due("sweep"), "contoso").Err(); err != nil {
		t.Fatal(err)
	}
	scanner := redistest.Clone(t, rdb)
	scanner.AddHook(redistest.FailInPipelines{Match: redistest.Command("zrange", keys.TenantDeadlines("contoso"))})
	rescan := &due.Rescan{Redis: scanner, Now: c.Now, Probes: map[due.Job]due.Probe{due.Sweep: grants.SweepProbe}}
	if _, _, err := rescan.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.ZScore(ctx, keys.Due("sweep"), "contoso").Result(); err != nil {
		t.Fatalf("contoso not scheduled for its sweep after a rescan that could not read its deadlines: %v", err)
	}
	c.Advance(12 * time.Hour)
	if n, err := replica(t, rdb, c).Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep at request %s's deadline settled %d, %v", r.ID, n, err)
	}
}
