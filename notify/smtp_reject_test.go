package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/notify"
)

// refusingSMTP answers MAIL FROM with mail and RCPT TO with rcpt, and
// everything else as a server that takes the message.
type refusingSMTP struct {
	addr       string
	mail, rcpt string
}

func startRefusingSMTP(t *testing.T, mail, rcpt string) *refusingSMTP {
	s := &refusingSMTP{mail: mail, rcpt: rcpt}
	s.addr = serveRawSMTP(t, s.serve)
	return s
}

func (s *refusingSMTP) serve(c *rawSMTP) {
	for {
		_, cmd, err := c.command()
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(cmd, "MAIL"):
			c.reply(s.mail)
		case strings.HasPrefix(cmd, "RCPT"):
			c.reply(s.rcpt)
		case strings.HasPrefix(cmd, "DATA"):
			c.reply("354 go ahead")
			if _, err := c.data(); err != nil {
				return
			}
			c.reply("250 2.0.0 queued")
		case strings.HasPrefix(cmd, "QUIT"):
			c.reply("221 bye")
			return
		default: // EHLO, RSET, NOOP
			c.reply("250 ok")
		}
	}
}

// A recipient the mail server refuses for good (5xx to RCPT TO: no such
// mailbox) is a permanent failure: the message goes to the dead-letter
// stream at once, as the runbook says, instead of being offered to the
// server sixteen times over two hours. A temporary refusal (4xx), and a
// permanent one of the sender (MAIL FROM), which concerns every message
// and is the operator's to fix, are retried; so is a permanent refusal at
// RCPT TO that is about the relay's policy (5.7.x: relaying denied,
// authentication required) rather than the recipient's address (5.1.x).
func TestSMTPRecipientRefused(t *testing.T) {
	cases := []struct {
		name       string
		mail, rcpt string
		dead       bool
	}{
		{"no such mailbox", "250 ok", "550 5.1.1 no such user", true},
		{"mailbox name not allowed", "250 ok", "553 5.1.3 bad recipient address syntax", true},
		{"mailbox busy", "250 ok", "450 4.2.1 mailbox busy, try later", false},
		{"sender refused", "550 5.7.1 sender not allowed to relay", "250 ok", false},
		{"no such mailbox, no enhanced code", "250 ok", "550 no such user here", true},
		{"mailbox disabled", "250 ok", "550 5.2.1 mailbox disabled", true},
		// A relay refuses at RCPT TO what concerns every message, not the
		// recipient: Lockbox not allowed to relay (Postfix, Sendmail),
		// authentication it must give first. Dead-lettering would drop
		// every notification, approvers' "awaits your decision" included,
		// until the operator fixes the relay: they are retried.
		{"relay access denied", "250 ok", "554 5.7.1 <mary@provider.example>: Relay access denied", false},
		{"relaying denied", "250 ok", "550 5.7.1 <mary@provider.example>... Relaying denied", false},
		{"authentication required", "250 ok", "530 5.7.0 Authentication required", false},
		{"transaction failed", "250 ok", "554 transaction failed", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.create(t, operator(0)) // request.created: one e-mail to the manager
			srv := startRefusingSMTP(t, tc.mail, tc.rcpt)
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
				ManagerAddresses: []string{"mary@provider.example"},
				SMTP:             &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 2 * time.Second}})
			ctx := context.Background()
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			depth, err := w.Depth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.dead {
				if len(dead) != 1 || dead[0].Values["attempts"] != "1" || depth != 0 {
					t.Errorf("after one attempt: dead letters %v, outbox depth %d; want the message dead-lettered after 1 attempt", dead, depth)
				}
				return
			}
			if len(dead) != 0 || depth != 1 {
				t.Errorf("after one attempt: dead letters %v, outbox depth %d; want the message kept for a retry", dead, depth)
			}
		})
	}
}
