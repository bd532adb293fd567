package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/notify"
)

// rsetFailingSMTP accepts every message (250 after DATA) and then answers
// RSET with 421 and hangs up, as a server shedding load does. It is raw
// TCP because a real server library answers RSET properly.
type rsetFailingSMTP struct {
	addr     string
	mu       sync.Mutex
	accepted []string // the Message-ID of every message it accepted
}

func startRsetFailingSMTP(t *testing.T) *rsetFailingSMTP {
	s := &rsetFailingSMTP{}
	s.addr = serveRawSMTP(t, s.serve)
	return s
}

func (s *rsetFailingSMTP) serve(c *rawSMTP) {
	for {
		_, cmd, err := c.command()
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(cmd, "DATA"):
			c.reply("354 go ahead")
			lines, err := c.data()
			if err != nil {
				return
			}
			mid := ""
			for _, l := range lines {
				if strings.HasPrefix(strings.ToLower(l), "message-id:") {
					mid = strings.TrimSpace(l[len("message-id:"):])
				}
			}
			s.mu.Lock()
			s.accepted = append(s.accepted, mid)
			s.mu.Unlock()
			c.reply("250 2.0.0 queued as 1234")
		case strings.HasPrefix(cmd, "RSET"):
			c.reply("421 4.3.2 closing connection")
			return
		case strings.HasPrefix(cmd, "QUIT"):
			c.reply("221 bye")
			return
		default: // EHLO, MAIL, RCPT
			c.reply("250 ok")
		}
	}
}

// A server that accepted a message and then fails the RSET after it has
// the message: the send counts as done, so it is neither sent again nor
// dead-lettered.
func TestSMTPErrorAfterAcceptanceIsDelivery(t *testing.T) {
	e := newEnv(t)
	e.create(t, operator(0)) // request.created: one e-mail to the manager
	srv := startRsetFailingSMTP(t)
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 4,
		ManagerAddresses: []string{"mary@provider.example"},
		SMTP:             &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 2 * time.Second}})
	ctx := context.Background()
	for range 4 {
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.accepted) != 1 {
		t.Errorf("the manager's e-mail was accepted %d times %v, want once", len(srv.accepted), srv.accepted)
	}
	if n, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("dead-lettered entries = %d, %v; want none", n, err)
	}
	if n, err := w.Depth(ctx); err != nil || n != 0 {
		t.Errorf("outbox depth = %d, %v; want 0 (delivered)", n, err)
	}
}
