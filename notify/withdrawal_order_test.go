package notify_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// busySession refuses the recipients that busy lists, for now (450), as
// long as they are listed.
type busySession struct {
	session
	mu   *sync.Mutex
	busy map[string]bool
}

func (b *busySession) Rcpt(to string, o *smtp.RcptOptions) error {
	b.mu.Lock()
	refuse := b.busy[to]
	b.mu.Unlock()
	if refuse {
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy, try later"}
	}
	return b.session.Rcpt(to, o)
}

// TestNoLongerPendingFollowsTheAsk: "no longer needs your decision" tells
// the people who were asked to decide; it goes to a recipient only once
// the ask reached them. When eve's mailbox turned the ask away and the
// ask waits for its retry, and meanwhile the request is canceled or
// expires, the withdrawal is delivered first (the ask backs off) and,
// before, told eve of a request she never heard of; the ask's retry then
// finds it stale and sends nothing. Now eve gets neither, and everyone
// the ask reached gets both, once each. An ask whose retry reached eve
// before the request ended is followed by the withdrawal as before (the
// ask itself stays at least once). A request asked about by an earlier
// release, which kept no record of whom its asks reached, is withdrawn
// from all its recipients as before.
func TestNoLongerPendingFollowsTheAsk(t *testing.T) {
	asked := []string{"adam@contoso.example", "admin@contoso.example", "security@contoso.example"}
	for _, c := range []struct {
		name string
		// retried is whether eve's ask is retried, and reaches her,
		// before the request ends.
		retried bool
		// untracked is whether the ask was queued by a release that kept
		// no record of whom it reached.
		untracked bool
		end       func(t *testing.T, e *env, id string)
		// told is who gets the withdrawal; eve gets the ask only when
		// she is told.
		told []string
	}{
		{"canceled while the ask to eve waits for its retry", false, false, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionCancel, operator(0))
		}, asked},
		{"expired while the ask to eve waits for its retry", false, false, func(t *testing.T, e *env, id string) {
			e.clock.Advance(grants.DecisionWindow)
			if _, err := e.store.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, asked},
		{"canceled after the ask's retry reached eve", true, false, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionCancel, operator(0))
		}, tenantAudience},
		{"canceled, the ask queued by an earlier release", false, true, func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionCancel, operator(0))
		}, tenantAudience},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			srv := startSMTP(t)
			srv.stop()
			var mu sync.Mutex
			busy := map[string]bool{"eve@contoso.example": true}
			srv.session = func() smtp.Session { return &busySession{session: session{s: srv}, mu: &mu, busy: busy} }
			srv.start()
			w, err := notify.NewWorker(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
				Registerer: prometheus.NewRegistry(), Backoff: func(int) time.Duration { return time.Minute },
				SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone}})
			if err != nil {
				t.Fatal(err)
			}
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			if c.untracked {
				// What an earlier release left: the entry, and no
				// record of the request's asks.
				if err := e.rdb.Del(ctx, keys.OutboxAsked("contoso", r.ID)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			// The ask reaches all but eve, whose mailbox is busy: it
			// backs off for a minute.
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			delete(busy, "eve@contoso.example")
			mu.Unlock()
			if c.retried {
				e.clock.Advance(time.Minute)
				if _, err := w.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			e.clock.Advance(time.Second)
			c.end(t, e, r.ID)
			// The withdrawal is delivered while the ask still backs off
			// (unless the request expired, 12 h on); then the ask's
			// retry comes due.
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			for range 50 {
				if n, err := w.Depth(ctx); err != nil {
					t.Fatal(err)
				} else if n == 0 {
					break
				}
				if _, err := w.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := w.Depth(ctx); err != nil || n != 0 {
				t.Fatalf("outbox depth = %d, %v; want it drained", n, err)
			}
			askedNow := map[string]int{}
			toldNow := map[string]int{}
			for _, m := range srv.messages() {
				switch {
				case strings.Contains(m.Subject, "awaits your decision"):
					askedNow[m.To]++
				case strings.Contains(m.Subject, "no longer needs your decision"):
					toldNow[m.To]++
				}
			}
			var told []string
			for a, n := range toldNow {
				told = append(told, a)
				if n != 1 {
					t.Errorf("%s told %d times", a, n)
				}
				if askedNow[a] != 1 && !c.untracked {
					t.Errorf("%s told it no longer needs their decision, asked %d times", a, askedNow[a])
				}
			}
			slices.Sort(told)
			if !slices.Equal(told, c.told) {
				t.Errorf("told %v, want %v", told, c.told)
			}
			for _, a := range tenantAudience {
				if want := 0; !slices.Contains(c.told, a) && askedNow[a] != want {
					t.Errorf("%s asked %d times though not told of the end", a, askedNow[a])
				}
			}
		})
	}
}

