package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// tenantAudience is who newEnv's tenant asks to decide: its global
// administrator (registry contact), its assigned approvers and its
// notification address.
var tenantAudience = []string{"adam@contoso.example", "admin@contoso.example", "eve@contoso.example", "security@contoso.example"}

// providerNames are what no e-mail to the tenant may show.
var providerNames = []string{"alice0", "mary@", "provider.example"}

// TestTenantToldWhenRequestNoLongerAwaitsIt: the people asked to decide a
// request (the tenant's global administrators, assigned approvers and
// notification addresses) are told, once, when it stops awaiting them
// without their decision: the engineer canceled it, or it expired after
// 12 h. A request the tenant was never asked about (canceled or denied
// before the manager approved it) tells the tenant nothing, and a decision
// by one of the approvers keeps its own e-mail (TemplateAlreadyDecided) to
// everyone else who was asked, the notification addresses too, never to
// the approver who decided. A transition
// retried (the cancel sent again, the sweep run again) mails nobody twice.
func TestTenantToldWhenRequestNoLongerAwaitsIt(t *testing.T) {
	for _, c := range []struct {
		name string
		// asked is whether the manager approves first, so the tenant is
		// asked to decide.
		asked bool
		end   func(t *testing.T, e *env, id string)
		// told is who gets the "no longer needs your decision" e-mail,
		// and says, what its body says happened.
		told []string
		says string
	}{
		{"canceled while awaiting the tenant", true, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionCancel, operator(0))
			e.act(t, id, grants.ActionCancel, operator(0)) // a retry
		}, tenantAudience, "was canceled by Microsoft Operator at 2026-11-23 09:02 UTC"},
		{"expired awaiting the tenant", true, func(t *testing.T, e *env, id string) {
			e.clock.Advance(grants.DecisionWindow)
			for range 2 { // the second sweep finds nothing to do
				if _, err := e.store.Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}, tenantAudience, "expired without a decision at 2026-11-23 21:01 UTC"},
		{"canceled before the manager decided", false, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionCancel, operator(0))
		}, nil, ""},
		{"denied by the manager", false, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionDeny, manager)
		}, nil, ""},
		{"decided by an approver", true, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionDeny, adam)
		}, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			srv := startSMTP(t)
			secret := []byte("k")
			hook := startHook(t, e.clock.Now, secret, 0)
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
				SMTP:     &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example"},
				Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}})
			r := e.create(t, operator(0))
			e.clock.Advance(time.Minute)
			if c.asked {
				e.act(t, r.ID, grants.ActionApprove, manager)
			}
			drain(t, w)
			before := len(srv.messages())
			e.clock.Advance(time.Minute)
			c.end(t, e, r.ID)
			drain(t, w)
			got := srv.messages()[before:]

			byTo := map[string][]received{}
			seen := map[string]bool{}
			for _, m := range got {
				byTo[m.To] = append(byTo[m.To], m)
				if seen[m.MessageID+" "+m.To] {
					t.Errorf("sent twice: %s to %s", m.MessageID, m.To)
				}
				seen[m.MessageID+" "+m.To] = true
			}
			var told []string
			for a, msgs := range byTo {
				var these []received
				for _, m := range msgs {
					if strings.Contains(m.Subject, "no longer needs your decision") {
						these = append(these, m)
					}
				}
				if len(these) == 0 {
					continue
				}
				told = append(told, a)
				if len(these) != 1 {
					t.Errorf("%s told %d times", a, len(these))
				}
				m := these[0]
				body := strings.ReplaceAll(m.Body, "\r\n", "\n")
				for _, s := range []string{r.ID, "contoso", "exchange", "SR-7", "mailbox repair", "Requested duration:      2h\n", c.says, "No action is needed"} {
					if !strings.Contains(m.Subject+"\n"+body, s) {
						t.Errorf("e-mail to %s lacks %q:\n%s\n%s", a, s, m.Subject, body)
					}
				}
				for _, p := range providerNames {
					if strings.Contains(m.Subject+m.Body, p) {
						t.Errorf("e-mail to %s names %q:\n%s\n%s", a, p, m.Subject, m.Body)
					}
				}
				if urlRE.MatchString(m.Subject+m.Body) || strings.Contains(m.Raw, "\nBcc:") {
					t.Errorf("e-mail to %s has a link or an injected header:\n%s", a, m.Raw)
				}
			}
			slices.Sort(told)
			if !slices.Equal(told, c.told) {
				t.Errorf("told %v, want %v", told, c.told)
			}
			if c.name == "decided by an approver" {
				if n := len(byTo["adam@contoso.example"]); n != 0 {
					t.Errorf("adam, who decided, got %d e-mails", n)
				}
				// Everyone else who was asked hears who decided, the
				// notification address too.
				for _, a := range []string{"admin@contoso.example", "eve@contoso.example", "security@contoso.example"} {
					if n := len(byTo[a]); n != 1 || !strings.Contains(byTo[a][0].Subject, "already denied by adam@contoso.example") {
						t.Errorf("%s got %+v", a, byTo[a])
					}
				}
			}
			// The engineer hears of it as before: of the expiry, not of
			// their own cancellation.
			if want := strings.Count(c.says, "expired"); c.told != nil && len(byTo["alice0@provider.example"]) != want {
				t.Errorf("the engineer got %d e-mails, want %d", len(byTo["alice0@provider.example"]), want)
			}
			// Webhooks get the event once, in the tenant's view.
			hook.mu.Lock()
			defer hook.mu.Unlock()
			if c.told != nil {
				var n int
				for i, p := range hook.bodies {
					if p.State == grants.StateCanceled || p.State == grants.StateExpired {
						n++
						for _, x := range providerNames {
							if strings.Contains(hook.raw[i], x) {
								t.Errorf("webhook names %q: %s", x, hook.raw[i])
							}
						}
					}
				}
				if n != 1 {
					t.Errorf("%d webhook deliveries of the end, want 1: %+v", n, hook.bodies)
				}
			}
		})
	}
}

