package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestWebhookMisconfigurationShowsAtOnce: a receiver whose answer says
// its URL or key is wrong (401, 403, 404, a redirect) keeps its delivery
// for retries, as a key rotation or a redeploy may end it, but the first
// attempt already says so at error level and counts it as refused: the
// operator hears of a misconfigured receiver at once, not when its
// deliveries are dead-lettered hours later. A receiver that is down,
// slow or throttling (408, 425, 429, 5xx) is an outage, logged at warn
// and counted as an error.
func TestWebhookMisconfigurationShowsAtOnce(t *testing.T) {
	cases := []struct {
		status  int
		refused bool
	}{
		{401, true}, {403, true}, {404, true}, {301, true}, {302, true}, {307, true}, {308, true},
		{408, false}, {425, false}, {429, false}, {500, false}, {502, false}, {503, false}, {504, false},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			e := newEnv(t)
			e.create(t, operator(0)) // request.created: one webhook delivery
			hook := startStatusHook(t, answer{status: tc.status})
			var logs logBuffer
			reg := prometheus.NewRegistry()
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16, DevDir: t.TempDir(),
				Registerer: reg, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
				Webhooks: []notify.WebhookConfig{{URL: hook.URL + "/hooks/T0KEN", Secret: []byte("k")}}})
			ctx := context.Background()
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			wantKeptForRetry(t, e, w, "delivery")
			var levels []string
			for _, l := range logs.lines(`"channel":"webhook"`) {
				var rec struct {
					Level, Msg, Err string
				}
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(rec.Err, hook.URL+": status "+strconv.Itoa(tc.status)) || strings.Contains(l, "T0KEN") {
					t.Errorf("log %q: want the receiver's origin and status, without the URL's path", l)
				}
				levels = append(levels, rec.Level)
			}
			wantLevel, wantResult, otherResult := "WARN", "error", "refused"
			if tc.refused {
				wantLevel, wantResult, otherResult = "ERROR", "refused", "error"
			}
			if len(levels) != 1 || levels[0] != wantLevel {
				t.Errorf("webhook failure logged at %v, want once at %s", levels, wantLevel)
			}
			wantCountedAs(t, reg, "webhook", wantResult, otherResult)
		})
	}
}
