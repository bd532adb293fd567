package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// lastAttemptMailbox holds the ask to one recipient until released, as a
// slow mail server does, and turns away for now (a busy mailbox) every
// withdrawal to another.
type lastAttemptMailbox struct {
	mailbox
	*askGate
	refuse  string
	rmu     sync.Mutex
	refused int
}

func (m *lastAttemptMailbox) Send(ctx context.Context, id string, msg notify.Message) error {
	if err := m.hold(ctx, msg); err != nil {
		return err
	}
	if msg.To == m.refuse && strings.Contains(msg.Subject, "no longer needs your decision") {
		m.rmu.Lock()
		m.refused++
		m.rmu.Unlock()
		return errors.New("450 4.2.1 mailbox busy, try later")
	}
	return m.mailbox.Send(ctx, id, msg)
}

func (m *lastAttemptMailbox) refusals() int {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	return m.refused
}

// TestLastAttemptLeavesNoRecipientBehind: a withdrawal ("no longer needs
// your decision") whose last attempt fails for one recipient while it
// waits, for another, for the ask being sent to her (replica a is sending
// eve the ask when the request is canceled) dead-letters the recipient
// that failed and stays for the one it waited for. It was dead-lettered
// and deleted whole, naming only the recipient that failed: eve, whose ask
// then went out, never heard that the request no longer needs her
// decision, and no dead letter, metric or log said so.
func TestLastAttemptLeavesNoRecipientBehind(t *testing.T) {
	const (
		eve  = "eve@contoso.example"
		adam = "adam@contoso.example"
	)
	e := newEnv(t)
	ctx := context.Background()
	mb := &lastAttemptMailbox{askGate: newAskGate(t, eve), refuse: adam}
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	a := newWorker(t, notify.WithMailer(notify.Config{Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: "a"}, mb))
	reg := prometheus.NewRegistry()
	logs := &logBuffer{}
	b := newWorker(t, notify.WithMailer(notify.Config{Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: "b",
		MaxAttempts: 1, Registerer: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil))}, mb))
	aRound := startRound(t, a, mb.entered, "before sending eve the ask", "sent eve the ask")
	e.clock.Advance(time.Second)
	e.act(t, r.ID, grants.ActionCancel, operator(0))
	// Replica b makes the withdrawal's one attempt: adam's mailbox turns
	// it away, and eve's waits for her ask.
	if _, err := b.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := mb.refusals(); n != 1 {
		t.Fatalf("adam's mailbox turned the withdrawal away %d times; want replica b's one attempt", n)
	}
	mb.release()
	aRound.end(t)
	if n, err := settle(t, e, a, b, a); err != nil || n != 0 {
		t.Fatalf("outbox depth = %d, %v; want it drained", n, err)
	}
	var got []string
	for _, m := range mb.to(eve) {
		got = append(got, m.Subject)
	}
	if len(got) != 2 || !strings.Contains(got[0], "awaits your decision") || !strings.Contains(got[1], "no longer needs your decision") {
		t.Errorf("eve got %q; want the ask, then the withdrawal", got)
	}
	dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dead {
		names = append(names, d.Values["recipients"].(string))
	}
	if !slices.Equal(names, []string{"mail:" + adam}) {
		t.Errorf("dead letters for %q; want one, for adam", names)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "dev", "dead")); got != 1 {
		t.Errorf(`sent_total{dev,dead} = %v, want 1`, got)
	}
	if lines := logs.lines("notification dead-lettered"); len(lines) != 1 || !strings.Contains(lines[0], adam) {
		t.Errorf("dead letters logged: %q; want adam's, once", lines)
	}
}

// refusingMailbox turns away for now (a busy mailbox) every message to one
// recipient whose subject holds a given text.
type refusingMailbox struct {
	mailbox
	refuse, subject string
}

func (m *refusingMailbox) Send(ctx context.Context, id string, msg notify.Message) error {
	if msg.To == m.refuse && strings.Contains(msg.Subject, m.subject) {
		return errors.New("450 4.2.1 mailbox busy, try later")
	}
	return m.mailbox.Send(ctx, id, msg)
}

// TestFollowUpsExhaustingRetriesAreDeadLetters: what follows a request's
// ask at the tenant ("no longer needs your decision", "already decided",
// "access ended early"), failing every attempt for a recipient the ask
// reached, ends where an ask that fails every attempt does: in the
// tenant's dead-letter stream naming the recipient, counted as
// lockbox_notifications_sent_total{result="dead"} and logged at error.
func TestFollowUpsExhaustingRetriesAreDeadLetters(t *testing.T) {
	const eve = "eve@contoso.example"
	for _, c := range []struct {
		name, subject string
		// follow moves the request on from pending_customer; nil leaves it
		// there (the ask itself fails).
		follow func(t *testing.T, e *env, id string)
	}{
		{"the ask", "awaits your decision", nil},
		{"canceled", "no longer needs your decision", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionCancel, operator(0))
		}},
		{"already decided", "already approved by", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, adam)
		}},
		{"access ended early", "access ended early", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, adam)
			e.clock.Advance(time.Minute)
			e.act(t, id, grants.ActionRevoke, manager)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			mb := &refusingMailbox{refuse: eve, subject: c.subject}
			reg := prometheus.NewRegistry()
			logs := &logBuffer{}
			w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
				MaxAttempts: 3, Registerer: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil))}, mb))
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			drain(t, w)
			if c.follow != nil {
				if n := len(mb.to(eve)); n != 1 {
					t.Fatalf("eve got %d messages; want the ask", n)
				}
				e.clock.Advance(time.Minute)
				c.follow(t, e, r.ID)
				drain(t, w)
			}
			for _, m := range mb.to(eve) {
				if strings.Contains(m.Subject, c.subject) {
					t.Fatalf("eve got %q, though her mailbox turned it away", m.Subject)
				}
			}
			dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 1 || dead[0].Values["recipients"] != "mail:"+eve || dead[0].Values["attempts"] != "3" {
				t.Fatalf("dead letters %v; want one, for eve after 3 attempts", dead)
			}
			var ev notify.Event
			if err := json.Unmarshal([]byte(dead[0].Values["event"].(string)), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Request.ID != r.ID {
				t.Errorf("dead letter of request %s, want %s", ev.Request.ID, r.ID)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "dev", "dead")); got != 1 {
				t.Errorf(`sent_total{dev,dead} = %v, want 1`, got)
			}
			if lines := logs.lines("notification dead-lettered"); len(lines) != 1 || !strings.Contains(lines[0], eve) || !strings.Contains(lines[0], `"level":"ERROR"`) {
				t.Errorf("dead letters logged: %q; want eve's, once, at error", lines)
			}
		})
	}
}
