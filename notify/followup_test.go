package notify_test

import (
	"context"
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
	"github.com/lockbox-oss/lockbox/notify"
)

// goneSession refuses the recipient gone names for good (550 5.1.1), as a
// server does for a mailbox that does not exist yet: a message to it is a
// dead letter at once.
type goneSession struct {
	session
	mu   *sync.Mutex
	gone *string
}

func (g *goneSession) Rcpt(to string, o *smtp.RcptOptions) error {
	g.mu.Lock()
	refuse := to == *g.gone
	g.mu.Unlock()
	if refuse {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return g.session.Rcpt(to, o)
}

// TestFollowUpsGoOnlyToThoseAsked: what follows a request's "awaits your
// decision" at the tenant, that one of its approvers already decided it
// (already_decided) or that the access it approved ended early
// (access_ended), is news only to those the ask reached. An approver
// assigned after the ask went out, or one whose ask was a dead letter,
// never heard of the request and is told nothing of it; the approver who
// approved it knows of it by their own act, and hears that its access
// ended though their ask never reached them. Everyone the ask reached is
// told as before, and each follow-up passed by counts as
// lockbox_notifications_sent_total{result="skipped"} of its channel.
func TestFollowUpsGoOnlyToThoseAsked(t *testing.T) {
	const (
		nina = "nina@contoso.example" // assigned an approver after the ask
		gone = "eve@contoso.example"  // her mailbox refuses the ask for good
	)
	for _, c := range []struct {
		name string
		// gone is whose ask is refused for good, if anyone's.
		gone string
		// follow decides the request (r approved by the manager) and
		// whatever follows.
		follow func(t *testing.T, e *env, id string)
		// subject tells the follow-up's e-mails.
		subject string
		told    []string
		skipped float64
	}{
		{"approved; an approver assigned after the ask", "", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, adam)
		}, "already approved by", []string{"admin@contoso.example", "eve@contoso.example", "security@contoso.example"}, 1},
		{"denied; an approver whose ask was a dead letter", gone, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionDeny, adam)
		}, "already denied by", []string{"admin@contoso.example", "security@contoso.example"}, 2},
		{"revoked by the manager; an approver assigned after the ask", "", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, adam)
			e.clock.Advance(time.Minute)
			e.act(t, id, grants.ActionRevoke, manager)
		}, "access ended early", tenantAudience, 2},
		{"revoked by the manager; the ask to its approver a dead letter", "adam@contoso.example", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, adam)
			e.clock.Advance(time.Minute)
			e.act(t, id, grants.ActionRevoke, manager)
		}, "access ended early", tenantAudience, 2},
		{"revoked by an approver; an approver whose ask was a dead letter", gone, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, adam)
			e.clock.Advance(time.Minute)
			e.act(t, id, grants.ActionRevoke, globalAdmin)
		}, "access ended early", []string{"adam@contoso.example", "admin@contoso.example", "security@contoso.example"}, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			srv := startSMTP(t)
			srv.stop()
			var mu sync.Mutex
			refused := c.gone
			srv.session = func() smtp.Session { return &goneSession{session: session{s: srv}, mu: &mu, gone: &refused} }
			srv.start()
			reg := prometheus.NewRegistry()
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
				SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone}})
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			drain(t, w)
			// The refused mailbox is created, too late for the ask.
			mu.Lock()
			refused = ""
			mu.Unlock()
			// Nina becomes an approver once the ask went out.
			if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", nina); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			c.follow(t, e, r.ID)
			drain(t, w)
			asked := map[string]bool{}
			var told []string
			for _, m := range srv.messages() {
				switch {
				case strings.Contains(m.Subject, "awaits your decision"):
					asked[m.To] = true
				case strings.Contains(m.Subject, c.subject):
					told = append(told, m.To)
				}
			}
			if asked[nina] || asked[c.gone] {
				t.Fatalf("asked %v; want neither nina nor %q", asked, c.gone)
			}
			slices.Sort(told)
			if !slices.Equal(told, c.told) {
				t.Errorf("told %v, want %v", told, c.told)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "skipped")); got != c.skipped {
				t.Errorf(`sent_total{smtp,skipped} = %v, want %v`, got, c.skipped)
			}
		})
	}
}

// TestSkippedFollowUpToldOnce: a recipient the ask never reached is passed
// by once per entry, however often the entry is retried for its other
// recipients: logged once and counted once. The cancellation's entry
// below is retried (eve's mailbox turns it away at first), and each retry
// found nina, assigned an approver after the ask went out, again, and
// logged and counted her again.
func TestSkippedFollowUpToldOnce(t *testing.T) {
	for _, c := range []struct {
		name    string
		end     func(t *testing.T, e *env, id string)
		subject string
	}{
		{"canceled", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionCancel, operator(0))
		}, "no longer needs your decision"},
		{"denied", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionDeny, adam)
		}, "already denied by"},
	} {
		t.Run(c.name, func(t *testing.T) {
			const nina = "nina@contoso.example"
			e := newEnv(t)
			ctx := context.Background()
			srv := startSMTP(t)
			srv.stop()
			var mu sync.Mutex
			busy := map[string]bool{}
			srv.session = func() smtp.Session { return &busyOnceSession{session: session{s: srv}, mu: &mu, busy: busy} }
			srv.start()
			reg := prometheus.NewRegistry()
			logs := &logBuffer{}
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
				Logger: slog.New(slog.NewJSONHandler(logs, nil)),
				SMTP:   &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone}})
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			drain(t, w)
			if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", nina); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			busy["eve@contoso.example"] = true
			mu.Unlock()
			e.clock.Advance(time.Minute)
			c.end(t, e, r.ID)
			drain(t, w)
			var told []string
			for _, m := range srv.messages() {
				if strings.Contains(m.Subject, c.subject) {
					told = append(told, m.To)
				}
			}
			if slices.Contains(told, nina) || !slices.Contains(told, "eve@contoso.example") {
				t.Fatalf("told %v; want eve, once her mailbox took it, and not nina", told)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "error")); got != 1 {
				t.Fatalf("sent_total{smtp,error} = %v; want 1, eve's first attempt, so the entry was retried once", got)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "skipped")); got != 1 {
				t.Errorf(`sent_total{smtp,skipped} = %v, want 1`, got)
			}
			if lines := logs.lines("its recipient never got the request's ask"); len(lines) != 1 {
				t.Errorf("nina passed by logged %d times, want 1:\n%s", len(lines), strings.Join(lines, ""))
			}
		})
	}
}
