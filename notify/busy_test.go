package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// busyMailbox holds the ask to one recipient (slow) until released, as a
// slow mail server does, turns away for now every withdrawal to another
// (refuse), and turns away the first slowFails withdrawals to slow
// (every one when slowFails is negative).
type busyMailbox struct {
	mailbox
	*askGate
	refuse    string
	slowFails int
	rmu       sync.Mutex
	refused   map[string]int
}

const withdrawal = "no longer needs your decision"

func (m *busyMailbox) Send(ctx context.Context, id string, msg notify.Message) error {
	if err := m.hold(ctx, msg); err != nil {
		return err
	}
	if strings.Contains(msg.Subject, withdrawal) {
		m.rmu.Lock()
		turn := msg.To == m.refuse || msg.To == m.slow && (m.slowFails < 0 || m.refused[m.slow] < m.slowFails)
		if turn {
			m.refused[msg.To]++
		}
		m.rmu.Unlock()
		if turn {
			return errors.New("450 4.2.1 mailbox busy, try later")
		}
	}
	return m.mailbox.Send(ctx, id, msg)
}

func (m *busyMailbox) refusals(to string) int {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	return m.refused[to]
}

// TestBusyRecipientGetsEveryAttempt: a recipient that the withdrawal ("no
// longer needs your decision") waited for during all of the entry's
// attempts (replica a was sending her the ask meanwhile, while adam's
// mailbox failed every one of them) gets as many attempts as any other
// recipient, and no more. She was dead-lettered after her first failure:
// attempts were counted per entry, and the entry's were used up by adam.
func TestBusyRecipientGetsEveryAttempt(t *testing.T) {
	const (
		eve   = "eve@contoso.example"
		adam  = "adam@contoso.example"
		tries = 3
	)
	for _, c := range []struct {
		name string
		// fails is how many withdrawals eve's mailbox turns away, -1 all.
		fails int
		// delivered: eve gets the withdrawal in the end.
		delivered bool
		// refused is how many times her mailbox turns it away.
		refused int
		dead    []string
	}{
		{"delivered at the last attempt", tries - 1, true, tries - 1, []string{"mail:" + adam}},
		{"dead after every attempt", -1, false, tries, []string{"mail:" + adam, "mail:" + eve}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			mb := &busyMailbox{askGate: newAskGate(t, eve), refuse: adam, slowFails: c.fails, refused: map[string]int{}}
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			a := newWorker(t, notify.WithMailer(notify.Config{Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: "a", MaxAttempts: tries}, mb))
			b := newWorker(t, notify.WithMailer(notify.Config{Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: "b", MaxAttempts: tries}, mb))
			aRound := startRound(t, a, mb.entered, "before sending eve the ask", "sent eve the ask")
			e.clock.Advance(time.Second)
			e.act(t, r.ID, grants.ActionCancel, operator(0))
			// Replica b makes every attempt of the withdrawal while eve's
			// ask is being sent: adam's mailbox turns each away.
			for i := 0; mb.refusals(adam) < tries; i++ {
				if i == 20 {
					t.Fatalf("adam's mailbox turned the withdrawal away %d times in %d rounds; want %d", mb.refusals(adam), i, tries)
				}
				e.clock.Advance(time.Second)
				if _, err := b.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n := mb.refusals(eve); n != 0 {
				t.Fatalf("the withdrawal was sent to eve %d times while her ask was being sent", n)
			}
			mb.release()
			aRound.end(t)
			if n, err := settle(t, e, a, b, a); err != nil || n != 0 {
				t.Fatalf("outbox depth = %d, %v; want it drained", n, err)
			}
			if n := mb.refusals(eve); n != c.refused {
				t.Errorf("eve's mailbox turned the withdrawal away %d times; want %d", n, c.refused)
			}
			if n := mb.refusals(adam); n != tries {
				t.Errorf("adam's mailbox turned the withdrawal away %d times; want %d", n, tries)
			}
			got := 0
			for _, m := range mb.to(eve) {
				if strings.Contains(m.Subject, withdrawal) {
					got++
				}
			}
			if want := map[bool]int{true: 1}[c.delivered]; got != want {
				t.Errorf("eve got the withdrawal %d times; want %d", got, want)
			}
			dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, d := range dead {
				names = append(names, d.Values["recipients"].(string))
				if d.Values["attempts"] != strconv.Itoa(tries) {
					t.Errorf("dead letter for %s after %s attempts; want %d", d.Values["recipients"], d.Values["attempts"], tries)
				}
			}
			if !slices.Equal(names, c.dead) {
				t.Errorf("dead letters for %q; want %q", names, c.dead)
			}
		})
	}
}

