package grants_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// The audit log is the lifecycle's audit dependency.
var _ grants.AuditLog = (*audit.Log)(nil)

// operatorActions appends an operator action under r for each op.
func (e *env) operatorActions(t *testing.T, r grants.Request, ops ...string) {
	t.Helper()
	for _, op := range ops {
		e.clock.Advance(time.Second)
		_, err := e.log.Append(context.Background(), record.Record{
			Operation: op, LockboxTenant: r.Tenant, Workload: r.Service,
			RecordType: record.RecordTypeDataCenterSecurityCmdlet,
			UserId:     record.OperatorUserID, UserType: record.UserTypeDcAdmin, ProviderUserId: r.Requester,
			ClientIP: "10.0.0.9", LockboxRequestId: r.ID,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestActivity: a request's activity is exactly the records tied to it,
// for whoever may see the request and for no one else, each record shown
// as the caller may see it.
func TestActivity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 2*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, approver)
	e.operatorActions(t, r, "Get-Mailbox", "New-MailboxRepairRequest")
	// Records of another request of the same tenant, and of another
	// tenant, interleaved with r's.
	bob := who("bob", "", identity.RoleOperator)
	other := e.file(t, bob, "sharepoint")
	e.operatorActions(t, other, "Get-SPOSite")
	e.operatorActions(t, r, "Get-Mailbox")

	want := []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision,
		"Get-Mailbox", "New-MailboxRepairRequest", "Get-Mailbox"}
	for _, c := range []struct {
		name     string
		who      grants.Actor
		provider bool
	}{
		{"requester", operator, true},
		{"provider's auditor", provAuditor, true},
		{"tenant's admin", globalAdmin, false},
		// The assigned approver may not search the tenant's log, yet sees
		// what was done under a request they decided.
		{"assigned approver", approver, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, recs, err := activity(ctx, e.store, c.who.Principal, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != r.ID {
				t.Fatalf("request %s, want %s", got.ID, r.ID)
			}
			var ops []string
			for i, rec := range recs {
				ops = append(ops, rec.Operation)
				if rec.LockboxRequestId != r.ID {
					t.Errorf("record %d belongs to %q", i, rec.LockboxRequestId)
				}
				if i > 0 && rec.CreationTime.Before(recs[i-1].CreationTime.Time) {
					t.Errorf("record %d is older than the one before", i)
				}
				if rec.Operator() && (rec.ProviderUserId == "alice") != c.provider {
					t.Errorf("record %d: ProviderUserId %q shown to %s", i, rec.ProviderUserId, c.name)
				}
			}
			if strings.Join(ops, " ") != strings.Join(want, " ") {
				t.Errorf("operations = %v, want %v", ops, want)
			}
		})
	}
	if _, err := e.log.Search(ctx, approver.Principal, audit.Query{Tenant: "contoso"}); err == nil {
		t.Error("the approver may search the whole log; the case above proves nothing")
	}

	for _, c := range []struct {
		name string
		who  grants.Actor
	}{
		{"another tenant's admin", otherAdmin},
		{"another operator", bob},
		{"a tenant user who is no approver", who("carl", "contoso", identity.RoleApprover)},
		{"no roles", who("nobody", "contoso")},
	} {
		t.Run("denied/"+c.name, func(t *testing.T) {
			_, recs, err := activity(ctx, e.store, c.who.Principal, r.ID)
			if !errors.Is(err, grants.ErrNotFound) || len(recs) != 0 {
				t.Fatalf("err = %v, %d records", err, len(recs))
			}
		})
	}
}

// TestActivityEndsWithTheRequest: a request's activity ends when the
// request does (its access revoked, here), so reading it reads the
// tenant's log around the request's life, not everything written since:
// an old request of a busy tenant would otherwise time out on every try.
func TestActivityEndsWithTheRequest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.create(t, 2*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, globalAdmin)
	e.operatorActions(t, r, "Get-Mailbox")
	e.act(t, r.ID, grants.ActionRevoke, globalAdmin)
	// A call a replica let through on the grant it had cached (up to a
	// second stale), recorded just after the revocation: still the
	// request's.
	e.operatorActions(t, r, "Get-MailboxStatistics")

	// An hour later, another request's busy day.
	e.clock.Advance(time.Hour)
	const later = 1500
	other := e.file(t, who("bob", "", identity.RoleOperator), "sharepoint")
	ops := make([]string, later)
	for i := range ops {
		ops[i] = "Get-SPOSite"
	}
	e.operatorActions(t, other, ops...)

	h := &redistest.EntriesRead{}
	e.rdb.AddHook(h)
	_, recs, err := activity(ctx, e.store, globalAdmin.Principal, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range recs {
		got = append(got, rec.Operation)
	}
	want := []string{record.OpNewRequest, record.OpManagerDecision, record.OpTenantDecision, "Get-Mailbox", record.OpRevokeAccess, "Get-MailboxStatistics"}
	if !slices.Equal(got, want) {
		t.Errorf("activity %v, want %v", got, want)
	}
	if n := h.N(); n >= later/2 {
		t.Errorf("reading the activity read %d entries of the log, the records written since the request ended among them", n)
	}
}

// TestActivityKeepsALateSweepsRecord: an expiry or completion that a sweep
// recorded late is created when the sweep wrote it, hours after the
// deadline the request's history keeps; it is still the request's
// activity, as search finds it.
func TestActivityKeepsALateSweepsRecord(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		op       string
		deadline time.Time
		setup    func(e *env, t *testing.T, id string)
		// noSweep: no sweep records the end; the first read settles it.
		noSweep bool
	}{
		{"expire", record.OpExpireRequest, t0.Add(grants.DecisionWindow), func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, manager)
		}, false},
		{"complete", record.OpCompleteAccess, t0.Add(2 * time.Hour), func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.act(t, id, grants.ActionApprove, globalAdmin)
		}, false},
		{"complete, settled by a read", record.OpCompleteAccess, t0.Add(2 * time.Hour), func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.act(t, id, grants.ActionApprove, globalAdmin)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.create(t, 2*time.Hour)
			tc.setup(e, t, r.ID)
			e.clock.Set(tc.deadline.Add(3 * time.Hour))
			if tc.noSweep {
				if _, err := e.store.Get(ctx, operator.Principal, r.ID); err != nil {
					t.Fatal(err)
				}
			} else if n, err := e.store.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep: %d %v", n, err)
			}
			page, err := e.log.Search(ctx, provAuditor.Principal, audit.Query{Tenant: "contoso", RequestID: r.ID, Operation: tc.op})
			if err != nil || len(page.Records) != 1 {
				t.Fatalf("search: %d records, %v", len(page.Records), err)
			}
			// A day later, another request's busy day: not read.
			e.clock.Advance(24 * time.Hour)
			const later = 1500
			ops := make([]string, later)
			for i := range ops {
				ops[i] = "Get-SPOSite"
			}
			e.operatorActions(t, e.file(t, who("bob", "", identity.RoleOperator), "sharepoint"), ops...)
			h := &redistest.EntriesRead{}
			e.rdb.AddHook(h)
			for _, who := range []grants.Actor{operator, globalAdmin} {
				_, recs, err := activity(ctx, e.store, who.Principal, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				var ops []string
				for _, rec := range recs {
					ops = append(ops, rec.Operation)
				}
				if len(ops) == 0 || ops[len(ops)-1] != tc.op {
					t.Errorf("%s: activity %v, want it to end with %s", who.Principal.Subject, ops, tc.op)
				}
			}
			if n := h.N(); n >= later/2 {
				t.Errorf("reading the activity read %d entries of the log, the records written since the sweep among them", n)
			}
		})
	}
}

