package grants_test

import (
	"context"
	"errors"
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
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

type catalog map[string][]string

func (c catalog) Activities(s string) ([]string, bool) { a, ok := c[s]; return a, ok }

var cat = catalog{"exchange": {"Get-Mailbox", "New-MailboxRepairRequest"}, "sharepoint": {"Get-SPOSite"}, "onedrive": {"Get-OneDriveFile"}}

func who(sub, tid string, roles ...identity.Role) grants.Actor {
	return grants.Actor{Principal: identity.Principal{Subject: sub, TenantID: tid, Roles: roles}, ClientIP: "198.51.100.4"}
}

var (
	operator    = who("alice", "", identity.RoleOperator)
	manager     = who("mary", "", identity.RoleSupportManager)
	globalAdmin = who("gina@contoso.example", "contoso", identity.RoleGlobalAdmin)
	approver    = who("adam@contoso.example", "contoso", identity.RoleApprover)
	otherAdmin  = who("fabian@fabrikam.example", "fabrikam", identity.RoleGlobalAdmin)
	provAuditor = who("sue", "", identity.RoleAuditReader)
)

type env struct {
	rdb     redis.UniversalClient
	clock   *clock.Fake
	store   *grants.Store
	tenants *tenants.Store
	log     *audit.Log
}

// testRedis returns the Redis of a test: a database of the package's
// redis-server, or the shared cluster within TestOnRedisCluster.
var testRedis = func(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, testRedis(t), clock.NewFake(t0))
}

// newEnvOn builds a store on rdb; several of them over one Redis act like
// several Lockbox replicas.
func newEnvOn(t testing.TB, rdb redis.UniversalClient, c *clock.Fake) *env {
	t.Helper()
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts.SetGuard(s)
	tenanttest.Onboard(t, ts, "contoso", "fabrikam")
	// The jobs' first repair pass, as at a server's start: it marks the
	// operators' listings built, so operators list from their own index.
	if _, err := s.Reindex(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	return &env{rdb: rdb, clock: c, store: s, tenants: ts, log: log}
}

func (e *env) create(t *testing.T, d time.Duration) grants.Request {
	t.Helper()
	r, err := e.store.Create(context.Background(), operator, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(d),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) act(t *testing.T, id string, a grants.Action, by grants.Actor) grants.Request {
	t.Helper()
	r, err := e.store.Act(context.Background(), id, a, by, "comment "+string(a))
	if err != nil {
		t.Fatalf("%s by %s: %v", a, by.Principal.Subject, err)
	}
	return r
}

// orgID is tenant's organization GUID, as onboarding registered it.
func (e *env) orgID(t *testing.T, tenant string) string {
	t.Helper()
	tn, err := e.tenants.Get(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return tn.OrganizationID
}

func (e *env) operations(t *testing.T) []string {
	t.Helper()
	recs, err := e.log.List(context.Background(), "contoso", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for i := len(recs) - 1; i >= 0; i-- { // oldest first
		if recs[i].Operation != record.OpOnboardTenant {
			ops = append(ops, recs[i].Operation)
		}
	}
	return ops
}

func TestLifecycleAuditAndGrant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 2*time.Hour)
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, manager)
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("grant before the tenant approved: %v", err)
	}
	e.clock.Advance(time.Minute)
	approvedAt := e.clock.Now()
	got := e.act(t, r.ID, grants.ActionApprove, approver)
	if got.State != grants.StateApproved || got.Approver != "adam@contoso.example" {
		t.Fatalf("request = %+v", got)
	}

	g, err := e.store.Grant(ctx, "contoso", "alice", "exchange")
	if err != nil {
		t.Fatal(err)
	}
	if g.RequestID != r.ID || g.Approver != "adam@contoso.example" || !g.ApprovedAt.Equal(approvedAt) || !g.ExpiresAt.Equal(approvedAt.Add(2*time.Hour)) {
		t.Fatalf("grant = %+v", g)
	}
	ttl := e.rdb.PTTL(ctx, keys.Grant("contoso", "alice", "exchange")).Val()
	if ttl <= 2*time.Hour-time.Second || ttl > 2*time.Hour {
		t.Fatalf("grant TTL = %s, want about 2h", ttl)
	}

	e.act(t, r.ID, grants.ActionRevoke, globalAdmin)
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("grant survived revocation: %v", err)
	}

	want := []string{record.OpAddApprover, record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision, record.OpRevokeAccess}
	if got := e.operations(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit operations = %v, want %v", got, want)
	}
	recs, _ := e.log.List(ctx, "contoso", 10)
	dec := recs[1] // newest first: revoke, tenant decision, ...
	if dec.Operation != record.OpTenantDecision || dec.ApprovalDecision != "Approve" || dec.UserId != "adam@contoso.example" ||
		dec.ObjectId != r.ID || dec.ClientIP != "198.51.100.4" || dec.Comment != "comment approve" ||
		dec.OrganizationId != e.orgID(t, "contoso") || dec.LockboxTenant != "contoso" || !dec.CreationTime.Equal(approvedAt.Truncate(time.Second)) ||
		dec.ProviderUserId != "" || dec.RecordType != record.RecordTypeExchangeAdmin || dec.UserType != record.UserTypeRegular ||
		dec.UserKey != "adam@contoso.example" || fmt.Sprint(dec.Parameters) != fmt.Sprintf("[{Identity %s} {ApprovalDecision Approve} {RequestId %s} {Comment comment approve}]", r.ID, r.ID) {
		t.Fatalf("decision record = %+v", dec)
	}
	mgr := recs[2]
	if mgr.UserId != record.ProviderUserID || mgr.UserType != record.UserTypeDcAdmin || mgr.ProviderUserId != "mary" || mgr.ApprovalDecision != "Approve" {
		t.Fatalf("manager record = %+v", mgr)
	}
	if rev := recs[0]; rev.UserId != "gina@contoso.example" || rev.UserType != record.UserTypeAdmin {
		t.Fatalf("global admin's revocation = %+v", rev)
	}
}

