package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/notify"
)

// asciiOnlySession refuses a recipient outside ASCII at RCPT TO as a
// server without SMTPUTF8 does, with reply, and counts the recipients it
// was offered.
type asciiOnlySession struct {
	session
	reply   *smtp.SMTPError
	mu      *sync.Mutex
	offered map[string]int
}

func (a *asciiOnlySession) Rcpt(to string, o *smtp.RcptOptions) error {
	a.mu.Lock()
	a.offered[to]++
	a.mu.Unlock()
	if strings.ContainsFunc(to, func(r rune) bool { return r > 0x7f }) {
		return a.reply
	}
	return a.session.Rcpt(to, o)
}

// storeNotificationAddresses writes the tenant's notification addresses
// straight into its stored settings, as a release that did not check them
// for ASCII kept them: tenants.Store refuses such an address now.
func storeNotificationAddresses(t *testing.T, e *env, addrs ...string) {
	t.Helper()
	ctx := context.Background()
	b, err := e.rdb.Get(ctx, keys.Settings("contoso")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	v["notification_addresses"] = addrs
	if b, err = json.Marshal(v); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, keys.Settings("contoso"), b, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestNonASCIIAddressFailsFast: a notification address outside ASCII
// (jörg@contoso.example), stored before the settings refused one, is
// refused by a mail server without SMTPUTF8 at RCPT TO: Postfix answers
// "553 5.6.7", others a syntax error (5.5.x, or a bare 501). No retry
// changes that, so the message to it is a dead letter after its first
// attempt, logged at error and counted dead once, with an error that says
// what to fix; not offered to the server again and again for the two
// hours of the retries, each logged as a refusal of Lockbox itself. The
// tenant's other recipients get the message as usual. A temporary
// refusal (4xx) of such an address is retried like any other.
func TestNonASCIIAddressFailsFast(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply *smtp.SMTPError
	}{
		{"SMTPUTF8 required (5.6.7)", &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "Must declare SMTPUTF8 to send unicode address"}},
		{"syntax error (5.5.2)", &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Syntax error in parameters or arguments"}},
		{"syntax error, no enhanced code", &smtp.SMTPError{Code: 501, EnhancedCode: smtp.NoEnhancedCode, Message: "Bad recipient address syntax"}},
		{"mailbox busy (4.2.1)", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy, try later"}},
	} {
		temporary := c.reply.Code < 500
		t.Run(c.name, func(t *testing.T) {
			const jorg = "jörg@contoso.example"
			e := newEnv(t)
			storeNotificationAddresses(t, e, "security@contoso.example", jorg)
			srv := startSMTP(t)
			srv.stop()
			var mu sync.Mutex
			offered := map[string]int{}
			srv.session = func() smtp.Session {
				return &asciiOnlySession{session: session{s: srv}, reply: c.reply, mu: &mu, offered: offered}
			}
			srv.start()
			var logs logBuffer
			reg := prometheus.NewRegistry()
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
				Registerer: reg, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
				SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 10 * time.Second}})
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager) // the tenant is asked
			ctx := context.Background()
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			// Rounds after the first, time moving on: nothing is left to
			// retry.
			for range 3 {
				e.clock.Advance(time.Hour)
				if _, err := w.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			tries := offered[jorg]
			mu.Unlock()
			if temporary {
				dead, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result()
				if n, derr := w.Depth(ctx); derr != nil || err != nil || n != 1 || dead != 0 || tries != 4 {
					t.Errorf("outbox depth %d (%v), dead letters %d (%v), offered %d times; want the message retried each round", n, derr, dead, err, tries)
				}
				return
			}
			if n, err := w.Depth(ctx); err != nil || n != 0 {
				t.Errorf("outbox depth = %d, %v; want nothing left to retry", n, err)
			}
			if tries != 1 {
				t.Errorf("%s offered to the server %d times, want once", jorg, tries)
			}
			dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 1 || dead[0].Values["recipients"] != "mail:"+jorg || dead[0].Values["attempts"] != "1" ||
				!strings.Contains(dead[0].Values["error"].(string), "not ASCII") {
				t.Errorf("dead letters = %v; want the message to %s after 1 attempt, saying its address is not ASCII", dead, jorg)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "dead")); got != 1 {
				t.Errorf("smtp dead = %v, want 1", got)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "refused")); got != 0 {
				t.Errorf("smtp refused = %v, want 0: the relay takes Lockbox's other messages", got)
			}
			if errs := logs.lines(`"level":"ERROR"`); len(errs) != 1 {
				t.Errorf("logged at error %d times, want once:\n%s", len(errs), strings.Join(errs, ""))
			}
			// The others asked to decide got the ask.
			var asked []string
			for _, m := range srv.messages() {
				if strings.Contains(m.Subject, "awaits your decision") {
					asked = append(asked, m.To)
				}
			}
			slices.Sort(asked)
			if !slices.Equal(asked, tenantAudience) {
				t.Errorf("asked %v, want %v", asked, tenantAudience)
			}
		})
	}
}
