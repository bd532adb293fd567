package server

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// TestIdleCostDoesNotGrowWithTenants counts the Redis commands of every
// background job and a metrics scrape over a fixed number of rounds, driven
// by the injected clock, on a deployment of 10 onboarded tenants and on one
// of 1000, with no activity: the counts must be the same. (A job that reads
// each tenant every round costs at least 1000 commands a round here.)
func TestIdleCostDoesNotGrowWithTenants(t *testing.T) {
	const rounds = 10
	small := idleCommands(t, 10, rounds)
	large := idleCommands(t, 1000, rounds)
	t.Logf("commands over %d rounds: %d with 10 tenants, %d with 1000", rounds, small.total(), large.total())
	if large.total() != small.total() {
		t.Errorf("idle rounds cost %d commands with 1000 tenants and %d with 10: the cost depends on the number of tenants; by command: %s",
			large.total(), small.total(), small.diff(large))
	}
	// Each round claims from each job's schedule (two commands counted:
	// the script and the read inside it) and the scrape reads two
	// schedules.
	if perRound := float64(small.total()) / rounds; perRound > 12 {
		t.Errorf("an idle round costs %.1f commands, want at most 12", perRound)
	}
}

// idleCommands builds a Lockbox running every job over n onboarded tenants
// on a Redis of its own, lets the jobs finish the onboarding's work, and
// returns the commands Redis processed over rounds idle rounds.
func idleCommands(t *testing.T, n, rounds int) commandCounts {
	t.Helper()
	rs := redistest.StartServer(t)
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(map[string]string{
		"LOCKBOX_REDIS_URL": rs.URL, "LOCKBOX_SERVE": "api,jobs",
		"LOCKBOX_JWT_JWKS_FILE":   filepath.Join(dir, identity.DevJWKSFile),
		"LOCKBOX_AUDIT_RETENTION": "8760h", "LOCKBOX_NOTIFY_EXPIRY_WARNING": "15m",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	s, err := New(ctx, cfg, Options{Now: c.Now, SIEMOut: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Redis.Close() })
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("tenant-%04d", i)
	}
	tenanttest.Onboard(t, s.Tenants, ids...)
	round := func() {
		t.Helper()
		c.Advance(time.Second)
		if _, err := s.Requests.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Audit.TrimAll(ctx, cfg.AuditRetention); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Notifier.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.siem.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Registry.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	// The onboarding's records are forwarded, its tenants scheduled.
	for range 3 {
		round()
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	before := processed(t, rdb)
	for range rounds {
		round()
	}
	return processed(t, rdb).minus(before)
}

// commandCounts are Redis's calls by command.
type commandCounts map[string]int64

func (c commandCounts) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

func (c commandCounts) minus(before commandCounts) commandCounts {
	out := commandCounts{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// diff names the commands whose counts differ between c and o, so a
// failure says what grew.
func (c commandCounts) diff(o commandCounts) string {
	var out []string
	for k := range maps.Keys(c) {
		if c[k] != o[k] {
			out = append(out, fmt.Sprintf("%s %d→%d", k, c[k], o[k]))
		}
	}
	for k := range maps.Keys(o) {
		if _, ok := c[k]; !ok {
			out = append(out, fmt.Sprintf("%s 0→%d", k, o[k]))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// uncounted are the commands processed leaves out.
var uncounted = []string{"info", "ping", "subscribe", "unsubscribe", "hello", "auth", "select"}

// processed is Redis's count of commands processed, by command, less the
// INFO that reads it and the cache-invalidation listener's liveness.
func processed(t *testing.T, rdb *redis.Client) commandCounts {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	counts := commandCounts{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		// The cache-invalidation listener's liveness is left out too: it
		// pings its subscription when it has been quiet for a while of
		// wall-clock time (not the injected clock), and subscribes again
		// when a PING goes unanswered past its timeout, as on a machine
		// loaded enough to delay the answer. One per listener, whatever
		// the number of tenants. So is a connection's handshake (HELLO,
		// CLIENT SETINFO, AUTH, SELECT): the pool opens a connection when
		// two commands happen to overlap on a busy machine, or replaces
		// one, whatever the number of tenants.
		switch {
		case !ok || !strings.HasPrefix(name, "cmdstat_"):
			continue
		case slices.Contains(uncounted, strings.TrimPrefix(name, "cmdstat_")),
			strings.HasPrefix(name, "cmdstat_client|"):
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		v, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		counts[strings.TrimPrefix(name, "cmdstat_")] = v
	}
	return counts
}
