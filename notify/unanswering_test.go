package notify_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/notify"
)

// silentSMTP accepts connections and never says a word, as a mail server
// that hangs; it counts the connections.
func silentSMTP(t *testing.T) (addr string, conns *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int32)
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String(), conns
}

// TestUnansweringReceiverWaitedForOncePerRound: a receiver that never
// answers (a webhook, or the SMTP server) costs a round its timeout once,
// not once per message: the messages after the first that timed out are
// not sent to it in that round, and count a failed attempt as the first
// did. Waiting for it again and again held up every other message of the
// round (the approvers' e-mails behind a hanging webhook; up to 100
// entries a tenant, each waiting the whole timeout) past the lease of the
// tenant's visit. Each message still goes to the receiver once it
// answers again, once.
func TestUnansweringReceiverWaitedForOncePerRound(t *testing.T) {
	const entries = 3
	t.Run("webhook", func(t *testing.T) {
		e := newEnv(t)
		for i := range entries {
			e.create(t, operator(i)) // request.created: an e-mail to the manager, a webhook delivery
		}
		var calls atomic.Int32
		var answering atomic.Bool
		release := make(chan struct{})
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			// Read first: the server notices the client is gone (and
			// ends r's context) only once the body is read.
			_, _ = io.Copy(io.Discard, r.Body)
			if !answering.Load() {
				select { // until Lockbox gives up
				case <-r.Context().Done():
				case <-release:
				}
			}
		}))
		t.Cleanup(hook.Close)
		t.Cleanup(func() { close(release) }) // before Close, which waits for the handlers
		mb := &mailbox{}
		cfg := func(timeout time.Duration) notify.Config {
			return notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
				ManagerAddresses: []string{"mary@provider.example"},
				Webhooks:         []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k"), Timeout: timeout}},
			}, mb)
		}
		ctx := context.Background()
		w := newWorker(t, cfg(200*time.Millisecond))
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		// Whether the first call reaches the receiver before the client
		// gives up at 200ms depends on how busy the machine is (under
		// -race on a loaded runner it may not even be written): the
		// round must call it at most once, and never for the entries
		// after the one that timed out.
		if n := calls.Load(); n > 1 {
			t.Errorf("the receiver that never answers was called %d times in one round, want at most once", n)
		}
		if n := len(mb.to("mary@provider.example")); n != entries {
			t.Errorf("the manager got %d e-mails in that round, want %d", n, entries)
		}
		if n, err := w.Depth(ctx); err != nil || n != entries {
			t.Errorf("outbox depth = %d, %v; want every entry kept for the receiver", n, err)
		}
		answering.Store(true)
		e.clock.Advance(time.Minute)
		drain(t, newWorker(t, cfg(10*time.Second)))
		if n := calls.Load(); n < entries || n > 1+entries {
			t.Errorf("the receiver was called %d times in all, want %d or %d: each delivery once it answers, and the one that timed out if it got there", n, entries, 1+entries)
		}
		if n := len(mb.to("mary@provider.example")); n != entries {
			t.Errorf("the manager got %d e-mails in all, want %d", n, entries)
		}
		if n, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 0 {
			t.Errorf("dead letters = %d, %v; want none", n, err)
		}
	})
	t.Run("smtp", func(t *testing.T) {
		e := newEnv(t)
		for i := range entries {
			e.create(t, operator(i))
		}
		silent, conns := silentSMTP(t)
		hook := startHook(t, e.clock.Now, []byte("k"), 0)
		cfg := func(addr string, timeout time.Duration) notify.Config {
			return notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
				ManagerAddresses: []string{"mary@provider.example"},
				SMTP:             &notify.SMTPConfig{Addr: addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: timeout},
				Webhooks:         []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}},
			}
		}
		ctx := context.Background()
		if _, err := newWorker(t, cfg(silent, 200*time.Millisecond)).Tick(ctx); err != nil {
			t.Fatal(err)
		}
		// At most once: whether the connection is made (and accepted)
		// before the 200ms run out depends on how busy the machine is.
		// The count is checked again at the end, when every connection
		// made in the round has been accepted.
		if n := conns.Load(); n > 1 {
			t.Errorf("the SMTP server that never answers was tried %d times in one round, want at most once", n)
		}
		hook.mu.Lock()
		got := len(hook.bodies)
		hook.mu.Unlock()
		if got != entries {
			t.Errorf("the webhook got %d deliveries in that round, want %d", got, entries)
		}
		// The mail server is back (at another address).
		srv := startSMTP(t)
		e.clock.Advance(time.Minute)
		drain(t, newWorker(t, cfg(srv.addr, 10*time.Second)))
		if n := len(srv.messages()); n != entries {
			t.Errorf("%d e-mails delivered once the server answers, want %d", n, entries)
		}
		if n := conns.Load(); n > 1 {
			t.Errorf("the SMTP server that never answers was tried %d times, want at most once", n)
		}
		if n, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 0 {
			t.Errorf("dead letters = %d, %v; want none", n, err)
		}
	})
}