// gateMailbox is a mailbox whose Send of the ask to one recipient waits
// until released, as a slow mail server does, telling when it began.
type gateMailbox struct {
	mailbox
	*askGate
}

func (g *gateMailbox) Send(ctx context.Context, id string, m notify.Message) error {
	if err := g.hold(ctx, m); err != nil {
		return err
	}
	return g.mailbox.Send(ctx, id, m)
}

// TestNoLongerPendingWaitsForTheAskInFlight: two replicas. Replica a is
// sending the ask to eve (her mail server is slow) when the engineer
// cancels the request and replica b picks up the withdrawal: eve hears
// that the request no longer needs her decision only after the ask that
// asked for it, not before. And when replica a had worked out the ask's
// recipients before the cancellation but not yet begun to send to eve,
// the withdrawal that passes eve by (the ask had not reached her) keeps
// replica a from sending her the ask after all: she gets neither.
func TestNoLongerPendingWaitsForTheAskInFlight(t *testing.T) {
	const eve = "eve@contoso.example"
	for _, c := range []struct {
		name string
		// sending is whether replica a is in the middle of sending the
		// ask to eve, rather than about to record it.
		sending bool
	}{
		{"the ask being sent", true},
		{"the ask about to be sent", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			mb := &gateMailbox{askGate: newAskGate(t, eve)}
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			aRdb := redistest.Clone(t, e.rdb)
			var stall *stallHook
			if !c.sending {
				// Replica a stops just before it records eve's ask.
				field := notify.SentKey("contoso", "x", "mail:"+eve)
				field = field[strings.LastIndexByte(field, ':')+1:]
				stall = newStallHook(t, 1, func(cmd redis.Cmder) bool {
					if n := strings.ToLower(cmd.Name()); n != "evalsha" && n != "eval" {
						return false
					}
					return slices.Contains(cmd.Args(), any(field))
				})
				aRdb.AddHook(stall)
				mb.release() // nothing to wait for in Send
			}
			a := newWorker(t, notify.WithMailer(notify.Config{Redis: aRdb, Now: e.clock.Now, Consumer: "a"}, mb))
			b := newWorker(t, notify.WithMailer(notify.Config{Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: "b"}, mb))
			reached := mb.entered
			if !c.sending {
				reached = stall.stalled
			}
			aRound := startRound(t, a, reached, "before reaching eve", "reached eve")
			e.clock.Advance(time.Second)
			e.act(t, r.ID, grants.ActionCancel, operator(0))
			if _, err := b.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if c.sending {
				mb.release()
			} else {
				stall.release()
			}
			aRound.end(t)
			// Both replicas finish what is left, time moving on: b
			// first, which holds the withdrawal (the other replica
			// takes it over only once Redis sees it idle for
			// ClaimAfter).
			if n, err := settle(t, e, a, b, a); err != nil || n != 0 {
				ents, _ := e.rdb.XRange(ctx, notify.OutboxKey("contoso"), "-", "+").Result()
				pend, _ := e.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: notify.OutboxKey("contoso"), Group: notify.Group, Start: "-", End: "+", Count: 10}).Result()
				h, _ := e.rdb.HGetAll(ctx, keys.OutboxAsked("contoso", r.ID)).Result()
				t.Fatalf("outbox depth = %d, %v; want it drained: %v %v %v", n, err, ents, pend, h)
			}
			// Whoever the ask reached hears of the withdrawal after it;
			// whoever it had not reached when replica b withdrew it (the
			// recipients replica a had not come to yet) hears nothing:
			// eve too, in the second case.
			for _, addr := range tenantAudience {
				var got []string
				for _, m := range mb.to(addr) {
					got = append(got, m.Subject)
				}
				both := len(got) == 2 && strings.Contains(got[0], "awaits your decision") && strings.Contains(got[1], "no longer needs your decision")
				switch {
				case addr == eve && c.sending && !both:
					t.Errorf("eve got %q; want the ask, then the withdrawal", got)
				case addr == eve && !c.sending && len(got) != 0:
					t.Errorf("eve got %q; want nothing", got)
				case len(got) != 0 && !both:
					t.Errorf("%s got %q; want the ask then the withdrawal, or neither", addr, got)
				}
			}
		})
	}
}
