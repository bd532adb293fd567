package grants_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestEndingAccessNeedsNotTheSwitch: a denial or a revocation ends access
// whatever the tenant's switch says, so it does not read it. During a
// rolling upgrade a newer replica may store settings this version can't
// use; they refuse an approval (the switch decides whether the manager's
// is final) with 503, but a manager's or approver's revocation and a
// denial, refused with 503 as well, kept open the access they end.
func TestEndingAccessNeedsNotTheSwitch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)
	carol := who("carol", "", identity.RoleOperator)
	dave := who("dave", "", identity.RoleOperator)
	live := e.file(t, operator, "exchange")
	e.act(t, live.ID, grants.ActionApprove, manager)
	e.act(t, live.ID, grants.ActionApprove, globalAdmin)
	live2 := e.file(t, bob, "exchange")
	e.act(t, live2.ID, grants.ActionApprove, manager)
	e.act(t, live2.ID, grants.ActionApprove, globalAdmin)
	atManager := e.file(t, carol, "exchange")
	atTenant := e.file(t, dave, "exchange")
	e.act(t, atTenant.ID, grants.ActionApprove, manager)
	waiting := e.file(t, dave, "sharepoint")

	k := keys.Settings("contoso")
	stored, err := e.rdb.Get(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.TrimSuffix(stored, "}") + `,"allowed_services":["sharepoint"]}`
	if err := e.rdb.Set(ctx, k, newer, 0).Err(); err != nil {
		t.Fatal(err)
	}

	for _, step := range []struct {
		id   string
		act  grants.Action
		by   grants.Actor
		want grants.State
	}{
		{live.ID, grants.ActionRevoke, manager, grants.StateRevoked},
		{live2.ID, grants.ActionRevoke, globalAdmin, grants.StateRevoked},
		{atManager.ID, grants.ActionDeny, manager, grants.StateDenied},
		{atTenant.ID, grants.ActionDeny, globalAdmin, grants.StateDenied},
	} {
		if err := e.store.CanAct(ctx, step.by.Principal, step.id, step.act); err != nil {
			t.Errorf("may %s %s take %s? %v", step.by.Principal.Subject, step.id, step.act, err)
		}
		got, err := e.store.Act(ctx, step.id, step.act, step.by, "")
		if err != nil || got.State != step.want {
			t.Errorf("%s by %s over settings this version can't use: %s, %v; want %s", step.act, step.by.Principal.Subject, got.State, err, step.want)
		}
	}
	for _, op := range []string{"alice", "bob"} {
		if _, err := e.store.Grant(ctx, "contoso", op, "exchange"); !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("%s's grant after the revocation: %v, want none", op, err)
		}
	}
	// An approval reads the switch: refused, to be retried on a replica
	// that can read it, and nothing changes.
	if _, err := e.store.Act(ctx, waiting.ID, grants.ActionApprove, manager, ""); !errors.Is(err, grants.ErrUnavailable) {
		t.Errorf("manager's approval over settings this version can't use: %v, want 503", err)
	}
	if r, err := e.store.Get(ctx, manager.Principal, waiting.ID); err != nil || r.State != grants.StatePendingManager || len(r.History) != 1 {
		t.Errorf("the request refused an approval: %+v, %v", r, err)
	}
}
