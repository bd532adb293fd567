package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestApproverAssignmentsAreBounded: notification addresses are capped
// because each is mailed on every request; approvers were not, though
// each is mailed too and the set is read whole by every check of a tenant
// user's rights and every assignment: a script could assign approvers
// without end. A tenant now has at most tenants.MaxApprovers; one more is
// 409 too_many_approvers, and a removal makes room again.
func TestApproverAssignmentsAreBounded(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	ctx := context.Background()
	// All but one assigned directly: the bound is what is tested, not a
	// thousand transactions.
	members := make([]any, 0, tenants.MaxApprovers-1)
	for i := range tenants.MaxApprovers - 1 {
		members = append(members, fmt.Sprintf("user%d@contoso.example", i))
	}
	if err := rdb.SAdd(ctx, keys.Approvers("contoso"), members...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "last@contoso.example"); err != nil {
		t.Fatalf("the %dth approver: %v", tenants.MaxApprovers, err)
	}
	err := s.AddApprover(ctx, admin, "", "contoso", "more@contoso.example")
	var fe *fault.Error
	if !errors.Is(err, fault.ErrConflict) || !errors.As(err, &fe) || fe.Code != "too_many_approvers" || !strings.Contains(err.Error(), "remove one") {
		t.Fatalf("one approver past the bound: %v; want 409 too_many_approvers", err)
	}
	// Assigning one already there still succeeds and changes nothing.
	if err := s.AddApprover(ctx, admin, "", "contoso", "LAST@contoso.example"); err != nil {
		t.Errorf("assigning an approver again at the bound: %v", err)
	}
	if err := s.RemoveApprover(ctx, admin, "", "contoso", "user0@contoso.example"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddApprover(ctx, admin, "", "contoso", "more@contoso.example"); err != nil {
		t.Errorf("an approver once one was removed: %v", err)
	}
	if n, err := rdb.SCard(ctx, keys.Approvers("contoso")).Result(); err != nil || n != tenants.MaxApprovers {
		t.Errorf("%d approvers (%v), want %d", n, err, tenants.MaxApprovers)
	}
}
