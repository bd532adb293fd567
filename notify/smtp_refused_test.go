package notify_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/notify"
)

// strictAuthSession refuses credentials other than lockbox/pa55 as
// servers do, for good: 535 5.7.8.
type strictAuthSession struct{ authSession }

func (a *strictAuthSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "lockbox" || pass != "pa55" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		a.authed = true
		return nil
	}), nil
}

// TestSMTPRefusalShowsAtOnce: a permanent refusal (5xx) that is not the
// recipient's (relaying denied, authentication required or failed, the
// sender refused) concerns every message and is the operator's to fix. It
// is retried, as a fixed relay then delivers everything, but the first
// attempt already says so at error level and counts it as refused, rather
// than only when the message is dead-lettered hours later. A temporary
// refusal (4xx) is an outage: logged at warn, counted as an error.
func TestSMTPRefusalShowsAtOnce(t *testing.T) {
	cases := []struct {
		name       string
		mail, rcpt string
		// password is what Lockbox signs in with; the server takes
		// "pa55". Empty: no AUTH, and the refusing server above.
		password string
		refused  bool
	}{
		{name: "sender refused", mail: "550 5.7.1 sender not allowed to relay", rcpt: "250 ok", refused: true},
		{name: "relay access denied", mail: "250 ok", rcpt: "554 5.7.1 <mary@provider.example>: Relay access denied", refused: true},
		{name: "authentication required", mail: "250 ok", rcpt: "530 5.7.0 Authentication required", refused: true},
		{name: "wrong password", password: "wrong", refused: true},
		{name: "mailbox busy", mail: "250 ok", rcpt: "450 4.2.1 mailbox busy, try later"},
		{name: "server busy", mail: "421 4.3.2 too busy, try later", rcpt: "250 ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.create(t, operator(0)) // request.created: one e-mail to the manager
			cfg := &notify.SMTPConfig{From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 10 * time.Second}
			if tc.password == "" {
				cfg.Addr = startRefusingSMTP(t, tc.mail, tc.rcpt).addr
			} else {
				srv := startSMTP(t)
				srv.stop()
				srv.session = func() smtp.Session { return &strictAuthSession{authSession{session: session{s: srv}}} }
				srv.insecureAuth = true
				srv.start()
				cfg.Addr, cfg.Username, cfg.Password = srv.addr, "lockbox", tc.password
			}
			var logs logBuffer
			reg := prometheus.NewRegistry()
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
				Registerer: reg, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
				ManagerAddresses: []string{"mary@provider.example"}, SMTP: cfg})
			ctx := context.Background()
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			wantKeptForRetry(t, e, w, "message")
			levels := logLevels(t, &logs, "smtp")
			wantLevel, wantResult, otherResult := "WARN", "error", "refused"
			if tc.refused {
				wantLevel, wantResult, otherResult = "ERROR", "refused", "error"
			}
			if len(levels) != 1 || levels[0] != wantLevel {
				t.Errorf("SMTP failure logged at %v, want once at %s", levels, wantLevel)
			}
			wantCountedAs(t, reg, "smtp", wantResult, otherResult)
		})
	}
}
