package events_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestPublishInATenantsTransactionOnCluster: on Redis Cluster, PUBLISH has
// no key, so it may sit in any tenant's MULTI (no CROSSSLOT), runs on that
// tenant's master with the transaction, and the cluster bus carries it to
// subscribers on every node: the Listener (subscribed on one master) and a
// subscriber on each other master hear the events of tenants on all three
// masters; a transaction that aborts publishes nothing.
func TestPublishInATenantsTransactionOnCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	rdb := c.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rec := &recorder{got: make(chan struct{}, 16)}
	l := events.NewListener(rdb, nil, rec)
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	<-l.Ready()
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var subs []*redis.PubSub
	for _, m := range masters {
		n := redis.NewClient(&redis.Options{Addr: m})
		defer n.Close()
		ps := n.Subscribe(ctx, events.Channel)
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			t.Fatal(err)
		}
		subs = append(subs, ps)
	}

	tenants := []string{"contoso", "fabrikam", "northwind"}
	where := map[string]bool{}
	for _, tenant := range tenants {
		node, _ := rdb.MasterForKey(ctx, keys.Settings(tenant))
		where[node.Options().Addr] = true
	}
	if len(where) != 3 {
		t.Fatalf("the tenants are on %d masters, want 3", len(where))
	}
	// An aborted transaction first: its event must never arrive.
	key := keys.Settings("contoso")
	if err := rdb.Watch(ctx, func(tx *redis.Tx) error {
		rdb.Set(ctx, key, "changed meanwhile", 0)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "mine", 0)
			events.PublishTx(ctx, p, "aborted")
			return nil
		})
		return err
	}, key); err != redis.TxFailedErr {
		t.Fatalf("watch: %v", err)
	}
	for _, tenant := range tenants {
		key := keys.Settings(tenant)
		if err := rdb.Watch(ctx, func(tx *redis.Tx) error {
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, "changed", 0)
				events.PublishTx(ctx, p, tenant)
				return nil
			})
			return err
		}, key); err != nil {
			t.Fatalf("%s: %v", tenant, err)
		}
	}
	for range tenants {
		select {
		case <-rec.got:
		case <-time.After(5 * time.Second):
			t.Fatal("the Listener missed an event")
		}
	}
	// Published on three masters, the events cross the cluster bus each
	// on its own: they arrive in any order, each exactly once, and the
	// aborted transaction's never.
	rec.mu.Lock()
	got := slices.Clone(rec.tenants)
	rec.mu.Unlock()
	slices.Sort(got)
	if !slices.Equal(got, tenants) {
		t.Fatalf("the Listener heard %v, want %v", got, tenants)
	}
	for i, ps := range subs {
		var heard []string
		for range tenants {
			msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
			if err != nil {
				t.Fatalf("subscriber on %s: %v (heard %v)", masters[i], err, heard)
			}
			heard = append(heard, msg.(*redis.Message).Payload)
		}
		slices.Sort(heard)
		if !slices.Equal(heard, tenants) {
			t.Fatalf("subscriber on %s heard %v, want %v", masters[i], heard, tenants)
		}
	}
	cancel()
	<-done
}
