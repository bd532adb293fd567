package notify_test

import (
	"context"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// losingSMTP is a mail server that takes every message and keeps it, but
// closes the connection instead of answering the first message to lose,
// once it has all of it: the answer is lost.
type losingSMTP struct {
	addr string
	mu   sync.Mutex
	lose string
	// got holds each message taken: its recipient and subject.
	got [][2]string
}

func startLosingSMTP(t *testing.T, lose string) *losingSMTP {
	s := &losingSMTP{lose: lose}
	s.addr = serveRawSMTP(t, s.serve)
	return s
}

func (s *losingSMTP) serve(c *rawSMTP) {
	to := ""
	for {
		line, cmd, err := c.command()
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(cmd, "RCPT"):
			to = strings.Trim(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]), "<>")
			c.reply("250 ok")
		case strings.HasPrefix(cmd, "DATA"):
			c.reply("354 go ahead")
			lines, err := c.data()
			if err != nil {
				return
			}
			subject := ""
			if m, err := mail.ReadMessage(strings.NewReader(strings.Join(lines, ""))); err == nil {
				subject = m.Header.Get("Subject")
			}
			s.mu.Lock()
			s.got = append(s.got, [2]string{to, subject})
			lost := to == s.lose
			if lost {
				s.lose = ""
			}
			s.mu.Unlock()
			if lost {
				return // taken, and the answer lost
			}
			c.reply("250 2.0.0 queued")
		case strings.HasPrefix(cmd, "QUIT"):
			c.reply("221 bye")
			return
		default: // EHLO, MAIL, RSET, NOOP
			c.reply("250 ok")
		}
	}
}

// subjects returns the subjects of the messages to addr, in order.
func (s *losingSMTP) subjects(addr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.got {
		if m[0] == addr {
			out = append(out, m[1])
		}
	}
	return out
}

// TestNoLongerPendingFollowsAnAskWhoseAnswerWasLost: the mail server took
// the ask to eve, but its answer never reached Lockbox (the connection
// broke after the message). Whether she got it can't be known, and the
// ask was recorded as not sent: the request's cancellation, delivered
// before the ask's retry (which then finds it stale), passed her by, and
// she was left asked to decide a request that no longer needs her. The
// ask is now taken as possibly sent, as delivery is at least once: the
// withdrawal follows it once its lease ends.
func TestNoLongerPendingFollowsAnAskWhoseAnswerWasLost(t *testing.T) {
	const eve = "eve@contoso.example"
	e := newEnv(t)
	ctx := context.Background()
	srv := startLosingSMTP(t, eve)
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone}})
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	if _, err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.subjects(eve); len(got) != 1 || !strings.Contains(got[0], "awaits your decision") {
		t.Fatalf("eve got %q; want the ask, whose answer was lost", got)
	}
	e.clock.Advance(time.Second)
	e.act(t, r.ID, grants.ActionCancel, operator(0))
	if n, err := drainWithTime(t, e, w); err != nil || n != 0 {
		t.Fatalf("outbox depth = %d, %v; want it drained", n, err)
	}
	for _, addr := range tenantAudience {
		got := srv.subjects(addr)
		if len(got) != 2 || !strings.Contains(got[0], "awaits your decision") || !strings.Contains(got[1], "no longer needs your decision") {
			t.Errorf("%s got %q; want the ask, then the withdrawal", addr, got)
		}
	}
}
