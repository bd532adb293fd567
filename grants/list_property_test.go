package grants_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/tenants"
)

// listViewer is a principal of the property test with who it may see,
// written down apart from the store's read rule.
type listViewer struct {
	name  string
	p     identity.Principal
	sees  func(tenant, requester string) bool
	asTen bool // a tenant user: sees the tenant view
}

// TestListPagingProperty: generated requests of several operators (two
// of them one name in two cases) in two tenants; many listings, each with
// a viewer, a filter and a small page size drawn at random, paged to the
// end while, between pages, requests are created (some by a replica whose
// clock is behind, so they sort among those still to come), change state,
// time passes, the repair job runs, and the mark of the operators'
// listings comes and goes. In every listing each page is at most its
// limit and full whenever it has a next one, no request comes twice, the
// order is the index's, every request listed is one the viewer may see
// (in the tenant view for tenant users) that matches the filter, and every
// request there at the first page that the viewer may see and the filter
// matches comes exactly once (with a filter on state: one in a matching
// state at the first page and the last, and not acted on in between).
func TestListPagingProperty(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	behind := newEnvOn(t, e.rdb, clock.NewFake(e.clock.Now().Add(-3*time.Millisecond)))
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", approver.Principal.Subject); err != nil {
		t.Fatal(err)
	}
	// With fabrikam's lockbox off, the manager's approval grants access:
	// some requests are approved, and revoked, too.
	if _, err := e.tenants.PutSettings(ctx, otherAdmin.Principal, "", "fabrikam", tenants.Settings{LockboxEnabled: false}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(23, 5))
	ops := []string{"alice", "Alice", "bob", "carol@provider.example"}
	services := []string{"exchange", "sharepoint", "onedrive"}
	type filed struct{ tenant, requester string }
	all := map[string]filed{}
	n := 0
	create := func(on *env) {
		sub := ops[rng.IntN(len(ops))]
		if rng.IntN(3) == 0 {
			n++
			sub = fmt.Sprintf("other-%03d", n)
		}
		r, err := on.store.Create(ctx, who(sub, "", identity.RoleOperator), grants.CreateInput{
			Tenant: []string{"contoso", "fabrikam"}[rng.IntN(2)], Service: services[rng.IntN(len(services))],
			ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(time.Hour)})
		if err != nil {
			return // that operator's request for it is still open
		}
		all[r.ID] = filed{r.Tenant, r.Requester}
	}
	// act moves request id on, as whoever may, and reports whether it
	// changed.
	act := func(id string) bool {
		r, err := e.store.Get(ctx, manager.Principal, id)
		if err != nil {
			t.Fatal(err)
		}
		var a grants.Action
		by := manager
		switch r.State {
		case grants.StatePendingManager:
			a = []grants.Action{grants.ActionApprove, grants.ActionDeny, grants.ActionCancel}[rng.IntN(3)]
			if a == grants.ActionCancel {
				by = who(r.Requester, "", identity.RoleOperator)
			}
		case grants.StatePendingCustomer:
			a, by = []grants.Action{grants.ActionApprove, grants.ActionDeny}[rng.IntN(2)], globalAdmin
		case grants.StateApproved:
			a = grants.ActionRevoke
		default:
			return false
		}
		_, err = e.store.Act(ctx, id, a, by, "")
		return err == nil
	}
	sync := func() { behind.clock.Set(e.clock.Now().Add(-3 * time.Millisecond)) }
	for range 40 {
		create(e)
		if id := randomID(rng, all); rng.IntN(2) == 0 {
			act(id)
		}
		if rng.IntN(3) > 0 {
			e.clock.Advance(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
		sync()
	}
	mid := e.clock.Now()
	for range 20 {
		create(e)
		e.clock.Advance(time.Duration(rng.IntN(2)) * time.Millisecond)
		sync()
	}

	provider := func(string, string) bool { return true }
	viewers := []listViewer{
		{"manager", manager.Principal, provider, false},
		{"provider auditor", provAuditor.Principal, provider, false},
		{"operator and auditor", who("alice", "", identity.RoleOperator, identity.RoleAuditReader).Principal, provider, false},
		{"lockbox admin", who("lena", "", identity.RoleLockboxAdmin).Principal, func(string, string) bool { return false }, false},
		{"unassigned approver", who("zed@contoso.example", "contoso", identity.RoleApprover).Principal, func(string, string) bool { return false }, true},
		{"contoso admin", globalAdmin.Principal, func(tn, _ string) bool { return tn == "contoso" }, true},
		{"contoso approver", approver.Principal, func(tn, _ string) bool { return tn == "contoso" }, true},
		{"fabrikam admin", otherAdmin.Principal, func(tn, _ string) bool { return tn == "fabrikam" }, true},
	}
	for _, op := range ops {
		viewers = append(viewers, listViewer{"operator " + op, who(op, "", identity.RoleOperator).Principal,
			func(_, req string) bool { return req == op }, false})
	}
	filters := []grants.Filter{
		{}, {Tenant: "contoso"}, {Tenant: "fabrikam", State: grants.StateDenied}, {State: grants.StatePendingManager},
		{State: grants.StateApproved}, {ExcludePending: true}, {CreatedAfter: mid}, {CreatedBefore: mid, ExcludePending: true},
	}
	// states returns the state of every request now, as listings settle
	// them.
	states := func() map[string]grants.State {
		rs, err := e.store.List(ctx, manager.Principal, grants.Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 1000 {
			t.Fatal("more requests than one listing shows: the test reads states from one")
		}
		out := map[string]grants.State{}
		for _, r := range rs {
			out[r.ID] = r.State
		}
		return out
	}

	for round := range 60 {
		v := viewers[rng.IntN(len(viewers))]
		f := filters[rng.IntN(len(filters))]
		if !v.p.IsProvider() && f.Tenant != "" && f.Tenant != v.p.TenantID {
			f.Tenant = ""
		}
		f.Limit = []int{1, 2, 3, 7}[rng.IntN(4)]
		name := fmt.Sprintf("round %d: %s, %+v", round, v.name, f)
		inBounds := func(id string, created time.Time) bool {
			fl := all[id]
			tenant := f.Tenant
			if !v.p.IsProvider() {
				tenant = v.p.TenantID
			}
			return (tenant == "" || fl.tenant == tenant) &&
				(f.CreatedAfter.IsZero() || created.After(f.CreatedAfter)) &&
				(f.CreatedBefore.IsZero() || created.Before(f.CreatedBefore))
		}
		matches := func(st grants.State) bool {
			return (f.State == "" || st == f.State) && !(f.ExcludePending && st.Pending())
		}
		// The member that orders a request in the index read.
		member := func(r grants.Request) string {
			if f.Tenant != "" || !v.p.IsProvider() {
				return r.ID
			}
			return r.Tenant + "/" + r.ID
		}
		start := states()
		created := map[string]time.Time{}
		for id := range start {
			r, err := e.store.Get(ctx, manager.Principal, id)
			if err != nil {
				t.Fatal(err)
			}
			created[id] = r.CreatedAt
		}
		changed := map[string]bool{}
		var got []grants.Request
		for pages := 0; ; pages++ {
			if pages > 500 {
				t.Fatalf("%s: the listing does not end", name)
			}
			pg, err := e.store.ListPage(ctx, v.p, f)
			if err != nil {
				t.Fatalf("%s: page %d: %v", name, pages, err)
			}
			if len(pg.Requests) > f.Limit || pg.Next != "" && len(pg.Requests) != f.Limit {
				t.Fatalf("%s: page %d has %d requests, limit %d, next %q", name, pages, len(pg.Requests), f.Limit, pg.Next)
			}
			got = append(got, pg.Requests...)
			if f.Cursor = pg.Next; f.Cursor == "" {
				break
			}
			// Between pages.
			switch rng.IntN(8) {
			case 0:
				create(e)
			case 1:
				create(behind)
			case 2, 3:
				if id := randomID(rng, all); act(id) {
					changed[id] = true
				}
			case 4:
				e.clock.Advance(time.Duration(1+rng.IntN(2)) * time.Millisecond)
			case 5:
				if _, err := e.store.Reindex(ctx, e.clock.Now().Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
			case 6:
				if rng.IntN(2) == 0 {
					e.unbuilt(t)
				} else {
					e.built(t)
				}
			case 7:
				if rng.IntN(10) == 0 {
					// Past every pending request's decision window.
					e.clock.Advance(grants.DecisionWindow)
				}
			}
			sync()
		}
		end := states()
		e.built(t)

		seen := map[string]bool{}
		for i, r := range got {
			fl, ok := all[r.ID]
			switch {
			case !ok:
				t.Errorf("%s: listed %s, a request never filed", name, r.ID)
				continue
			case seen[r.ID]:
				t.Errorf("%s: %s listed twice", name, r.ID)
			case !v.sees(fl.tenant, fl.requester):
				t.Errorf("%s: listed %s (tenant %s, filed by %s), which the viewer may not see", name, r.ID, fl.tenant, fl.requester)
			case !inBounds(r.ID, r.CreatedAt) || !matches(r.State):
				t.Errorf("%s: listed %s (%s, %s, created %s), which the filter leaves out", name, r.ID, r.Tenant, r.State, r.CreatedAt)
			case v.asTen && (r.Requester != record.OperatorUserID || r.RequesterEmail != ""):
				t.Errorf("%s: a tenant user sees requester %q <%s>", name, r.Requester, r.RequesterEmail)
			case !v.asTen && r.Requester != fl.requester:
				t.Errorf("%s: the provider sees requester %q, filed by %q", name, r.Requester, fl.requester)
			}
			seen[r.ID] = true
			if i > 0 {
				p := got[i-1]
				if c := cmp.Or(cmp.Compare(p.CreatedAt.UnixMilli(), r.CreatedAt.UnixMilli()), cmp.Compare(member(p), member(r))); c <= 0 {
					t.Errorf("%s: %s listed after %s, out of the index's order", name, r.ID, p.ID)
				}
			}
		}
		for id, st := range start {
			fl := all[id]
			if !v.sees(fl.tenant, fl.requester) || !inBounds(id, created[id]) {
				continue
			}
			stateless := f.State == "" && !f.ExcludePending
			if !stateless && (changed[id] || !matches(st) || !matches(end[id])) {
				continue
			}
			if !seen[id] {
				t.Errorf("%s: %s (%s, %s, filed by %s) missing", name, id, fl.tenant, st, fl.requester)
			}
		}
	}
}

// randomID returns one of the ids of m.
func randomID[V any](rng *rand.Rand, m map[string]V) string {
	ids := slices.Sorted(maps.Keys(m))
	return ids[rng.IntN(len(ids))]
}
