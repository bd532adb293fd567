package console_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// TestRequestsPageShowsUnreadableRequests: one stored request that does
// not decode, pending or in the history, took the whole requests page down
// (503); now every other request is listed, and a row in each list names
// the damaged one and says it cannot be read.
func TestRequestsPageShowsUnreadableRequests(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	pending := e.fileMany(3, "op", "contoso")
	history := e.fileMany(3, "hist", "contoso")
	e.cancel(history)
	for _, id := range []string{pending[1].ID, history[1].ID} {
		if err := e.rdb.Set(ctx, keys.Request("contoso", id), `{"state":`, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	b := e.signIn(mia)
	for _, path := range []string{"/console/requests", "/console/requests/pending"} {
		r := b.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", path, r)
		}
		if got, want := rows(t, r, "pending"), []string{pending[0].ID, pending[2].ID}; !slices.Equal(got, want) {
			t.Errorf("%s: pending lists %v, want %v", path, got, want)
		}
		if !strings.Contains(r.body, `data-unreadable="`+pending[1].ID+`"`) ||
			!strings.Contains(r.body, "Request <span class=\"mono\">"+pending[1].ID+"</span> of tenant contoso cannot be read") {
			t.Errorf("%s: no row says pending request %s cannot be read: %s", path, pending[1].ID, r)
		}
	}
	r := b.get("/console/requests")
	want := []string{history[2].ID, history[0].ID}
	if got := rows(t, r, "history"); !slices.Equal(got, want) {
		t.Errorf("history lists %v, want %v", got, want)
	}
	if !strings.Contains(r.body, `data-unreadable="`+history[1].ID+`"`) {
		t.Errorf("no row says request %s of the history cannot be read: %s", history[1].ID, r)
	}
}

// TestTenantsPageShowsUnreadableEntry: one tenant's registry entry that
// does not decode took the whole Tenants page down (500); now every other
// tenant is listed, and a row names the damaged one and says it cannot be
// read. Its own page still fails.
func TestTenantsPageShowsUnreadableEntry(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	if err := e.rdb.Set(context.Background(), keys.Tenant("fabrikam"), `{"id":"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	b := e.signIn(lara)
	r := b.get("/console/tenants")
	if r.status != http.StatusOK {
		t.Fatalf("tenants page: %s", r)
	}
	if !strings.Contains(r.body, `href="/console/tenants/contoso"`) || strings.Contains(r.body, `href="/console/tenants/fabrikam"`) {
		t.Errorf("the tenants page does not list contoso alone: %s", r)
	}
	if !strings.Contains(r.body, `data-unreadable="fabrikam"`) ||
		!strings.Contains(r.body, `Tenant <span class="mono">fabrikam</span> cannot be read`) {
		t.Errorf("no row says tenant fabrikam cannot be read: %s", r)
	}
	if r := b.get("/console/tenants/fabrikam"); r.status != http.StatusInternalServerError {
		t.Errorf("fabrikam's page: %s, want 500", r)
	}
}

// TestAuditPageShowsUnreadableRecord: an audit record that does not decode
// failed the whole audit search page; now the others are shown and a row
// names it by its stream id.
func TestAuditPageShowsUnreadableRecord(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	e.file("contoso")
	bad, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	r := e.signIn(auditor).get("/console/audit?tenant=contoso")
	if r.status != http.StatusOK {
		t.Fatalf("audit page: %s", r)
	}
	if !strings.Contains(r.body, "New-AccessToCustomerDataRequest") {
		t.Errorf("the readable records are not shown: %s", r)
	}
	if !strings.Contains(r.body, `data-unreadable="`+bad+`"`) || !strings.Contains(r.body, "of tenant contoso cannot be read") {
		t.Errorf("no row says record %s cannot be read: %s", bad, r)
	}
}

// TestRequestPageNamesUnreadableAuditRecord: an audit record in a
// request's span of the tenant's log that does not decode was left out of
// the request page's audit trail in silence; now the trail keeps the
// readable records and a row names the damaged one by its stream id, as
// the audit search does, and the read counts it in
// lockbox_unreadable_records_total{kind="audit"}.
func TestRequestPageNamesUnreadableAuditRecord(t *testing.T) {
	parallel(t)
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(cfg *console.Config) {
		if err := cfg.Audit.(*audit.Log).ReportUnreadable(reg, nil); err != nil {
			t.Fatal(err)
		}
	})
	req := e.file("contoso")
	bad, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	before := auditUnreadable(t, reg)

	for _, p := range []identity.Principal{mia, contosoApprover} {
		r := e.signIn(p).get("/console/requests/" + req.ID)
		if r.status != http.StatusOK {
			t.Fatalf("request page as %s: %s", p.Subject, r)
		}
		if !strings.Contains(r.body, "New-AccessToCustomerDataRequest") {
			t.Errorf("as %s: the readable records are not shown: %s", p.Subject, r)
		}
		if !strings.Contains(r.body, `data-unreadable="`+bad+`"`) ||
			!strings.Contains(r.body, `Audit record <span class="mono">`+bad+`</span> of tenant contoso cannot be read`) {
			t.Errorf("as %s: no row of the audit trail says record %s cannot be read: %s", p.Subject, bad, r)
		}
	}
	if got := auditUnreadable(t, reg) - before; got != 2 {
		t.Errorf("lockbox_unreadable_records_total{kind=\"audit\"} rose by %v over two views, want 2", got)
	}
}

// auditUnreadable is the value of lockbox_unreadable_records_total
// {kind="audit"} in reg.
func auditUnreadable(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != unreadable.MetricName {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == unreadable.KindAudit {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("%s{kind=%q} is not exported", unreadable.MetricName, unreadable.KindAudit)
	return 0
}
