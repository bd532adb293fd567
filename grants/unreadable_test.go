package grants_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// lockedBuffer is a log sink safe for a store's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// damaged is what a partial write left of a request: it holds personal
// data that no log line may repeat.
const damaged = `{"id":"x","reason":"mailbox of jane.doe@contoso.example`

// unreadableEnv is an env whose store logs to logs and counts in reg, with
// three pending requests of contoso, the middle one (ids[1]) damaged.
type unreadableEnv struct {
	*env
	store *grants.Store
	logs  *lockedBuffer
	reg   *prometheus.Registry
	ids   []string // newest first
}

func newUnreadableEnv(t *testing.T) *unreadableEnv {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "198.51.100.4", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	u := &unreadableEnv{env: e, logs: &lockedBuffer{}, reg: prometheus.NewRegistry()}
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(u.logs, nil)), Registerer: u.reg})
	if err != nil {
		t.Fatal(err)
	}
	u.store = s
	for _, svc := range []string{"exchange", "sharepoint", "onedrive"} {
		r, err := s.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: svc, ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		u.ids = append([]string{r.ID}, u.ids...)
		e.clock.Advance(time.Second)
	}
	if err := e.rdb.Set(ctx, keys.Request("contoso", u.ids[1]), damaged, 0).Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *unreadableEnv) counted(t *testing.T) float64 {
	t.Helper()
	mfs, err := u.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_unreadable_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "request" {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatal("lockbox_unreadable_records_total{kind=\"request\"} is not exported")
	return 0
}

// checkReported: the damaged request was logged at error by its key, with
// the decode error and none of its content.
func (u *unreadableEnv) checkReported(t *testing.T) {
	t.Helper()
	out := u.logs.String()
	key := keys.Request("contoso", u.ids[1])
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, key) || !strings.Contains(out, "unexpected end of JSON input") {
		t.Errorf("no error line names %s and its decode error: %q", key, out)
	}
	if strings.Contains(out, "jane.doe") {
		t.Errorf("the log repeats the damaged record's content: %q", out)
	}
}

// TestListingShowsUnreadableRequest: one stored request that does not
// decode made every listing that would include it fail (503); now the
// others are listed, the damaged one is named as unreadable in its place,
// logged and counted, and pages still end and continue where they should.
func TestListingShowsUnreadableRequest(t *testing.T) {
	u := newUnreadableEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    grants.Actor
		f    grants.Filter
		want bool // the damaged one is shown as unreadable
	}{
		{"manager, tenant's history", manager, grants.Filter{Tenant: "contoso"}, true},
		{"manager, every tenant", manager, grants.Filter{}, true},
		{"operator, own requests", operator, grants.Filter{}, true},
		{"tenant admin", globalAdmin, grants.Filter{}, true},
		{"state filter", manager, grants.Filter{Tenant: "contoso", State: grants.StatePendingManager}, true},
		{"another operator", who("bob", "", identity.RoleOperator), grants.Filter{}, false},
		{"another tenant's admin", otherAdmin, grants.Filter{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, err := u.store.ListPage(ctx, tc.p.Principal, tc.f)
			if err != nil {
				t.Fatalf("listing failed: %v", err)
			}
			var got []string
			for _, r := range pg.Requests {
				got = append(got, r.ID)
			}
			wantReqs := []string{u.ids[0], u.ids[2]}
			wantBad := []grants.Unreadable{{Tenant: "contoso", ID: u.ids[1]}}
			if !tc.want {
				wantBad = nil
				if tc.p.Principal.Subject == "bob" || tc.p.Principal.TenantID == "fabrikam" {
					wantReqs = nil
				}
			}
			if strings.Join(got, ",") != strings.Join(wantReqs, ",") {
				t.Errorf("requests %v, want %v", got, wantReqs)
			}
			if len(pg.Unreadable) != len(wantBad) || len(wantBad) == 1 && pg.Unreadable[0] != wantBad[0] {
				t.Errorf("unreadable %v, want %v", pg.Unreadable, wantBad)
			}
		})
	}
	u.checkReported(t)
	if n := u.counted(t); n < 5 {
		t.Errorf("counted %v reads of the damaged request, want at least the 5 listings that met it", n)
	}

	// Pages of one: the damaged request takes a page's place, and the
	// cursors lead past it both ways.
	var seen []string
	f := grants.Filter{Tenant: "contoso", Limit: 1}
	var pages []grants.Page
	for range 5 {
		pg, err := u.store.ListPage(ctx, manager.Principal, f)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, pg)
		if len(pg.Requests)+len(pg.Unreadable) != 1 {
			t.Fatalf("page %d holds %d requests and %d unreadable, want one entry", len(pages), len(pg.Requests), len(pg.Unreadable))
		}
		for _, r := range pg.Requests {
			seen = append(seen, r.ID)
		}
		for _, b := range pg.Unreadable {
			seen = append(seen, "bad:"+b.ID)
		}
		if pg.Next == "" {
			break
		}
		f.Cursor = pg.Next
	}
	if want := u.ids[0] + ",bad:" + u.ids[1] + "," + u.ids[2]; strings.Join(seen, ",") != want {
		t.Fatalf("pages of one: %v, want %s", seen, want)
	}
	back, err := u.store.ListPage(ctx, manager.Principal, grants.Filter{Tenant: "contoso", Limit: 1, Cursor: pages[2].Prev})
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Unreadable) != 1 || back.Unreadable[0].ID != u.ids[1] || len(back.Requests) != 0 {
		t.Fatalf("the page before the last: %+v, want the unreadable one", back)
	}
}

