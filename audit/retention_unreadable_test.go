package audit_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/internal/clock"
)

// TestRetentionReportsUnreadableRecordsItRemoves: a record retention can't
// read, removed by its stream id's age, is counted and logged at warn with
// its stream id, once: nothing else would ever tell an operator that the
// log held a record no one could read, and that it is gone now.
func TestRetentionReportsUnreadableRecordsItRemoves(t *testing.T) {
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
	for i, r := range []string{
		storedAt(log, t0),
		`{"Id":"c-1","CreationTime":"2026-01-01T01:00:0`, // cut short
		storedAt(log, t0.Add(2*time.Hour)),
		`{"Id":"z-3","Operation":"Get-Mailbox"}`, // no CreationTime
		storedAt(log, t0.Add(4*time.Hour)),
	} {
		appendAt(t, rdb, "contoso", t0.Add(time.Duration(i)*time.Hour), r)
	}
	idAt := func(h int) string { return fmt.Sprintf("%d-0", t0.Add(time.Duration(h)*time.Hour).UnixMilli()) }
	const metric = "lockbox_audit_records_trimmed_unreadable_total"

	if n, err := log.Trim(ctx, "contoso", t0.Add(150*time.Minute)); err != nil || n != 3 {
		t.Fatalf("first cut removed %d, %v; want 3", n, err)
	}
	if got := counterValue(t, reg, metric); got != 1 {
		t.Fatalf("%s = %v after the first cut, want 1 (the record cut short)", metric, got)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "stream_id="+idAt(1)) ||
		!strings.Contains(out, "tenant=contoso") {
		t.Fatalf("no warning names the unreadable record removed (%s): %q", idAt(1), out)
	}
	// The same cut again removes nothing, and reports nothing again.
	if n, err := log.Trim(ctx, "contoso", t0.Add(150*time.Minute)); err != nil || n != 0 {
		t.Fatalf("second cut removed %d, %v", n, err)
	}
	if got := counterValue(t, reg, metric); got != 1 {
		t.Fatalf("%s = %v after a cut that removed nothing, want 1", metric, got)
	}
	if n, err := log.Trim(ctx, "contoso", t0.Add(5*time.Hour)); err != nil || n != 2 {
		t.Fatalf("third cut removed %d, %v; want 2", n, err)
	}
	if got := counterValue(t, reg, metric); got != 2 {
		t.Fatalf("%s = %v after the third cut, want 2 (and the record without a CreationTime)", metric, got)
	}
	if out := logs.String(); strings.Count(out, "stream_id=") != 2 || !strings.Contains(out, "stream_id="+idAt(3)) {
		t.Fatalf("want one warning for each of %s and %s: %q", idAt(1), idAt(3), out)
	}
}

// TestRetentionReportsEachUnreadableRecordOnce: replicas trimming one
// stream at once, with different cutoffs, report each unreadable record
// they removed once in all: a replica whose cut another's already took in
// part reports only the records its own cut removed.
func TestRetentionReportsEachUnreadableRecordOnce(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writer := newLog(rdb, clock.NewFake(t0).Now)
	const records = 40
	unreadable := map[string]bool{}
	for i := range records {
		at := t0.Add(time.Duration(i) * time.Minute)
		r := storedAt(writer, at)
		if i%3 == 1 {
			r = `not json`
			unreadable[fmt.Sprintf("%d-0", at.UnixMilli())] = true
		}
		appendAt(t, rdb, "contoso", at, r)
	}
	const replicas = 4
	regs := make([]*prometheus.Registry, replicas)
	logs := make([]*syncBuffer, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		regs[i], logs[i] = prometheus.NewRegistry(), &syncBuffer{}
		l := newLog(rdb, clock.NewFake(t0).Now)
		if err := l.ReportRetention(regs[i], slog.New(slog.NewTextHandler(logs[i], nil))); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			// Cutoffs from 10 to 40 minutes: the last one removes them all.
			for _, cut := range []int{10 * (i + 1), records} {
				if _, err := l.Trim(ctx, "contoso", t0.Add(time.Duration(cut)*time.Minute)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	total := 0.0
	seen := map[string]int{}
	for i := range replicas {
		total += counterValue(t, regs[i], "lockbox_audit_records_trimmed_unreadable_total")
		for line := range strings.Lines(logs[i].String()) {
			if _, id, ok := strings.Cut(line, "stream_id="); ok {
				id, _, _ = strings.Cut(strings.TrimSpace(id), " ")
				seen[id]++
			}
		}
	}
	if int(total) != len(unreadable) {
		t.Errorf("the replicas counted %v unreadable records removed, want %d", total, len(unreadable))
	}
	for id := range unreadable {
		if seen[id] != 1 {
			t.Errorf("record %s reported %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(unreadable) {
		t.Errorf("reported %d records, want the %d unreadable ones: %v", len(seen), len(unreadable), seen)
	}
}
