package notify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
)

// idMailer keeps the id each message was sent with, by recipient.
type idMailer struct {
	mu  sync.Mutex
	ids map[string][]string
}

func (m *idMailer) Name() string { return "dev" }
func (m *idMailer) Send(_ context.Context, id string, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ids[msg.To] = append(m.ids[msg.To], id)
	return nil
}

// An outbox entry's id is unique only within its tenant's outbox: two
// tenants' entries written in the same millisecond share it. The id a
// message is sent with (its Message-ID, a webhook's X-Lockbox-Delivery),
// on which receivers drop duplicates, must still tell them apart.
func TestDeliveryIDsAreUniqueAcrossTenants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tenanttest.Onboard(t, e.tenants, "fabrikam")
	tenants := []string{"contoso", "fabrikam"}
	for _, tn := range tenants {
		if _, err := e.store.Create(ctx, operator(0), grants.CreateInput{
			Tenant: tn, Service: "exchange", ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
		// Rewrite the outbox with the ids the other tenant's has too.
		key := notify.OutboxKey(tn)
		msgs, err := e.rdb.XRange(ctx, key, "-", "+").Result()
		if err != nil || len(msgs) == 0 {
			t.Fatalf("%s outbox: %v, %v", tn, msgs, err)
		}
		if err := e.rdb.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("1-%d", i+1), Values: m.Values}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	mb := &idMailer{ids: map[string][]string{}}
	drain(t, newWorker(t, notify.WithMailer(notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "a", ManagerAddresses: []string{"mary@provider.example"},
	}, mb)))
	ids := mb.ids["mary@provider.example"]
	if len(ids) != len(tenants) || ids[0] == ids[1] {
		t.Fatalf("the manager's messages of two tenants have ids %v", ids)
	}
}
