package notify_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestLostAnswerIsSentAgainUnderTheSameID: delivery is at least once. A
// receiver that took a delivery but whose answer never reached Lockbox
// (the connection broke first, or the answer came after the timeout) can't
// be told from one that never got it, so the delivery is sent again, under
// the same X-Lockbox-Delivery and with the same body, for the receiver to
// drop as a duplicate. (The README says so; it once said only a replica
// dying between a channel's acceptance and the "sent" marker could cause a
// duplicate.)
func TestLostAnswerIsSentAgainUnderTheSameID(t *testing.T) {
	e := newEnv(t)
	e.create(t, operator(0)) // request.created: one webhook delivery
	var mu sync.Mutex
	var ids, bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		ids, bodies = append(ids, r.Header.Get(notify.DeliveryHeader)), append(bodies, string(b))
		first := len(ids) == 1
		mu.Unlock()
		if first {
			// Taken, but the answer is lost: the connection closes
			// before it is written.
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
		}
	}))
	t.Cleanup(hook.Close)
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", DevDir: t.TempDir(),
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}}})
	drain(t, w)
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 2 {
		t.Fatalf("the receiver got %d deliveries, want 2: the one whose answer was lost, and its retry", len(ids))
	}
	if ids[0] == "" || ids[0] != ids[1] || bodies[0] != bodies[1] {
		t.Errorf("deliveries %q and %q: want the same id and body, for the receiver to drop the second", ids, bodies)
	}
}
