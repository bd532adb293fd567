package notify_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestSendCutByStoppingReplicaIsNoFailure: a replica told to stop
// (SIGTERM ends its jobs' context) cuts the send under way. That is no
// failure of the receiver's: nothing is logged as undelivered nor counted
// as an error, as every rolling restart would otherwise show, and no
// attempt is spent. The message stays pending and the replica that takes
// it over delivers it.
func TestSendCutByStoppingReplicaIsNoFailure(t *testing.T) {
	const mary = "mary@provider.example"
	e := newEnv(t)
	ctx := context.Background()
	logs := &logBuffer{}
	regA := prometheus.NewRegistry()
	mb := &downMailbox{}
	stopping, stop := context.WithCancel(ctx)
	defer stop()
	am := &stopOnce{downMailbox: mb, to: mary, cancel: stop}
	am.armed.Store(true)
	worker := func(name string, reg *prometheus.Registry, m notify.Mailer) *notify.Worker {
		return newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: name, Registerer: reg,
			MaxAttempts: 1, ManagerAddresses: []string{mary}, Logger: slog.New(slog.NewJSONHandler(logs, nil))}, m))
	}
	a, b := worker("a", regA, am), worker("b", prometheus.NewRegistry(), mb)
	e.create(t, operator(0)) // request.created: the manager's e-mail
	if _, err := a.Tick(stopping); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(mustCounter(t, regA, "dev", "error")); got != 0 {
		t.Errorf("replica a counted %v failed deliveries for the send its stop cut", got)
	}
	if lines := logs.lines("notification not delivered"); len(lines) != 0 {
		t.Errorf("replica a logged the send its stop cut as undelivered: %q", lines)
	}
	if n, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("%d dead letters, %v: the cut send spent the message's one attempt", n, err)
	}
	idleAtA(t, e, oneEntry(t, e))
	e.clock.Advance(time.Minute)
	if depth, err := drainWithTime(t, e, b); err != nil || depth != 0 {
		t.Fatalf("depth = %d, %v; want the message delivered by replica b", depth, err)
	}
	if n := len(mb.to(mary)); n != 1 {
		t.Errorf("the manager got %d e-mails, want 1", n)
	}
}
