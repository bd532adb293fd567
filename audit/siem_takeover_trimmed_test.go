package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// flushFailSink is a memSink whose Flush fails while failing is set: the
// lines of the batch it took are not durable (a file's fsync failed).
type flushFailSink struct {
	memSink
	flushFails bool
}

func (s *flushFailSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushFails {
		return errors.New("fsync: input/output error")
	}
	return nil
}

// TestSIEMTrimmedEntriesTakenOverAreSkippedWhenTheBatchStops: records a
// replica read and died with, and that retention trimmed before another
// replica took them over, come back without fields at the end of the
// take-over batch, and XAUTOCLAIM has dropped them from the pending list
// already: that batch is the last moment anything knows of them. When the
// batch stops early (the sink fails a write, or the flush, or the replica
// is shut down mid-batch), they must still be acknowledged and counted
// skipped, as the README promises of a record a replica had read and not
// written; they need no line. No record whose line the sink did not take
// may be acknowledged: those stay pending and are written later, once.
func TestSIEMTrimmedEntriesTakenOverAreSkippedWhenTheBatchStops(t *testing.T) {
	cases := []struct {
		name string
		// sink returns the taking-over replica's sink, which stops the
		// batch; cancel ends the pass's context.
		sink func(cancel context.CancelFunc) audit.Sink
		// written is how many of the live records the stopped batch wrote
		// and acknowledged.
		written int
		// healthy lets the sink take lines again.
		healthy func(audit.Sink)
	}{
		{
			name:    "the sink fails a write",
			sink:    func(context.CancelFunc) audit.Sink { return &memSink{failing: true} },
			healthy: func(s audit.Sink) { s.(*memSink).set(false, 0) },
		},
		{
			name: "the sink fails the flush",
			sink: func(context.CancelFunc) audit.Sink { return &flushFailSink{flushFails: true} },
			healthy: func(s audit.Sink) {
				f := s.(*flushFailSink)
				f.mu.Lock()
				f.flushFails, f.lines = false, nil // the lines not flushed never reached the SIEM
				f.mu.Unlock()
			},
		},
		{
			name:    "the replica shuts down mid-batch",
			sink:    func(cancel context.CancelFunc) audit.Sink { return &cancelSink{cancel: cancel} },
			written: 1,
			healthy: func(audit.Sink) {},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rdb, clk := diedHoldingTrimmed(t)
			live := streamRecords(t, rdb, "contoso")["contoso"]
			clk.Advance(2 * time.Minute)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reg := prometheus.NewRegistry()
			sink := c.sink(cancel)
			r2 := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r2",
				ClaimAfter: time.Minute, Now: clk.Now, Registerer: reg})
			if _, err := r2.Poll(ctx); err == nil && ctx.Err() == nil {
				t.Fatal("the stopped take-over pass succeeded") // a pass cut short by shutdown returns nil
			}
			if s := counter(t, reg, "lockbox_siem_records_total", "skipped"); s != 2 {
				t.Errorf("after the stopped batch: skipped %v records, want the 2 trimmed", s)
			}
			if w := counter(t, reg, "lockbox_siem_records_total", "written"); w != float64(c.written) {
				t.Errorf("after the stopped batch: written %v, want %d", w, c.written)
			}
			if p := pending(t, rdb, "contoso"); p != int64(len(live)-c.written) {
				t.Errorf("after the stopped batch: %d records pending, want the %d whose lines the sink did not take", p, len(live)-c.written)
			}

			c.healthy(sink)
			for {
				n, err := r2.Poll(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			got := sink.(interface{ got() []string }).got()
			if strings.Join(got, "\n") != strings.Join(live, "\n") {
				t.Errorf("lines:\n%s\nwant each record retention kept, once:\n%s", strings.Join(got, "\n"), strings.Join(live, "\n"))
			}
			if s := counter(t, reg, "lockbox_siem_records_total", "skipped"); s != 2 {
				t.Errorf("finally: skipped %v records, want the 2 trimmed", s)
			}
			if p := pending(t, rdb, "contoso"); p != 0 {
				t.Errorf("finally: %d records pending", p)
			}
		})
	}
}

