package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// holdingMailbox turns away (a busy mailbox) every message to one
// recipient whose subject holds a given text, until let go.
type holdingMailbox struct {
	mailbox
	refuse, subject string
	hmu             sync.Mutex
	held            bool
}

func (m *holdingMailbox) Send(ctx context.Context, id string, msg notify.Message) error {
	m.hmu.Lock()
	held := m.held
	m.hmu.Unlock()
	if held && msg.To == m.refuse && strings.Contains(msg.Subject, m.subject) {
		return errorString("450 4.2.1 mailbox busy, try later")
	}
	return m.mailbox.Send(ctx, id, msg)
}

func (m *holdingMailbox) letGo() {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	m.held = false
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestNewsOfARequestIsNotHeldUpByAnEarlierRetry pins the order README.md
// promises, and the one it does not. A request's news after its ask goes
// to a tenant recipient only once the ask reached them; beyond that, a
// message waiting for its retry holds up none of the later ones, even
// those of the same request to the same recipient. So eve, whose mailbox
// turned away "already approved", hears that the access ended early
// first, and the engineer, whose mailbox turned away the approval, that it
// was revoked first; each message says when its event happened, which
// tells the order.
func TestNewsOfARequestIsNotHeldUpByAnEarlierRetry(t *testing.T) {
	for _, c := range []struct {
		name, to, held, later string
		// first is what goes out before the rest of the request's news.
		first string
	}{
		{"a tenant approver", "eve@contoso.example", "already approved by", "access ended early", "awaits your decision"},
		{"the engineer", "alice0@provider.example", " was approved (", " was revoked (", "awaits the tenant's approvers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			mb := &holdingMailbox{refuse: c.to, subject: c.held, held: true}
			w, err := notify.NewWorker(notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
				Registerer: prometheus.NewRegistry(), Backoff: func(int) time.Duration { return time.Hour }}, mb))
			if err != nil {
				t.Fatal(err)
			}
			tick := func() {
				t.Helper()
				if _, err := w.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			tick()
			e.clock.Advance(time.Minute)
			e.act(t, r.ID, grants.ActionApprove, adam) // 09:01
			tick()                                     // turned away: retried in an hour
			e.clock.Advance(10 * time.Minute)
			e.act(t, r.ID, grants.ActionRevoke, manager) // 09:11
			tick()
			mb.letGo()
			e.clock.Advance(time.Hour)
			drain(t, w)
			got := mb.to(c.to)
			var subjects []string
			for _, m := range got {
				subjects = append(subjects, m.Subject)
			}
			if len(got) != 3 || !strings.Contains(got[0].Subject, c.first) ||
				!strings.Contains(got[1].Subject, c.later) || !strings.Contains(got[2].Subject, c.held) {
				t.Fatalf("%s got %q; want %q, then %q while %q waits for its retry", c.to, subjects, c.first, c.later, c.held)
			}
			if !strings.Contains(got[1].Body, "2026-11-23 09:11 UTC") || !strings.Contains(got[2].Body, "2026-11-23 09:01 UTC") {
				t.Errorf("the messages do not say when their events happened:\n%s\n---\n%s", got[1].Body, got[2].Body)
			}
		})
	}
}
