package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// churningDirectory is the tenant directory of a tenant whose registry
// entry is written again each time a transition reads the switch or asks
// whether the tenant is active: the registry entry is watched by filing
// and by every decision, so each of their transactions loses its
// optimistic lock, as under an unending stream of concurrent changes.
// The entry is written back as it is, so nothing else changes.
type churningDirectory struct {
	grants.TenantDirectory
	rdb redis.UniversalClient
}

func (d churningDirectory) touch(ctx context.Context, tenant string) error {
	b, err := d.rdb.Get(ctx, keys.Tenant(tenant)).Bytes()
	if err != nil {
		return err
	}
	return d.rdb.Set(ctx, keys.Tenant(tenant), b, 0).Err()
}

func (d churningDirectory) Active(ctx context.Context, tenant string) error {
	if err := d.touch(ctx, tenant); err != nil {
		return err
	}
	return d.TenantDirectory.Active(ctx, tenant)
}

// TestContentionIsAConflict: a transition that loses its optimistic lock
// on every one of its tries is refused as a conflict to retry (409
// conflict), with nothing written. Filing a request answered that the
// store was unavailable (503) instead, as for Redis being down: Redis was
// up and answering, and the documented answer to a concurrent change that
// won is 409 conflict, as an action on a request gets.
func TestContentionIsAConflict(t *testing.T) {
	ctx := context.Background()
	in := grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(time.Hour)}
	tests := []struct {
		name string
		// try takes the transition on churning, the store whose tenant
		// directory keeps the registry entry changing; filed is the
		// request e filed before, if the case needs one.
		try func(churning *grants.Store, filed grants.Request) error
		// filed: the case acts on a request filed before.
		filed bool
	}{
		{"file a request", func(s *grants.Store, _ grants.Request) error {
			_, err := s.Create(ctx, operator, in)
			return err
		}, false},
		{"approve as manager", func(s *grants.Store, r grants.Request) error {
			_, err := s.Act(ctx, r.ID, grants.ActionApprove, manager, "")
			return err
		}, true},
		{"deny as manager", func(s *grants.Store, r grants.Request) error {
			_, err := s.Act(ctx, r.ID, grants.ActionDeny, manager, "")
			return err
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var filed grants.Request
			if tc.filed {
				filed = e.create(t, time.Hour)
			}
			churning, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Catalog: cat, Now: e.clock.Now,
				Tenants: churningDirectory{e.tenants, e.rdb}, MaxRetries: 3})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.try(churning, filed)
			if !errors.Is(err, grants.ErrConflict) || errors.Is(err, grants.ErrUnavailable) || codeOf(err) != "conflict" {
				t.Fatalf("err = %v (code %q), want a conflict to retry (code conflict)", err, codeOf(err))
			}
			// Nothing was written: no request filed or changed, no audit
			// record.
			page, err := e.store.ListPage(ctx, manager.Principal, grants.Filter{Tenant: "contoso"})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.filed {
				want = 1
			}
			if len(page.Requests) != want {
				t.Fatalf("%d requests listed, want %d", len(page.Requests), want)
			}
			if tc.filed {
				if r := page.Requests[0]; r.State != grants.StatePendingManager || len(r.History) != 1 {
					t.Fatalf("request %s with %d events, want it untouched", r.State, len(r.History))
				}
			}
			wantOps := []string{}
			if tc.filed {
				wantOps = []string{record.OpNewRequest}
			}
			if got := e.operations(t); len(got) != len(wantOps) || len(got) > 0 && got[0] != wantOps[0] {
				t.Fatalf("audit = %v, want %v", got, wantOps)
			}
			// The one-open-request guard was not left behind: the
			// request can still be filed once the contention is over.
			if !tc.filed {
				if _, err := e.store.Create(ctx, operator, in); err != nil {
					t.Fatalf("filing once the contention ended: %v", err)
				}
			}
		})
	}
}
