package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
)

// TestTenantRecordsThatDoNotDecodeAnswerAlike: a tenant's registry entry
// or settings that do not decode (cut short, set by hand) made the routes
// that read them answer 500 "internal" (GET of the entry, the settings,
// the approvers), others 503 "unavailable" with a Retry-After no retry
// could honour (changing the settings, filing or approving a request):
// one record, two answers, neither naming it. Every route now answers it
// as a request that does not decode is answered, 500 record_unreadable
// naming the record, and leaves it as it was, while a record a newer
// version wrote is still 503 unavailable, to be retried on an upgraded
// replica.
//
// Each of these calls counts the record once in
// lockbox_unreadable_records_total (kind "tenant" for the entry,
// "settings" for the settings), however many reads it took to refuse it:
// only the provider's tenant list counted an entry, and nothing the
// settings, so LockboxRecordsUnreadable stayed silent while they failed.
func TestTenantRecordsThatDoNotDecodeAnswerAlike(t *testing.T) {
	const cut = `{"id":"`
	type stored struct{ key, name, kind string }
	entry := stored{keys.Tenant("contoso"), "registry entry of tenant contoso cannot be read", unreadable.KindTenant}
	settings := stored{keys.Settings("contoso"), "Customer Lockbox settings of tenant contoso cannot be read", unreadable.KindSettings}
	onRequest := func(suffix string) func(e *env) string {
		return func(e *env) string { return filed(e) + suffix }
	}
	at := func(path string) func(*env) string { return func(*env) string { return path } }
	for _, c := range []struct {
		record stored
		name   string
		who    user
		method string
		path   func(e *env) string // the call's path, once the record is as stored
		body   any
	}{
		{entry, "GET the entry", mia, "GET", at("/v1/tenants/contoso"), nil},
		{entry, "GET it as its user", contosoAdmin, "GET", at("/v1/tenants/contoso"), nil},
		{entry, "list the tenants as its user", contosoAdmin, "GET", at("/v1/tenants"), nil},
		{entry, "PATCH the entry", lara, "PATCH", at("/v1/tenants/contoso"), map[string]string{"display_name": "C"}},
		{entry, "offboard", lara, "POST", at("/v1/tenants/contoso/offboard"), wire.Offboarding{Reason: "The contract ended"}},
		{entry, "GET the settings", contosoAdmin, "GET", at("/v1/tenants/contoso/settings"), nil},
		{entry, "GET the settings as a manager", mia, "GET", at("/v1/tenants/contoso/settings"), nil},
		{entry, "PUT the settings", contosoAdmin, "PUT", at("/v1/tenants/contoso/settings"), map[string]bool{"lockbox_enabled": true}},
		{entry, "GET the approvers", contosoAdmin, "GET", at("/v1/tenants/contoso/approvers"), nil},
		{entry, "assign an approver", contosoAdmin, "PUT", at("/v1/tenants/contoso/approvers/zoe@contoso.example"), nil},
		{entry, "file a request", alice, "POST", at("/v1/requests"), createBody("contoso", "exchange")},
		{entry, "list the tenant's requests", mia, "GET", at("/v1/requests?tenant=contoso"), nil},
		{entry, "approve a request", mia, "POST", onRequest("/approve"), nil},
		{entry, "search the audit log", contosoAdmin, "GET", at("/v1/audit?tenant=contoso"), nil},
		{entry, "verify the audit log", contosoAdmin, "GET", at("/v1/audit/verify?tenant=contoso"), nil},
		{settings, "GET the settings", contosoAdmin, "GET", at("/v1/tenants/contoso/settings"), nil},
		{settings, "GET the settings as a manager", mia, "GET", at("/v1/tenants/contoso/settings"), nil},
		{settings, "PUT the settings", contosoAdmin, "PUT", at("/v1/tenants/contoso/settings"), map[string]bool{"lockbox_enabled": true}},
		{settings, "approve a request", mia, "POST", onRequest("/approve"), nil},
	} {
		t.Run(c.record.key+"/"+c.name, func(t *testing.T) {
			e := newEnv(t)
			path := c.path(e)
			if err := e.rdb.Set(context.Background(), c.record.key, cut, 0).Err(); err != nil {
				t.Fatal(err)
			}
			r := e.do(c.who, c.method, path, c.body)
			wantError(t, r, http.StatusInternalServerError, "record_unreadable", c.record.name)
			if v := r.header.Values("Retry-After"); v != nil {
				t.Errorf("Retry-After %q: no retry reads the record", v)
			}
			if got, err := e.rdb.Get(context.Background(), c.record.key).Result(); err != nil || got != cut {
				t.Errorf("%s stored as %q (%v), want it left as it was", c.record.key, got, err)
			}
			for _, kind := range []string{unreadable.KindTenant, unreadable.KindSettings} {
				want := 0.0
				if kind == c.record.kind {
					want = 1
				}
				if n := unreadableCount(t, e.reg, kind); n != want {
					t.Errorf("%s{kind=%q} = %v after the call, want %v", unreadable.MetricName, kind, n, want)
				}
			}
		})
	}

	// A record a newer version wrote is another matter: an upgraded
	// replica reads it, so it is still the 503 to retry, reads and
	// changes alike.
	for _, c := range []struct {
		key    string
		who    user
		method string
		path   string
		body   any
	}{
		{keys.Tenant("contoso"), contosoAdmin, "GET", "/v1/tenants/contoso/approvers", nil},
		{keys.Tenant("contoso"), alice, "POST", "/v1/requests", createBody("contoso", "exchange")},
		{keys.Settings("contoso"), contosoAdmin, "GET", "/v1/tenants/contoso/settings", nil},
		{keys.Settings("contoso"), contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]bool{"lockbox_enabled": true}},
	} {
		t.Run("newer "+c.key+"/"+c.method+" "+c.path, func(t *testing.T) {
			e := newEnv(t)
			if c.key == keys.Settings("contoso") {
				// Settings nobody changed are not stored: store them.
				decode[wire.Settings](t, e.do(contosoAdmin, "PUT", "/v1/tenants/contoso/settings", map[string]any{"lockbox_enabled": true, "notification_addresses": []string{"sec@contoso.example"}}), http.StatusOK)
			}
			newer(e, c.key)
			r := e.do(c.who, c.method, c.path, c.body)
			wantError(t, r, http.StatusServiceUnavailable, "unavailable", "")
			retryAfter(t, r)
		})
	}
}

