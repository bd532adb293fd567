package notify_test

import (
	"bufio"
	"context"
	"net"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &rsetFailingSMTP{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *rsetFailingSMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(l string) { _, _ = c.Write([]byte(l + "\r\n")) }
	reply("220 localhost ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "DATA"):
			reply("354 go ahead")
			mid := ""
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(strings.ToLower(l), "message-id:") {
					mid = strings.TrimSpace(l[len("message-id:"):])
				}
				if l == ".\r\n" {
					break
				}
			}
			s.mu.Lock()
			s.accepted = append(s.accepted, mid)
			s.mu.Unlock()
			reply("250 2.0.0 queued as 1234")
		case strings.HasPrefix(cmd, "RSET"):
			reply("421 4.3.2 closing connection")
			return
		case strings.HasPrefix(cmd, "QUIT"):
			reply("221 bye")
			return
		default: // EHLO, MAIL, RCPT
			reply("250 ok")
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
