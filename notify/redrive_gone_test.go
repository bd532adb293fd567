package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// switchReceiver is a webhook receiver whose answer the test sets: a
// status, and a Retry-After with it when set.
type switchReceiver struct {
	*httptest.Server
	mu         sync.Mutex
	status     int
	retryAfter time.Duration
	calls      int
}

func startSwitchReceiver(t *testing.T, status int) *switchReceiver {
	r := &switchReceiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if r.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(r.retryAfter/time.Second)))
		}
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *switchReceiver) answer(status int, retryAfter time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.retryAfter = status, retryAfter
}

// downMailbox is a mailbox whose server is down until up is called.
type downMailbox struct {
	mailbox
	mu   sync.Mutex
	down bool
}

func (m *downMailbox) Send(ctx context.Context, id string, msg notify.Message) error {
	m.mu.Lock()
	down := m.down
	m.mu.Unlock()
	if down {
		return errors.New("connection refused")
	}
	return m.mailbox.Send(ctx, id, msg)
}

func (m *downMailbox) up() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = false
}

// deadAskWithEve has w, whose mail server mb is down and whose webhook
// receivers (if any) refuse, dead-letter the ask of a new request at its
// one attempt (MaxAttempts 1), eve among its recipients; then removes eve
// as an approver and brings mb back. It returns the dead letters.
func deadAskWithEve(t *testing.T, e *env, w *notify.Worker, mb *downMailbox) []notify.DeadLetter {
	t.Helper()
	r := e.create(t, operator(0))
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, manager) // request.pending_customer: the e-mails, eve's among them
	tickAll(t, w)
	letters := mustList(t, notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil), "contoso")
	i := slices.IndexFunc(letters, func(l notify.DeadLetter) bool { return l.Kind == notify.KindPendingCustomer })
	if i < 0 || !slices.Contains(letters[i].Recipients, "mail:"+goneEve) {
		t.Fatalf("dead letters %s; want request.pending_customer's, eve among its recipients", brief(letters))
	}
	if err := e.tenants.RemoveApprover(context.Background(), globalAdmin.Principal, "203.0.113.1", "contoso", goneEve); err != nil {
		t.Fatal(err)
	}
	mb.up()
	return letters
}

// goneEve is the approver removed before her dead letter is re-driven.
const goneEve = "eve@contoso.example"

// wantEveToldOnce fails unless the logs say once that the re-drive passed
// eve by, and she got nothing.
func wantEveToldOnce(t *testing.T, logs *logBuffer, mb *downMailbox) {
	t.Helper()
	if n := len(mb.to(goneEve)); n != 0 {
		t.Errorf("eve got %d e-mails after she was removed", n)
	}
	if n := len(mb.to("adam@contoso.example")); n != 1 {
		t.Errorf("adam got %d e-mails, want the re-driven ask", n)
	}
	if lines := logs.lines("re-driven notification not sent to a recipient it no longer has"); len(lines) != 1 || !strings.Contains(lines[0], goneEve) {
		t.Errorf("%d log lines of eve passed by, want 1: %q", len(lines), lines)
	}
}

// TestRedrivenRecipientGoneToldOnce: a re-driven message one of whose
// recipients is no longer one (an approver removed since) logs that once.
// The message comes round again with no attempt on record when its other
// recipients had to wait (here their receiver's Retry-After, which an
// earlier message heard): it is still the one re-drive, and the recipient
// it no longer has is not told of again on every visit.
func TestRedrivenRecipientGoneToldOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hook := startSwitchReceiver(t, http.StatusInternalServerError)
	mb := &downMailbox{down: true}
	logs := &logBuffer{}
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 1,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}}}, mb))
	letters := deadAskWithEve(t, e, w, mb) // request.created's webhook call, and request.pending_customer's
	if len(letters) != 2 || letters[0].Kind != notify.KindCreated {
		t.Fatalf("dead letters %s; want request.created's first", brief(letters))
	}
	// The receiver, overloaded, asks for two minutes of quiet.
	hook.answer(http.StatusTooManyRequests, 2*time.Minute)
	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	if res, err := d.Redrive(ctx, "contoso", redriver, letterIDs(letters)); err != nil || len(res) != 2 || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	// request.created's call is refused with Retry-After; the re-driven
	// ask's webhook call waits for the receiver, its e-mails go out.
	tickAll(t, w)
	hook.answer(http.StatusOK, 0)
	e.clock.Advance(2 * time.Minute)
	if depth, err := drainWithTime(t, e, w); err != nil || depth != 0 {
		t.Fatalf("depth = %d, %v; want every re-driven message delivered", depth, err)
	}
	wantEveToldOnce(t, logs, mb)
}

// stopOnce is a mailbox whose first send to one address once armed ends
// the round it is part of, as a replica told to stop (SIGTERM) cancels
// its sends.
type stopOnce struct {
	*downMailbox
	to     string
	cancel context.CancelFunc
	armed  atomic.Bool
	once   sync.Once
}

func (m *stopOnce) Send(ctx context.Context, id string, msg notify.Message) error {
	stopped := false
	if msg.To == m.to && m.armed.Load() {
		m.once.Do(func() { stopped = true; m.cancel() })
	}
	if stopped {
		return ctx.Err()
	}
	return m.downMailbox.Send(ctx, id, msg)
}

// TestRedrivenRecipientGoneToldOnceAcrossTakeOver: replica a stops in
// the middle of a re-driven message, before any attempt is on record;
// replica b takes the message over and finishes it. The recipient the
// message no longer has was told of by a, and b does not tell of it again.
func TestRedrivenRecipientGoneToldOnceAcrossTakeOver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mb := &downMailbox{down: true}
	logs := &logBuffer{}
	stopping, stop := context.WithCancel(ctx)
	defer stop()
	worker := func(name string, m notify.Mailer) *notify.Worker {
		return newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: name, MaxAttempts: 1,
			Logger: slog.New(slog.NewJSONHandler(logs, nil))}, m))
	}
	am := &stopOnce{downMailbox: mb, to: "adam@contoso.example", cancel: stop}
	a, b := worker("a", am), worker("b", mb)
	letters := deadAskWithEve(t, e, a, mb)
	am.armed.Store(true)
	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	if res, err := d.Redrive(ctx, "contoso", redriver, letterIDs(letters)); err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	// Stopped while it sends to adam: the visit ends, and the message
	// stays pending at a with no attempt on record.
	if _, err := a.Tick(stopping); err != nil {
		t.Fatal(err)
	}
	idleAtA(t, e, oneEntry(t, e))
	e.clock.Advance(time.Minute)
	if depth, err := drainWithTime(t, e, b); err != nil || depth != 0 {
		t.Fatalf("depth = %d, %v; want the re-driven message delivered by replica b", depth, err)
	}
	wantEveToldOnce(t, logs, mb)
}
