package notify_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestReplicaKilledMidDelivery: three workers deliver many tenants'
// outboxes after a fourth was killed in the middle of its round. Killed
// after reading entries (they sit in its pending list) it loses nothing and
// nothing is sent twice. Killed between a mail server accepting a message
// and recording it as sent — the one window where exactly-once is not
// possible without the mail server taking part — that one message is sent
// again, with the same Message-ID, so the receiving side can drop it; no
// other message is sent twice.
func TestReplicaKilledMidDelivery(t *testing.T) {
	for _, kill := range []struct {
		name string
		when func(redis.Cmder) bool
		dups int
	}{
		{"after reading entries", redistest.Command("xreadgroup", ">"), 0},
		// Killed right after its lease on a recipient, it sends and
		// can't mark the recipient sent.
		{"after a mail server accepted a message", leaseBy("dying"), 1},
	} {
		t.Run(kill.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			log := audit.NewLog(e.rdb, e.clock.Now)
			ts := tenants.NewStore(e.rdb, log, e.clock.Now)
			const tenantCount, perTenant = 6, 4
			for i := range tenantCount {
				tn := fmt.Sprintf("tenant-%d", i)
				tenanttest.Onboard(t, ts, tn)
				for j := range perTenant {
					if _, err := e.store.Create(ctx, operator(j), grants.CreateInput{
						Tenant: tn, Service: "exchange", ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(time.Hour),
					}); err != nil {
						t.Fatal(err)
					}
				}
			}
			managers := []string{"mary@provider.example", "leads@provider.example"}
			want := tenantCount * perTenant * len(managers)
			srv := startSMTP(t)
			const claimAfter = 300 * time.Millisecond
			worker := func(name string, rdb redis.UniversalClient) *notify.Worker {
				return newWorker(t, notify.Config{
					Redis: rdb, Now: e.clock.Now, Consumer: name, ClaimAfter: claimAfter, Batch: 3,
					ManagerAddresses: managers, SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example"},
				})
			}
			dying := redistest.Killable(t, e.rdb)
			dying.KillAfter(kill.when)
			if _, err := worker("dying", dying).Tick(ctx); err == nil || !dying.Killed() {
				t.Fatalf("the killed replica's round: %v (killed %v)", err, dying.Killed())
			}
			live := make([]*notify.Worker, 3)
			for i := range live {
				live[i] = worker(fmt.Sprintf("live-%d", i), redistest.Killable(t, e.rdb))
			}
			deadline := time.Now().Add(20 * time.Second)
			for len(srv.messages()) < want+kill.dups && time.Now().Before(deadline) {
				// The dead replica's claims end with their lease (the
				// clock), its pending entries once Redis has seen them
				// idle for ClaimAfter (real time).
				e.clock.Advance(claimAfter)
				time.Sleep(claimAfter / 3)
				var wg sync.WaitGroup
				for _, w := range live {
					wg.Go(func() {
						if _, err := w.Tick(ctx); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			if n, err := live[0].Depth(ctx); err != nil || n != 0 {
				t.Fatalf("outbox depth %d, %v", n, err)
			}
			sent := map[string][]string{} // recipient and Message-ID → deliveries
			for _, m := range srv.messages() {
				sent[m.To+" "+m.MessageID] = append(sent[m.To+" "+m.MessageID], m.MessageID)
			}
			dups := 0
			for k, ids := range sent {
				if len(ids) > 1 {
					dups += len(ids) - 1
					t.Logf("sent %d times: %s", len(ids), k)
				}
			}
			if len(sent) != want || dups != kill.dups {
				t.Fatalf("%d distinct messages (want %d), %d duplicates (want %d)", len(sent), want, dups, kill.dups)
			}
			for k := range sent {
				if !strings.Contains(k, "@provider.example>") {
					t.Fatalf("message without a stable Message-ID: %s", k)
				}
			}
		})
	}
}
