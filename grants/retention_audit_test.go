package grants_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestRequestRetentionRecordsEachDeletion: request retention deleting a
// request is itself in the tenant's audit log, as
// Remove-AccessToCustomerDataRequest, an Exchange admin cmdlet record
// done by Lockbox (Customer Lockbox, a system user), naming the request,
// the state it ended in, when it ended and the retention that deleted it:
// a security team can tell a request deleted by retention from one that
// never was. It is created when the request is deleted, so audit search
// by date and by request finds it, and the tenant's view of it names no
// one of the provider's (the engineer who filed the request is not in
// it). Requests retention keeps get no record.
func TestRequestRetentionRecordsEachDeletion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.log.SetTenantDirectory(e.tenants)
	old := e.file(t, operator, "exchange")
	old = e.act(t, old.ID, grants.ActionCancel, operator)
	ended := old.History[len(old.History)-1].At
	pending := e.file(t, operator, "sharepoint")
	e.clock.Advance(2 * day)
	recent := e.create(t, time.Hour)
	e.act(t, recent.ID, grants.ActionDeny, manager)
	e.clock.Advance(2 * day)
	deletedAt := e.clock.Now()
	if n, _, err := e.store.DeleteEnded(ctx, 3*day); err != nil || n != 1 {
		t.Fatalf("DeleteEnded = %d, %v; want 1 (old)", n, err)
	}

	search := func(p identity.Principal, q audit.Query) []record.Record {
		t.Helper()
		q.Tenant, q.Operation, q.Limit = "contoso", record.OpRemoveRequest, 100
		page, err := e.log.Search(ctx, p, q)
		if err != nil {
			t.Fatal(err)
		}
		return page.Records
	}
	all := search(provAuditor.Principal, audit.Query{})
	if len(all) != 1 {
		t.Fatalf("%d %s records after one deletion: %+v", len(all), record.OpRemoveRequest, all)
	}
	rec := all[0]
	got := fmt.Sprintf("RecordType=%d Workload=%q UserId=%q UserType=%s ClientIP=%q ObjectId=%q LockboxRequestId=%q ProviderUserId=%q CreationTime=%s",
		rec.RecordType, rec.Workload, rec.UserId, rec.UserType, rec.ClientIP, rec.ObjectId, rec.LockboxRequestId, rec.ProviderUserId, rec.CreationTime.UTC().Format(time.RFC3339))
	want := fmt.Sprintf("RecordType=%d Workload=%q UserId=%q UserType=%s ClientIP=%q ObjectId=%q LockboxRequestId=%q ProviderUserId=%q CreationTime=%s",
		record.RecordTypeExchangeAdmin, "exchange", record.SystemUserID, record.UserTypeSystem, "", old.ID, old.ID, "", deletedAt.UTC().Format(time.RFC3339))
	if got != want {
		t.Errorf("the deletion's record:\n %s\nwant\n %s", got, want)
	}
	wantParams := []record.Parameter{
		{Name: "Identity", Value: old.ID},
		{Name: "State", Value: string(grants.StateCanceled)},
		{Name: "EndedAt", Value: ended.UTC().Format(record.TimeLayout)},
		{Name: "Retention", Value: (3 * day).String()},
	}
	if !slices.Equal(rec.Parameters, wantParams) {
		t.Errorf("Parameters %+v, want %+v", rec.Parameters, wantParams)
	}

	// Found by the request and by the date of the deletion, as the tenant
	// reads it: without the engineer, who filed the request.
	byRequest := search(globalAdmin.Principal, audit.Query{RequestID: old.ID})
	byDate := search(globalAdmin.Principal, audit.Query{From: deletedAt.Add(-time.Second), To: deletedAt.Add(time.Second)})
	if len(byRequest) != 1 || len(byDate) != 1 || byRequest[0].Id != rec.Id || byDate[0].Id != rec.Id {
		t.Fatalf("the tenant's search by request found %d, by date %d; want the deletion's record", len(byRequest), len(byDate))
	}
	b, err := json.Marshal(byRequest[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, provider := range []string{operator.Principal.Subject, record.OperatorUserID, record.ProviderUserID, manager.Principal.Subject} {
		if strings.Contains(string(b), provider) {
			t.Errorf("the tenant's view of the deletion names %q: %s", provider, b)
		}
	}

	// Nothing else was deleted, so nothing else is recorded.
	for _, id := range []string{pending.ID, recent.ID} {
		if recs := search(provAuditor.Principal, audit.Query{RequestID: id}); len(recs) != 0 {
			t.Errorf("request %s, kept, has a deletion record: %+v", id, recs)
		}
	}
}

// TestRequestRetentionDeletesNothingItCannotRecord: a request is deleted
// in the transaction that writes its record, or not at all. With the
// tenant's registry entry gone, no record can be written (it would have no
// OrganizationId), and the request stays, in every index, for a later run.
func TestRequestRetentionDeletesNothingItCannotRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.file(t, operator, "exchange")
	e.act(t, old.ID, grants.ActionCancel, operator)
	e.clock.Advance(4 * day)
	// A replica that never read the entry: its audit log has not cached
	// the tenant's OrganizationId.
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: audit.NewLog(e.rdb, e.clock.Now), Tenants: e.tenants, Catalog: cat, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	entry, err := e.rdb.Get(ctx, keys.Tenant("contoso")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Del(ctx, keys.Tenant("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.DeleteEnded(ctx, 3*day); err == nil || n != 0 {
		t.Errorf("DeleteEnded without the registry entry = %d, %v; want 0 and an error", n, err)
	}
	if in := indexed(t, e, old.ID); !slices.Equal(in, allIndexes) {
		t.Fatalf("a request deleted without its record: left in %q", in)
	}
	// With the entry back, the next run deletes it, and records it.
	if err := e.rdb.Set(ctx, keys.Tenant("contoso"), entry, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.DeleteEnded(ctx, 3*day); err != nil || n != 1 {
		t.Fatalf("DeleteEnded with the entry back = %d, %v; want 1", n, err)
	}
	recs, err := e.log.List(ctx, "contoso", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Operation != record.OpRemoveRequest || recs[0].ObjectId != old.ID {
		t.Errorf("newest record %+v, want the deletion of %s", recs, old.ID)
	}
}
