package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/clock"
)

// TestRedisLogCoalesces: while Redis is down go-redis says "failed to dial"
// once for each connection its pool tries to open, ten a CPU, hundreds a
// second on a large machine. The first of a kind of message is logged at
// once; others like it within redisLogEvery are counted, and the next one
// logged after that says how many were not. Messages of another kind are
// not held back by it.
func TestRedisLogCoalesces(t *testing.T) {
	var buf bytes.Buffer
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	l := newRedisLog(slog.New(slog.NewJSONHandler(&buf, nil)), clk.Now)
	ctx := context.Background()
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"
	refused := errors.New("dial tcp 10.0.0.7:6379: connect: connection refused")
	lines := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		for line := range strings.Lines(buf.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not JSON: %s", line)
			}
			out = append(out, m)
		}
		buf.Reset()
		return out
	}

	for range 300 {
		l.Printf(ctx, dial, 5, refused)
		clk.Advance(10 * time.Millisecond) // 3 s in all
	}
	l.Printf(ctx, "sentinel: new master=%q addr=%q", "lockbox", "10.0.0.8:6379")
	got := lines()
	if len(got) != 2 {
		t.Fatalf("%d lines, want the first dial failure and the sentinel's:\n%.1000v", len(got), got)
	}
	if got[0]["msg"] != "redis: connection pool: failed to dial after 5 attempts: dial tcp 10.0.0.7:6379: connect: connection refused" ||
		got[0]["level"] != "WARN" || got[0]["component"] != "redis" || got[0]["repeated"] != nil {
		t.Errorf("first line: %v", got[0])
	}
	if got[1]["msg"] != `sentinel: new master="lockbox" addr="10.0.0.8:6379"` {
		t.Errorf("another kind of message was held back: %v", got[1])
	}

	// Just short of redisLogEvery after the first: still held.
	clk.Set(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(redisLogEvery - time.Nanosecond))
	l.Printf(ctx, dial, 5, refused)
	if got := lines(); len(got) != 0 {
		t.Fatalf("logged before redisLogEvery passed: %v", got)
	}
	clk.Advance(time.Nanosecond)
	l.Printf(ctx, dial, 5, refused)
	got = lines()
	if len(got) != 1 || got[0]["repeated"] != float64(300) {
		t.Fatalf("after redisLogEvery: %v, want one line with repeated=300", got)
	}

	// The count starts again from there.
	clk.Advance(redisLogEvery)
	l.Printf(ctx, dial, 5, refused)
	got = lines()
	if len(got) != 1 || got[0]["repeated"] != nil {
		t.Fatalf("the next one, none held since: %v, want one line without repeated", got)
	}
}

// TestRedisLogLevel: below LOCKBOX_LOG_LEVEL nothing of go-redis's is
// logged, nor counted against the next message of its kind.
func TestRedisLogLevel(t *testing.T) {
	var buf bytes.Buffer
	var level slog.LevelVar
	level.Set(slog.LevelError)
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	l := newRedisLog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: &level})), clk.Now)
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"
	for range 5 {
		l.Printf(context.Background(), dial, 5, "refused")
	}
	if buf.Len() != 0 {
		t.Fatalf("logged at LOCKBOX_LOG_LEVEL=error: %s", buf.String())
	}
	level.Set(slog.LevelWarn)
	l.Printf(context.Background(), dial, 5, "refused")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("at warn, not one JSON line: %v: %s", err, buf.String())
	}
	if m["repeated"] != nil {
		t.Errorf("messages not logged at error were counted: %s", buf.String())
	}
}
