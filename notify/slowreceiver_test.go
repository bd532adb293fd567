package notify_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestSlowFailingReceiverWaitedForOncePerRound: a webhook receiver that
// fails every delivery slowly, answering 502 just before the client's
// timeout (a receiver whose own upstream is down behind a proxy, or a
// hostile one), cost the round nearly its whole timeout once per entry:
// the "waited for once a round" rule (TestUnansweringReceiverWaitedForOnce
// PerRound) applied only when the client's timeout fired. It now applies
// to a failure after half the timeout too, for e-mail as for webhooks. Every e-mail of
// the tenant's later entries (the approvers' "awaits your decision", the
// managers' new requests) and every other tenant's waits behind it; with
// the defaults (10s timeout, 100 entries a tenant and round) a round
// spends about 16 minutes per tenant on it, for each of the 16 attempts.
func TestSlowFailingReceiverWaitedForOncePerRound(t *testing.T) {
	const entries = 5
	const timeout = time.Second
	const answerAfter = 800 * time.Millisecond // 80% of the timeout
	e := newEnv(t)
	for i := range entries {
		e.create(t, operator(i)) // request.created: an e-mail to the manager, a webhook delivery
	}
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(answerAfter):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(hook.Close)
	mb := &mailbox{}
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
		ManagerAddresses: []string{"mary@provider.example"},
		Webhooks:         []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k"), Timeout: timeout}},
	}, mb))
	start := time.Now()
	if _, err := w.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if n := len(mb.to("mary@provider.example")); n != entries {
		t.Fatalf("the manager got %d e-mails in the round, want %d", n, entries)
	}
	// A receiver that already failed this round after most of its
	// timeout should be waited for once, as one that timed out is.
	if n := calls.Load(); n > 1 || took > 2*timeout {
		t.Errorf("a receiver failing after %s (timeout %s) was called %d times in one round, which took %s: "+
			"every later e-mail waited behind it; want it waited for once a round, as a timed-out one is",
			answerAfter, timeout, n, took.Round(100*time.Millisecond))
	}
}

// slowMailer fails every message after took, with a timeout of its own.
type slowMailer struct {
	took, timeout time.Duration
	calls         atomic.Int32
}

func (m *slowMailer) Name() string           { return "smtp" }
func (m *slowMailer) Timeout() time.Duration { return m.timeout }
func (m *slowMailer) Send(ctx context.Context, _ string, _ notify.Message) error {
	m.calls.Add(1)
	select {
	case <-time.After(m.took):
	case <-ctx.Done():
	}
	return errors.New("451 4.3.0 upstream relay down")
}

func TestSlowFailingMailServerWaitedForOncePerRound(t *testing.T) {
	const entries = 4
	e := newEnv(t)
	for i := range entries {
		e.create(t, operator(i))
	}
	for _, tt := range []struct {
		took  time.Duration
		calls int32
	}{
		{60 * time.Millisecond, 1},       // past half its timeout: left for the round
		{10 * time.Millisecond, entries}, // a quick refusal: each message tries
	} {
		mb := &slowMailer{took: tt.took, timeout: 100 * time.Millisecond}
		w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
			ManagerAddresses: []string{"mary@provider.example"}}, mb))
		if _, err := w.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := mb.calls.Load(); n != tt.calls {
			t.Errorf("a mail server failing after %s (timeout %s) was called %d times in one round of %d e-mails, want %d",
				tt.took, mb.timeout, n, entries, tt.calls)
		}
		e.clock.Advance(time.Hour) // every entry due again
	}
}