func TestExpiryAt12Hours(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.create(t, time.Hour)
	e.clock.Advance(time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)

	e.clock.Set(t0.Add(13*time.Hour - time.Millisecond))
	if n, err := e.store.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before the deadline: n=%d err=%v", n, err)
	}
	e.clock.Set(t0.Add(13 * time.Hour))
	if n, err := e.store.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep at the deadline: n=%d err=%v", n, err)
	}
	if n, _ := e.store.Sweep(ctx); n != 0 {
		t.Fatalf("second sweep changed %d requests", n)
	}
	got, err := e.store.Get(ctx, globalAdmin.Principal, r.ID)
	if err != nil || got.State != grants.StateExpired {
		t.Fatalf("state = %s, err = %v", got.State, err)
	}
	_, err = e.store.Act(ctx, r.ID, grants.ActionApprove, globalAdmin, "")
	var te *grants.TransitionError
	if !errors.As(err, &te) || te.State != grants.StateExpired {
		t.Fatalf("approve after expiry: %v", err)
	}
	ops := e.operations(t)
	if ops[len(ops)-1] != record.OpExpireRequest {
		t.Fatalf("operations = %v", ops)
	}
}

// TestExpiryWithoutSweeper: an action at the deadline expires the request
// even if no sweeper ran, and the expiry is recorded once.
func TestExpiryWithoutSweeper(t *testing.T) {
	e := newEnv(t)
	r := e.create(t, time.Hour)
	e.clock.Advance(12 * time.Hour)
	_, err := e.store.Act(context.Background(), r.ID, grants.ActionApprove, manager, "")
	if !errors.Is(err, grants.ErrConflict) || err.Error() != "cannot approve a request that is expired" {
		t.Fatalf("err = %v", err)
	}
	_, err = e.store.Act(context.Background(), r.ID, grants.ActionDeny, manager, "")
	if !errors.Is(err, grants.ErrConflict) {
		t.Fatalf("err = %v", err)
	}
	if ops := e.operations(t); fmt.Sprint(ops) != fmt.Sprint([]string{record.OpNewRequest, record.OpExpireRequest}) {
		t.Fatalf("operations = %v", ops)
	}
}

func TestGrantCompletesAfterItsWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 4*time.Hour)
	got := e.act(t, r.ID, grants.ActionApprove, manager)
	if got.State != grants.StateApproved || got.Approver != "mary" {
		t.Fatalf("lockbox off: %+v", got)
	}
	g, err := e.store.Grant(ctx, "contoso", "alice", "exchange")
	if err != nil || !g.ExpiresAt.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("grant = %+v, %v", g, err)
	}
	e.clock.Set(t0.Add(4*time.Hour - time.Nanosecond))
	if !g.Valid(e.clock.Now()) {
		t.Fatal("grant invalid before its expiry")
	}
	e.clock.Set(t0.Add(4 * time.Hour))
	if g.Valid(e.clock.Now()) {
		t.Fatal("grant valid at its expiry")
	}
	if n, err := e.store.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("grant after completion: %v", err)
	}
	got, _ = e.store.Get(ctx, manager.Principal, r.ID)
	if got.State != grants.StateCompleted {
		t.Fatalf("state = %s", got.State)
	}
	// The operator may file the next request now.
	e.create(t, time.Hour)
}