// drainedSkipping has fw forward until nothing is left, and checks that
// no record of contoso is pending then and that skipped records were
// counted, once each.
func drainedSkipping(t *testing.T, rdb redis.UniversalClient, fw *audit.Forwarder, reg *prometheus.Registry, skipped float64) {
	t.Helper()
	for poll(t, fw) > 0 {
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Errorf("finally: %d records pending", p)
	}
	if s := counter(t, reg, "lockbox_siem_records_total", "skipped"); s != skipped {
		t.Errorf("finally: skipped %v records, want the %v trimmed, once", s, skipped)
	}
}

// diedHoldingTrimmed has a replica, r1, read contoso's five records and
// die holding them, idle past ClaimAfter (an XCLAIM of an entry already
// trimmed would drop it itself), and retention then trim the two oldest,
// as it does (XTRIM MINID). It returns the client and r1's clock.
func diedHoldingTrimmed(t *testing.T) (redis.UniversalClient, *clock.Fake) {
	t.Helper()
	ctx := context.Background()
	rdb := testRedis(t)
	siemAppend(t, rdb, audit.NewLog(rdb, nil), 5, "contoso")
	clk := clock.NewFake(time.Now())
	dead := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{failing: true}, Consumer: "r1",
		ClaimAfter: time.Minute, Now: clk.Now})
	if _, err := dead.Poll(ctx); err == nil {
		t.Fatal("the dead replica's pass succeeded")
	}
	ageRecords(t, rdb, "contoso", 2*time.Minute)
	ids := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	if err := rdb.XTrimMinID(ctx, keys.Audit("contoso"), ids[2].ID).Err(); err != nil {
		t.Fatal(err)
	}
	return rdb, clk
}

// xackFailsOnce fails the next XACK, once, as a Redis that times out on
// the acknowledgement does.
func xackFailsOnce(rdb redis.UniversalClient) {
	rdb.AddHook(&failOnce{match: func(c redis.Cmder) bool { return strings.EqualFold(c.Name(), "xack") }})
}

// TestSIEMTrimmedEntriesTakenOverAreSkippedWhenTheAckFails: records a
// replica read and died with, and that retention trimmed before another
// replica took them over, come back without fields at the end of the
// take-over batch, already off the pending list (XAUTOCLAIM dropped them).
// When that batch's acknowledgement fails (Redis timed out), nothing
// brings them back for a later pass to count: they must be counted
// skipped then, or never, and the alert on skipped records stays silent.
// The records the batch wrote stay pending and are written again.
func TestSIEMTrimmedEntriesTakenOverAreSkippedWhenTheAckFails(t *testing.T) {
	ctx := context.Background()
	rdb, clk := diedHoldingTrimmed(t)
	clk.Advance(2 * time.Minute)

	xackFailsOnce(rdb)
	reg := prometheus.NewRegistry()
	r2 := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{}, Consumer: "r2",
		ClaimAfter: time.Minute, Now: clk.Now, Registerer: reg})
	if _, err := r2.Poll(ctx); err == nil || !strings.Contains(err.Error(), "ack: i/o timeout") {
		t.Fatalf("the pass whose acknowledgement failed: %v, want its ack error", err)
	}
	if s := counter(t, reg, "lockbox_siem_records_total", "skipped"); s != 2 {
		t.Errorf("after the failed acknowledgement: skipped %v records, want the 2 trimmed", s)
	}
	drainedSkipping(t, rdb, r2, reg, 2)
}

// TestSIEMOwnTrimmedEntriesAreSkippedOnceWhenTheAckFails: records a
// replica read, failed to write and still holds, trimmed by retention
// meanwhile, come back to it without fields and still pending. When the
// acknowledgement of their batch fails, they stay pending and come back
// at the next pass, which counts them: counted at the failed one too,
// they would be counted twice.
func TestSIEMOwnTrimmedEntriesAreSkippedOnceWhenTheAckFails(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 5, "contoso")
	reg := prometheus.NewRegistry()
	sink := &memSink{failing: true}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Registerer: reg})
	if _, err := fw.Poll(ctx); err == nil {
		t.Fatal("a pass over a failing sink succeeded")
	}
	ids := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	if err := rdb.XTrimMinID(ctx, keys.Audit("contoso"), ids[2].ID).Err(); err != nil {
		t.Fatal(err)
	}

	sink.set(false, 0)
	xackFailsOnce(rdb)
	if _, err := fw.Poll(ctx); err == nil || !strings.Contains(err.Error(), "ack: i/o timeout") {
		t.Fatalf("the pass whose acknowledgement failed: %v, want its ack error", err)
	}
	drainedSkipping(t, rdb, fw, reg, 2)
}
