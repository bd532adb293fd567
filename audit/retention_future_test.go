package audit_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestRetentionPastAFutureDatedRecord: a record whose CreationTime is a
// year ahead of its stream id (written by a replica whose clock ran ahead)
// is as old as its stream id, so it doesn't keep the tenant's whole log
// after it until that date; removing it is counted and logged at warn
// with both times, and the chain verifies after the cut.
func TestRetentionPastAFutureDatedRecord(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := newLog(rdb, clock.NewFake(t0).Now)
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	if err := log.ReportRetention(reg, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatal(err)
	}
	ahead := t0.Add(time.Hour).AddDate(1, 0, 0)
	for i, created := range []time.Time{
		t0,
		ahead, // appended at t0+1h
		t0.Add(2 * time.Hour),
		// Ahead by less than ClockSkew: an ordinary replica, dated by
		// its CreationTime.
		t0.Add(3*time.Hour + audit.ClockSkew - time.Second),
		t0.Add(4 * time.Hour),
	} {
		appendAt(t, rdb, "contoso", t0.Add(time.Duration(i)*time.Hour), storedAt(log, created))
	}
	idAt := func(h int) string { return fmt.Sprintf("%d-0", t0.Add(time.Duration(h)*time.Hour).UnixMilli()) }
	const metric = "lockbox_audit_records_trimmed_future_dated_total"

	for _, step := range []struct {
		cutoff        time.Duration
		removed, kept int
	}{
		{150 * time.Minute, 3, 2}, // through the future-dated record and the next
		{3*time.Hour + audit.ClockSkew - time.Second, 0, 2},
		{3*time.Hour + audit.ClockSkew, 1, 1},
	} {
		n, err := log.Trim(ctx, "contoso", t0.Add(step.cutoff))
		if err != nil || n != step.removed {
			t.Fatalf("cut at t0+%s: removed %d (%v), want %d", step.cutoff, n, err, step.removed)
		}
		if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != step.kept {
			t.Fatalf("after the cut at t0+%s: %+v %v, want %d records", step.cutoff, v, err, step.kept)
		}
	}
	if got := counterValue(t, reg, metric); got != 1 {
		t.Fatalf("%s = %v, want 1 (the record a year ahead, not the one within ClockSkew)", metric, got)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "tenant=contoso") ||
		!strings.Contains(out, "stream_id="+idAt(1)) ||
		!strings.Contains(out, "creation_time="+ahead.Format(slogTime)) ||
		!strings.Contains(out, "stream_time="+t0.Add(time.Hour).Format(slogTime)) {
		t.Fatalf("want one warning naming the future-dated record %s and both its times: %q", idAt(1), out)
	}
	if got := counterValue(t, reg, "lockbox_audit_records_trimmed_unreadable_total"); got != 0 {
		t.Fatalf("a readable future-dated record counted as unreadable: %v", got)
	}
}

// slogTime is how slog's text handler writes a time.
const slogTime = "2006-01-02T15:04:05.000Z07:00"

// TestRetentionScheduleOfAFutureDatedOldestRecord: when the oldest record
// left is dated far ahead of its stream id, the tenant's next retention
// visit is when its stream id passes retention, not a year later.
func TestRetentionScheduleOfAFutureDatedOldestRecord(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := newLog(rdb, c.Now)
	appendAt(t, rdb, "contoso", t0, storedAt(log, t0))
	appendAt(t, rdb, "contoso", t0.Add(time.Hour), storedAt(log, t0.AddDate(1, 0, 0)))
	log.Written(ctx, "contoso")
	const retention = 24 * time.Hour
	c.Set(t0.Add(retention + 30*time.Minute))
	if n, err := log.TrimAll(ctx, retention); err != nil || n != 1 {
		t.Fatalf("TrimAll: %d %v", n, err)
	}
	want := t0.Add(time.Hour + retention)
	s, err := rdb.ZScore(ctx, keys.Due("retention"), "contoso").Result()
	if err != nil || int64(s) != want.UnixMilli() {
		t.Fatalf("next retention visit at %v (%v), want %v", time.UnixMilli(int64(s)).UTC(), err, want)
	}
	// The rescan of the schedule reads the same date.
	p := rdb.Pipeline()
	read := audit.RetentionProbe(retention)(ctx, p, "contoso", c.Now())
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if at, ok := read(); !ok || !at.Equal(want) {
		t.Fatalf("RetentionProbe: %v %v, want %v", at, ok, want)
	}
}

// TestRetentionByTheSweepersClock: a CreationTime ahead of its stream id
// but not of the sweeping replica's clock is the record's date. When every
// replica's clock runs ahead of Redis's (or a test's clock jumps a day),
// dating such records by their stream ids made retention remove records
// its own clock says are an hour old, and counted them as future-dated.
func TestRetentionByTheSweepersClock(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0.Add(25 * time.Hour))
	log := newLog(rdb, clk.Now)
	reg := prometheus.NewRegistry()
	if err := log.ReportRetention(reg, nil); err != nil {
		t.Fatal(err)
	}
	// Redis's clock at t0 throughout; the replicas' a day and more ahead.
	for i, created := range []time.Time{t0, t0.Add(24 * time.Hour), t0.Add(25 * time.Hour)} {
		appendAt(t, rdb, "contoso", t0.Add(time.Duration(i)*time.Second), storedAt(log, created))
	}
	n, err := log.Trim(ctx, "contoso", clk.Now().Add(-24*time.Hour+time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("cut at t0+1h1m by a clock at t0+25h: removed %d (%v), want 1 (the record created at t0)", n, err)
	}
	if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != 2 {
		t.Fatalf("after the cut: %+v %v, want 2 records", v, err)
	}
	if got := counterValue(t, reg, "lockbox_audit_records_trimmed_future_dated_total"); got != 0 {
		t.Fatalf("records no later than the sweeper's clock counted as future-dated: %v", got)
	}
	// The schedule reads the oldest record left the same way.
	p := rdb.Pipeline()
	read := audit.RetentionProbe(24*time.Hour)(ctx, p, "contoso", clk.Now())
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	want := t0.Add(48 * time.Hour)
	if at, ok := read(); !ok || !at.Equal(want) {
		t.Fatalf("RetentionProbe: %v %v, want %v: the oldest record left was created at t0+24h", at, ok, want)
	}
}
