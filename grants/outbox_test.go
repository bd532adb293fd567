package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// recordingOutbox queues one stream entry per transition, or fails.
type recordingOutbox struct{ fail bool }

func (o *recordingOutbox) EnqueueTx(ctx context.Context, p redis.Pipeliner, prev, next grants.Request) error {
	if o.fail {
		return errors.New("outbox broken")
	}
	p.XAdd(ctx, &redis.XAddArgs{Stream: "lockbox:{" + next.Tenant + "}:test-outbox", Values: []any{"from", string(prev.State), "to", string(next.State)}})
	return nil
}

func TestOutboxJoinsTheTransition(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ob := &recordingOutbox{}
	ts := tenants.NewStore(rdb, log, c.Now)
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Outbox: ob})
	if err != nil {
		t.Fatal(err)
	}
	tenanttest.Onboard(t, ts, "contoso")
	ctx := context.Background()
	r, err := s.Create(ctx, operator, grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ob.fail = true
	if _, err := s.Act(ctx, r.ID, grants.ActionApprove, manager, ""); err == nil {
		t.Fatal("a transition whose notifications can't be queued committed")
	}
	got, err := s.Get(ctx, manager.Principal, r.ID)
	if err != nil || got.State != grants.StatePendingManager {
		t.Fatalf("after a failed outbox: %v, %v", got.State, err)
	}
	ob.fail = false
	if _, err := s.Act(ctx, r.ID, grants.ActionApprove, manager, ""); err != nil {
		t.Fatal(err)
	}
	entries, err := rdb.XRange(ctx, "lockbox:{contoso}:test-outbox", "-", "+").Result()
	if err != nil || len(entries) != 2 || entries[1].Values["to"] != string(grants.StatePendingCustomer) {
		t.Fatalf("outbox = %v, %v", entries, err)
	}
}
