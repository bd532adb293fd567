package notify_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
)

// mailTime is how e-mails write a time.
const mailTime = "2006-01-02 15:04 UTC"

// TestEndingsSayWhenTheRequestEnded: a revoked request keeps the
// expires_at of the window it was approved for, and a webhook receiver
// read it as access lasting until then. The webhook of each way a request
// ends carries ended_at, the same time the API gives for the request (the
// event that ended it), and no payload of the events before it has the
// key at all. The e-mails of the end say when it ended, at the same time,
// and none says when access ends as if it still ran.
func TestEndingsSayWhenTheRequestEnded(t *testing.T) {
	ctx := context.Background()
	sweep := func(t *testing.T, e *env) {
		t.Helper()
		if _, err := e.store.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// approve has the manager and adam approve id, and returns when the
	// window starts.
	approve := func(t *testing.T, e *env, id string) time.Time {
		e.clock.Advance(10 * time.Minute)
		e.act(t, id, grants.ActionApprove, manager)
		e.clock.Advance(5 * time.Minute)
		e.act(t, id, grants.ActionApprove, adam)
		return e.clock.Now()
	}
	for _, tc := range []struct {
		name  string
		kind  notify.Kind
		state grants.State
		// before takes the request where end finds it; what it queues is
		// delivered before end runs.
		before func(t *testing.T, e *env, id string)
		// end ends the request and returns when it ended.
		end func(t *testing.T, e *env, id string) time.Time
	}{
		{"revoked by the tenant", notify.KindRevoked, grants.StateRevoked,
			func(t *testing.T, e *env, id string) { approve(t, e, id) },
			func(t *testing.T, e *env, id string) time.Time {
				e.clock.Advance(25 * time.Minute)
				e.act(t, id, grants.ActionRevoke, adam)
				return e.clock.Now()
			}},
		{"revoked by the manager", notify.KindRevoked, grants.StateRevoked,
			func(t *testing.T, e *env, id string) { approve(t, e, id) },
			func(t *testing.T, e *env, id string) time.Time {
				e.clock.Advance(time.Hour)
				e.act(t, id, grants.ActionRevoke, manager)
				return e.clock.Now()
			}},
		{"revoked by turning Customer Lockbox on", notify.KindRevoked, grants.StateRevoked,
			func(t *testing.T, e *env, id string) {
				e.setLockbox(t, false)
				e.clock.Advance(10 * time.Minute)
				e.act(t, id, grants.ActionApprove, manager)
			},
			func(t *testing.T, e *env, _ string) time.Time {
				e.clock.Advance(20 * time.Minute)
				e.setLockbox(t, true)
				return e.clock.Now()
			}},
		{"revoked by offboarding the tenant", notify.KindRevoked, grants.StateRevoked,
			func(t *testing.T, e *env, id string) { approve(t, e, id) },
			func(t *testing.T, e *env, _ string) time.Time {
				e.clock.Advance(33 * time.Minute)
				if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
					t.Fatal(err)
				}
				return e.clock.Now()
			}},
		{"denied by the manager", notify.KindDenied, grants.StateDenied,
			func(*testing.T, *env, string) {},
			func(t *testing.T, e *env, id string) time.Time {
				e.clock.Advance(40 * time.Minute)
				e.act(t, id, grants.ActionDeny, manager)
				return e.clock.Now()
			}},
		{"denied by the tenant", notify.KindDenied, grants.StateDenied,
			func(t *testing.T, e *env, id string) { e.act(t, id, grants.ActionApprove, manager) },
			func(t *testing.T, e *env, id string) time.Time {
				e.clock.Advance(3 * time.Hour)
				e.act(t, id, grants.ActionDeny, globalAdmin)
				return e.clock.Now()
			}},
		{"canceled while it awaited the tenant", notify.KindCanceled, grants.StateCanceled,
			func(t *testing.T, e *env, id string) { e.act(t, id, grants.ActionApprove, manager) },
			func(t *testing.T, e *env, id string) time.Time {
				e.clock.Advance(7 * time.Minute)
				e.act(t, id, grants.ActionCancel, operator(0))
				return e.clock.Now()
			}},
		{"canceled by offboarding the tenant", notify.KindCanceled, grants.StateCanceled,
			func(t *testing.T, e *env, id string) { e.act(t, id, grants.ActionApprove, manager) },
			func(t *testing.T, e *env, _ string) time.Time {
				e.clock.Advance(11 * time.Minute)
				if _, err := e.tenants.Offboard(ctx, tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
					t.Fatal(err)
				}
				return e.clock.Now()
			}},
		{"expired at the manager", notify.KindExpired, grants.StateExpired,
			func(*testing.T, *env, string) {},
			func(t *testing.T, e *env, _ string) time.Time {
				// Swept well after: it ended when its 12 hours did, not
				// when the sweep found it.
				e.clock.Advance(grants.DecisionWindow + 3*time.Hour)
				sweep(t, e)
				return t0.Add(grants.DecisionWindow)
			}},
		{"expired at the tenant", notify.KindExpired, grants.StateExpired,
			func(t *testing.T, e *env, id string) {
				e.clock.Advance(20 * time.Minute)
				e.act(t, id, grants.ActionApprove, manager)
			},
			func(t *testing.T, e *env, _ string) time.Time {
				e.clock.Advance(grants.DecisionWindow + time.Hour)
				sweep(t, e)
				return t0.Add(20*time.Minute + grants.DecisionWindow)
			}},
		{"completed", notify.KindCompleted, grants.StateCompleted,
			func(t *testing.T, e *env, id string) { approve(t, e, id) },
			func(t *testing.T, e *env, _ string) time.Time {
				e.clock.Advance(5 * time.Hour)
				sweep(t, e)
				return t0.Add(15*time.Minute + 2*time.Hour)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			mb := &mailbox{}
			secret := []byte("k")
			hook := startHook(t, e.clock.Now, secret, 0)
			w := mailWorker(t, e, mb, notify.Config{Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}})
			r := e.create(t, operator(0))
			tc.before(t, e, r.ID)
			drain(t, w)
			mb.reset()
			want := tc.end(t, e, r.ID)
			drain(t, w)

			// What the API gives for the request, as the engineer reads it.
			stored, err := e.store.Get(ctx, operator(0).Principal, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.State != tc.state {
				t.Fatalf("the request is %s, want %s", stored.State, tc.state)
			}
			apiEnded, ok := grants.EndedAt(stored)
			if !ok || !apiEnded.Equal(want) {
				t.Fatalf("the API's ended_at = %v (%t), want %v", apiEnded, ok, want)
			}
			apiJSON, err := json.Marshal(apiEnded)
			if err != nil {
				t.Fatal(err)
			}

			hook.mu.Lock()
			defer hook.mu.Unlock()
			ends := 0
			for _, raw := range hook.raw {
				var p map[string]json.RawMessage
				if err := json.Unmarshal([]byte(raw), &p); err != nil {
					t.Fatal(err)
				}
				for _, n := range providerNames {
					if strings.Contains(raw, n) {
						t.Errorf("webhook names %q: %s", n, raw)
					}
				}
				if string(p["event"]) != `"`+string(tc.kind)+`"` {
					if v, ok := p["ended_at"]; ok {
						t.Errorf("webhook of a request not ended has ended_at %s: %s", v, raw)
					}
					continue
				}
				ends++
				if got := string(p["ended_at"]); got != string(apiJSON) {
					t.Errorf("webhook of the end: ended_at %s, want %s, the API's: %s", got, apiJSON, raw)
				}
				var ended time.Time
				if err := json.Unmarshal(p["ended_at"], &ended); err != nil || ended.Location() != time.UTC {
					t.Errorf("webhook ended_at %s is no RFC 3339 UTC time (%v)", p["ended_at"], err)
				}
			}
			if ends != 1 {
				t.Fatalf("%d webhooks of event %s, want 1: %v", ends, tc.kind, hook.raw)
			}

			mb.mu.Lock()
			defer mb.mu.Unlock()
			if len(mb.msgs) == 0 {
				t.Error("nobody was mailed of the end")
			}
			for _, m := range mb.msgs {
				if !strings.Contains(m.Body, want.Format(mailTime)) {
					t.Errorf("e-mail to %s does not say it ended at %s:\n%s\n%s", m.To, want.Format(mailTime), m.Subject, m.Body)
				}
				if strings.Contains(m.Body, "Access ends") {
					t.Errorf("e-mail to %s says when access ends, of a request that ended:\n%s\n%s", m.To, m.Subject, m.Body)
				}
				if stored.ExpiresAt != nil && !stored.ExpiresAt.Equal(want) && strings.Contains(m.Subject+m.Body, stored.ExpiresAt.UTC().Format(mailTime)) {
					t.Errorf("e-mail to %s names the end of the window, %s, not when access ended:\n%s\n%s",
						m.To, stored.ExpiresAt.UTC().Format(mailTime), m.Subject, m.Body)
				}
			}
		})
	}
}

