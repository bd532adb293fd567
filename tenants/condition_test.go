package tenants_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// wantNoneMatched fails t unless err is the refusal of a change whose
// If-None-Match condition failed.
func wantNoneMatched(t *testing.T, err error) {
	t.Helper()
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok || !errors.Is(err, fault.ErrPrecondition) || fe.Code != "precondition_failed" {
		t.Fatalf("err = %v, want precondition_failed (fault.ErrPrecondition)", err)
	}
}

// TestConditionNoneMatch: a change of the settings or a registry entry
// under NotAny, or NotRevisions holding the current revision, writes and
// records nothing; under NotRevisions without it, it is made. A stale
// IfRevision is refused as such first. Offboarding judges NotAny even on
// a tenant already offboarded, whose retry If-Match alone lets through.
func TestConditionNoneMatch(t *testing.T) {
	s, log := newStore(t)
	s.SetGuard(noGrants{})
	ctx := context.Background()
	st, err := s.Settings(ctx, admin, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	records := settingsRecords(t, log, "contoso")
	off := tenants.Settings{LockboxEnabled: false, NotificationAddresses: []string{}}
	for _, cond := range []tenants.Condition{
		{IfRevision: tenants.AnyRevision, NotAny: true},
		{IfRevision: tenants.AnyRevision, NotRevisions: []int64{st.Revision + 5, st.Revision}},
		{IfRevision: st.Revision, NotAny: true},
	} {
		_, err := s.PutSettingsWhen(ctx, admin, "", "contoso", off, cond)
		wantNoneMatched(t, err)
	}
	_, err = s.PutSettingsWhen(ctx, admin, "", "contoso", off, tenants.Condition{IfRevision: st.Revision + 1, NotAny: true})
	wantSettingsChanged(t, err)
	if got, _ := s.Lookup(ctx, "contoso"); got.Revision != st.Revision || !got.LockboxEnabled {
		t.Fatalf("settings %+v after refused changes, want revision %d, on", got, st.Revision)
	}
	if n := settingsRecords(t, log, "contoso"); n != records {
		t.Fatalf("a refused change was audited: %d records, want %d", n, records)
	}
	got, err := s.PutSettingsWhen(ctx, admin, "", "contoso", off, tenants.Condition{IfRevision: tenants.AnyRevision, NotRevisions: []int64{st.Revision + 1}})
	if err != nil || got.Revision != st.Revision+1 || got.LockboxEnabled {
		t.Fatalf("put with a list not holding the revision = %+v, %v; want revision %d, off", got, err, st.Revision+1)
	}

	entry, err := s.Get(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	name := "Contoso Ltd"
	_, err = s.UpdateTenantWhen(ctx, lara, "", "contoso", tenants.TenantUpdate{DisplayName: &name},
		tenants.Condition{IfRevision: tenants.AnyRevision, NotRevisions: []int64{entry.Revision}})
	wantNoneMatched(t, err)
	_, err = s.OffboardWhen(ctx, lara, "", "contoso", "The contract ended", tenants.Condition{IfRevision: tenants.AnyRevision, NotAny: true})
	wantNoneMatched(t, err)
	if e, _ := s.Get(ctx, "contoso"); e.Revision != entry.Revision || e.DisplayName == name || e.Offboarded != nil {
		t.Fatalf("entry %+v after refused changes, want it as it was", e)
	}
	gone, err := s.OffboardWhen(ctx, lara, "", "contoso", "The contract ended", tenants.Condition{IfRevision: entry.Revision, NotRevisions: []int64{entry.Revision + 1}})
	if err != nil || gone.Offboarded == nil {
		t.Fatalf("offboard with a list not holding the revision = %+v, %v", gone, err)
	}
	// The retry If-Match lets through finds it done; NotAny still fails.
	if again, err := s.OffboardWhen(ctx, lara, "", "contoso", "The contract ended", tenants.Condition{IfRevision: entry.Revision}); err != nil || again.Revision != gone.Revision {
		t.Fatalf("retried offboarding = %+v, %v; want the entry as offboarded", again, err)
	}
	_, err = s.OffboardWhen(ctx, lara, "", "contoso", "The contract ended", tenants.Condition{IfRevision: entry.Revision, NotAny: true})
	wantNoneMatched(t, err)
}

// TestConditionNoneMatchJudgedInTheTransaction: NotRevisions is judged
// against the revision the write replaces, in its transaction. Another
// admin's change commits after the read that found a revision not in the
// list and before the write: the write does not commit, and judged again
// on the new revision, which the list holds, the change is refused.
// Judged once before the transaction, it would have overwritten it.
func TestConditionNoneMatchJudgedInTheTransaction(t *testing.T) {
	rdb := testRedis(t)
	s, log := newStoreOn(t, rdb)
	s.SetGuard(noGrants{})
	ctx := context.Background()
	base, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: false})
	if err != nil {
		t.Fatal(err)
	}
	rdbA := redistest.Clone(t, rdb)
	between := &afterReply{when: redistest.Command("get", keys.Settings("contoso"))}
	if c, ok := rdbA.(*redis.ClusterClient); ok {
		c.OnNewNode(func(n *redis.Client) { n.AddHook(between) })
	} else {
		rdbA.AddHook(between)
	}
	storeA := tenants.NewStore(rdbA, log, nil)
	storeA.SetGuard(noGrants{})
	between.then = func() {
		b := base
		b.NotificationAddresses = []string{"sec@contoso.example"}
		if _, err := s.PutSettings(ctx, admin, "", "contoso", b); err != nil {
			t.Error(err)
		}
	}
	between.armed.Store(true)

	a := base
	a.NotificationAddresses = []string{"soc@contoso.example"}
	_, err = storeA.PutSettingsWhen(ctx, admin, "", "contoso", a,
		tenants.Condition{IfRevision: tenants.AnyRevision, NotRevisions: []int64{base.Revision + 1}})
	if between.armed.Load() {
		t.Fatal("the hook never ran: the test no longer reads the settings' key")
	}
	wantNoneMatched(t, err)
	st, err := s.Lookup(ctx, "contoso")
	if err != nil || !slices.Equal(st.NotificationAddresses, []string{"sec@contoso.example"}) || st.Revision != base.Revision+1 {
		t.Fatalf("settings = %+v, %v; want B's change alone, at revision %d", st, err, base.Revision+1)
	}
}