func TestOneOpenRequestPerOperatorAndService(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := e.create(t, time.Hour)
	_, err := e.store.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-8", Reason: "again", Duration: grants.Duration(time.Hour)})
	if !errors.Is(err, grants.ErrConflict) {
		t.Fatalf("second open request: %v", err)
	}
	if n := e.rdb.ZCard(ctx, keys.AllRequests()).Val(); n != 1 {
		t.Fatalf("a refused create left %d entries in the request index", n)
	}
	// Another service is fine.
	if _, err := e.store.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: "onedrive", ServiceRequest: "SR-8", Reason: "files", Duration: grants.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.act(t, first.ID, grants.ActionCancel, operator)
	e.create(t, time.Hour)
}

func TestVisibility(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.create(t, time.Hour)
	if _, err := e.store.Get(ctx, otherAdmin.Principal, r.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("other tenant's admin: %v", err)
	}
	if _, err := e.store.Get(ctx, approver.Principal, r.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("unassigned tenant user: %v", err)
	}
	if _, err := e.store.Get(ctx, who("bob", "", identity.RoleOperator).Principal, r.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("another operator: %v", err)
	}
	v, err := e.store.Get(ctx, globalAdmin.Principal, r.ID)
	if err != nil || v.Requester != record.OperatorUserID {
		t.Fatalf("tenant view: %+v %v", v, err)
	}
	p, err := e.store.Get(ctx, provAuditor.Principal, r.ID)
	if err != nil || p.Requester != "alice" {
		t.Fatalf("provider view: %+v %v", p, err)
	}
	// Someone who can't see a request learns nothing from acting on it,
	// not even that it is due to expire, and changes nothing.
	e.clock.Advance(12 * time.Hour)
	if _, err := e.store.Act(ctx, r.ID, grants.ActionApprove, otherAdmin, ""); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("other tenant's admin acting on a due request: %v", err)
	}
	if ops := e.operations(t); len(ops) != 1 {
		t.Fatalf("an invisible action wrote %v", ops)
	}
	if _, err := e.store.Get(ctx, manager.Principal, "not-a-uuid"); !errors.Is(err, grants.ErrInvalid) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := e.store.Get(ctx, manager.Principal, "01900000-0000-7000-8000-000000000000"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.create(t, time.Hour)
	e.clock.Advance(time.Minute)
	b, err := e.store.Create(ctx, who("bob", "", identity.RoleOperator), grants.CreateInput{Tenant: "fabrikam", Service: "sharepoint", ServiceRequest: "SR-9", Reason: "site", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.act(t, b.ID, grants.ActionDeny, manager)

	ids := func(rs []grants.Request) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name string
		p    grants.Actor
		f    grants.Filter
		want []string
		err  error
	}{
		{"manager sees all, newest first", manager, grants.Filter{}, []string{b.ID, a.ID}, nil},
		{"tenant filter", manager, grants.Filter{Tenant: "contoso"}, []string{a.ID}, nil},
		{"state filter", manager, grants.Filter{State: grants.StateDenied}, []string{b.ID}, nil},
		{"created after", manager, grants.Filter{CreatedAfter: t0}, []string{b.ID}, nil},
		{"limit", manager, grants.Filter{Limit: 1}, []string{b.ID}, nil},
		{"operator sees own", operator, grants.Filter{}, []string{a.ID}, nil},
		{"tenant admin sees own tenant", otherAdmin, grants.Filter{}, []string{b.ID}, nil},
		{"tenant admin can't list another tenant", otherAdmin, grants.Filter{Tenant: "contoso"}, nil, grants.ErrForbidden},
		{"bad state", manager, grants.Filter{State: "bogus"}, nil, grants.ErrInvalid},
		{"bad tenant", manager, grants.Filter{Tenant: "a:b"}, nil, grants.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := e.store.List(ctx, tc.p.Principal, tc.f)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if fmt.Sprint(ids(rs)) != fmt.Sprint(tc.want) {
				t.Fatalf("ids = %v, want %v", ids(rs), tc.want)
			}
		})
	}
}