// TestNoEndedAtBeforeTheEnd: the webhooks of a request that has not ended
// (filed, awaiting the tenant, approved, its window about to end) have no
// ended_at key at all, not null, as the API's answer has none.
func TestNoEndedAtBeforeTheEnd(t *testing.T) {
	e := newEnv(t)
	secret := []byte("k")
	hook := startHook(t, e.clock.Now, secret, 0)
	w := mailWorker(t, e, &mailbox{}, notify.Config{ExpiryWarning: 15 * time.Minute,
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}})
	r := e.create(t, operator(0))
	drain(t, w)
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, manager)
	drain(t, w)
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, adam)
	drain(t, w)
	// The warning is queued 15 minutes before the 2 h window ends.
	e.clock.Advance(2*time.Hour - 14*time.Minute)
	drain(t, w)
	stored, err := e.store.Get(context.Background(), operator(0).Principal, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.State != grants.StateApproved {
		t.Fatalf("the request is %s, want approved", stored.State)
	}

	hook.mu.Lock()
	defer hook.mu.Unlock()
	var events []notify.Kind
	for i, raw := range hook.raw {
		events = append(events, hook.bodies[i].Event)
		var p map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			t.Fatal(err)
		}
		if v, ok := p["ended_at"]; ok {
			t.Errorf("%s: ended_at %s on a request that has not ended", hook.bodies[i].Event, v)
		}
	}
	want := []notify.Kind{notify.KindCreated, notify.KindPendingCustomer, notify.KindApproved, notify.KindExpiring}
	if !slices.Equal(events, want) {
		t.Errorf("webhooks of %v, want %v", events, want)
	}
}