// TestEndingAccessOfTenantWithUnreadableEntry: a revocation, or a
// cancellation, by the provider reads the tenant's registry entry only
// for the organization id its audit record carries, which each replica
// reads once and keeps. With the entry damaged, a replica that had read
// it revoked, and one that had not answered 500 record_unreadable and
// left the grant live: the same revocation taken or refused by where the
// load balancer sent it, and access kept open by a record it did not
// need. Both now end access alike, the record carrying the organization
// id of the tenant's own audit log, and the damaged entry is counted
// once per call that met it. A tenant user's revocation still needs the
// entry (whether they are the tenant's user is in it) and is refused,
// alike on every replica.
func TestEndingAccessOfTenantWithUnreadableEntry(t *testing.T) {
	e := newEnv(t)
	e.assignApprover()
	approve := func(id string) {
		decode[wire.Request](t, e.do(mia, "POST", "/v1/requests/"+id+"/approve", nil), http.StatusOK)
		decode[wire.Request](t, e.do(contosoApprover, "POST", "/v1/requests/"+id+"/approve", nil), http.StatusOK)
	}
	approved := e.file(alice, "contoso", "exchange")
	approve(approved.ID)
	approvedToo := e.file(bob, "contoso", "onedrive")
	approve(approvedToo.ID)
	pending := e.file(bob, "contoso", "sharepoint")
	ctx := context.Background()
	orgID := recordedOrgID(t, e, approved.ID)
	if err := e.rdb.Set(ctx, keys.Tenant("contoso"), `{"id":"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Another replica over the same Redis: it has not read contoso's
	// organization id yet; e has, when it wrote the records above.
	other := newEnvOn(t, e.rdb)
	// Its set-up (onboarding contoso, which exists) met the entry once.
	counted := unreadableCount(t, other.reg, unreadable.KindTenant)
	for _, c := range []struct {
		name     string
		on       *env
		id       string
		action   string
		who      user
		status   int
		state    string
		operator string // whose grant ends (the requester), for an approved request
		service  string
	}{
		{"a tenant approver's revocation needs the entry", other, approved.ID, "revoke", contosoApprover, http.StatusInternalServerError, "approved", "", ""},
		{"revoke as the manager on a replica without the id", other, approved.ID, "revoke", mia, http.StatusOK, "revoked", alice.sub, "exchange"},
		{"revoke as the manager on a replica with it", e, approvedToo.ID, "revoke", mia, http.StatusOK, "revoked", bob.sub, "onedrive"},
		{"cancel as its requester on a replica without the id", other, pending.ID, "cancel", bob, http.StatusOK, "canceled", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.on.do(c.who, "POST", "/v1/requests/"+c.id+"/"+c.action, nil)
			if c.status != http.StatusOK {
				wantError(t, r, c.status, "record_unreadable", "registry entry of tenant contoso cannot be read")
			} else if r.status != c.status {
				t.Fatalf("status = %d, want %d; body: %s", r.status, c.status, r.body)
			}
			var stored struct{ State string }
			if b, err := e.rdb.Get(ctx, keys.Request("contoso", c.id)).Bytes(); err != nil || json.Unmarshal(b, &stored) != nil || stored.State != c.state {
				t.Errorf("request stored as %+v (%v), want %s", stored, err, c.state)
			}
			if c.operator != "" {
				if n, err := e.rdb.Exists(ctx, keys.Grant("contoso", c.operator, c.service)).Result(); err != nil || n != 0 {
					t.Errorf("the grant is still stored (%d, %v): access was not ended", n, err)
				}
			}
			if c.status == http.StatusOK {
				if got := recordedOrgID(t, e, c.id); got != orgID {
					t.Errorf("the records of %s carry the organization id %q, want contoso's %q", c.id, got, orgID)
				}
			}
			// The replica with the id cached does not read the entry.
			if c.on == other {
				counted++
			}
			if n := unreadableCount(t, other.reg, unreadable.KindTenant); n != counted {
				t.Errorf("%s{kind=\"tenant\"} = %v, want %v: once for each call that met the entry", unreadable.MetricName, n, counted)
			}
		})
	}
	if logs := other.logs.String(); !strings.Contains(logs, keys.Tenant("contoso")) {
		t.Errorf("no error line names the key %s: %s", keys.Tenant("contoso"), logs)
	}
}

// recordedOrgID is the OrganizationId that every record of request id in
// contoso's audit log carries; it fails the test when they differ or
// there is none.
func recordedOrgID(t *testing.T, e *env, id string) string {
	t.Helper()
	msgs, err := e.rdb.XRange(context.Background(), keys.Audit("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, m := range msgs {
		r, err := record.Unmarshal(m.Values["r"].(string))
		if err != nil || r.LockboxRequestId != id {
			continue
		}
		if r.OrganizationId == "" || got != "" && r.OrganizationId != got {
			t.Fatalf("%s of %s carries the organization id %q, the request's earlier records %q", r.Operation, id, r.OrganizationId, got)
		}
		got = r.OrganizationId
	}
	if got == "" {
		t.Fatalf("no record of %s", id)
	}
	return got
}

// unreadableCount is lockbox_unreadable_records_total{kind=kind} in reg.
func unreadableCount(t *testing.T, reg *prometheus.Registry, kind string) float64 {
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
			if m.GetLabel()[0].GetValue() == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("%s{kind=%q} is not exported", unreadable.MetricName, kind)
	return 0
}