// TestConcurrentDecisions races approve, deny, cancel and the sweeper on
// one request from separate replicas: exactly one transition wins, and the
// audit log has exactly one record for it.
func TestConcurrentDecisions(t *testing.T) {
	rdb := testRedis(t)
	for round := range 20 {
		c := clock.NewFake(t0)
		replicas := make([]*env, 4)
		for i := range replicas {
			replicas[i] = newEnvOn(t, redistest.Clone(t, rdb), c)
		}
		ctx := context.Background()
		if err := redistest.Flush(ctx, rdb); err != nil {
			t.Fatal(err)
		}
		tenanttest.Onboard(t, replicas[0].tenants, "contoso")
		r := replicas[0].create(t, time.Hour)
		replicas[0].act(t, r.ID, grants.ActionApprove, manager)
		// Half the rounds race at the deadline, where only expiry can win.
		atDeadline := round%2 == 1
		if atDeadline {
			c.Set(t0.Add(12 * time.Hour))
		}
		actions := []func() error{
			func() error {
				_, err := replicas[0].store.Act(ctx, r.ID, grants.ActionApprove, globalAdmin, "")
				return err
			},
			func() error {
				_, err := replicas[1].store.Act(ctx, r.ID, grants.ActionDeny, who("gus@contoso.example", "contoso", identity.RoleGlobalAdmin), "")
				return err
			},
			func() error {
				_, err := replicas[2].store.Act(ctx, r.ID, grants.ActionCancel, operator, "")
				return err
			},
			func() error {
				n, err := replicas[3].store.Sweep(ctx)
				if err == nil && n == 0 {
					return errors.New("sweep changed nothing")
				}
				return err
			},
		}
		var wg sync.WaitGroup
		errs := make([]error, len(actions))
		start := make(chan struct{})
		for i, f := range actions {
			wg.Go(func() { <-start; errs[i] = f() })
		}
		close(start)
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case i < 3 && !errors.Is(err, grants.ErrConflict):
				t.Fatalf("round %d: action %d failed unexpectedly: %v", round, i, err)
			}
		}
		if !atDeadline && wins != 1 {
			t.Fatalf("round %d: %d transitions won (%v)", round, wins, errs)
		}
		// At the deadline, every action expires the request first; the
		// sweeper may or may not be the one that records it.
		final, err := replicas[0].store.Get(ctx, manager.Principal, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if atDeadline && final.State != grants.StateExpired {
			t.Fatalf("round %d: state at the deadline = %s", round, final.State)
		}
		ops := replicas[0].operations(t)
		if len(ops) != 3 {
			t.Fatalf("round %d: audit = %v, want create, manager decision and exactly one more", round, ops)
		}
		if len(final.History) != 3 {
			t.Fatalf("round %d: history has %d events", round, len(final.History))
		}
	}
}

// TestNextRequestBeforeTheSweep files the engineer's next request after the
// previous one ended in time but before any sweep recorded it. The new
// request must own the grant and the one-open-request guard from then on:
// settling the previous request later must not take them away.
func TestNextRequestBeforeTheSweep(t *testing.T) {
	for _, tc := range []struct {
		name  string
		end   func(e *env, t *testing.T, prev grants.Request) // makes prev end in time, unrecorded
		state grants.State
	}{
		{"window ended", func(e *env, t *testing.T, prev grants.Request) {
			e.act(t, prev.ID, grants.ActionApprove, manager)
			e.clock.Advance(time.Hour)
		}, grants.StateCompleted},
		{"pending expired", func(e *env, t *testing.T, prev grants.Request) {
			e.clock.Advance(12 * time.Hour)
		}, grants.StateExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
				t.Fatal(err)
			}
			prev := e.create(t, time.Hour)
			tc.end(e, t, prev)
			next := e.create(t, time.Hour)
			e.act(t, next.ID, grants.ActionApprove, manager)

			// The previous request's end was recorded with the new request,
			// so nothing is left for the sweep to take.
			if got, _ := e.store.Get(ctx, manager.Principal, prev.ID); got.State != tc.state {
				t.Fatalf("previous request: %s, want %s", got.State, tc.state)
			}
			if _, err := e.store.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			g, err := e.store.Grant(ctx, "contoso", "alice", "exchange")
			if err != nil || g.RequestID != next.ID {
				t.Fatalf("grant after the sweep = %+v, %v; want the new request's", g, err)
			}
			_, err = e.store.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: "third", Duration: grants.Duration(time.Hour)})
			if !errors.Is(err, grants.ErrConflict) {
				t.Fatalf("a third request while the second is approved: %v", err)
			}
			ops := e.operations(t)
			want := map[grants.State]string{grants.StateCompleted: record.OpCompleteAccess, grants.StateExpired: record.OpExpireRequest}[tc.state]
			if n := strings.Count(fmt.Sprint(ops), want); n != 1 {
				t.Fatalf("operations = %v; want one %s", ops, want)
			}
		})
	}
}

