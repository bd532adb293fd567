package notify_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
)

// busyReceiver is a webhook receiver that is overloaded until a time on
// the test's clock: until then it answers every delivery 429 with
// Retry-After, as a rate-limited chat service does, and then 200. It
// counts the calls and the deliveries it took, by delivery id.
type busyReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
	took  map[string]int
}

func startBusyReceiver(t *testing.T, now func() time.Time, until time.Time, retryAfter time.Duration) *busyReceiver {
	r := &busyReceiver{took: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if now().Before(until) {
			w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		r.took[req.Header.Get(notify.DeliveryHeader)]++
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

// count returns the calls it got and the deliveries it took.
func (r *busyReceiver) count() (calls int, took map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	took = map[string]int{}
	for id, n := range r.took {
		took[id] = n
	}
	return r.calls, took
}

// TestRetryAfterHoldsEveryMessageToTheReceiver: a receiver that answers
// 429 with Retry-After asks Lockbox to leave it alone, not one message.
// Replica a's call is refused; the receiver's other messages, of the same
// tenant and of another, whichever replica reads them, are not sent before
// the wait is over (sent meanwhile, each would be refused in turn and
// spend an attempt), count no attempt, and go out, each once, when it is.
// E-mails do not wait for the webhook.
func TestRetryAfterHoldsEveryMessageToTheReceiver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tenanttest.Onboard(t, e.tenants, "fabrikam")
	const wait = 120 * time.Second
	hook := startBusyReceiver(t, e.clock.Now, t0.Add(wait), wait)
	mb := &mailbox{}
	regs := map[string]*prometheus.Registry{}
	worker := func(name string) *notify.Worker {
		regs[name] = prometheus.NewRegistry()
		return newWorker(t, notify.WithMailer(notify.Config{
			Redis: redistest.Clone(t, e.rdb), Now: e.clock.Now, Consumer: name, MaxAttempts: 16, Registerer: regs[name],
			ManagerAddresses: []string{"mary@provider.example"},
			Webhooks:         []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}},
		}, mb))
	}
	a, b := worker("a"), worker("b")
	// webhookErrors is the failed webhook deliveries both replicas
	// counted: one per attempt made.
	webhookErrors := func() float64 {
		n := 0.0
		for _, name := range []string{"a", "b"} {
			n += testutil.ToFloat64(mustCounter(t, regs[name], "webhook", "error"))
		}
		return n
	}
	create := func(tenant string, n int) {
		t.Helper()
		if _, err := e.store.Create(ctx, operator(n), grants.CreateInput{
			Tenant: tenant, Service: "exchange", ServiceRequest: "SR-7", Reason: "mailbox repair", Duration: grants.Duration(2 * time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}

	create("contoso", 0)
	tickAll(t, a)
	if calls, _ := hook.count(); calls != 1 {
		t.Fatalf("the receiver got %d calls in replica a's round, want 1", calls)
	}
	// Within the wait, more messages: another of the same tenant, and one
	// of another tenant, read by replica b.
	e.clock.Advance(10 * time.Second)
	create("contoso", 1)
	create("fabrikam", 2)
	tickAll(t, b, a)
	for _, at := range []time.Duration{wait / 2, wait - time.Second} {
		e.clock.Set(t0.Add(at))
		tickAll(t, a, b)
	}
	if calls, _ := hook.count(); calls != 1 {
		t.Errorf("the receiver got %d calls within the %s it asked for, want only the one it refused", calls, wait)
	}
	if n := webhookErrors(); n != 1 {
		t.Errorf("%v failed webhook attempts counted within the wait, want 1: the messages held spend none", n)
	}
	if n := len(mb.to("mary@provider.example")); n != 3 {
		t.Errorf("the manager got %d e-mails within the webhook's wait, want 3: e-mails do not wait for it", n)
	}
	// The wait is over: every message goes out, each once.
	e.clock.Set(t0.Add(wait))
	for range 5 {
		tickAll(t, a, b)
	}
	calls, took := hook.count()
	if calls != 4 || len(took) != 3 {
		t.Errorf("after the wait: %d calls, deliveries taken %v; want the 3 messages taken, 4 calls in all", calls, took)
	}
	for id, n := range took {
		if n != 1 {
			t.Errorf("delivery %s taken %d times", id, n)
		}
	}
	if n := webhookErrors(); n != 1 {
		t.Errorf("%v failed webhook attempts counted, want 1", n)
	}
	for _, tenant := range []string{"contoso", "fabrikam"} {
		if n, err := e.rdb.XLen(ctx, notify.OutboxKey(tenant)).Result(); err != nil || n != 0 {
			t.Errorf("%s's outbox holds %d entries, %v; want none", tenant, n, err)
		}
		if n, err := e.rdb.XLen(ctx, notify.DeadKey(tenant)).Result(); err != nil || n != 0 {
			t.Errorf("%s has %d dead letters, %v; want none", tenant, n, err)
		}
	}
}

// TestDroppedRecipientToldOnceWhileItsWebhookWaits: an engineer Lockbox
// has no address for is logged and counted once per event. An event whose
// webhook waits for its receiver's Retry-After, though no attempt was
// made at it, comes round again when the wait is over, with no attempt on
// record: it is still the one event, and its dropped recipient is not
// told of again.
func TestDroppedRecipientToldOnceWhileItsWebhookWaits(t *testing.T) {
	e := newEnv(t)
	const wait = 120 * time.Second
	hook := startBusyReceiver(t, e.clock.Now, t0.Add(wait), wait)
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}}}, &mailbox{}))
	r := e.createWith(t, opaqueOperator(""), time.Hour) // request.created: its webhook call is refused, 429
	e.act(t, r.ID, grants.ActionApprove, manager)       // request.pending_customer: the engineer has no address
	tickAll(t, w)
	e.clock.Set(t0.Add(wait))
	if depth, err := drainWithTime(t, e, w); err != nil || depth != 0 {
		t.Fatalf("depth = %d, %v; want every entry delivered", depth, err)
	}
	if calls, took := hook.count(); calls != 3 || len(took) != 2 {
		t.Errorf("the receiver got %d calls and took %v, want both events taken after the one refusal", calls, took)
	}
	if got := droppedTotal(t, reg, notify.TemplateRequesterUpdate); got != 1 {
		t.Errorf("dropped requester_update = %v, want 1: one event", got)
	}
	if lines := logs.lines("notification recipient has no e-mail address"); len(lines) != 1 {
		t.Errorf("%d log lines of the recipient without an address, want 1: %q", len(lines), lines)
	}
}

