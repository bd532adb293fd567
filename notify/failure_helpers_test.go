package notify_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/notify"
)

// The tests of a delivery that fails (a mail server or a webhook receiver
// refusing it, for now or for good) hold each failure to the same
// evidence: the outbox keeps it or gives it up, and it is counted and
// logged once, at the level of its kind.

// wantKeptForRetry checks, after a round that failed the one thing queued
// (what: "message", "delivery"), that the outbox still holds it for a
// retry and no dead letter gave it up.
func wantKeptForRetry(t *testing.T, e *env, w *notify.Worker, what string) {
	t.Helper()
	ctx := context.Background()
	if n, err := w.Depth(ctx); err != nil || n != 1 {
		t.Fatalf("outbox depth = %d, %v; want the %s kept for a retry", n, err, what)
	}
	if n, err := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 0 {
		t.Fatalf("dead letters = %d, %v; want none", n, err)
	}
}

// logLevels is the level of each line of logs that names channel.
func logLevels(t *testing.T, logs *logBuffer, channel string) []string {
	t.Helper()
	var levels []string
	for _, l := range logs.lines(`"channel":"` + channel + `"`) {
		var rec struct{ Level string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		levels = append(levels, rec.Level)
	}
	return levels
}

// wantCountedAs checks that channel's one failure was counted as result
// ("error": for now; "refused": for good), and not as other.
func wantCountedAs(t *testing.T, reg *prometheus.Registry, channel, result, other string) {
	t.Helper()
	if got := testutil.ToFloat64(mustCounter(t, reg, channel, result)); got != 1 {
		t.Errorf("%s %s = %v, want 1", channel, result, got)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, channel, other)); got != 0 {
		t.Errorf("%s %s = %v, want 0", channel, other, got)
	}
}