// TestTenantDecisionNeedsTenantUser is the reviewer's repro through the
// store: the shared issuer's token for mgr2@provider.example with contoso's
// tid and the roles support-manager and global-admin approved contoso's
// pending request and became its approver. A global admin must be a user
// of the tenant by its registered domains, as an assigned approver must,
// and a provider role takes every tenant right away. None of these tokens
// may see the request either (TestTenantReadNeedsTenantUser), so each is
// told it is not found, as anyone who may not see a request is.
func TestTenantDecisionNeedsTenantUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	refused := []grants.Actor{
		who("mgr2@provider.example", "contoso", identity.RoleSupportManager, identity.RoleGlobalAdmin),
		who("gus@provider.example", "contoso", identity.RoleGlobalAdmin),
		who("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleOperator),
		who("adam@contoso.example", "contoso", identity.RoleApprover, identity.RoleSupportManager),
	}
	for _, a := range refused {
		for _, act := range []grants.Action{grants.ActionApprove, grants.ActionDeny} {
			if _, err := e.store.Act(ctx, r.ID, act, a, ""); !errors.Is(err, grants.ErrNotFound) {
				t.Fatalf("%s %v: %s: %v, want not found", a.Principal.Subject, a.Principal.Roles, act, err)
			}
		}
	}
	got, err := e.store.Get(ctx, globalAdmin.Principal, r.ID)
	if err != nil || got.State != grants.StatePendingCustomer || got.Approver != "" {
		t.Fatalf("after the refused decisions: %+v, %v", got, err)
	}
	got = e.act(t, r.ID, grants.ActionApprove, globalAdmin)
	if got.State != grants.StateApproved || got.Approver != "gina@contoso.example" {
		t.Fatalf("request = %+v", got)
	}
	for _, a := range refused {
		if _, err := e.store.Act(ctx, r.ID, grants.ActionRevoke, a, ""); !errors.Is(err, grants.ErrNotFound) {
			t.Fatalf("%s %v revoked: %v, want not found", a.Principal.Subject, a.Principal.Roles, err)
		}
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err != nil {
		t.Fatalf("grant after the refused revocations: %v", err)
	}
	e.act(t, r.ID, grants.ActionRevoke, approver)
}

// TestDecisionAfterAnotherDecided: a second manager or approver whose
// colleague decided first is told the state the request is in now (409, a
// TransitionError), never that they may not decide (403); whoever may never
// decide the request is refused whatever its state, expired included, and
// the expiry is recorded once all the same.
func TestDecisionAfterAnotherDecided(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	mike := who("mike", "", identity.RoleSupportManager)
	tenantAuditor := who("aud@contoso.example", "contoso", identity.RoleAuditReader)
	wantState := func(id string, act grants.Action, by grants.Actor, want grants.State) {
		t.Helper()
		_, err := e.store.Act(ctx, id, act, by, "")
		if te, ok := errors.AsType[*grants.TransitionError](err); !ok || te.State != want || te.Action != act {
			t.Fatalf("%s by %s: %v, want a TransitionError naming %s", act, by.Principal.Subject, err, want)
		}
	}
	wantForbidden := func(id string, act grants.Action, by grants.Actor) {
		t.Helper()
		if _, err := e.store.Act(ctx, id, act, by, ""); !errors.Is(err, grants.ErrForbidden) {
			t.Fatalf("%s by %s: %v, want forbidden", act, by.Principal.Subject, err)
		}
	}

	r := e.create(t, time.Hour)
	wantState(r.ID, grants.ActionApprove, globalAdmin, grants.StatePendingManager)
	e.act(t, r.ID, grants.ActionApprove, manager)
	for _, act := range []grants.Action{grants.ActionApprove, grants.ActionDeny} {
		wantState(r.ID, act, mike, grants.StatePendingCustomer)
		wantForbidden(r.ID, act, operator)
		wantForbidden(r.ID, act, tenantAuditor)
	}
	e.act(t, r.ID, grants.ActionApprove, approver)
	for _, act := range []grants.Action{grants.ActionApprove, grants.ActionDeny} {
		wantState(r.ID, act, mike, grants.StateApproved)
		wantState(r.ID, act, globalAdmin, grants.StateApproved)
		wantForbidden(r.ID, act, operator)
		wantForbidden(r.ID, act, tenantAuditor)
	}
	e.act(t, r.ID, grants.ActionRevoke, globalAdmin)

	// Denied by the first manager, then by the first approver.
	r = e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionDeny, manager)
	wantState(r.ID, grants.ActionApprove, mike, grants.StateDenied)
	r = e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionDeny, approver)
	wantState(r.ID, grants.ActionApprove, globalAdmin, grants.StateDenied)
	wantState(r.ID, grants.ActionDeny, globalAdmin, grants.StateDenied)

	// Overdue: the first to act settles the request, whether it may decide
	// or not, and the expiry is recorded once.
	r = e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.clock.Advance(grants.DecisionWindow)
	wantForbidden(r.ID, grants.ActionApprove, tenantAuditor)
	wantState(r.ID, grants.ActionApprove, approver, grants.StateExpired)
	wantState(r.ID, grants.ActionDeny, mike, grants.StateExpired)
	wantForbidden(r.ID, grants.ActionDeny, operator)
	got, err := e.store.Get(ctx, manager.Principal, r.ID)
	if err != nil || got.State != grants.StateExpired || len(got.History) != 3 {
		t.Fatalf("overdue request: %+v, %v", got, err)
	}
	ops := e.operations(t)
	if n := strings.Count(strings.Join(ops, " "), record.OpExpireRequest); n != 1 || ops[len(ops)-1] != record.OpExpireRequest {
		t.Fatalf("operations = %v, want one expiry, last", ops)
	}

	// A refusal that settles the request still commits the expiry.
	r = e.create(t, time.Hour)
	e.clock.Advance(grants.DecisionWindow)
	wantForbidden(r.ID, grants.ActionApprove, tenantAuditor)
	if ops := e.operations(t); ops[len(ops)-1] != record.OpExpireRequest {
		t.Fatalf("operations = %v, want the expiry last", ops)
	}
}

