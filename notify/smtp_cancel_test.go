package notify_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestSMTPSendEndsWithItsContext: a mail server that stops answering in
// the middle of a conversation holds a send only as long as its context.
// The mail library honours the context while it dials alone, then only
// its own per-command timeouts; a replica stopping (its jobs' context
// canceled) waited for them before it stopped serving, past a
// Kubernetes grace period, and a send outlived the worker's bound on it
// (half the recipient's lease). The send now ends when its context does,
// and says so.
func TestSMTPSendEndsWithItsContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	greeted := make(chan struct{})
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "220 relay.example ESMTP\r\n")
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil { // EHLO, never answered
			return
		}
		close(greeted)
		_, _ = io.Copy(io.Discard, r) // until the client goes
	}()
	// Each command may take this long before the library gives up on it:
	// long enough that only the context can end the send first.
	cfg := notify.SMTPConfig{Addr: l.Addr().String(), From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 5 * time.Second}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-greeted
		cancel()
	}()
	err = notify.NewSMTP(cfg).Send(ctx, "1-0.0123456789abcdef", pendingMessage(t, "repair"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v; want it ended by its context (context.Canceled)", err)
	}
}
