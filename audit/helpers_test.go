package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// orgID is the organization GUID onboard gives tenant.
func orgID(tenant string) string {
	return uuid.NewSHA1(uuid.NameSpaceDNS, []byte(tenant+".example")).String()
}

// onboard writes the registry entries of tenants, as tenants.Store.Onboard
// does, so their records can be written: a tenant without one has no
// OrganizationId. (The tenants package writes audit records, so its
// tests, not these, onboard through it.)
func onboard(tb testing.TB, rdb redis.UniversalClient, tenants ...string) {
	tb.Helper()
	for _, t := range tenants {
		b, _ := json.Marshal(map[string]any{"id": t, "organization_id": orgID(t), "display_name": t, "domains": []string{t + ".example"}})
		if err := rdb.Set(context.Background(), keys.Tenant(t), b, 0).Err(); err != nil {
			tb.Fatal(err)
		}
		if err := rdb.SAdd(context.Background(), keys.Tenants(), t).Err(); err != nil {
			tb.Fatal(err)
		}
	}
}

// testRedis returns the Redis of a test: a database of the package's
// redis-server, or the shared cluster within TestOnRedisCluster.
var testRedis = func(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

// exampleUsers answers the log's questions about tenants as the registry
// does for the tenants onboard writes: tenant t's users are user@t.example,
// and t is onboarded when rdb has its registry entry. With err set, every
// answer is that error, as a registry that can't be read.
type exampleUsers struct {
	rdb redis.UniversalClient
	err error
}

func (u exampleUsers) IsUser(_ context.Context, tenant, user string) (bool, error) {
	if u.err != nil {
		return false, u.err
	}
	return strings.HasSuffix(strings.ToLower(user), "@"+tenant+".example"), nil
}

func (u exampleUsers) Onboarded(ctx context.Context, tenant string) error {
	if u.err != nil {
		return u.err
	}
	n, err := u.rdb.Exists(ctx, keys.Tenant(tenant)).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return fault.New(fault.ErrNotFound, "tenant_not_found", "tenant %s is not onboarded", tenant)
	}
	return nil
}

// newLog is audit.NewLog with the read rule's tenant directory, for tests
// that read as tenant users.
func newLog(rdb redis.UniversalClient, now func() time.Time) *audit.Log {
	l := audit.NewLog(rdb, now)
	l.SetTenantDirectory(exampleUsers{rdb: rdb})
	return l
}

// requestID is the id of test request n: a UUID, as every request id is
// (the search's request filter refuses anything else).
func requestID(n int) string { return fmt.Sprintf("0198c2e4-5b7a-7d3e-9f10-%012d", n) }