// TestApproverIDsIgnoreCase: an approver assigned as adam@contoso.example
// whose token names Adam@Contoso.Example is the same person: they see and
// decide the tenant's requests. So is one whose assignment was stored in
// mixed case before ids were folded.
func TestApproverIDsIgnoreCase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	// As stored before assignments were folded to lower case.
	if err := e.rdb.SAdd(ctx, keys.Approvers("contoso"), "Bea@Contoso.Example").Err(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []grants.Actor{
		who("Adam@Contoso.Example", "contoso", identity.RoleApprover),
		who("bea@contoso.example", "contoso", identity.RoleApprover),
		who("BEA@CONTOSO.EXAMPLE", "contoso", identity.RoleApprover),
	} {
		r := e.create(t, time.Hour)
		e.act(t, r.ID, grants.ActionApprove, manager)
		if _, err := e.store.Get(ctx, a.Principal, r.ID); err != nil {
			t.Fatalf("%s reads: %v", a.Principal.Subject, err)
		}
		got := e.act(t, r.ID, grants.ActionApprove, a)
		if got.State != grants.StateApproved || got.Approver != a.Principal.Subject {
			t.Fatalf("approved by %s: %+v", a.Principal.Subject, got)
		}
		e.act(t, r.ID, grants.ActionRevoke, a)
	}
	// Removed in another case, the assignment is gone.
	if err := e.tenants.RemoveApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "BEA@contoso.example"); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	if _, err := e.store.Act(ctx, r.ID, grants.ActionApprove, who("bea@contoso.example", "contoso", identity.RoleApprover), ""); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("removed approver: %v, want not found", err)
	}
}

// TestLateSweepRecordsWhenItRuns: a sweep that runs long after a deadline
// writes the expiry or completion record with the time it commits (audit
// search relies on records being created in append order) and the deadline
// as a parameter; the request's history keeps the deadline.
func TestLateSweepRecordsWhenItRuns(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		op       string
		param    string
		deadline time.Time
		setup    func(e *env, t *testing.T, id string)
	}{
		{"expire", record.OpExpireRequest, "ExpiredAt", t0.Add(12 * time.Hour), func(*env, *testing.T, string) {}},
		{"complete", record.OpCompleteAccess, "EndedAt", t0.Add(2 * time.Hour), func(e *env, t *testing.T, id string) {
			if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
				t.Fatal(err)
			}
			e.act(t, id, grants.ActionApprove, manager)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.create(t, 2*time.Hour)
			tc.setup(e, t, r.ID)
			late := tc.deadline.Add(3 * time.Hour)
			e.clock.Set(late)
			if n, err := e.store.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep: %d %v", n, err)
			}
			got, err := e.store.Get(ctx, manager.Principal, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if last := got.History[len(got.History)-1]; !last.At.Equal(tc.deadline) {
				t.Errorf("history: the request ended at %v, want its deadline %v", last.At, tc.deadline)
			}
			recs, err := e.log.List(ctx, "contoso", 100)
			if err != nil {
				t.Fatal(err)
			}
			if recs[0].Operation != tc.op {
				t.Fatalf("newest record %s, want %s", recs[0].Operation, tc.op)
			}
			if !recs[0].CreationTime.Equal(late) {
				t.Errorf("CreationTime %v, want the sweep's time %v", recs[0].CreationTime.Time, late)
			}
			var deadline string
			for _, p := range recs[0].Parameters {
				if p.Name == tc.param {
					deadline = p.Value
				}
			}
			if deadline != tc.deadline.Format(record.TimeLayout) {
				t.Errorf("parameter %s = %q, want %q (%+v)", tc.param, deadline, tc.deadline.Format(record.TimeLayout), recs[0].Parameters)
			}
		})
	}
}

