package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/notify"
)

// answer is one reply of a statusHook: a status and, when set, its
// Retry-After header.
type answer struct {
	status     int
	retryAfter string
}

// statusHook is a webhook receiver that answers its deliveries in turn
// with its answers (the last one again once they run out) and counts them.
type statusHook struct {
	*httptest.Server
	mu      sync.Mutex
	answers []answer
	hits    int
}

func startStatusHook(t *testing.T, answers ...answer) *statusHook {
	h := &statusHook{answers: answers}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		a := h.answers[min(h.hits, len(h.answers)-1)]
		h.hits++
		h.mu.Unlock()
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *statusHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits
}

// TestWebhookStatusDecidesRetry: a receiver's answer that no retry of the
// same signed body can change (a malformed or refused body, a URL that is
// gone for good, 410) dead-letters the delivery after one attempt; an
// answer that may change (a 404 from a receiver being redeployed, the
// receiver's credential fixed by its operator, throttling, a timeout, a
// server error, anything unknown) is retried.
func TestWebhookStatusDecidesRetry(t *testing.T) {
	cases := []struct {
		status int
		dead   bool
	}{
		{400, true}, {405, true}, {410, true}, {411, true}, {413, true}, {414, true}, {415, true}, {422, true},
		{404, false}, {401, false}, {403, false}, {408, false}, {425, false}, {429, false},
		{500, false}, {501, false}, {502, false}, {503, false}, {504, false},
		// Anything else is retried: a redirect (not followed: it would
		// send the signed body elsewhere), a conflict, the unknown.
		{302, false}, {409, false}, {418, false}, {499, false},
	}
	for _, tc := range cases {
		status, wantDead := tc.status, tc.dead
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e := newEnv(t)
			e.create(t, operator(0)) // request.created: one webhook delivery
			hook := startStatusHook(t, answer{status: status})
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16, DevDir: t.TempDir(),
				Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}}})
			ctx := context.Background()
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			ds, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			depth, err := w.Depth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if wantDead {
				if len(ds) != 1 || ds[0].Values["attempts"] != "1" || depth != 0 {
					t.Errorf("after one attempt: dead letters %v, outbox depth %d; want the delivery dead-lettered after 1 attempt", ds, depth)
				}
				return
			}
			if len(ds) != 0 || depth != 1 {
				t.Errorf("after one attempt: dead letters %v, outbox depth %d; want the delivery kept for a retry", ds, depth)
			}
		})
	}
}

// downFirst is a mailbox whose first send fails, as when the mail server
// is down.
type downFirst struct {
	*mailbox
	mu   sync.Mutex
	down bool
}

func (m *downFirst) Send(ctx context.Context, id string, msg notify.Message) error {
	m.mu.Lock()
	down := m.down
	m.down = false
	m.mu.Unlock()
	if down {
		return errors.New("smtp: dial tcp: connection refused")
	}
	return m.mailbox.Send(ctx, id, msg)
}

// TestWebhookGoneDoesNotBuryOthers: one entry goes to a receiver that is
// gone (410), one that is down (503) and a manager's mailbox whose server
// is down at first. The gone receiver's delivery is dead-lettered after
// one attempt, under its own recipient and its own error, which names the
// receiver by origin and gives the status; the e-mail and the other
// receiver's delivery, which failed in the same attempt, are retried until
// they succeed; the gone receiver is not called again.
func TestWebhookGoneDoesNotBuryOthers(t *testing.T) {
	const token = "T0KEN-in-the-path"
	e := newEnv(t)
	e.create(t, operator(0))
	gone := startStatusHook(t, answer{status: http.StatusGone})
	down := startStatusHook(t, answer{status: http.StatusServiceUnavailable}, answer{status: http.StatusServiceUnavailable}, answer{status: http.StatusOK})
	mb := &mailbox{}
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.WithMailer(notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg, MaxAttempts: 16,
		ManagerAddresses: []string{"mary@provider.example"},
		Webhooks: []notify.WebhookConfig{
			{URL: gone.URL + "/services/" + token, Secret: []byte("k")},
			{URL: down.URL, Secret: []byte("k")},
		},
	}, &downFirst{mailbox: mb, down: true}))
	ctx := context.Background()
	for round := 1; round <= 3; round++ {
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		ds, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 {
			t.Fatalf("after round %d dead letters = %v, want the gone receiver's alone", round, ds)
		}
		if v := ds[0].Values; v["recipients"] != "webhook:0" || v["attempts"] != "1" {
			t.Errorf("dead letter = %v, want webhook:0 after 1 attempt", v)
		}
		if msg := ds[0].Values["error"].(string); !strings.Contains(msg, gone.URL+": status 410") || strings.Contains(msg, token) {
			t.Errorf("dead-letter error %q: want the origin %s and the status, without the URL's path", msg, gone.URL)
		}
		if n := gone.count(); n != 1 {
			t.Errorf("after round %d the gone receiver was called %d times, want 1", round, n)
		}
		if n := down.count(); n != round {
			t.Errorf("after round %d the down receiver was called %d times, want %d", round, n, round)
		}
		if got, want := len(mb.to("mary@provider.example")), min(round-1, 1); got != want {
			t.Errorf("after round %d the manager got %d e-mails, want %d", round, got, want)
		}
		e.clock.Advance(time.Second)
	}
	if n, err := w.Depth(ctx); err != nil || n != 0 {
		t.Errorf("depth = %d, %v; want the entry finished once the down receiver took it", n, err)
	}
	for _, c := range []struct {
		channel, result string
		want            float64
	}{{"webhook", "dead", 1}, {"webhook", "error", 3}, {"webhook", "ok", 1}, {"dev", "error", 1}, {"dev", "ok", 1}, {"dev", "dead", 0}} {
		if got := testutil.ToFloat64(mustCounter(t, reg, c.channel, c.result)); got != c.want {
			t.Errorf("%s %s = %v, want %v", c.channel, c.result, got, c.want)
		}
	}
}