// activity returns request id as p may see it and every record of its
// trail, oldest first, read a page at a time.
func activity(ctx context.Context, s *grants.Store, p identity.Principal, id string) (grants.Request, []record.Record, error) {
	var recs []record.Record
	var req grants.Request
	for pg := (grants.TrailPage{}); ; {
		t, err := s.Trail(ctx, p, id, pg)
		if err != nil {
			return grants.Request{}, nil, err
		}
		req, recs = t.Request, append(recs, t.Records...)
		if t.Next == "" {
			slices.Reverse(recs)
			return req, recs, nil
		}
		pg.Cursor = t.Next
	}
}

// writeCalls appends n records of alice's calls under request id, as the
// proxy writes them, and one of another request's (other) after each.
func writeCalls(t *testing.T, e *env, id, other string, n int) {
	t.Helper()
	ctx := context.Background()
	call := func(req string) record.Record {
		return record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", Workload: "exchange",
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin, UserId: record.OperatorUserID,
			ProviderUserId: "alice", LockboxRequestId: req}
	}
	for done := 0; done < n; {
		k := min(500, n-done)
		if _, err := e.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
			for range k {
				for _, req := range []string{id, other} {
					if req == "" {
						continue
					}
					if err := e.log.AppendTx(ctx, tx, call(req)); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		done += k
	}
}

// TestTrailReadAPageAtATime: a request's trail is read a page at a time,
// newest first, its cursors leading through all of it and back. An
// approved window of up to 4 hours holds any number of calls: the whole
// trail was read, and answered, in one piece (3 000 calls made a 1 MB
// admin-center page), and a request with none read every record the
// tenant's other grants wrote over its span to show nothing.
func TestTrailReadAPageAtATime(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	reads := &redistest.EntriesRead{}
	e.rdb.AddHook(reads)
	r := e.create(t, 4*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	e.act(t, r.ID, grants.ActionApprove, globalAdmin)
	const calls = 3000
	writeCalls(t, e, r.ID, "", calls)
	e.clock.Advance(time.Minute)

	reads.Reset()
	first, err := e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Records) != 50 || first.Next == "" || first.Prev != "" {
		t.Fatalf("first page: %d records, next %q, prev %q; want 50 and a next cursor", len(first.Records), first.Next, first.Prev)
	}
	// One round trip's batch of entries, and a little past it for the
	// next page's first match: not the trail.
	if n := reads.N(); n > 1100 {
		t.Errorf("a page of 50 read %d entries of a %d-call trail", n, calls)
	}
	for _, rec := range first.Records {
		if rec.Operation != "Get-Mailbox" || rec.ProviderUserId != "" {
			t.Fatalf("first page holds %+v: want the newest calls, in the tenant view", rec)
		}
	}
	// Every page in turn: each record once, the decisions last.
	seen := map[string]bool{}
	var last []record.Record
	pages := 0
	for t0 := first; ; pages++ {
		for _, rec := range t0.Records {
			if seen[rec.Id] {
				t.Fatalf("record %s on two pages", rec.Id)
			}
			seen[rec.Id] = true
		}
		last = t0.Records
		if t0.Next == "" {
			break
		}
		if t0, err = e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Cursor: t0.Next, Limit: 50}); err != nil {
			t.Fatal(err)
		}
	}
	if want := calls + 3; len(seen) != want { // filed, two approvals
		t.Errorf("the pages hold %d records, want %d", len(seen), want)
	}
	if op := last[len(last)-1].Operation; op != record.OpNewRequest {
		t.Errorf("the oldest record is %s, want the filing's", op)
	}
	// And back: the page before the second is the first.
	second, err := e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Cursor: first.Next, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	back, err := e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Cursor: second.Prev, Limit: 50})
	if err != nil || len(back.Records) != 50 || back.Records[0].Id != first.Records[0].Id {
		t.Errorf("back from the second page: %d records, %v; want the first page", len(back.Records), err)
	}
	if _, err := e.store.Trail(ctx, globalAdmin.Principal, r.ID, grants.TrailPage{Limit: audit.MaxLimit + 1}); !errors.Is(err, grants.ErrInvalid) {
		t.Errorf("a limit past %d: %v, want invalid", audit.MaxLimit, err)
	}
}