// TestLateSweepKeepsSearchWhole: a completion recorded by a sweep that ran
// half an hour late, among operator actions written meanwhile, is neither
// lost to a search from a later time nor hides the records around it.
func TestLateSweepKeepsSearchWhole(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 2*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	end := t0.Add(2 * time.Hour)
	action := func(at time.Time) {
		e.clock.Set(at)
		if _, err := e.log.Append(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", RecordType: record.RecordTypeDataCenterSecurityCmdlet,
			Workload: "exchange", UserId: record.OperatorUserID, UserType: record.UserTypeDcAdmin}); err != nil {
			t.Fatal(err)
		}
	}
	// Other engineers' calls through the proxy, a minute apart, while the
	// control plane's sweep is not running.
	for i := 0; i <= 30; i++ {
		action(end.Add(time.Duration(i) * time.Minute))
	}
	if n, err := e.store.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	swept := e.clock.Now()
	action(end.Add(31 * time.Minute))

	search := func(q audit.Query) []record.Record {
		t.Helper()
		q.Tenant, q.Limit = "contoso", 1000
		page, err := e.log.Search(ctx, provAuditor.Principal, q)
		if err != nil {
			t.Fatal(err)
		}
		return page.Records
	}
	// 15..30 minutes, the completion and 31 minutes.
	if got := search(audit.Query{From: end.Add(15 * time.Minute)}); len(got) != 18 {
		t.Errorf("search from 15 minutes after the grant ended: %d records, want 18", len(got))
	}
	found := false
	for _, rec := range search(audit.Query{From: swept.Add(-time.Second), To: swept.Add(time.Second)}) {
		found = found || rec.Operation == record.OpCompleteAccess
	}
	if !found {
		t.Errorf("the completion is not found around the time it was recorded, %v", swept)
	}
}

