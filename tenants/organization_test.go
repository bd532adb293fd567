package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestOnboardingsOfOneOrganizationAtOnce: two onboardings of one
// organization GUID under two ids, sent at once, can't both pass the check
// that no tenant has the GUID (api's TestOnboardRefusesAnOrganizationIDInUse):
// the onboarding holds the GUID while it runs. Exactly one is onboarded,
// and the hold is gone once they are done.
func TestOnboardingsOfOneOrganizationAtOnce(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	s := tenants.NewStore(rdb, audit.NewLog(rdb, c.Now), c.Now)
	ctx := context.Background()
	for round := range 10 {
		org := uuid.NewString()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				_, _, errs[i] = s.Onboard(ctx, lara, "", tenants.Onboarding{ID: fmt.Sprintf("org%d-%d", round, i), OrganizationID: org,
					DisplayName: "Org", Domains: []string{fmt.Sprintf("org%d-%d.example", round, i)}})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			var fe *fault.Error
			switch {
			case err == nil:
				ok++
			case !errors.As(err, &fe) || fe.Code != "organization_exists":
				t.Errorf("round %d: %v; want success or organization_exists", round, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d onboardings of organization %s succeeded (%v), want 1", round, ok, org, errs)
		}
		if n, err := rdb.Exists(ctx, keys.OnboardingOrganization(org)).Result(); err != nil || n != 0 {
			t.Errorf("round %d: the onboarding's hold on %s is left (%d, %v)", round, org, n, err)
		}
	}
}
