package grants_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// orphanEntries lists the provider-wide index entries (request id → tenant,
// the provider-wide listing, the operator's listing) that name a request
// Redis does not hold.
func orphanEntries(t *testing.T, e *env) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	idx, err := e.rdb.Keys(ctx, "lockbox:reqidx:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range idx {
		id := strings.TrimPrefix(k, "lockbox:reqidx:")
		tenant := e.rdb.Get(ctx, k).Val()
		if n, _ := e.rdb.Exists(ctx, keys.Request(tenant, id)).Result(); n == 0 {
			out = append(out, k)
		}
	}
	for _, z := range []string{keys.AllRequests(), keys.OperatorRequests(operator.Principal.Subject)} {
		members, err := e.rdb.ZRange(ctx, z, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			tenant, id, _ := strings.Cut(m, "/")
			if n, _ := e.rdb.Exists(ctx, keys.Request(tenant, id)).Result(); n == 0 {
				out = append(out, z+" "+m)
			}
		}
	}
	return out
}

// TestRefusedFilingLeavesNoIndexEntries: Create writes a request's
// provider-wide index entries before its transaction, which may then
// refuse the filing (here the tenant is offboarded between the early check
// and the transaction, as in TestOffboardWhileFiling; equally a second
// open request, or a concurrent retry with the same Idempotency-Key). The
// entries named a request that never existed, and nothing removed them:
// request retention walks the tenant's own index, which never held it, and
// Reindex only adds. A refused filing removes them; even years later, with
// both jobs run, none is left.
func TestRefusedFilingLeavesNoIndexEntries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fileWhileOffboarding(t, e)

	// Years later, with request retention and the repair job run.
	e.clock.Advance(3 * 365 * day)
	if _, _, err := e.store.DeleteEnded(ctx, 2*365*day); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Reindex(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if left := orphanEntries(t, e); len(left) != 0 {
		t.Fatalf("index entries of a request that was never filed, kept for good: %q", left)
	}
}