// TestTenantReadNeedsTenantUser is the reviewer's repro for reading: the
// shared issuer's token for mgr2@provider.example with contoso's tid and
// global-admin (or audit-reader) listed and read contoso's requests, their
// history and activity. Reading as the tenant takes what deciding takes: a
// user of the tenant by its registered domains, without a provider role.
// Whoever fails it is told the request is not found and lists nothing.
func TestTenantReadNeedsTenantUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	decided := e.create(t, time.Hour)
	e.act(t, decided.ID, grants.ActionApprove, manager)
	e.act(t, decided.ID, grants.ActionApprove, globalAdmin)
	e.clock.Advance(time.Minute)
	pending, err := e.store.Create(ctx, operator, grants.CreateInput{
		Tenant: "contoso", Service: "sharepoint", ServiceRequest: "SR-8", Reason: "sites", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.act(t, pending.ID, grants.ActionApprove, manager)

	refused := []grants.Actor{
		who("mgr2@provider.example", "contoso", identity.RoleGlobalAdmin),
		who("mgr2@provider.example", "contoso", identity.RoleSupportManager, identity.RoleGlobalAdmin),
		who("mgr2@provider.example", "contoso", identity.RoleAuditReader),
		who("gina@contoso.example", "contoso", identity.RoleGlobalAdmin, identity.RoleOperator),
		who("tom@contoso.example", "contoso", identity.RoleAuditReader, identity.RoleLockboxAdmin),
		who("adam@contoso.example", "contoso", identity.RoleApprover, identity.RoleSupportManager),
		who("gina", "contoso", identity.RoleGlobalAdmin),
	}
	for _, a := range refused {
		p := a.Principal
		for _, id := range []string{decided.ID, pending.ID} {
			if r, err := e.store.Get(ctx, p, id); !errors.Is(err, grants.ErrNotFound) {
				t.Errorf("%s %v got %s: %+v, %v; want not found", p.Subject, p.Roles, id, r, err)
			}
			if _, recs, err := activity(ctx, e.store, p, id); !errors.Is(err, grants.ErrNotFound) {
				t.Errorf("%s %v read the activity of %s: %d records, %v; want not found", p.Subject, p.Roles, id, len(recs), err)
			}
		}
		if list, err := e.store.List(ctx, p, grants.Filter{}); err != nil || len(list) != 0 {
			t.Errorf("%s %v listed %d requests, %v; want none", p.Subject, p.Roles, len(list), err)
		}
		if list, err := e.store.Pending(ctx, p); err != nil || len(list) != 0 {
			t.Errorf("%s %v listed %d pending requests, %v; want none", p.Subject, p.Roles, len(list), err)
		}
	}

	readers := []grants.Actor{
		globalAdmin,
		who("tom@contoso.example", "contoso", identity.RoleAuditReader),
		who("GINA@Contoso.Example", "contoso", identity.RoleGlobalAdmin, identity.RoleAuditReader),
		approver,
	}
	for _, a := range readers {
		p := a.Principal
		r, err := e.store.Get(ctx, p, decided.ID)
		if err != nil || r.Requester != record.OperatorUserID {
			t.Errorf("%s %v: %+v, %v; want the tenant view", p.Subject, p.Roles, r, err)
		}
		if _, recs, err := activity(ctx, e.store, p, decided.ID); err != nil || len(recs) == 0 {
			t.Errorf("%s %v: activity %d records, %v", p.Subject, p.Roles, len(recs), err)
		}
		if list, err := e.store.List(ctx, p, grants.Filter{}); err != nil || len(list) != 2 {
			t.Errorf("%s %v listed %d requests, %v; want 2", p.Subject, p.Roles, len(list), err)
		}
		if list, err := e.store.Pending(ctx, p); err != nil || len(list) != 1 || list[0].ID != pending.ID {
			t.Errorf("%s %v: pending %+v, %v", p.Subject, p.Roles, list, err)
		}
	}
	// Provider staff keep their rules.
	for _, a := range []grants.Actor{manager, provAuditor} {
		if list, err := e.store.List(ctx, a.Principal, grants.Filter{}); err != nil || len(list) != 2 {
			t.Errorf("%s listed %d requests, %v; want 2", a.Principal.Subject, len(list), err)
		}
	}

	// The directory is asked once per call, however many requests a
	// listing reads; and a registry that can't answer fails the read.
	dir := &countingDirectory{TenantDirectory: e.tenants}
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: dir, Catalog: cat, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(ctx, globalAdmin.Principal, grants.Filter{}); err != nil || len(list) != 2 || dir.isUser != 1 {
		t.Errorf("listing: %d requests, %v, %d IsUser calls; want 2, one call", len(list), err, dir.isUser)
	}
	dir.err = errors.New("registry down")
	if r, err := s.Get(ctx, globalAdmin.Principal, decided.ID); !errors.Is(err, dir.err) {
		t.Errorf("get with the registry down: %+v, %v; want its error", r, err)
	}
	if list, err := s.List(ctx, globalAdmin.Principal, grants.Filter{}); !errors.Is(err, dir.err) {
		t.Errorf("list with the registry down: %d requests, %v; want its error", len(list), err)
	}
	if list, err := s.Pending(ctx, approver.Principal); !errors.Is(err, dir.err) {
		t.Errorf("pending with the registry down: %d requests, %v; want its error", len(list), err)
	}
	if list, err := s.List(ctx, manager.Principal, grants.Filter{}); err != nil || len(list) != 2 {
		t.Errorf("the provider's manager, registry down: %d requests, %v", len(list), err)
	}
}

// countingDirectory counts the user questions it passes on and, with err
// set, answers each with err, as a registry that can't be read.
type countingDirectory struct {
	grants.TenantDirectory
	mu     sync.Mutex
	isUser int
	err    error
}

func (d *countingDirectory) IsUser(ctx context.Context, tenant, user string) (bool, error) {
	d.mu.Lock()
	d.isUser++
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return false, err
	}
	return d.TenantDirectory.IsUser(ctx, tenant, user)
}

func (d *countingDirectory) IsApprover(ctx context.Context, tenant, user string) (bool, error) {
	d.mu.Lock()
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return false, err
	}
	return d.TenantDirectory.IsApprover(ctx, tenant, user)
}