// hangingMailbox fails for now every message to one recipient (busy) and
// answers those of one request to another (slow) as a server that never
// answers does.
type hangingMailbox struct {
	mailbox
	busy, slow, request string
}

func (m *hangingMailbox) Send(ctx context.Context, id string, msg notify.Message) error {
	switch {
	case msg.To == m.slow && strings.Contains(msg.Body, m.request):
		return fmt.Errorf("smtp: %w", context.DeadlineExceeded)
	case msg.To == m.busy:
		return errors.New("450 4.2.1 mailbox busy, try later")
	}
	return m.mailbox.Send(ctx, id, msg)
}

// TestTimedOutRoundsSpareDeliveredRecipients: a round in which the mail
// server did not answer (another message's send timed out) passes by the
// recipients a message already reached, as the other rounds do. They were
// counted as failed in it, and named in the message's dead letter, though
// their e-mail went out.
func TestTimedOutRoundsSpareDeliveredRecipients(t *testing.T) {
	const (
		eve   = "eve@contoso.example"
		zed   = "zed@contoso.example"
		tries = 3
	)
	e := newEnv(t)
	ctx := context.Background()
	first := e.create(t, operator(0))
	e.act(t, first.ID, grants.ActionApprove, manager)
	second := e.create(t, operator(1))
	e.act(t, second.ID, grants.ActionApprove, manager)
	// Eve's mailbox keeps the second request's ask waiting for its retries.
	mb := &hangingMailbox{busy: eve, slow: zed, request: first.ID}
	w, err := notify.NewWorker(notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: tries,
		Registerer: prometheus.NewRegistry(), Backoff: func(int) time.Duration { return time.Minute }}, mb))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i == 20 {
			t.Fatal("the outbox never drained")
		}
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := w.Depth(ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
		if i == 0 {
			// Zed, assigned after the first round, is a new recipient of
			// the first request's ask, and the server never answers it:
			// every later round, the rest of its mail waits for the next.
			if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", zed); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(time.Minute)
	}
	if len(mb.to(eve)) != 0 || len(mb.to(zed)) != 0 {
		t.Fatalf("eve got %d e-mails and zed %d; want none", len(mb.to(eve)), len(mb.to(zed)))
	}
	dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, d := range dead {
		var ev notify.Event
		if err := json.Unmarshal([]byte(d.Values["event"].(string)), &ev); err != nil {
			t.Fatal(err)
		}
		for _, n := range strings.Split(d.Values["recipients"].(string), ",") {
			if n == "mail:"+eve || n == "mail:"+zed {
				failed = append(failed, ev.Request.ID+" "+n)
			}
			for _, m := range mb.to(strings.TrimPrefix(n, "mail:")) {
				if strings.Contains(m.Body, ev.Request.ID) {
					t.Errorf("dead letter of request %s names %s, whose e-mail went out", ev.Request.ID, n)
				}
			}
		}
	}
	// Each request's ask failed for eve, and for zed: the first's timed
	// out, and the rounds it did were over before the second's was sent.
	slices.Sort(failed)
	want := []string{first.ID + " mail:" + eve, first.ID + " mail:" + zed, second.ID + " mail:" + eve, second.ID + " mail:" + zed}
	slices.Sort(want)
	if !slices.Equal(failed, want) {
		t.Errorf("dead letters for eve and zed: %q; want %q", failed, want)
	}
}
