package notify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

func kinds(evs []notify.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, string(e.Kind))
	}
	return strings.Join(s, ",")
}

// TestEventsFor: every history event that changes who knows what queues
// exactly one entry, named for the state it reached.
func TestEventsFor(t *testing.T) {
	ev := func(a grants.Action, kind grants.ActorKind, from, to grants.State) grants.Event {
		return grants.Event{Action: a, ActorKind: kind, From: from, To: to, At: t0}
	}
	create := ev(grants.ActionCreate, grants.KindProvider, "", grants.StatePendingManager)
	created := grants.Request{History: []grants.Event{create}}
	for _, c := range []struct {
		name string
		add  grants.Event
		want string
	}{
		{"manager approves, lockbox on", ev(grants.ActionApprove, grants.KindProvider, grants.StatePendingManager, grants.StatePendingCustomer), "request.pending_customer"},
		{"manager approves, lockbox off", ev(grants.ActionApprove, grants.KindProvider, grants.StatePendingManager, grants.StateApproved), "request.approved"},
		{"manager denies", ev(grants.ActionDeny, grants.KindProvider, grants.StatePendingManager, grants.StateDenied), "request.denied"},
		{"tenant approves", ev(grants.ActionApprove, grants.KindTenant, grants.StatePendingCustomer, grants.StateApproved), "request.approved"},
		{"tenant denies", ev(grants.ActionDeny, grants.KindTenant, grants.StatePendingCustomer, grants.StateDenied), "request.denied"},
		{"expires", ev(grants.ActionExpire, grants.KindSystem, grants.StatePendingCustomer, grants.StateExpired), "request.expired"},
		{"completes", ev(grants.ActionComplete, grants.KindSystem, grants.StateApproved, grants.StateCompleted), "request.completed"},
		{"revoked", ev(grants.ActionRevoke, grants.KindTenant, grants.StateApproved, grants.StateRevoked), "request.revoked"},
		{"canceled by the requester", ev(grants.ActionCancel, grants.KindProvider, grants.StatePendingManager, grants.StateCanceled), "request.canceled"},
	} {
		next := created
		next.History = append(append([]grants.Event(nil), created.History...), c.add)
		if got := kinds(notify.EventsFor(created, next)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if got := kinds(notify.EventsFor(grants.Request{}, created)); got != "request.created" {
		t.Errorf("create: %q", got)
	}
	if got := kinds(notify.EventsFor(created, created)); got != "" {
		t.Errorf("idempotent retry: %q", got)
	}
	// A transition that settles first (expiry) and then acts queues both.
	both := created
	both.History = append(append([]grants.Event(nil), created.History...),
		ev(grants.ActionApprove, grants.KindProvider, grants.StatePendingManager, grants.StateApproved),
		ev(grants.ActionComplete, grants.KindSystem, grants.StateApproved, grants.StateCompleted))
	if got := kinds(notify.EventsFor(created, both)); got != "request.approved,request.completed" {
		t.Errorf("two events: %q", got)
	}
}

func TestOutboxDepthGauge(t *testing.T) {
	e := newEnv(t)
	e.lifecycle(t, 0, nil)
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP lockbox_notifications_outbox_depth Notification events waiting in the outbox, read from Redis at scrape time (-1 when Redis can't be read).
# TYPE lockbox_notifications_outbox_depth gauge
lockbox_notifications_outbox_depth 4
`), "lockbox_notifications_outbox_depth"); err != nil {
		t.Fatal(err)
	}
	// ok, error, dead and deleted of each channel, refused of smtp and
	// webhooks, and skipped of the e-mail channels.
	if n, _ := testutil.GatherAndCount(reg, "lockbox_notifications_sent_total"); n != 16 {
		t.Errorf("pre-initialised series = %d, want 16", n)
	}
	drain(t, w)
	if v, _ := w.Depth(context.Background()); v != 0 {
		t.Errorf("depth after drain = %d", v)
	}
}
