package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestSMTPAuthOnlyAfterSTARTTLSIsAConfigurationFailure: a relay that
// offers AUTH only once the connection is encrypted (most submission
// servers) offers none to Lockbox told never to upgrade
// (LOCKBOX_SMTP_STARTTLS=none). No retry changes that until the setting
// does: like a relay refusing Lockbox's credentials, it is retried, but
// counted as refused and logged at error from the first attempt, naming
// the setting to change, not counted as an ordinary error for the two
// hours of the retries.
func TestSMTPAuthOnlyAfterSTARTTLSIsAConfigurationFailure(t *testing.T) {
	e := newEnv(t)
	e.create(t, operator(0)) // request.created: one e-mail to the manager
	srv := startSMTP(t)
	srv.stop()
	srv.session = func() smtp.Session { return &authSession{session: session{s: srv}} }
	srv.tls = selfSigned(t) // STARTTLS offered; AUTH only after it (insecureAuth false)
	srv.start()
	var logs logBuffer
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
		Registerer: reg, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		ManagerAddresses: []string{"mary@provider.example"},
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone,
			Username: "lockbox", Password: "pa55", Timeout: 10 * time.Second}})
	ctx := context.Background()
	if _, err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.messages()); n != 0 {
		t.Fatalf("%d messages sent without signing in", n)
	}
	if n, err := w.Depth(ctx); err != nil || n != 1 {
		t.Fatalf("outbox depth = %d, %v; want the message kept for a retry", n, err)
	}
	wantCountedAs(t, reg, "smtp", "refused", "error")
	lines := logs.lines(`"channel":"smtp"`)
	if len(lines) != 1 {
		t.Fatalf("SMTP failure logged %d times, want once: %v", len(lines), lines)
	}
	var rec struct{ Level, Err string }
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Level != "ERROR" || !strings.Contains(rec.Err, "LOCKBOX_SMTP_STARTTLS") {
		t.Errorf("logged at %s with %q; want ERROR naming LOCKBOX_SMTP_STARTTLS", rec.Level, rec.Err)
	}
}