// TestPendingShowsUnreadableRequest: the pending queue of every tenant
// answered 503 for one pending request that does not decode; now it
// lists the others and names the damaged one.
func TestPendingShowsUnreadableRequest(t *testing.T) {
	u := newUnreadableEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    grants.Actor
		bad  int
		reqs int
	}{
		{"manager", manager, 1, 2},
		{"approver", approver, 1, 2},
		// An operator's pending list reads their own index: a damaged
		// request found there is theirs, as in their listing.
		{"operator", operator, 1, 2},
		{"another tenant's admin", otherAdmin, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := u.store.PendingList(ctx, tc.p.Principal)
			if err != nil {
				t.Fatalf("pending list failed: %v", err)
			}
			if len(l.Requests) != tc.reqs || len(l.Unreadable) != tc.bad {
				t.Fatalf("%d requests and unreadable %v, want %d and %d", len(l.Requests), l.Unreadable, tc.reqs, tc.bad)
			}
			if tc.bad == 1 && l.Unreadable[0] != (grants.Unreadable{Tenant: "contoso", ID: u.ids[1]}) {
				t.Fatalf("unreadable %v, want contoso/%s", l.Unreadable, u.ids[1])
			}
		})
	}
	u.checkReported(t)
}

// TestGetUnreadableRequest: reading the damaged request itself is an error
// that says so (record_unreadable, a 500), not a bare internal error, and
// is logged and counted as well.
func TestGetUnreadableRequest(t *testing.T) {
	u := newUnreadableEnv(t)
	_, err := u.store.Get(context.Background(), manager.Principal, u.ids[1])
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok || !errors.Is(err, fault.ErrUnreadable) || fe.Code != "record_unreadable" || !strings.Contains(fe.Message, u.ids[1]) {
		t.Fatalf("Get = %v, want record_unreadable naming %s", err, u.ids[1])
	}
	u.checkReported(t)
	if n := u.counted(t); n != 1 {
		t.Fatalf("counted %v, want 1", n)
	}
	if problems, err := testutil.GatherAndLint(u.reg); err != nil || len(problems) > 0 {
		t.Fatal(problems, err)
	}
}

// TestRetentionReportsUnreadableRequest: request retention met a stored
// request that does not decode and kept it, as it must (it can't tell
// whether it ended), but said nothing, unlike every other read: a request
// past retention that no listing pages back to was kept with whatever
// personal data it holds, for good, and no alert asked anyone to repair
// or remove it. Each run that meets it now logs and counts it, and still
// keeps it.
func TestRetentionReportsUnreadableRequest(t *testing.T) {
	u := newUnreadableEnv(t)
	ctx := context.Background()
	u.clock.Advance(48 * time.Hour)
	for run := 1; run <= 2; run++ {
		if n, _, err := u.store.DeleteEnded(ctx, 24*time.Hour); err != nil || n != 0 {
			t.Fatalf("run %d: DeleteEnded = %d, %v; want nothing deleted", run, n, err)
		}
		if n := u.counted(t); n != float64(run) {
			t.Fatalf("after run %d: counted %v, want %d", run, n, run)
		}
	}
	u.checkReported(t)
	if n, err := u.rdb.Exists(ctx, keys.Request("contoso", u.ids[1])).Result(); err != nil || n != 1 {
		t.Errorf("the damaged request is gone (%d, %v): retention must keep what it can't read", n, err)
	}
}
