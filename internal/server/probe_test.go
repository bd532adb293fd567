package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/health"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// TestRunProbesReadinessWithoutReadyz: a running Lockbox probes its
// readiness checks every health.ProbeInterval with nothing asking /readyz
// (systemd runs no prober), so a Redis that stops answering is logged by
// the health component, and the checks' gauges are served current. Only
// /readyz ran them: the log said nothing, and
// lockbox_redis_masters_refusing_writes kept its first value.
func TestRunProbesReadinessWithoutReadyz(t *testing.T) {
	rdb := redistest.StartServer(t)
	// Buffered: Probe never waits on the test, even at the stop, nor the
	// test on a Lockbox that does not probe.
	waiting := make(chan time.Duration, 16)
	tick := make(chan time.Time, 1)
	// Bounds a failure only: a probe takes milliseconds.
	probed := func(what string) time.Duration {
		t.Helper()
		select {
		case d := <-waiting:
			return d
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no readiness probe ran within 30s", what)
			return 0
		}
	}
	lb := start(t, map[string]string{"LOCKBOX_REDIS_URL": "redis://" + rdb.Addr, "LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"}, func(o *server.Options) {
		o.HealthAfter = func(d time.Duration) <-chan time.Time { waiting <- d; return tick }
	})
	if d := probed("at start"); d != health.ProbeInterval {
		t.Fatalf("the first probe waits %v, want %v", d, health.ProbeInterval)
	}
	resp, err := http.Get("http://" + lb.srv.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"\nlockbox_redis_masters_refusing_writes 0\n", "\nlockbox_redis_masters_unanswered 0\n"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(m))
		}
	}
	if strings.Contains(lb.logs.String(), "readiness check") {
		t.Fatalf("readiness logged with Redis up:\n%s", lb.logs)
	}

	rdb.Stop()
	tick <- time.Time{}
	probed("Redis stopped, the timer's wait over")
	var failing string
	for line := range strings.Lines(lb.logs.String()) {
		if strings.Contains(line, `msg="readiness check failing: /readyz answers 503"`) && strings.Contains(line, "check=redis") {
			failing = line
		}
	}
	if failing == "" || !strings.Contains(failing, "component=health") {
		t.Errorf("Redis stopped, one timer probe later: no health line says the redis check fails\n%s", lb.logs)
	}
}