// TestTenantToldWhenProviderEndsAccess: when a support manager revokes a
// grant the tenant approved, the tenant's people who were asked about it
// hear that its access ended early, by "Microsoft Support", never by name,
// once however often the revocation is retried. The tenant is not mailed
// of turning Customer Lockbox on, which ends only the grants the manager
// alone approved, nor of a grant it never approved (the manager's approval
// was final while its lockbox was off: nobody at the tenant was asked).
// An approver's revocation: TestTenantToldWhenApproverEndsAccess.
func TestTenantToldWhenProviderEndsAccess(t *testing.T) {
	for _, c := range []struct {
		name string
		// run acts, w delivering what the tenant was asked.
		run  func(t *testing.T, e *env, w *notify.Worker) grants.Request
		told []string
	}{
		{"the manager revokes what the tenant approved", func(t *testing.T, e *env, w *notify.Worker) grants.Request {
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			drain(t, w)
			e.act(t, r.ID, grants.ActionApprove, adam)
			e.clock.Advance(time.Minute)
			e.act(t, r.ID, grants.ActionRevoke, manager)
			e.act(t, r.ID, grants.ActionRevoke, manager) // a retry
			return r
		}, tenantAudience},
		{"the manager revokes what only the manager approved", func(t *testing.T, e *env, _ *notify.Worker) grants.Request {
			e.setLockbox(t, false)
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			e.clock.Advance(time.Minute)
			e.act(t, r.ID, grants.ActionRevoke, manager)
			return r
		}, nil},
		{"turning Customer Lockbox on", func(t *testing.T, e *env, _ *notify.Worker) grants.Request {
			e.setLockbox(t, false)
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			e.clock.Advance(time.Minute)
			e.setLockbox(t, true)
			return r
		}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			srv := startSMTP(t)
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
				SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example"}})
			r := c.run(t, e, w)
			drain(t, w)
			var told []string
			seen := map[string]bool{}
			for _, m := range srv.messages() {
				if seen[m.MessageID+" "+m.To] {
					t.Errorf("sent twice: %s to %s", m.MessageID, m.To)
				}
				seen[m.MessageID+" "+m.To] = true
				if !strings.Contains(m.Subject, "access ended early") {
					continue
				}
				told = append(told, m.To)
				body := strings.ReplaceAll(m.Body, "\r\n", "\n")
				for _, s := range []string{r.ID, "contoso", "exchange", "SR-7", "mailbox repair", "Requested duration:      2h\n",
					"revoked by Microsoft Support at 2026-11-23 09:01 UTC", "No action is needed"} {
					if !strings.Contains(m.Subject+"\n"+body, s) {
						t.Errorf("e-mail to %s lacks %q:\n%s\n%s", m.To, s, m.Subject, body)
					}
				}
				for _, p := range providerNames {
					if strings.Contains(m.Subject+m.Body, p) {
						t.Errorf("e-mail to %s names %q:\n%s\n%s", m.To, p, m.Subject, m.Body)
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
		})
	}
}