// TestWebhookRetryAfter: a receiver that answers 429 or 503 with
// Retry-After (delta-seconds or an HTTP-date) is not called again before
// then, and is called again then; the wait is never shorter than the
// backoff, and never longer than the longest backoff (15 minutes) however
// long the receiver asks for.
func TestWebhookRetryAfter(t *testing.T) {
	date := func(d time.Duration) string { return t0.Add(d).Format(http.TimeFormat) }
	cases := []struct {
		name       string
		status     int
		retryAfter string
		backoff    time.Duration
		want       time.Duration // when the second attempt is due
	}{
		{"delta seconds", http.StatusTooManyRequests, "120", 0, 120 * time.Second},
		{"HTTP-date", http.StatusServiceUnavailable, date(5 * time.Minute), 0, 5 * time.Minute},
		{"obsolete date format", http.StatusServiceUnavailable, t0.Add(3 * time.Minute).Format("Monday, 02-Jan-06 15:04:05 GMT"), 0, 3 * time.Minute},
		{"absurd delta capped", http.StatusTooManyRequests, "31536000", 0, 15 * time.Minute},
		{"overflowing delta capped", http.StatusTooManyRequests, "99999999999999999999999", 0, 15 * time.Minute},
		{"absurd date capped", http.StatusServiceUnavailable, date(30 * 24 * time.Hour), 0, 15 * time.Minute},
		{"shorter than the backoff", http.StatusTooManyRequests, "60", 10 * time.Minute, 10 * time.Minute},
		{"longer than the backoff", http.StatusTooManyRequests, "120", 30 * time.Second, 120 * time.Second},
		{"date in the past", http.StatusServiceUnavailable, date(-time.Hour), 30 * time.Second, 30 * time.Second},
		{"malformed", http.StatusTooManyRequests, "soon", 30 * time.Second, 30 * time.Second},
		{"negative", http.StatusTooManyRequests, "-5", 30 * time.Second, 30 * time.Second},
		// Retry-After on another status is not a request to wait.
		{"on a 500", http.StatusInternalServerError, "120", 30 * time.Second, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.create(t, operator(0))
			hook := startStatusHook(t, answer{status: tc.status, retryAfter: tc.retryAfter}, answer{status: http.StatusOK})
			cfg := notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16, DevDir: t.TempDir(),
				Registerer: prometheus.NewRegistry(), Backoff: func(int) time.Duration { return tc.backoff },
				Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}}}
			w, err := notify.NewWorker(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tick := func(at time.Duration) {
				t.Helper()
				e.clock.Set(t0.Add(at))
				if _, err := w.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			tick(0)
			if n := hook.count(); n != 1 {
				t.Fatalf("first round: %d calls, want 1", n)
			}
			for _, at := range []time.Duration{time.Second, tc.want / 2, tc.want - time.Second} {
				tick(at)
				if n := hook.count(); n != 1 {
					t.Fatalf("called again %s after the first attempt, want not before %s", at, tc.want)
				}
			}
			tick(tc.want)
			if n := hook.count(); n != 2 {
				t.Fatalf("%d calls %s after the first attempt, want the retry then", n, tc.want)
			}
			if n, err := w.Depth(ctx); err != nil || n != 0 {
				t.Errorf("depth = %d, %v; want the delivery done", n, err)
			}
			if n, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 0 {
				t.Errorf("dead letters = %d, %v", n, err)
			}
		})
	}
}

// TestWebhookRemovedFromConfigShiftsNoOtherReceiver: the runbook's fix for
// a receiver that is gone is to remove its URL from the configuration. An
// entry still being retried for another receiver then finds that receiver
// in the gone one's place in the list; it is still the receiver it was,
// and gets the event once the retry is due, once.
func TestWebhookRemovedFromConfigShiftsNoOtherReceiver(t *testing.T) {
	e := newEnv(t)
	e.create(t, operator(0)) // request.created: one delivery to each webhook
	gone := startStatusHook(t, answer{status: http.StatusGone})
	down := startStatusHook(t, answer{status: http.StatusServiceUnavailable}, answer{status: http.StatusOK})
	worker := func(hooks ...*statusHook) *notify.Worker {
		var cfg []notify.WebhookConfig
		for _, h := range hooks {
			cfg = append(cfg, notify.WebhookConfig{URL: h.URL, Secret: []byte("k")})
		}
		return newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16, DevDir: t.TempDir(), Webhooks: cfg})
	}
	ctx := context.Background()
	if _, err := worker(gone, down).Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if g, d := gone.count(), down.count(); g != 1 || d != 1 {
		t.Fatalf("first attempt: gone called %d times, down %d; want once each", g, d)
	}
	// The operator removes the gone receiver and restarts Lockbox.
	e.clock.Advance(time.Minute)
	drain(t, worker(down))
	if n := down.count(); n != 2 {
		t.Errorf("the receiver that was down was called %d times, want twice (the failed attempt and the retry)", n)
	}
	if n := gone.count(); n != 1 {
		t.Errorf("the removed receiver was called %d times, want once", n)
	}
}