// TestRetryAfterHoldEndsForAMessageThatWaitedItsAttempts: a receiver that
// keeps answering 503 with Retry-After (a maintenance page for the hours
// of an outage) had one message tried per wait: when the hold ended, the
// first pending entry was tried, refused, and held the receiver again, so
// every later message found a hold, waited without counting an attempt,
// and was never tried nor dead-lettered until the ones before it had used
// up their attempts. The outbox kept every event since the outage began.
// A message now waits for other messages' holds only as long as its own
// attempts could take at the longest (MaxAttempts × 15m); then it is
// tried at its own pace and dead-lettered after its attempts.
func TestRetryAfterHoldEndsForAMessageThatWaitedItsAttempts(t *testing.T) {
	const entries, maxAttempts = 5, 3 // patience: 3 × 15m = 45m
	e := newEnv(t)
	ctx := context.Background()
	for i := range entries {
		e.create(t, operator(i))
	}
	var mu sync.Mutex
	tried := map[string]int{} // delivery id -> calls
	calls := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tried[r.Header.Get(notify.DeliveryHeader)]++
		calls++
		mu.Unlock()
		w.Header().Set("Retry-After", "900")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(hook.Close)
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: maxAttempts,
		ManagerAddresses: []string{"mary@provider.example"},
		Webhooks:         []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}},
	}, &mailbox{}))
	var perWindow []int
	for range 8 { // 8 windows of 16m, each past the 15m Retry-After
		mu.Lock()
		before := calls
		mu.Unlock()
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		perWindow = append(perWindow, calls-before)
		mu.Unlock()
		e.clock.Advance(16 * time.Minute)
	}
	// Within their patience the messages keep the receiver's hold: one
	// call a wait, not one for each message.
	for i, n := range perWindow[:3] {
		if n != 1 {
			t.Errorf("window %d (%s in): the receiver was called %d times, want once: the others wait for its hold (calls per window %v)",
				i, time.Duration(i)*16*time.Minute, n, perWindow)
		}
	}
	depth, err := w.Depth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tried) != entries || depth != 0 || dead != entries {
		t.Errorf("after 8 waits of 16m with MaxAttempts %d: %d of %d messages were ever sent to the receiver, %d dead-lettered, %d still in the outbox (calls per window %v); "+
			"want each tried once it waited its attempts' worth, and dead-lettered after them",
			maxAttempts, len(tried), entries, dead, depth, perWindow)
	}
}

// TestRedrivenMessageWaitsForTheHoldFromItsRedrive: a re-driven message's
// patience (TestRetryAfterHoldEndsForAMessageThatWaitedItsAttempts) counts
// from its re-drive, not from its event: re-driven hours after the event,
// it still waits for its receiver's hold like any new message.
func TestRedrivenMessageWaitsForTheHoldFromItsRedrive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var mu sync.Mutex
	status, calls := http.StatusGone, 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		w.Header().Set("Retry-After", "900")
		w.WriteHeader(status)
	}))
	t.Cleanup(hook.Close)
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}},
	}, &mailbox{}))
	e.create(t, operator(0))
	drain(t, w) // 410: a dead letter at once
	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	letters := mustList(t, d, "contoso")
	if len(letters) != 1 {
		t.Fatalf("dead letters %s; want the webhook's", brief(letters))
	}
	e.clock.Advance(5 * time.Hour) // past the default patience, counted from the event
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	e.create(t, operator(1))
	if _, err := w.Tick(ctx); err != nil { // refused with Retry-After: the receiver is held
		t.Fatal(err)
	}
	mu.Lock()
	before := calls
	mu.Unlock()
	if res, err := d.Redrive(ctx, "contoso", redriver, letterIDs(letters)); err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	if _, err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != before {
		t.Errorf("the message re-driven now was sent to the held receiver (%d calls): its patience counted from its event, 5h ago", calls-before)
	}
}
