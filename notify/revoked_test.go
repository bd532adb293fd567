package notify_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// busyOnceSession refuses each recipient listed in busy once, for now
// (450), as a mailbox that is busy does, and takes it the next time.
type busyOnceSession struct {
	session
	mu   *sync.Mutex
	busy map[string]bool
}

func (b *busyOnceSession) Rcpt(to string, o *smtp.RcptOptions) error {
	b.mu.Lock()
	refuse := b.busy[to]
	delete(b.busy, to)
	b.mu.Unlock()
	if refuse {
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy, try later"}
	}
	return b.session.Rcpt(to, o)
}

// tenantApproved files a request that the manager approves, delivers the
// tenant's ask with w, and has adam approve it.
func tenantApproved(t *testing.T, e *env, w *notify.Worker) grants.Request {
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	drain(t, w)
	e.act(t, r.ID, grants.ActionApprove, adam)
	return r
}

// TestTenantToldWhenApproverEndsAccess: when one of the tenant's
// approvers revokes a grant the tenant approved, the tenant's other people
// who were asked about it (and told of the approval) hear that its access
// ended early, by that approver, as they hear of an approver's decision;
// the approver who revoked is not mailed of their own act. Each is mailed
// once, however often the revocation is retried and though the mail server
// turned one of them away at first (the entry is retried). A grant only
// the manager approved while the tenant's lockbox was off was never the
// tenant's to see, and no provider identity appears in what is sent.
func TestTenantToldWhenApproverEndsAccess(t *testing.T) {
	for _, c := range []struct {
		name string
		// approve files a request and has it approved; revoke ends it.
		approve func(t *testing.T, e *env, w *notify.Worker) grants.Request
		revoke  func(t *testing.T, e *env, id string)
		by      string
		told    []string
	}{
		{"the approver who approved revokes", tenantApproved, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionRevoke, adam)
			e.act(t, id, grants.ActionRevoke, adam) // a retry
		}, "adam@contoso.example", []string{"admin@contoso.example", "eve@contoso.example", "security@contoso.example"}},
		{"a global administrator revokes", tenantApproved, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionRevoke, globalAdmin)
		}, "gina@contoso.example", tenantAudience},
		{"an approver revokes what only the manager approved", func(t *testing.T, e *env, _ *notify.Worker) grants.Request {
			e.setLockbox(t, false)
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			return r
		}, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionRevoke, adam)
		}, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			srv := startSMTP(t)
			srv.stop()
			var mu sync.Mutex
			busy := map[string]bool{}
			srv.session = func() smtp.Session { return &busyOnceSession{session: session{s: srv}, mu: &mu, busy: busy} }
			srv.start()
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
				SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone}})
			// The ask and the approval go out before the revocation: the
			// tenant saw the grant approved.
			r := c.approve(t, e, w)
			drain(t, w)
			before := len(srv.messages())
			// Two of those to be told are turned away at first.
			mu.Lock()
			busy["eve@contoso.example"], busy["admin@contoso.example"] = true, true
			mu.Unlock()
			e.clock.Advance(time.Minute)
			c.revoke(t, e, r.ID)
			drain(t, w)
			var told []string
			seen := map[string]bool{}
			for _, m := range srv.messages()[before:] {
				if seen[m.MessageID+" "+m.To] {
					t.Errorf("sent twice: %s to %s", m.MessageID, m.To)
				}
				seen[m.MessageID+" "+m.To] = true
				for _, p := range providerNames {
					if m.To != "alice0@provider.example" && strings.Contains(m.Subject+m.Body, p) {
						t.Errorf("e-mail to %s names %q:\n%s\n%s", m.To, p, m.Subject, m.Body)
					}
				}
				if !strings.Contains(m.Subject, "access ended early") {
					continue
				}
				told = append(told, m.To)
				body := strings.ReplaceAll(m.Body, "\r\n", "\n")
				for _, s := range []string{r.ID, "contoso", "exchange", "SR-7", "Requested duration:      2h\n",
					"revoked by " + c.by + " at 2026-11-23 09:01 UTC", "No action is needed"} {
					if !strings.Contains(m.Subject+"\n"+body, s) {
						t.Errorf("e-mail to %s lacks %q:\n%s\n%s", m.To, s, m.Subject, body)
					}
				}
				if urlRE.MatchString(m.Subject+m.Body) || strings.Contains(m.Raw, "\nBcc:") {
					t.Errorf("e-mail to %s has a link or an injected header:\n%s", m.To, m.Raw)
				}
			}
			slices.Sort(told)
			if !slices.Equal(told, c.told) {
				t.Errorf("told %v, want %v", told, c.told)
			}
			// The engineer hears of the revocation, once, as before.
			var revoked int
			for _, m := range srv.messages()[before:] {
				if m.To == "alice0@provider.example" && strings.Contains(m.Subject, "was revoked") {
					revoked++
				}
			}
			if revoked != 1 {
				t.Errorf("the engineer got %d revocation e-mails, want 1", revoked)
			}
		})
	}
}
