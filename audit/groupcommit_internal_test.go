package audit

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestClusterBatchReloadsTheScriptOnlyWhereMissing: on a cluster, one
// batch's tenants are on different masters. When one master lost the
// script (a restart, SCRIPT FLUSH) and the others ran their groups, only
// the groups that did not run are sent again: each record is written once,
// and none fails — whichever tenant comes first in the batch.
func TestClusterBatchReloadsTheScriptOnlyWhereMissing(t *testing.T) {
	rdb := redistest.SharedCluster(t).Client(t)
	ctx := context.Background()
	for _, tenant := range []string{"contoso", "fabrikam"} {
		b, _ := json.Marshal(map[string]string{"id": tenant, "organization_id": uuid.NewString()})
		rdb.Set(ctx, keys.Tenant(tenant), b, 0)
	}
	a, _ := rdb.MasterForKey(ctx, keys.Audit("contoso"))
	b, _ := rdb.MasterForKey(ctx, keys.Audit("fabrikam"))
	if a.Options().Addr == b.Options().Addr {
		t.Fatal("contoso and fabrikam share a master")
	}
	log := NewLog(rdb, nil)
	g, err := NewGroupCommit(GroupCommitConfig{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	w := &batchWriter{g: g, pipe: rdb.Pipeline(), keys: map[string][]any{}}
	record := func(tenant string) *pending {
		r, err := log.complete(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: tenant, Workload: "exchange",
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin, UserId: record.OperatorUserID})
		if err != nil {
			t.Fatal(err)
		}
		return &pending{tenant: tenant, data: r.AppendJSON(nil), deadline: time.Now().Add(time.Minute).UnixNano(), done: make(chan error, 1)}
	}
	for round, first := range []string{"contoso", "fabrikam", "contoso"} {
		second := map[string]string{"contoso": "fabrikam", "fabrikam": "contoso"}[first]
		// The first round: neither master knows the script yet (or
		// both do); then only the first tenant's master lost it.
		if round > 0 {
			node, _ := rdb.MasterForKey(ctx, keys.Audit(first))
			if err := node.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		batch := []*pending{record(first), record(second)}
		w.write(batch)
		for _, p := range batch {
			if err := <-p.done; err != nil {
				t.Fatalf("round %d: %s's record: %v", round, p.tenant, err)
			}
		}
		for _, tenant := range []string{"contoso", "fabrikam"} {
			if n, _ := rdb.XLen(ctx, keys.Audit(tenant)).Result(); n != int64(round+1) {
				t.Fatalf("round %d: %s's chain has %d records, want %d", round, tenant, n, round+1)
			}
		}
	}
}
