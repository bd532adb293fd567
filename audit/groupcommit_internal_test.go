package audit

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

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
	f := newBatchFixture(t, rdb, rdb.Pipeline(), "contoso", "fabrikam")
	a, _ := rdb.MasterForKey(ctx, keys.Audit("contoso"))
	b, _ := rdb.MasterForKey(ctx, keys.Audit("fabrikam"))
	if a.Options().Addr == b.Options().Addr {
		t.Fatal("contoso and fabrikam share a master")
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
		batch := []*pending{f.pending(t, first), f.pending(t, second)}
		f.w.write(batch)
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

// TestBatchLinksFollowTheHead: a batch's links are computed by the writer
// from the head the last batch left, and the script takes them only while
// that is still the head. After another writer moved it (here a
// Log.Append), the script links the batch itself; the writer learns the
// new head from it and links the next batch again. The chain verifies
// throughout.
func TestBatchLinksFollowTheHead(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	f := newBatchFixture(t, rdb, rdb.Pipeline(), "contoso")
	w, log := f.w, f.log
	batch := func(n int) {
		t.Helper()
		var ps []*pending
		for range n {
			ps = append(ps, f.pending(t, "contoso"))
		}
		w.write(ps)
		for _, p := range ps {
			if err := <-p.done; err != nil {
				t.Fatal(err)
			}
		}
	}
	head := func() string { return rdb.Get(ctx, keys.AuditHead("contoso")).Val() }
	// The head the writer expects: none is the empty chain's.
	writerHead := func() string { h, _ := w.heads["contoso"].(string); return h }
	wantRecords := 0
	for step, moveHead := range []bool{false, false, true, false, true, true, false} {
		if moveHead {
			if _, err := log.Append(ctx, operatorAction("contoso")); err != nil {
				t.Fatal(err)
			}
			wantRecords++
		}
		// Whether the script will take the writer's links: only when the
		// head it saw last is still the head.
		if linked := writerHead() == head(); linked == moveHead {
			t.Fatalf("step %d: writer's head %q, chain's %q: linked %v with the head moved %v", step, writerHead(), head(), linked, moveHead)
		}
		batch(step%3 + 1)
		wantRecords += step%3 + 1
		if got := head(); writerHead() != got || got == "" {
			t.Fatalf("step %d: writer's head %q, chain's %q", step, writerHead(), got)
		}
		v, err := log.verify(ctx, "contoso")
		if err != nil || !v.OK || v.Records != wantRecords {
			t.Fatalf("step %d: %+v %v, want %d records verified", step, v, err, wantRecords)
		}
	}
}

// batchFixture is a batch writer used directly, not through GroupCommit's
// goroutines, on a Redis where its tenants are onboarded.
type batchFixture struct {
	log *Log
	w   *batchWriter
}

func newBatchFixture(t *testing.T, rdb redis.UniversalClient, pipe redis.Pipeliner, tenants ...string) *batchFixture {
	t.Helper()
	for _, tenant := range tenants {
		b, _ := json.Marshal(map[string]string{"id": tenant, "organization_id": uuid.NewString()})
		if err := rdb.Set(context.Background(), keys.Tenant(tenant), b, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	log := NewLog(rdb, nil)
	g, err := NewGroupCommit(GroupCommitConfig{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return &batchFixture{log: log, w: newBatchWriter(g, pipe)}
}

// operatorAction is a record of one proxied call on tenant's data.
func operatorAction(tenant string) record.Record {
	return record.Record{Operation: "Get-Mailbox", LockboxTenant: tenant, Workload: "exchange",
		RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin, UserId: record.OperatorUserID}
}

// pending returns an operator action of tenant, completed and queued as
// GroupCommit.Append queues it.
func (f *batchFixture) pending(t *testing.T, tenant string) *pending {
	t.Helper()
	r, err := f.log.complete(context.Background(), operatorAction(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return &pending{tenant: tenant, data: r.AppendJSON(nil), deadline: time.Now().Add(time.Minute).UnixNano(), done: make(chan error, 1)}
}
